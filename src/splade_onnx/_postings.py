"""The postings of a :class:`SparseIndex` and exact scoring over them: pure numpy, no ids, no state.

:class:`Postings` is a CSC-like view of the document rows (for each vocabulary id that occurs: the
document numbers containing it, ascending, and the weights); :func:`merge_rows` folds new rows in
without re-sorting the old entries, :func:`drop_documents` renumbers them after deletions, and
:func:`score_block` gives a block of queries their exact top-k by dot product.

Scores are exact: each product of two float32 weights is exact in float64 and the products of one
(query, document) pair are summed in float64 in ascending vocabulary-id order, so any blocking of
the queries returns bit-identical scores.
"""

from __future__ import annotations

import itertools
import operator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._errors import ArgumentError, ArgumentTypeError

__all__ = ["MERGE_ENTRIES", "Postings", "check_k", "drop_documents", "merge_rows", "score_block", "top_k"]

_Int = NDArray[np.int64]
_Int32 = NDArray[np.int32]
_Float32 = NDArray[np.float32]
_Float64 = NDArray[np.float64]
_Bool = NDArray[np.bool_]


def check_k(k: int) -> int:
    """``k`` as an int, if it is one and ``>= 1``."""
    try:
        k = operator.index(k)
    except TypeError:
        raise ArgumentTypeError(f"k must be an int, got {type(k).__name__}") from None
    if k < 1:
        raise ArgumentError(f"k must be >= 1, got {k}")
    return k


def top_k(scores: NDArray[Any], k: int) -> NDArray[np.intp]:
    """Indices of the ``k`` largest ``scores``, best first; equal scores keep the lower index first.

    Returns every index (sorted) when ``k`` exceeds ``len(scores)``.

    >>> top_k(np.array([0.5, 2.0, 1.0, 2.0, 1.0]), 3).tolist()
    [1, 3, 2]
    >>> top_k(np.array([1.0, 3.0]), 10).tolist()
    [1, 0]
    """
    k = check_k(k)
    scores = np.asarray(scores)
    if scores.ndim != 1:
        raise ArgumentError(f"scores must be 1-D, got shape {scores.shape}")
    n = scores.size
    if k < n:
        part = np.argpartition(scores, n - k)[n - k :]
        # Every index scoring at least the k-th best, so ties at the boundary resolve by index.
        cand = np.flatnonzero(scores >= scores[part].min())
    else:
        cand = np.arange(n, dtype=np.intp)
    order = np.argsort(-scores[cand], kind="stable")[:k]
    result: NDArray[np.intp] = cand[order]
    return result


@dataclass(frozen=True)
class Postings:
    """Postings over documents ``[0, n_docs)``: term ``j`` is vocabulary id ``term_ids[j]`` (sorted), its
    entries are ``term_indptr[j]:term_indptr[j + 1]`` of ``docs``/``values``, by ascending document number."""

    term_ids: _Int = field(default_factory=lambda: np.zeros(0, np.int64))
    term_indptr: _Int = field(default_factory=lambda: np.zeros(1, np.int64))
    docs: _Int32 = field(default_factory=lambda: np.zeros(0, np.int32))
    values: _Float64 = field(default_factory=lambda: np.zeros(0, np.float64))  # float64: saves a cast per search
    n_docs: int = 0
    positive: bool = True  # every weight > 0 (lets scoring skip tracking shared terms)


#: Entries of new rows sorted into the postings per pass of :func:`merge_rows` (bounds its scratch memory).
MERGE_ENTRIES = 1 << 24


