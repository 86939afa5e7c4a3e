"""The encoding engine, one per side of a model: texts in, sparse vectors out.

A network side tokenizes, plans batches under a token budget, runs the backend and turns rows
into sparse vectors; a static side (inference-free queries) weighs each distinct token from a
table.  The encoder and the parallel workers both encode through this module, with the same
:class:`Settings`, so a setting changed on the encoder reaches the workers too.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from ._batching import TOKEN_BUDGET, fast_tokens, merge_max, plan_batches, prune, rows_to_sparse, token_windows
from ._errors import ArgumentError, ModelError
from ._layout import position_limit, read_config
from ._options import EncodeOptions
from ._session import (
    DEFAULT_SESSION,
    Backend,
    LazyBackend,
    OrtBackend,
    PerTextBackend,
    Provider,
    PrunedBackend,
    SessionSettings,
    run_all,
)
from ._tokenize import TextTokenizer, pad_batch
from ._types import SparseEmbedding, trusted_embedding

logger = logging.getLogger(__name__)

__all__ = [
    "Encoded",
    "Engine",
    "NetworkEngine",
    "NetworkRecipe",
    "Settings",
    "StaticEngine",
    "deferred_engine",
    "settings_for",
    "side_tokenizer",
]


@dataclass(frozen=True)
class Settings:
    """The options of one encoding call, checked by the encoder before any text is read."""

    max_batch: int = 256
    #: Truncation length of this call (``None``: the side's own).
    max_length: int | None = None
    token_budget: int = TOKEN_BUDGET
    top_k: int | None = None
    min_weight: float | None = None
    #: Encode every token in overlapping windows merged by max, instead of truncating.
    windows: bool = False
    #: Tokens shared by consecutive windows (``None``: a quarter of a window).
    stride: int | None = None


class Encoded(NamedTuple):
    vectors: list[SparseEmbedding]
    #: Positions (in the texts given) of the texts that were truncated.
    cut: list[int]


def _finish(vectors: list[SparseEmbedding], s: Settings) -> list[SparseEmbedding]:
    if s.top_k is None and s.min_weight is None:
        return vectors
    return [prune(v, top_k=s.top_k, min_weight=s.min_weight) for v in vectors]


class NetworkEngine:
    """A transformer side: tokenize, batch, run the pooled graph, sparse rows.

    ``fast`` is the same network as a latency graph (one vocabulary slice, no chunk loop), opened
    on first use: a batch of at most :func:`~splade_onnx._batching.fast_tokens` tokens (rows x
    padded length), such as one query, runs there.  Both graphs compute the same pooled weights.
    """

    kind = "network"

    def __init__(
        self,
        backend: Backend | LazyBackend[Backend],
        tokenizer: TextTokenizer,
        *,
        prompt: str = "",
        pooling: str = "max",
        fast: LazyBackend[OrtBackend | PerTextBackend] | None = None,
        drop_ids: Sequence[int] = (),
    ) -> None:
        #: The main graph's backend, opened on first use (:attr:`backend`).
        self.main: LazyBackend[Backend] = backend if isinstance(backend, LazyBackend) else LazyBackend(lambda: backend)
        self.tokenizer = tokenizer
        self.prompt = prompt
        self.pooling = pooling
        self.fast = fast
        self.fast_tokens = fast_tokens(tokenizer.vocab_size) if fast is not None else 0
        #: Ids zeroed in every vector (FastEmbed's IfSplade zeroes the special tokens'); empty for most models.
        self.drop_ids = np.asarray(sorted(set(drop_ids)), dtype=np.int64)

    @property
    def backend(self) -> Backend:
        """The main graph's backend (its sessions open here, the first time)."""
        return self.main.get()

    @property
    def max_length(self) -> int:
        return self.tokenizer.max_length

    def window_tokens(self, max_length: int | None) -> int:
        """Content tokens per window at ``max_length`` (special tokens take the rest)."""
        pre, post = self.tokenizer.special_ids()
        return (max_length or self.max_length) - len(pre) - len(post)

    def check_windows(self, max_length: int | None, stride: int | None) -> None:
        """Raise :class:`ArgumentError` if windows cannot be used with these settings."""
        size = self.window_tokens(max_length)
        if stride is not None and not 0 <= stride < size:
            raise ArgumentError(f"stride must be in [0, {size - 1}] (tokens shared by windows of {size}), got {stride}")

    def encode(self, texts: Sequence[str], s: Settings, *, start: int = 0) -> Encoded:
        if self.prompt:
            texts = [self.prompt + t for t in texts]
        if s.windows:
            return Encoded(_finish(self._windowed(texts, s, start), s), [])
        ids, cut = self.tokenizer.encode_counted(texts, s.max_length, start=start)
        return Encoded(_finish(self._run(ids, s), s), cut)

    def _run(self, ids: Sequence[Sequence[int]], s: Settings) -> list[SparseEmbedding]:
        out: list[SparseEmbedding | None] = [None] * len(ids)
        batches = plan_batches([len(x) for x in ids], token_budget=s.token_budget, max_batch=s.max_batch)
        # rows x padded length, as pad_batch will make it; a feed is padded only when its batch is reached
        small = [self.fast is not None and len(b) * max(len(ids[i]) for i in b) <= self.fast_tokens for b in batches]

        def feed(batch: list[int]) -> dict[str, NDArray[np.int64]]:
            return pad_batch([ids[i] for i in batch], self.tokenizer.pad_id)

        # in order, maybe overlapped; the main graph is opened only when a batch needs it
        big = run_all(self.backend, (feed(b) for b, sm in zip(batches, small) if not sm)) if not all(small) else None
        for batch, sm in zip(batches, small):
            weights = self.fast.get().run(feed(batch)) if sm else next(big)  # type: ignore[union-attr,arg-type]
            for i, emb in zip(batch, rows_to_sparse(weights)):
                out[i] = _without(emb, self.drop_ids) if self.drop_ids.size else emb
        return out  # type: ignore[return-value]

    def _windowed(self, texts: Sequence[str], s: Settings, start: int) -> list[SparseEmbedding]:
        """Every token of each text, in windows of the side's length sharing ``stride`` tokens, merged by max."""
        pre, post = self.tokenizer.special_ids()
        size = self.window_tokens(s.max_length)
        stride = size // 4 if s.stride is None else s.stride
        ids: list[list[int]] = []
        owner: list[int] = []
        for j, t in enumerate(texts):
            content = self.tokenizer.content_ids(t, start + j)
            for lo, hi in token_windows(int(content.size), size, stride):
                ids.append([*pre, *content[lo:hi].tolist(), *post])
                owner.append(j)
        rows = self._run(ids, s)
        parts: list[list[SparseEmbedding]] = [[] for _ in texts]
        for j, row in zip(owner, rows):
            parts[j].append(row)
        return [merge_max(p) for p in parts]


