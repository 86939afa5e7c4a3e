"""Exact top-k by dot product that skips postings: impact-ordered postings, a safe bound, exact rescoring.

Pure numpy, no ids, no state.  :class:`Impacts` holds, for each vocabulary id, the documents that
contain it sorted by their weight, largest first (ties by document number).  :func:`search` gives a
query exactly the top k of an exhaustive scoring (:mod:`._postings`):

1. ``theta``, a lower bound of the final k-th best score, starts as the k-th best exact score of the
   heaviest documents of the query's heaviest terms (rescored from their rows; nothing is read for
   it), and the cut ``tau`` as ``theta / (2 n)`` for ``n`` query terms.
2. Each query term's postings are read down to the first entry whose product with the query weight
   is below ``tau``; the products are added into a bound accumulator.
3. A document's true score is at most its accumulated sum plus ``rest``, the sum over terms of the
   query weight times the term's first unread weight (a document can hold at most that much of a
   term it was not seen in).  A document never seen scores at most ``rest``.
4. Once ``rest < theta``, only documents seen whose ``sum + rest`` reaches ``theta`` can enter the top
   k: they are rescored and the best k returned.  While too many remain, the documents with the
   largest sums are rescored to raise ``theta`` (any k exact scores bound the final k-th best from
   below), ``tau`` drops, and step 2 reads on.

A query whose terms hold few postings (``_SMALL``), or whose first cut would leave nearly all of them
to read (``_READ_SHARE``), scores every posting in one pass instead: the same result, and cheaper there.

Exactness.  Rescoring reads a document's CSR row and sums ``weight * query weight`` in row order
(ascending vocabulary id) in float64, adding exact zeros for terms the query lacks: the same bits as
the exhaustive scoring, which sums the same exact products in the same order.  The accumulator of
step 1 adds in another order, so a document is dropped only when its bound, widened by the
worst-case rounding error of that sum (``(n + 2) * 2**-52`` relative for ``n`` query terms), is
strictly below ``theta``: a dropped document can neither beat nor tie a kept one (ties go to the lower
document number).  The bounds need positive weights; a query or index with a weight that is not
positive (hand-made vectors) rescores every document that shares a term, the exhaustive result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._postings import top_k

__all__ = [
    "Impacts",
    "best",
    "build",
    "drop_documents",
    "merge_rows",
    "score_range",
    "score_rows",
    "search",
]

#: Documents rescored to set ``theta``, beyond ``k``.
_PROBE = 16
#: Query terms (the heaviest by query weight x largest weight) whose heaviest documents seed ``theta``.
_SEED_TERMS = 4
#: Candidates left to rescore that end the search (else ``tau`` drops further first).
_ENOUGH = 512
#: Up to this many postings of the query's terms, every posting is scored: measured on splade-tiny vectors,
#: bounding costs more below (its probe and per-term reads run in Python; one pass of bincount does not).
_SMALL = 1 << 23
#: Past this share of the query's postings to read at the first cut, every posting is scored instead.  Which
#: path is faster is hard to tell from the share: on the scale benchmark's 1M documents the bounded path,
#: taken whenever it can skip a tenth, had a median 0.9x scoring every posting.
_READ_SHARE = 0.9
#: Postings per query term (on average) from which scoring every posting writes them a term at a time, in
#: place; below it, concatenating them is cheaper (measured on the scale benchmark's real and 100k corpora).
_TERM_PASS_MIN = 4096
#: ``tau`` shrinks by this factor per round.
_STEP = 4.0
#: Entries of the CSR arrays sorted in one pass of :func:`build` (bounds its scratch memory).
_BUILD_ENTRIES = 1 << 25

_Int = NDArray[np.int64]
_Float64 = NDArray[np.float64]
_Bool = NDArray[np.bool_]
_Any = NDArray[Any]
_Hits = tuple[_Int, _Float64]


@dataclass(frozen=True)
class Impacts:
    """Postings of documents ``[0, n_docs)`` by weight: vocabulary id ``t`` owns entries
    ``indptr[t]:indptr[t + 1]`` of ``docs``/``weights``, largest weight first, ties by document number."""

    n_docs: int
    indptr: _Int  # [n_terms + 1], n_terms = 1 + the largest vocabulary id stored
    docs: NDArray[np.int32]
    weights: NDArray[np.float32]
    positive: bool  # every weight > 0


def build(doc_indptr: _Int, doc_indices: _Any, doc_values: _Any) -> Impacts:
    """The impact-ordered postings of the CSR rows (rows in document order)."""
    n_docs = doc_indptr.size - 1
    nnz = int(doc_indptr[-1])
    n_terms = int(doc_indices.max()) + 1 if nnz else 0
    counts = np.zeros(n_terms, np.int64)
    for lo in range(0, nnz, _BUILD_ENTRIES):
        counts += np.bincount(np.asarray(doc_indices[lo : lo + _BUILD_ENTRIES]), minlength=n_terms)
    indptr = np.zeros(n_terms + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    docs = np.empty(nnz, np.int32)
    weights = np.empty(nnz, np.float32)
    # Pass 1: entries grouped by term, by document within a term (a stable counting sort, pass by pass).
    fill = indptr[:-1].copy()
    row_of = np.repeat(np.arange(n_docs, dtype=np.int32), np.diff(doc_indptr))
    for lo in range(0, nnz, _BUILD_ENTRIES):
        terms = np.asarray(doc_indices[lo : lo + _BUILD_ENTRIES], dtype=np.int64)
        order = np.argsort(terms, kind="stable")
        sorted_terms = terms[order]
        per_term = np.bincount(sorted_terms, minlength=n_terms)
        first = np.cumsum(per_term) - per_term
        dest = fill[sorted_terms] + np.arange(order.size) - first[sorted_terms]
        docs[dest] = row_of[lo : lo + _BUILD_ENTRIES][order]
        weights[dest] = np.asarray(doc_values[lo : lo + _BUILD_ENTRIES])[order]
        fill += per_term
    del row_of
    positive = bool(nnz == 0 or weights.min() > 0)
    # Pass 2: largest weight first within each term, whole terms per pass; lexsort is stable, so equal
    # weights keep their documents ascending.
    t0 = 0
    while t0 < n_terms:
        t1 = max(t0 + 1, int(np.searchsorted(indptr, indptr[t0] + _BUILD_ENTRIES, side="right")) - 1)
        t1 = min(t1, n_terms)
        lo, hi = int(indptr[t0]), int(indptr[t1])
        local_terms = np.repeat(np.arange(t1 - t0, dtype=np.int32), counts[t0:t1])
        order = np.lexsort((-weights[lo:hi], local_terms))
        docs[lo:hi] = docs[lo:hi][order]
        weights[lo:hi] = weights[lo:hi][order]
        t0 = t1
    return Impacts(n_docs, indptr, docs, weights, positive)


def merge_rows(imp: Impacts, doc_indptr: _Int, doc_indices: _Any, doc_values: _Any) -> Impacts:
    """``imp`` with the CSR rows ``imp.n_docs`` onwards merged in, each into its place in its terms' orders.

    New documents come after every old one, so an entry goes after the old entries of its term with a
    weight at least its own.  One pass over the old arrays (``numpy.insert``), no sort of them.
    """
    first, n_docs = imp.n_docs, doc_indptr.size - 1
    lo = int(doc_indptr[first])
    new_terms = np.asarray(doc_indices[lo:], dtype=np.int64)
    if not new_terms.size:
        return Impacts(n_docs, imp.indptr, imp.docs, imp.weights, imp.positive)
    new_weights = np.asarray(doc_values[lo:], dtype=np.float32)
    new_docs = np.repeat(np.arange(first, n_docs, dtype=np.int32), np.diff(doc_indptr[first:]))
    order = np.lexsort((new_docs, -new_weights, new_terms))
    new_terms, new_weights, new_docs = new_terms[order], new_weights[order], new_docs[order]
    n_terms = max(imp.indptr.size - 1, int(new_terms[-1]) + 1)
    old_indptr = np.concatenate([imp.indptr, np.full(n_terms + 1 - imp.indptr.size, imp.indptr[-1])])
    at = np.empty(new_terms.size, np.int64)  # where each new entry goes in the old arrays
    bounds = np.flatnonzero(np.diff(new_terms, prepend=-1, append=n_terms))
    for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        t = int(new_terms[a])
        t_lo, t_hi = int(old_indptr[t]), int(old_indptr[t + 1])
        at[a:b] = t_lo + np.searchsorted(-imp.weights[t_lo:t_hi], -new_weights[a:b], side="right")
    counts = np.bincount(new_terms, minlength=n_terms)
    indptr = old_indptr.copy()
    indptr[1:] += np.cumsum(counts)
    positive = imp.positive and bool(new_weights.min() > 0)
    docs = np.insert(np.asarray(imp.docs), at, new_docs)
    weights = np.insert(np.asarray(imp.weights), at, new_weights)
    return Impacts(n_docs, indptr, docs, weights, positive)


def drop_documents(imp: Impacts, keep: _Bool) -> Impacts:
    """``imp`` without the documents whose ``keep`` is false, the others renumbered in order (orders hold)."""
    renumber = (np.cumsum(keep) - 1).astype(np.int32)
    entry_keep = keep[imp.docs]
    kept_before = np.zeros(imp.docs.size + 1, np.int64)  # kept_before[e]: entries kept among the first e
    np.cumsum(entry_keep, out=kept_before[1:])
    indptr = kept_before[imp.indptr]  # each term's entries are a range of the old ones: its bounds carry over
    docs = renumber[imp.docs[entry_keep]]
    return Impacts(int(keep[: imp.n_docs].sum()), indptr, docs, np.asarray(imp.weights)[entry_keep], imp.positive)


def _row_entries(doc_indptr: _Int, docs: _Int) -> tuple[_Int, _Int]:
    """The CSR entries of the rows ``docs``, in row order, and for each the position of its row in ``docs``."""
    lo = doc_indptr[docs]
    row_lens = doc_indptr[docs + 1] - lo
    entry = np.repeat(lo - (row_lens.cumsum() - row_lens), row_lens) + np.arange(int(row_lens.sum()), dtype=np.int64)
    return entry, np.repeat(np.arange(docs.size, dtype=np.int64), row_lens)


def score_range(
    doc_indptr: _Int, doc_indices: _Any, doc_values: _Any, docs: _Int, dense: _Float64, in_query: _Bool
) -> tuple[_Int, _Float64]:
    """Those of ``docs`` that share a term with the query (``in_query``), with exact scores."""
    entry, local = _row_entries(doc_indptr, docs)
    terms = doc_indices[entry]
    scores = _sum_rows(local, dense[terms] * doc_values[entry], docs.size)
    hit = np.bincount(local, weights=in_query[terms], minlength=docs.size) > 0
    return docs[hit], scores[hit]


def score_rows(doc_indptr: _Int, doc_indices: _Any, doc_values: _Any, docs: _Int, dense_query: _Float64) -> _Float64:
    """Exact scores of the documents ``docs``: their CSR rows times ``dense_query`` (a weight per vocabulary
    id, zero where the query lacks it; ids past its end must not occur), summed in row order in float64."""
    entry, local = _row_entries(doc_indptr, docs)
    return _sum_rows(local, dense_query[doc_indices[entry]] * doc_values[entry], docs.size)


def _sum_rows(local: _Int, products: _Float64, n: int) -> _Float64:
    """Each row's products summed in array order (float64)."""
    scores: _Float64 = np.bincount(local, weights=products, minlength=n).astype(np.float64, copy=False)
    return scores


