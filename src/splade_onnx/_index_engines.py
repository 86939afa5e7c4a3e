"""The search engines behind :class:`SparseIndex`: each turns the document rows into its own structure
and answers one query's exact top k over them.

An engine keeps a structure over the first documents of the index and brings it up to date on
:meth:`sync`; :meth:`drop` renumbers it after deletions.  Both exact engines return the same bits:

* :class:`ExactEngine` (``engine="exact"``, the default): impact-ordered postings and a safe bound
  (:mod:`._impact`), so a query reads only the heavy part of its terms' postings.  Documents added
  since the structure was built are scored from their rows until they outgrow a share of the index.
* :class:`ExhaustiveEngine` (``engine="exhaustive"``): every posting of every query term is scored
  (:mod:`._postings`), a block of queries at a time.

The approximate engine lives in :mod:`._seismic`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from . import _impact, _postings
from ._digest import FileStamp
from ._errors import ArgumentError, ArgumentTypeError

EngineName = Literal["exact", "exhaustive", "seismic"]
ENGINES = ("exact", "exhaustive", "seismic")

__all__ = [
    "ENGINES",
    "MAX_DENSE_TERMS",
    "Engine",
    "EngineName",
    "ExactEngine",
    "ExhaustiveEngine",
    "Rows",
    "dense_query",
    "exact_recall",
    "make_engine",
]

logger = logging.getLogger(__name__)

#: Entries of documents scored from their rows (not yet in the impact postings) at most: this share of
#: the entries in the postings, or this many, whichever is larger.
_DELTA_SHARE = 0.125
_DELTA_MIN = 1 << 16
#: Vocabulary ids the exact engine keeps dense per-id tables for; an index holding a larger id (hashed
#: features, say) is scored exhaustively by it.
MAX_DENSE_TERMS = 1 << 22

#: Upper bounds on one block of the exhaustive engine: cells of the dense ``[queries, documents]`` score
#: array, and posting entries gathered (kept cache-sized).
_BLOCK_CELLS = 1 << 20
_BLOCK_ENTRIES = 1 << 17

_Int = NDArray[np.int64]
_Float64 = NDArray[np.float64]
_Bool = NDArray[np.bool_]
_Query = tuple[_Int, NDArray[np.float32]]  # vocabulary ids (ascending), weights
_Hits = tuple[_Int, _Float64]  # document numbers, scores


@dataclass(frozen=True)
class Rows:
    """The documents as CSR rows (document ``d`` owns entries ``indptr[d]:indptr[d + 1]``, vocabulary ids
    ascending); ``n_terms`` is one more than the largest vocabulary id present (0 for none)."""

    indptr: _Int
    indices: NDArray[Any]
    values: NDArray[np.float32]
    n_terms: int

    @property
    def n_docs(self) -> int:
        return self.indptr.size - 1


def dense_query(n_terms: int, q_terms: _Int, q_values: NDArray[np.float32]) -> tuple[_Float64, _Bool]:
    """The query as a weight per vocabulary id ``< n_terms`` (float64) and as a membership mask."""
    known = q_terms < n_terms
    dense = np.zeros(n_terms, np.float64)
    dense[q_terms[known]] = q_values[known]
    member = np.zeros(n_terms, np.bool_)
    member[q_terms[known]] = True
    return dense, member


class Engine(Protocol):
    name: str

    def sync(self, rows: Rows, *, full: bool = False) -> None: ...

    def drop(self, keep: _Bool) -> None: ...

    def persisted(self, path: str, stamp: FileStamp | None, rows: Rows) -> None:
        """``rows`` now equal the index file at ``path``, just saved or loaded (``stamp``: that file's version,
        from its open descriptor)."""
        ...

    def search_batch(self, rows: Rows, queries: list[_Query], k: int, mask: _Bool | None) -> list[_Hits]:
        """Each query's top ``k`` (document numbers, exact scores) among the documents ``mask`` allows
        (all when ``None``) that share a term with it: best first, equal scores by lower number."""
        ...


def make_engine(engine: object) -> Engine:
    """The engine ``engine`` names (``"exact"``, ``"exhaustive"``, ``"seismic"``) or a :class:`Seismic`'s."""
    from ._seismic import Seismic, SeismicEngine

    if isinstance(engine, Seismic):
        return SeismicEngine(engine)
    if not isinstance(engine, str):
        raise ArgumentTypeError(f"engine must be one of {ENGINES} or a Seismic(...), got {type(engine).__name__}")
    if engine == "exact":
        return ExactEngine()
    if engine == "exhaustive":
        return ExhaustiveEngine()
    if engine == "seismic":
        return SeismicEngine()
    raise ArgumentError(f"engine={engine!r} is not one of {ENGINES} (or a Seismic(...) with its settings)")


def exact_recall(rows: Rows, queries: list[_Query], k: int, mask: _Bool | None, found: list[list[int]]) -> float:
    """The mean share of each query's exact top ``k`` among the documents ``found`` for it (queries whose
    exact top ``k`` is empty are left out; 1.0 when every one is)."""
    exact = ExactEngine()
    exact.sync(rows, full=True)
    shares = [
        len(set(docs.tolist()) & set(got)) / docs.size
        for got, (docs, _) in zip(found, exact.search_batch(rows, queries, k, mask))
        if docs.size
    ]
    return float(np.mean(shares)) if shares else 1.0