def _without(emb: SparseEmbedding, ids: NDArray[np.int64]) -> SparseEmbedding:
    """``emb`` without the entries of ``ids`` (sorted)."""
    keep = ~np.isin(emb.indices, ids, assume_unique=True)
    return emb if keep.all() else trusted_embedding(emb.values[keep], emb.indices[keep])


class StaticEngine:
    """An inference-free side: the distinct token ids of a text (no special tokens), each weighted from a table.

    These are sentence-transformers' ``SparseStaticEmbedding`` rules: a token counts once however
    often it occurs, its value is ``weights[id]`` exactly, and the text is truncated at the
    tokenizer's ``model_max_length`` content tokens (no limit when it has none).

    FastEmbed's ``IfSplade`` rules (:mod:`splade_onnx._fastembed_rules`) take a tokenizer that adds its
    special tokens, ``drop_ids`` (the special ids, removed from every text) and ``listed`` (the ids the
    table has an entry for: those, and only those, are kept, an entry of 0 included).
    """

    kind = "static"

    def __init__(
        self,
        tokenizer: TextTokenizer,
        weights: NDArray[np.float32],
        *,
        prompt: str = "",
        drop_ids: Sequence[int] = (),
        listed: NDArray[np.bool_] | None = None,
    ) -> None:
        if tokenizer.specials and not drop_ids:
            raise ArgumentError(
                "a static side tokenizes without special tokens: use TextTokenizer(specials=False), or pass the "
                "special ids to remove as drop_ids"
            )
        if listed is not None and listed.shape != weights.shape:
            raise ModelError(f"listed has shape {listed.shape} but the weight table {weights.shape}")
        if weights.ndim != 1 or weights.size < tokenizer.vocab_size:
            raise ModelError(
                f"the query weight table has {weights.size} entries but the tokenizer has {tokenizer.vocab_size} "
                "tokens; they must describe the same vocabulary"
            )
        self.tokenizer = tokenizer
        if not np.all(np.isfinite(weights)):
            raise ModelError("the query weight table has non-finite values (NaN or infinity)")
        self.weights = np.ascontiguousarray(weights, dtype=np.float32)
        self._weights_list: list[float] = self.weights.tolist()
        self.drop_ids = frozenset(int(i) for i in drop_ids)
        self.listed = None if listed is None else np.ascontiguousarray(listed, dtype=np.bool_)
        self._listed_list: list[bool] | None = None if self.listed is None else self.listed.tolist()
        self.prompt = prompt
        self.pooling = "max"

    @property
    def max_length(self) -> int:
        return self.tokenizer.max_length

    def window_tokens(self, max_length: int | None) -> int:
        return max_length or self.max_length

    def check_windows(self, max_length: int | None, stride: int | None) -> None:
        """Windows on a static side mean no truncation: every distinct token of the text counts."""

    def encode(self, texts: Sequence[str], s: Settings, *, start: int = 0) -> Encoded:
        if self.prompt:
            texts = [self.prompt + t for t in texts]
        cut: list[int] = []
        if s.windows:
            ids: Sequence[Any] = [self.tokenizer.content_ids(t, start + j) for j, t in enumerate(texts)]
        else:
            ids, cut = self.tokenizer.encode_counted(texts, s.max_length, start=start)
        return Encoded(_finish([self.vector(x) for x in ids], s), cut)

    def vector(self, ids: Sequence[int] | NDArray[np.int64]) -> SparseEmbedding:
        if len(ids) <= 256:  # a query: sets and a list beat numpy's fixed costs
            u = sorted(set(ids.tolist() if isinstance(ids, np.ndarray) else ids) - self.drop_ids)
            w = self._weights_list
            listed = self._listed_list
            keep = [i for i in u if w[i] != 0.0] if listed is None else [i for i in u if listed[i]]
            return trusted_embedding(np.array([w[i] for i in keep], dtype=np.float32), np.array(keep, dtype=np.int64))
        a = np.unique(np.asarray(ids, dtype=np.int64))
        if self.drop_ids:
            a = a[~np.isin(a, list(self.drop_ids))]
        v = self.weights[a]
        nz = v != 0 if self.listed is None else self.listed[a]
        return trusted_embedding(v[nz], a[nz])