def best(docs: _Int, scores: _Float64, k: int) -> tuple[_Int, _Float64]:
    """The ``k`` best of ``docs``: highest score first, equal scores by lower document number."""
    order = np.lexsort((docs, -scores))[:k]
    return docs[order], scores[order]


def search(
    imp: Impacts,
    doc_indptr: _Int,
    doc_indices: _Any,
    doc_values: _Any,
    q_terms: _Int,
    q_values: NDArray[np.float32],
    k: int,
    mask: _Bool | None,
    *,
    small: int = _SMALL,
    read_share: float = _READ_SHARE,
) -> tuple[_Int, _Float64]:
    """The top ``k`` (document numbers, exact scores) among documents ``[0, imp.n_docs)`` eligible under
    ``mask`` that share a term with the query, best first, ties by lower number; ``q_terms`` ascending.

    Queries with at most ``small`` postings, or whose bound would leave over ``read_share`` of them to
    read, score every posting instead (the same result)."""
    n_terms = imp.indptr.size - 1
    known = q_terms < n_terms
    q_terms, q64 = q_terms[known], q_values[known].astype(np.float64)
    starts, stops = imp.indptr[q_terms], imp.indptr[q_terms + 1]
    present = stops > starts
    q_terms, q64, starts, stops = q_terms[present], q64[present], starts[present], stops[present]
    empty = np.zeros(0, np.int64), np.zeros(0, np.float64)
    if not q_terms.size:
        return empty
    bounded = imp.positive and q64.min() > 0
    if bounded and int((stops - starts).sum()) <= small:  # cheaper to score than to bound
        return _exhaustive(imp, starts, stops, q64, k, mask)
    dense = np.zeros(n_terms, np.float64)
    dense[q_terms] = q64
    if not bounded:  # no bounds: every document sharing a term
        docs = np.unique(np.concatenate([imp.docs[a:b] for a, b in zip(starts.tolist(), stops.tolist())]))
        if mask is not None:
            docs = docs[mask[docs]]
        docs = docs.astype(np.int64)
        return best(docs, score_rows(doc_indptr, doc_indices, doc_values, docs, dense), k)
    widen = 1.0 + 4 * (q_terms.size + 2) * 2.0**-52
    theta = _seed_theta(imp, doc_indptr, doc_indices, doc_values, dense, starts, stops, q64, k, mask)
    # Every entry left unread then adds less than theta / (2 n) to a score, so ``rest`` < theta / 2.
    tau = theta / (2 * q_terms.size) if np.isfinite(theta) else 0.0
    read = starts.copy()  # entries read so far: starts[i]:read[i]
    ends = _ends(imp, read, stops, q64, tau)  # binary searches: nothing read yet
    to_read = int((ends - read).sum())
    if to_read > read_share * int((stops - starts).sum()):  # skipping too little to pay: score everything
        return _exhaustive(imp, starts, stops, q64, k, mask)
    acc = np.zeros(imp.n_docs, np.float64)
    while True:
        _read_to(imp, acc, read, ends, q64)
        unread = read < stops
        rest = float((q64[unread] * imp.weights[read[unread]]).sum()) * widen
        seen = np.flatnonzero(acc)
        cand = seen[(acc[seen] * widen + rest) >= theta]
        if mask is not None:
            cand = cand[mask[cand]]
        if cand.size <= _ENOUGH or not unread.any():
            return best(cand, score_rows(doc_indptr, doc_indices, doc_values, cand, dense), k)
        # Too many to rescore: a better theta from the best sums, and read on.
        theta = _theta(doc_indptr, doc_indices, doc_values, dense, acc, cand, k, theta)
        tau /= _STEP
        ends = _ends(imp, read, stops, q64, tau)