class ExactEngine:
    """Impact-ordered postings over documents ``[0, impacts.n_docs)``, the rest scored from their rows."""

    name = "exact"

    def __init__(
        self, impacts: _impact.Impacts | None = None, *, late_min: int = _DELTA_MIN, always_bound: bool = False
    ) -> None:
        self.impacts = impacts if impacts is not None else _impact.Impacts(0, np.zeros(1, np.int64), *_EMPTY)
        self.late_min = late_min  # entries of rows scored one by one before they are folded in
        # Tests: always take the bounded path (never fall back to scoring every posting).
        self._always_bound = always_bound
        self._wide: ExhaustiveEngine | None = None  # for vocabulary ids too large for dense tables

    def sync(self, rows: Rows, *, full: bool = False) -> None:
        """Fold the rows not yet in the postings in, once they are too many to score one by one (or ``full``)."""
        if rows.n_terms > MAX_DENSE_TERMS:
            self._wide = self._wide or ExhaustiveEngine()
            self._wide.sync(rows)
            return
        done = self.impacts.n_docs
        late = int(rows.indptr[-1] - rows.indptr[done])
        if late and (full or late > max(self.late_min, _DELTA_SHARE * int(rows.indptr[done]))):
            if done:
                self.impacts = _impact.merge_rows(self.impacts, rows.indptr, rows.indices, rows.values)
            else:
                self.impacts = _impact.build(rows.indptr, rows.indices, rows.values)
            logger.debug("impact postings: %d documents folded in, %d in all", rows.n_docs - done, rows.n_docs)
        elif not late and done < rows.n_docs:  # new documents without entries
            imp = self.impacts
            self.impacts = _impact.Impacts(rows.n_docs, imp.indptr, imp.docs, imp.weights, imp.positive)

    def drop(self, keep: _Bool) -> None:
        self.impacts = _impact.drop_documents(self.impacts, keep)
        if self._wide is not None:
            self._wide.drop(keep)

    def persisted(self, path: str, stamp: FileStamp | None, rows: Rows) -> None:
        """Nothing outside the file: its postings are saved in it."""

    def search_batch(self, rows: Rows, queries: list[_Query], k: int, mask: _Bool | None) -> list[_Hits]:
        if self._wide is not None:
            return self._wide.search_batch(rows, queries, k, mask)
        return [self.search(rows, q_terms, q_values, k, mask) for q_terms, q_values in queries]

    def search(self, rows: Rows, q_terms: _Int, q_values: NDArray[np.float32], k: int, mask: _Bool | None) -> _Hits:
        imp = self.impacts
        head_mask = None if mask is None else mask[: imp.n_docs]
        args = (imp, rows.indptr, rows.indices, rows.values, q_terms, q_values, k, head_mask)
        if self._always_bound:
            docs, scores = _impact.search(*args, small=0, read_share=float("inf"))
        else:
            docs, scores = _impact.search(*args)
        if imp.n_docs == rows.n_docs:
            return docs, scores
        dense, member = dense_query(rows.n_terms, q_terms, q_values)
        late = np.arange(imp.n_docs, rows.n_docs, dtype=np.int64)
        late_docs, late_scores = _impact.score_range(rows.indptr, rows.indices, rows.values, late, dense, member)
        if mask is not None:
            keep = mask[late_docs]
            late_docs, late_scores = late_docs[keep], late_scores[keep]
        return _impact.best(np.concatenate([docs, late_docs]), np.concatenate([scores, late_scores]), k)


class ExhaustiveEngine:
    """Document-ordered postings (:mod:`._postings`): every posting of the query's terms is scored."""

    name = "exhaustive"

    def __init__(self) -> None:
        self.postings = _postings.Postings()

    def sync(self, rows: Rows, *, full: bool = False) -> None:
        if self.postings.n_docs < rows.n_docs:
            self.postings = _postings.merge_rows(self.postings, rows.indptr, rows.indices, rows.values)

    def drop(self, keep: _Bool) -> None:
        self.postings = _postings.drop_documents(self.postings, keep)

    def persisted(self, path: str, stamp: FileStamp | None, rows: Rows) -> None:
        """Nothing outside the file: its postings are built from the rows on the first search."""

    def search_batch(self, rows: Rows, queries: list[_Query], k: int, mask: _Bool | None) -> list[_Hits]:
        """The queries' top k, a block of them at a time scored into one dense ``[queries, documents]`` array
        (blocks bounded in cells and in posting entries gathered)."""
        post = self.postings
        q_terms = np.concatenate([q[0] for q in queries])
        q_values = np.concatenate([q[1] for q in queries]).astype(np.float64)
        q_rows = np.repeat(np.arange(len(queries)), [q[0].size for q in queries])
        slots = np.searchsorted(post.term_ids, q_terms)
        known = slots < post.term_ids.size
        known[known] = post.term_ids[slots[known]] == q_terms[known]
        slots, q_values = slots[known], q_values[known]
        q_lens = np.bincount(q_rows[known], minlength=len(queries)).astype(np.int64)
        starts = post.term_indptr[slots]
        lens = post.term_indptr[slots + 1] - starts
        term_bounds = np.concatenate([np.zeros(1, np.int64), np.cumsum(q_lens)])
        entry_bounds = np.concatenate([np.zeros(1, np.int64), np.cumsum(lens)])[term_bounds]
        max_rows = max(1, _BLOCK_CELLS // max(post.n_docs, 1))
        out: list[_Hits] = []
        s = 0
        while s < len(queries):
            e = int(np.searchsorted(entry_bounds, entry_bounds[s] + _BLOCK_ENTRIES, side="right")) - 1
            e = min(max(e, s + 1), s + max_rows, len(queries))
            t0, t1 = int(term_bounds[s]), int(term_bounds[e])
            block = _postings.score_block(post, q_lens[s:e], starts[t0:t1], lens[t0:t1], q_values[t0:t1], k, mask)
            out.extend((np.array([d for d, _ in h], np.int64), np.array([v for _, v in h], np.float64)) for h in block)
            s = e
        return out


_EMPTY = (np.zeros(0, np.int32), np.zeros(0, np.float32), True)