Engine = NetworkEngine | StaticEngine


@dataclass(frozen=True)
class NetworkRecipe:
    """What it takes to rebuild a network side, in this process or in a worker."""

    graph: Path
    folder: Path
    #: The pruned head's per-text graph; when set, ``graph`` is its state graph (encoder + bound).
    head: Path | None = None
    #: Makes the latency graph (one vocabulary slice) for short batches on first use; ``None`` when
    #: ``graph`` has no slices.
    fast_graph: Callable[[], Path] | None = None
    #: ``fast_graph`` takes one text without padding per run (the pruned head's query graph).
    fast_per_text: bool = False
    max_length: int | None = None
    max_seq_length: int | None = None
    lowercase: bool = False
    prompt: str = ""
    pooling: str = "max"
    providers: Sequence[Provider] | None = None
    #: Ids zeroed in every vector (:attr:`NetworkEngine.drop_ids`).
    drop_ids: tuple[int, ...] = ()
    #: The onnxruntime session options of every session of this side.
    session: SessionSettings = DEFAULT_SESSION
    #: CUDA device ids handed to worker processes in turn (FastEmbed's ``device_ids``): see :meth:`for_worker`.
    devices: tuple[int, ...] = ()

    def tokenizer(self) -> TextTokenizer:
        return side_tokenizer(
            self.folder, max_length=self.max_length, max_seq_length=self.max_seq_length, lowercase=self.lowercase
        )

    def for_worker(self, index: int) -> NetworkRecipe:
        """The recipe of worker process ``index``: on CUDA device ``devices[index % len(devices)]`` when ``devices``
        is set (as FastEmbed hands its ``device_ids`` to its workers), else this recipe."""
        if not self.devices:
            return self
        device = self.devices[index % len(self.devices)]
        return dataclasses.replace(self, providers=[("CUDAExecutionProvider", {"device_id": device})], devices=())

    def build(self, *, threads: int | None, share: NetworkEngine | None = None) -> NetworkEngine:
        """The engine; ``share`` is an engine of the same graphs whose sessions it uses instead of opening its own."""
        tok = self.tokenizer()
        if share is not None:
            return NetworkEngine(
                share.main, tok, prompt=self.prompt, pooling=self.pooling, fast=share.fast, drop_ids=self.drop_ids
            )
        return NetworkEngine(
            LazyBackend(functools.partial(self.open_backend, threads)),
            tok,
            prompt=self.prompt,
            pooling=self.pooling,
            drop_ids=self.drop_ids,
            fast=None
            if self.fast_graph is None
            else LazyBackend(functools.partial(self.open_fast, self.fast_graph, threads)),
        )

    def open_backend(self, threads: int | None) -> Backend:
        """The main graph's sessions: the pruned head's pair, or one dense session."""
        if self.head is not None:
            return PrunedBackend(self.graph, self.head, threads=threads, providers=self.providers, session=self.session)
        return OrtBackend(self.graph, threads=threads, providers=self.providers, session=self.session)

    def open_fast(self, graph: Callable[[], Path], threads: int | None) -> OrtBackend | PerTextBackend:
        """The session of short batches (``graph`` converts it the first time): the latency graph's, or the pruned
        head's query graph's, which takes one text per run (:attr:`fast_per_text`)."""
        backend = OrtBackend(graph(), threads=threads, providers=self.providers, spinning=False, session=self.session)
        return PerTextBackend(backend) if self.fast_per_text else backend