def _seed_theta(
    imp: Impacts,
    doc_indptr: _Int,
    doc_indices: _Any,
    doc_values: _Any,
    dense: _Float64,
    starts: _Int,
    stops: _Int,
    q64: _Float64,
    k: int,
    mask: _Bool | None,
) -> float:
    """A first ``theta``, read from nothing: the k-th best exact score among the heaviest documents of the
    query's heaviest terms (``-inf`` when fewer than k of them are eligible)."""
    heaviest = np.argsort(-(q64 * imp.weights[starts]))[:_SEED_TERMS]
    docs = np.unique(
        np.concatenate([imp.docs[a : min(b, a + k + _PROBE)] for a, b in zip(starts[heaviest], stops[heaviest])])
    )
    if mask is not None:
        docs = docs[mask[docs]]
    if docs.size < k:
        return -np.inf
    exact = score_rows(doc_indptr, doc_indices, doc_values, docs.astype(np.int64), dense)
    return float(np.partition(exact, exact.size - k)[exact.size - k])


def _theta(
    doc_indptr: _Int,
    doc_indices: _Any,
    doc_values: _Any,
    dense: _Float64,
    acc: _Float64,
    docs: _Int,
    k: int,
    theta: float,
) -> float:
    """``theta`` raised to the k-th best exact score of the ``k + _PROBE`` of ``docs`` with the largest sums
    (any eligible documents' exact scores bound the final k-th best from below)."""
    if docs.size < k:
        return theta
    if docs.size > k + _PROBE:
        docs = docs[np.argpartition(-acc[docs], k + _PROBE - 1)[: k + _PROBE]]
    exact = score_rows(doc_indptr, doc_indices, doc_values, docs.astype(np.int64), dense)
    return max(theta, float(np.partition(exact, exact.size - k)[exact.size - k]))