def merge_rows(
    post: Postings, doc_indptr: _Int, doc_indices: NDArray[Any], doc_values: _Float32, *, chunk: int = MERGE_ENTRIES
) -> Postings:
    """``post`` with the CSR rows ``post.n_docs`` onwards merged in: the old entries are copied a term at a
    time, the new ones placed by a stable counting sort of ``chunk`` entries at a time (rows are in
    document order, so every term's documents stay ascending)."""
    first, n_docs = post.n_docs, doc_indptr.size - 1
    lo, hi = int(doc_indptr[first]), int(doc_indptr[-1])
    new_ids = np.zeros(0, np.int64)
    for a in range(lo, hi, chunk):
        new_ids = np.union1d(new_ids, np.asarray(doc_indices[a : min(hi, a + chunk)], np.int64))
    old_ids, old_indptr = post.term_ids, post.term_indptr
    term_ids = np.union1d(old_ids, new_ids)
    old_slots = np.searchsorted(term_ids, old_ids)  # where each old term sits now
    counts = np.zeros(term_ids.size, np.int64)
    counts[old_slots] = np.diff(old_indptr)
    for a in range(lo, hi, chunk):
        slots = np.searchsorted(term_ids, np.asarray(doc_indices[a : min(hi, a + chunk)], np.int64))
        counts += np.bincount(slots, minlength=term_ids.size)
    indptr = np.zeros(term_ids.size + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    out_docs = np.empty(int(indptr[-1]), np.int32)
    out_values = np.empty(int(indptr[-1]), np.float64)
    # Old entries first within each term (their documents precede the new ones).
    fill = indptr[:-1].copy()
    for slot, (a, b) in zip(old_slots.tolist(), itertools.pairwise(old_indptr.tolist())):
        out_docs[fill[slot] : fill[slot] + b - a] = post.docs[a:b]
        out_values[fill[slot] : fill[slot] + b - a] = post.values[a:b]
    fill[old_slots] += np.diff(old_indptr)
    rows = np.arange(first, n_docs, dtype=np.int64)
    positive = post.positive
    for a in range(lo, hi, chunk):
        b = min(hi, a + chunk)
        slots = np.searchsorted(term_ids, np.asarray(doc_indices[a:b], np.int64))
        order = np.argsort(slots, kind="stable")
        sorted_slots = slots[order]
        per_slot = np.bincount(sorted_slots, minlength=term_ids.size)
        dest = fill[sorted_slots] + np.arange(b - a) - (np.cumsum(per_slot) - per_slot)[sorted_slots]
        docs = rows[np.searchsorted(doc_indptr[first + 1 :], np.arange(a, b), side="right")]
        values = np.asarray(doc_values[a:b])
        out_docs[dest] = docs[order]
        out_values[dest] = values[order]
        positive = positive and bool(np.all(values > 0))
        fill += per_slot
    return Postings(term_ids, indptr, out_docs, out_values, n_docs, positive)


def drop_documents(post: Postings, keep: _Bool) -> Postings:
    """``post`` without the documents whose ``keep`` is false, the others renumbered in order (not rebuilt)."""
    renumber = np.cumsum(keep) - 1
    term_indptr, docs, values = post.term_indptr, post.docs, post.values
    if docs.size:
        n_terms = term_indptr.size - 1
        post_keep = keep[docs]
        post_terms = np.repeat(np.arange(n_terms, dtype=np.int64), np.diff(term_indptr))
        term_indptr = np.zeros(n_terms + 1, np.int64)
        np.cumsum(np.bincount(post_terms[post_keep], minlength=n_terms), out=term_indptr[1:])
        docs = renumber[docs[post_keep]].astype(np.int32)
        values = values[post_keep]
    n_docs = int(keep[: post.n_docs].sum())
    return Postings(post.term_ids, term_indptr, docs, values, n_docs, post.positive)


def score_block(
    post: Postings, q_lens: _Int, starts: _Int, lens: _Int, q_values: _Float64, k: int, mask: _Bool | None
) -> list[list[tuple[int, float]]]:
    """Top-k ``(document number, score)`` for a block of queries, given per query term its postings range
    (``starts``, ``lens``) and weight; ``q_lens`` is each query's number of terms, ``mask`` the eligible documents."""
    n_rows, n_docs = q_lens.size, post.n_docs
    if not lens.any():
        return [[] for _ in range(n_rows)]
    # The postings of every query term, concatenated (slices copy faster than a gather).
    bounds = zip(starts.tolist(), (starts + lens).tolist())
    post_docs, post_values = post.docs, post.values
    docs_parts, values_parts = [], []
    for lo, hi in bounds:
        docs_parts.append(post_docs[lo:hi])
        values_parts.append(post_values[lo:hi])
    cells: NDArray[np.signedinteger[Any]] = np.concatenate(docs_parts)
    if n_rows > 1:  # flat cell (row, document) of every product
        term_offsets = np.repeat(np.arange(0, n_rows * n_docs, n_docs, dtype=np.int64), q_lens)
        cells = cells + np.repeat(term_offsets, lens)
    # Exact in float64: a product of two float32 is exact; bincount sums in array order,
    # i.e. per (query, document) in ascending vocabulary id, as a sequential sum.
    contrib = np.concatenate(values_parts)
    contrib *= np.repeat(q_values, lens)
    size = n_rows * n_docs
    scores = np.bincount(cells, weights=contrib, minlength=size).reshape(n_rows, n_docs)
    if post.positive and (q_values.size == 0 or q_values.min() > 0):
        hits = scores > 0  # a sum of positive products is > 0 exactly when a term is shared
    else:
        matched = np.zeros(size, np.bool_)
        matched[cells] = True
        hits = matched.reshape(n_rows, n_docs)
    if mask is not None:
        hits &= mask
    out: list[list[tuple[int, float]]] = []
    for row in range(n_rows):
        docs = np.flatnonzero(hits[row])
        if docs.size == 0:
            out.append([])
            continue
        row_scores = scores[row, docs]
        best = top_k(row_scores, k)
        out.append(list(zip(docs[best].tolist(), row_scores[best].tolist())))
    return out
