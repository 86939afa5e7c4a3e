"""A bounded, thread-safe LRU cache of encoded texts (RAG apps repeat their queries)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import NamedTuple

from ._types import SparseEmbedding, trusted_embedding

__all__ = ["CacheInfo", "VectorCache", "copy_vector"]


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