def _exhaustive(imp: Impacts, starts: _Int, stops: _Int, q64: _Float64, k: int, mask: _Bool | None) -> _Hits:
    """Every posting of the query's terms scored (weights positive): the products summed per document in
    the order of the terms, ascending, so the same bits as :func:`score_rows`."""
    # Documents as bincount's index type (no cast of the whole array); float32 x float32 is exact in float64.
    lens = stops - starts
    ends = np.cumsum(lens)
    if int(ends[-1]) < _TERM_PASS_MIN * lens.size:  # short postings: one concatenation each, fewer calls
        parts = list(zip(starts.tolist(), stops.tolist()))
        docs = np.concatenate([imp.docs[a:b] for a, b in parts], dtype=np.intp)
        products = np.concatenate([imp.weights[a:b] for a, b in parts], dtype=np.float64)
        products *= np.repeat(q64, lens)
    else:  # long postings: written in place a term at a time, fewer passes over memory
        docs = np.empty(int(ends[-1]), np.intp)
        products = np.empty(int(ends[-1]), np.float64)
        for a, b, o, w in zip(starts.tolist(), stops.tolist(), (ends - lens).tolist(), q64.tolist()):
            docs[o : o + b - a] = imp.docs[a:b]
            np.multiply(imp.weights[a:b], w, out=products[o : o + b - a], dtype=np.float64)
    scores: _Float64 = np.bincount(docs, weights=products, minlength=imp.n_docs).astype(np.float64, copy=False)
    hits = scores > 0
    if mask is not None:
        hits &= mask
    found = np.flatnonzero(hits)
    chosen = top_k(scores[found], k)
    return found[chosen].astype(np.int64), scores[found[chosen]]


