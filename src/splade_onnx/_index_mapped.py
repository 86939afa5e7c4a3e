"""Version-3 index files' big arrays: memory-mapped from the file, and the passes that verify them.

:func:`mapped` maps one member's array read-only; :func:`verify_mapped` checks the members' CRC-32s and
passes over the mapped arrays, each part of the work a bounded chunk at a time and the parts side by side
on the cores this process may use (numpy and zlib-ng release the GIL for them).  Without the passes a file
is still structurally checked (:mod:`._index_file`): nothing larger than it is allocated, and every array
index numpy takes from it is bounds-checked, so a lying file can give wrong results but not more.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray
from zlib_ng import zlib_ng

from ._cores import default_threads
from ._errors import IndexFormatError
from ._impact import Impacts
from ._npz_members import NpyHeader

__all__ = ["mapped", "verify_contents", "verify_mapped"]

T = TypeVar("T")

#: Entries checked per step of a pass (bounds the scratch memory of each worker).
_CHECK_ENTRIES = 1 << 22
#: Entries counted per ``bincount`` call: its counts stay in the CPU's cache.
_COUNT_ENTRIES = 1 << 18
#: Bytes per CRC-32 step.
_CRC_BYTES = 1 << 26


def mapped(path: str, head: NpyHeader, start: int) -> tuple[NDArray[np.uint8], NDArray[Any]]:
    """A member whose array data starts at byte ``start`` of the file, memory-mapped read-only: its bytes (the
    .npy header, then the data) and its array, a view of them (one mapping, so each page counts once)."""
    raw = np.memmap(path, np.uint8, "r", offset=start - head.offset, shape=(head.info.file_size,))
    if not head.count:
        return raw, np.zeros(head.shape, head.dtype)
    data = raw[head.offset : head.offset + head.count * head.dtype.itemsize]
    return raw, data.view(head.dtype).reshape(head.shape)


def verify_mapped(
    members: Sequence[tuple[NpyHeader, NDArray[np.uint8]]],
    rows: tuple[NDArray[np.int64], NDArray[Any], NDArray[np.float32]],
    dim: int | None,
    imp: Impacts | None,
) -> None:
    """Every mapped member of ``members`` (its header and bytes, from :func:`mapped`) against its CRC-32, then
    :func:`verify_contents` of the mapped arrays: the work split across the cores."""
    jobs: list[Callable[[], Any]] = []
    crcs: list[tuple[NpyHeader, list[tuple[int, int]]]] = []
    for head, raw in members:
        steps = [(lo, min(raw.size, lo + _CRC_BYTES)) for lo in range(0, raw.size, _CRC_BYTES)]
        crcs.append((head, steps))
        jobs += [partial(_crc_step, raw, lo, hi) for lo, hi in steps]
    with ThreadPoolExecutor(default_threads()) as pool:
        parts = _run(pool, jobs)
        done = 0
        for head, steps in crcs:
            crc = 0
            for part_crc, length in parts[done : done + len(steps)]:
                crc = zlib_ng.crc32_combine(crc, part_crc, length)
            done += len(steps)
            if crc != head.info.CRC:
                raise IndexFormatError(f"{head.name}: bad CRC-32 (the file is corrupt)")
        verify_contents(*rows, dim, imp, pool=pool)


def verify_contents(
    indptr: NDArray[np.int64],
    indices: NDArray[Any],
    values: NDArray[np.float32],
    dim: int | None,
    imp: Impacts | None,
    *,
    pool: ThreadPoolExecutor | None = None,
) -> None:
    """Passes over the arrays, a bounded chunk at a time (side by side on ``pool``'s threads): vocabulary ids
    in range and ascending within each row, weights finite; the impact postings' documents in range, weights
    finite, non-increasing within each term and as many per term as the rows hold (with the ``positive`` flag
    the header claims)."""
    nnz = indices.size
    limit = dim if dim is not None else np.iinfo(np.int64).max
    terms = 0  # vocabulary ids counted per step: only to compare with the postings
    if imp is not None and nnz:
        terms = int(indices.max()) + 1
        if terms > limit:
            raise IndexFormatError("doc_indices out of range")
        if terms > imp.indptr.size - 1:  # before the counts are allocated
            raise IndexFormatError("the impact postings do not hold the documents' entries")
    steps = [(lo, min(nnz, lo + _CHECK_ENTRIES)) for lo in range(0, nnz, _CHECK_ENTRIES)]
    jobs: list[Callable[[], Any]] = [
        partial(_rows_step, indptr, indices, values, limit, terms, lo, hi) for lo, hi in steps
    ]
    if imp is not None:
        jobs += [partial(_impacts_step, imp, lo, hi) for lo, hi in steps]
    results = _run(pool, jobs) if pool is not None else [job() for job in jobs]
    if imp is None:
        return
    counts = sum((c for c in results[: len(steps)]), np.zeros(terms, np.int64))
    if not np.array_equal(np.pad(counts, (0, imp.indptr.size - 1 - terms)), np.diff(imp.indptr)):
        raise IndexFormatError("the impact postings do not hold the documents' entries")
    smallest = min((float(s) for s in results[len(steps) :]), default=np.inf)
    if nnz and imp.positive != (smallest > 0):
        raise IndexFormatError("impacts_positive disagrees with the weights")


def _run(pool: ThreadPoolExecutor, jobs: list[Callable[[], T]]) -> list[T]:
    """Each job's result, in order; a failure is raised (the first in job order) as soon as it is reached."""
    return list(pool.map(_call, jobs))


def _call(job: Callable[[], T]) -> T:
    return job()


def _crc_step(raw: NDArray[np.uint8], lo: int, hi: int) -> tuple[int, int]:
    """The CRC-32 of bytes ``[lo, hi)`` of ``raw``, and their count."""
    return zlib_ng.crc32(raw[lo:hi].data), hi - lo


def _inner_starts(starts: NDArray[np.int64], lo: int, hi: int) -> NDArray[np.int64]:
    """The entries of the ascending ``starts`` (where a row or term begins) in ``(lo, hi)``."""
    return starts[np.searchsorted(starts, lo, "right") : np.searchsorted(starts, hi, "left")]


def _rows_step(
    indptr: NDArray[np.int64],
    indices: NDArray[Any],
    values: NDArray[np.float32],
    limit: int,
    terms: int,
    lo: int,
    hi: int,
) -> NDArray[np.int64] | None:
    """Entries ``[lo, hi)`` of the rows checked; their count per vocabulary id when ``terms``."""
    chunk = indices[lo : hi + 1]  # one past: the step into the next chunk
    own = chunk[: hi - lo]
    if (own.dtype.kind == "i" and own.min() < 0) or own.max() >= limit:
        raise IndexFormatError("doc_indices out of range")
    ascending = chunk[1:] > chunk[:-1]
    ascending[_inner_starts(indptr[1:-1], lo, lo + ascending.size + 1) - lo - 1] = True
    if not ascending.all():
        raise IndexFormatError("doc_indices not strictly ascending within a document")
    if not np.isfinite(values[lo:hi]).all():
        raise IndexFormatError("doc_values not finite")
    if not terms:
        return None
    counts = np.zeros(terms, np.int64)
    for a in range(0, own.size, _COUNT_ENTRIES):
        counts += np.bincount(own[a : a + _COUNT_ENTRIES], minlength=terms)
    return counts


def _impacts_step(imp: Impacts, lo: int, hi: int) -> float:
    """Entries ``[lo, hi)`` of the impact postings checked; the smallest weight among them."""
    docs = imp.docs[lo:hi]
    if docs.view(np.uint32).max() >= imp.n_docs:  # one pass: a negative int32 is at least 2**31 as a uint32
        raise IndexFormatError("imp_docs out of range")
    weights = imp.weights[lo : hi + 1]
    if not np.isfinite(weights).all():
        raise IndexFormatError("imp_weights not finite")
    falling = weights[1:] <= weights[:-1]
    falling[_inner_starts(imp.indptr[1:-1], lo, lo + falling.size + 1) - lo - 1] = True
    if not falling.all():
        raise IndexFormatError("imp_weights not in decreasing order within a term")
    return float(weights[: hi - lo].min())
