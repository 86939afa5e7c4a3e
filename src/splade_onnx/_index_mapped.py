"""Version-3 index files' big arrays: memory-mapped from the file, and the passes that verify them.

:func:`mapped` maps one member's array read-only (checking its CRC-32 first when asked);
:func:`verify_contents` passes over the mapped arrays a bounded chunk at a time.  Without the passes a
file is still structurally checked (:mod:`._index_file`): nothing larger than it is allocated, and every
array index numpy takes from it is bounds-checked, so a lying file can give wrong results but not more.
"""

from __future__ import annotations

import zlib
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from ._errors import IndexFormatError
from ._impact import Impacts
from ._npz_members import NpyHeader, data_offset

__all__ = ["mapped", "verify_contents"]

#: Entries checked per pass when a file's arrays are verified (bounds the scratch memory).
_CHECK_ENTRIES = 1 << 23


def mapped(fh: IO[bytes], path: str, head: NpyHeader, size: int, *, verify: bool) -> NDArray[Any]:
    """A member's array as a read-only memory map of the file (its CRC-32 checked first with ``verify``)."""
    start = data_offset(fh, head, size)
    if verify:
        raw = np.memmap(path, np.uint8, "r", offset=start - head.offset, shape=(head.info.file_size,))
        crc = 0
        for lo in range(0, raw.size, 1 << 26):
            crc = zlib.crc32(raw[lo : lo + (1 << 26)].data, crc)
        if crc != head.info.CRC:
            raise IndexFormatError(f"{head.name}: bad CRC-32 (the file is corrupt)")
        del raw
    if not head.count:
        return np.zeros(head.shape, head.dtype)
    return np.memmap(path, head.dtype, "r", offset=start, shape=head.shape)


def verify_contents(
    indptr: NDArray[np.int64], indices: NDArray[Any], values: NDArray[np.float32], dim: int | None, imp: Impacts | None
) -> None:
    """Passes over the mapped arrays, a bounded chunk at a time: vocabulary ids in range and ascending within
    each row, weights finite; the impact postings' documents in range, weights finite, non-increasing within
    each term and as many per term as the rows hold (with the ``positive`` flag the header claims)."""
    nnz, n = indices.size, indptr.size - 1
    limit = dim if dim is not None else np.iinfo(np.int64).max
    counts = np.zeros(0, np.int64)
    row_starts = indptr[1:-1]
    for lo in range(0, nnz, _CHECK_ENTRIES):
        hi = min(nnz, lo + _CHECK_ENTRIES)
        chunk = np.asarray(indices[lo : hi + 1], np.int64)  # one past: the step into the next chunk
        if chunk[: hi - lo].min() < 0 or chunk[: hi - lo].max() >= limit:
            raise IndexFormatError("doc_indices out of range")
        ascending = np.diff(chunk) > 0
        starts = row_starts[(row_starts > lo) & (row_starts <= lo + ascending.size)]
        ascending[starts - lo - 1] = True
        if not ascending.all():
            raise IndexFormatError("doc_indices not strictly ascending within a document")
        if not np.isfinite(values[lo:hi]).all():
            raise IndexFormatError("doc_values not finite")
        if imp is not None:
            part = np.bincount(chunk[: hi - lo])
            counts = np.pad(counts, (0, max(0, part.size - counts.size)))
            counts[: part.size] += part
    if imp is None:
        return
    if counts.size > imp.indptr.size - 1 or not np.array_equal(
        np.pad(counts, (0, imp.indptr.size - 1 - counts.size)), np.diff(imp.indptr)
    ):
        raise IndexFormatError("the impact postings do not hold the documents' entries")
    term_starts = imp.indptr[1:-1]
    smallest = np.inf
    for lo in range(0, nnz, _CHECK_ENTRIES):
        hi = min(nnz, lo + _CHECK_ENTRIES)
        docs = imp.docs[lo:hi]
        if docs.min() < 0 or docs.max() >= n:
            raise IndexFormatError("imp_docs out of range")
        weights = np.asarray(imp.weights[lo : hi + 1])
        if not np.isfinite(weights).all():
            raise IndexFormatError("imp_weights not finite")
        smallest = min(smallest, float(weights.min()))
        falling = np.diff(weights) <= 0
        starts = term_starts[(term_starts > lo) & (term_starts <= lo + falling.size)]
        falling[starts - lo - 1] = True
        if not falling.all():
            raise IndexFormatError("imp_weights not in decreasing order within a term")
    if nnz and imp.positive != (smallest > 0):
        raise IndexFormatError("impacts_positive disagrees with the weights")