def _ends(imp: Impacts, read: _Int, stops: _Int, q64: _Float64, tau: float) -> _Int:
    """Where reading each term on from ``read`` while ``query weight * weight >= tau`` would stop."""
    if tau <= 0:
        everything: _Int = stops.copy()
        return everything
    # A binary search of every term at once (weights fall within a term): lo only ever passes entries that
    # are read, hi only entries that are not; a term is done when they meet.
    lo: _Int = read.copy()
    hi: _Int = stops.copy()
    least = tau / q64
    while (open_ := lo < hi).any():
        mid = (lo + hi) // 2
        take = open_ & (imp.weights[np.where(open_, mid, 0)] >= least)
        lo = np.where(take, mid + 1, lo)
        hi = np.where(open_ & ~take, mid, hi)
    return lo


def _read_to(imp: Impacts, acc: _Float64, read: _Int, ends: _Int, q64: _Float64) -> None:
    """Add each term's entries from ``read`` to ``ends`` (:func:`_ends`), times its query weight, into ``acc``;
    ``read`` moves on to ``ends``."""
    for a, end, w in zip(read.tolist(), ends.tolist(), q64.tolist()):
        if end > a:
            np.add.at(acc, imp.docs[a:end], np.multiply(imp.weights[a:end], w, dtype=np.float64))
    read[:] = ends