def side_tokenizer(
    folder: Path, *, max_length: int | None, max_seq_length: int | None, lowercase: bool
) -> TextTokenizer:
    """The tokenizer of a network side whose files are in ``folder`` (what :meth:`NetworkRecipe.tokenizer` builds)."""
    return TextTokenizer.from_folder(
        folder,
        max_length=max_length,
        model_limit=position_limit(read_config(folder)),
        configured=max_seq_length,
        lowercase=lowercase,
    )


def deferred_engine(
    recipe: Callable[[], NetworkRecipe],
    tokenizer: TextTokenizer,
    *,
    threads: int | None,
    latency: bool,
    prompt: str = "",
    pooling: str = "max",
    drop_ids: Sequence[int] = (),
) -> NetworkEngine:
    """A network side whose graphs are made only when one of its sessions first opens: ``recipe()`` makes them
    (converting and caching them on a cache miss) and is called then, not now.  ``latency`` says whether the recipe
    will have a latency graph; ``tokenizer``, ``prompt``, ``pooling`` and ``drop_ids`` are the recipe's own."""

    def main() -> Backend:
        return recipe().open_backend(threads)

    def fast() -> OrtBackend | PerTextBackend:
        made = recipe()
        if made.fast_graph is None:
            raise ModelError(f"the graph of {made.folder} has no latency graph, though one was announced")
        return made.open_fast(made.fast_graph, threads)

    return NetworkEngine(
        LazyBackend(main),
        tokenizer,
        prompt=prompt,
        pooling=pooling,
        drop_ids=drop_ids,
        fast=LazyBackend(fast) if latency else None,
    )


def settings_for(
    engine: Engine, options: EncodeOptions, *, token_budget: int = TOKEN_BUDGET, default_top_k: int | None = None
) -> Settings:
    """``options`` checked against ``engine``'s side (``max_length`` within its limit, windows that fit),
    as the :class:`Settings` of its calls; ``top_k=None`` takes ``default_top_k`` (the model's ``max_active_dims``)."""
    if options.max_length is not None:
        engine.tokenizer.check_max_length(options.max_length)
    if options.long_documents == "windows":
        engine.check_windows(options.max_length, options.stride)
    return Settings(
        max_batch=options.batch_size or 256,
        max_length=options.max_length,
        token_budget=token_budget,
        top_k=options.top_k if options.top_k is not None else default_top_k,
        min_weight=None if options.min_weight is None else float(options.min_weight),
        windows=options.long_documents == "windows",
        stride=options.stride,
    )
