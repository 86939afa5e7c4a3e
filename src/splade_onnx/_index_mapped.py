"""Version-3 index files' big arrays: memory-mapped from the file, and the passes that verify them.

:func:`mapped` maps one member's array read-only; :class:`MappedCheck` checks the members' CRC-32s and
passes over the mapped arrays, each part of the work a bounded chunk at a time and the parts side by side
on the cores this process may use (numpy and zlib-ng release the GIL for them), while the reader checks
the header.  Without the passes a file is still structurally checked (:mod:`._index_file`): nothing larger
than it is allocated, and every array index numpy takes from it is bounds-checked, so a lying file can give
wrong results but not more.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray
from zlib_ng import zlib_ng

from ._cores import default_threads
from ._errors import IndexFormatError
from ._impact import Impacts
from ._npz_members import NpyHeader

__all__ = ["MappedCheck", "mapped", "verify_contents"]

#: Entries checked per step of a pass (bounds the scratch memory of each worker).
_CHECK_ENTRIES = 1 << 22
#: Entries counted per ``bincount`` call: its counts stay in the CPU's cache.
_COUNT_ENTRIES = 1 << 18
#: Bytes per CRC-32 step.
_CRC_BYTES = 1 << 26


def mapped(fh: IO[bytes], head: NpyHeader, start: int) -> tuple[NDArray[np.uint8], NDArray[Any]]:
    """A member whose array data starts at byte ``start`` of the open file ``fh``, memory-mapped read-only: its
    bytes (the .npy header, then the data) and its array, a view of them (one mapping, so each page counts once).
    Mapped through ``fh``, not its name, every member comes from the file that was opened, even if another
    is renamed over that name meanwhile."""
    raw = np.memmap(fh, np.uint8, "r", offset=start - head.offset, shape=(head.info.file_size,))
    if not head.count:
        return raw, np.zeros(head.shape, head.dtype)
    data = raw[head.offset : head.offset + head.count * head.dtype.itemsize]
    return raw, data.view(head.dtype).reshape(head.shape).view(np.ndarray)  # no memmap subclass per slice


class MappedCheck:
    """The verifying pass of a file's mapped members, run on a thread pool while the caller goes on: the CRC-32
    steps start at once (they need nothing from the header), :meth:`contents` adds the passes over the arrays
    once the caller has parsed the header (ids, dim) and checked the arrays' shapes, and :meth:`result` waits
    for all of it and raises the first failure (a bad CRC-32 before any content's).  Leaving the ``with``
    block early (the header was bad) cancels the steps not yet started and waits for the running ones."""

    def __init__(self, members: Sequence[tuple[NpyHeader, NDArray[np.uint8]]]) -> None:
        self._pool = ThreadPoolExecutor(default_threads())
        self._crcs: list[tuple[NpyHeader, list[Future[tuple[int, int]]]]] = []
        try:
            for head, raw in members:
                steps = [(lo, min(raw.size, lo + _CRC_BYTES)) for lo in range(0, raw.size, _CRC_BYTES)]
                self._crcs.append((head, [self._pool.submit(_crc_step, raw, lo, hi) for lo, hi in steps]))
        except BaseException:  # no thread started here outlives the constructor that failed
            self._pool.shutdown(wait=True, cancel_futures=True)
            raise
        self._finish: Callable[[], None] = lambda: None

    def __enter__(self) -> MappedCheck:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def contents(
        self,
        rows: tuple[NDArray[np.int64], NDArray[Any], NDArray[np.float32]],
        dim: int | None,
        imp: Impacts | None,
    ) -> None:
        """Start :func:`verify_contents` of the mapped arrays on the pool."""
        jobs, finish = _content_jobs(*rows, dim, imp)
        futures = [self._pool.submit(job) for job in jobs]
        self._finish = lambda: finish([f.result() for f in futures])

    def result(self) -> None:
        """Wait for every step; raise :class:`IndexFormatError` for a bad CRC-32 or bad contents."""
        for head, futures in self._crcs:
            crc = 0
            for future in futures:
                part_crc, length = future.result()
                crc = zlib_ng.crc32_combine(crc, part_crc, length)
            if crc != head.info.CRC:
                raise IndexFormatError(f"{head.name}: bad CRC-32 (the file is corrupt)")
        self._finish()


def verify_contents(
    indptr: NDArray[np.int64],
    indices: NDArray[Any],
    values: NDArray[np.float32],
    dim: int | None,
    imp: Impacts | None,
) -> None:
    """Passes over the arrays, a bounded chunk at a time: vocabulary ids in range and ascending within each
    row, weights finite; the impact postings' documents in range, weights finite, non-increasing within each
    term and as many per term as the rows hold (with the ``positive`` flag the header claims)."""
    jobs, finish = _content_jobs(indptr, indices, values, dim, imp)
    finish([job() for job in jobs])


def _content_jobs(
    indptr: NDArray[np.int64],
    indices: NDArray[Any],
    values: NDArray[np.float32],
    dim: int | None,
    imp: Impacts | None,
) -> tuple[list[Callable[[], Any]], Callable[[list[Any]], None]]:
    """The steps of :func:`verify_contents`, each a job for any thread, and what checks their results."""
    nnz = indices.size
    limit = dim if dim is not None else np.iinfo(np.int64).max
    terms = 0 if imp is None else imp.indptr.size - 1  # the postings' vocabulary ids: the rows' are counted
    steps = [(lo, min(nnz, lo + _CHECK_ENTRIES)) for lo in range(0, nnz, _CHECK_ENTRIES)]
    jobs: list[Callable[[], Any]] = [
        partial(_rows_step, indptr, indices, values, limit, terms, lo, hi) for lo, hi in steps
    ]
    if imp is not None:
        jobs += [partial(_impacts_step, imp, lo, hi) for lo, hi in steps]

    def finish(results: list[Any]) -> None:
        if imp is None:
            return
        counts = np.zeros(terms, np.int64)
        for part in results[: len(steps)]:
            if part is not None:
                counts[: part.size] += part
        if not np.array_equal(counts, np.diff(imp.indptr)):
            raise IndexFormatError("the impact postings do not hold the documents' entries")
        smallest = min((float(s) for s in results[len(steps) :]), default=np.inf)
        if nnz and imp.positive != (smallest > 0):
            raise IndexFormatError("impacts_positive disagrees with the weights")

    return jobs, finish


def _crc_step(raw: NDArray[np.uint8], lo: int, hi: int) -> tuple[int, int]:
    """The CRC-32 of bytes ``[lo, hi)`` of ``raw``, and their count."""
    return zlib_ng.crc32(raw[lo:hi].data), hi - lo


def _in_order(pairs: NDArray[np.bool_], starts: NDArray[np.int64], lo: int) -> bool:
    """Whether every pair of neighbours from entry ``lo`` on is in order (``pairs[j]``: entries ``lo + j`` and
    ``lo + j + 1``), but for pairs that straddle a boundary of the ascending ``starts`` (where a row or a term
    begins): the order holds within each row or term."""
    inner = starts[np.searchsorted(starts, lo, "right") : np.searchsorted(starts, lo + pairs.size, "right")]
    pairs[inner - lo - 1] = True
    return bool(pairs.all())


def _rows_step(
    indptr: NDArray[np.int64],
    indices: NDArray[Any],
    values: NDArray[np.float32],
    limit: int,
    terms: int,
    lo: int,
    hi: int,
) -> NDArray[np.int64] | None:
    """Entries ``[lo, hi)`` of the rows checked; with ``terms`` (the postings' vocabulary size), their count per
    vocabulary id up to the largest among them."""
    chunk = indices[lo : hi + 1]  # one past: the step into the next chunk
    own = chunk[: hi - lo]
    top = int(own.max()) if own.size else -1
    if (own.dtype.kind == "i" and own.size and own.min() < 0) or top >= limit:
        raise IndexFormatError("doc_indices out of range")
    if not _in_order(chunk[1:] > chunk[:-1], indptr[1:-1], lo):
        raise IndexFormatError("doc_indices not strictly ascending within a document")
    if not np.isfinite(values[lo:hi]).all():
        raise IndexFormatError("doc_values not finite")
    if not terms:
        return None
    if top >= terms:  # before the counts are allocated
        raise IndexFormatError("the impact postings do not hold the documents' entries")
    counts = np.zeros(top + 1, np.int64)
    for a in range(0, own.size, _COUNT_ENTRIES):
        counts += np.bincount(own[a : a + _COUNT_ENTRIES], minlength=top + 1)
    return counts


def _impacts_step(imp: Impacts, lo: int, hi: int) -> float:
    """Entries ``[lo, hi)`` of the impact postings checked; the smallest weight among them and the next one (the
    steps' smallest is the postings')."""
    docs = imp.docs[lo:hi]
    if docs.view(np.uint32).max() >= imp.n_docs:  # one pass: a negative int32 is at least 2**31 as a uint32
        raise IndexFormatError("imp_docs out of range")
    weights = imp.weights[lo : hi + 1]
    smallest = weights.min()
    if not (np.isfinite(smallest) and np.isfinite(weights.max())):  # a NaN is both extremes
        raise IndexFormatError("imp_weights not finite")
    if not _in_order(weights[1:] <= weights[:-1], imp.indptr[1:-1], lo):
        raise IndexFormatError("imp_weights not in decreasing order within a term")
    return float(smallest)
