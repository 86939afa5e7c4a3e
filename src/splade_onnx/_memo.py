"""A bounded, thread-safe LRU cache of encoded texts (RAG apps repeat their queries)."""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import NamedTuple

from ._engine import Encoded, Engine, Settings
from ._tokenize import check_encodable
from ._types import SparseEmbedding, trusted_embedding

__all__ = ["CacheInfo", "VectorCache", "copy_vector", "encode_cached"]


class CacheInfo(NamedTuple):
    """Counters of a :class:`VectorCache`, as :func:`functools.lru_cache` reports them."""

    hits: int
    misses: int
    maxsize: int
    currsize: int


class VectorCache:
    """``key -> (vector, was_cut)``, at most ``maxsize`` entries, least recently used evicted first.

    Stored vectors are private copies and every hit returns a fresh copy, so a caller that
    modifies a returned vector in place cannot change what later callers get.
    """

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[Hashable, tuple[SparseEmbedding, bool]] = OrderedDict()
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0

    def get(self, key: Hashable) -> tuple[SparseEmbedding, bool] | None:
        with self._lock:
            hit = self._data.get(key)
            if hit is None:
                self._misses += 1
                return None
            self._data.move_to_end(key)
            self._hits += 1
        return copy_vector(hit[0]), hit[1]

    def put(self, key: Hashable, vector: SparseEmbedding, cut: bool) -> None:
        entry = (copy_vector(vector), cut)
        with self._lock:
            self._data[key] = entry
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._hits = self._misses = 0

    def info(self) -> CacheInfo:
        with self._lock:
            return CacheInfo(self._hits, self._misses, self.maxsize, len(self._data))


def copy_vector(v: SparseEmbedding) -> SparseEmbedding:
    """A vector with its own arrays."""
    return trusted_embedding(v.values.copy(), v.indices.copy())


def encode_cached(
    cache: VectorCache, engine: Engine, texts: list[str], s: Settings, start: int, *, model: str | None
) -> Encoded:
    """``engine.encode`` through ``cache``: each distinct text it lacks is encoded once, in one call.

    Keys are ``model`` (a fingerprint), the call's settings (batching aside) and the text.

    Hits and misses are counted per distinct text of the call.
    """
    call = (model, dataclasses.replace(s, max_batch=0, token_budget=0))
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
