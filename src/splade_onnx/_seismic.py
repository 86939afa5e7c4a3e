"""The approximate engine of :class:`SparseIndex`: Seismic (``pyseismic-lsr``) finds candidates, the rows score them.

Seismic (Bruch, Nardini, Rulli, Venturini, SIGIR 2024) prunes each term's postings, groups them into
blocks with summaries, and visits only blocks whose summary promises a high score.  Its top k may
miss documents the exact engines find (see :meth:`SparseIndex.recall`); every document it returns
is rescored exactly from its row, so a returned score is the exact engines' score to the bit.

Vocabulary ids become Seismic's string components (``"2054"``); document numbers become its
document ids.  The Seismic index is built from the rows on the first search after a change (it has no
incremental adds).  It is not part of the saved file; a structure built over a saved file's rows is
kept in the local cache instead, and a later load of that file reads it from there
(:mod:`._seismic_store`).  Deleted documents are asked for on top of ``k`` and removed; a
``filter_ids`` that excludes more than half of the documents is answered exactly over the documents
it allows.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import _impact
from ._digest import FileStamp
from ._errors import ArgumentError, ArgumentTypeError, missing_extra
from ._index_engines import Rows, dense_query
from ._seismic_store import Source, load_built, quiet_stdout, store_built

__all__ = ["Seismic", "SeismicEngine"]

logger = logging.getLogger(__name__)

_Int = NDArray[np.int64]
_Float64 = NDArray[np.float64]
_Bool = NDArray[np.bool_]
_Query = tuple[_Int, NDArray[np.float32]]
_Hits = tuple[_Int, _Float64]

#: Settings that do not change the structure built (they are not part of its cache key).
_SEARCH_ONLY = frozenset({"query_cut", "heap_factor", "num_threads", "cache"})


@dataclass(frozen=True, kw_only=True)
class Seismic:
    """Settings of the approximate engine, passed to ``pyseismic-lsr`` as they are.

    Search: ``query_cut`` (the query's heaviest terms visited) and ``heap_factor`` (a block is visited
    when its summary's score reaches this share of the k-th best so far; higher is faster and less exact).
    Build: ``n_postings`` (postings kept per term, on average), ``centroid_fraction``, ``summary_energy``,
    ``doc_cut``, ``max_fraction`` and ``min_cluster_size`` (see Seismic's documentation).
    ``num_threads`` is used to build and by :meth:`SparseIndex.search_batch` (0: all cores).
    ``cache``: keep the structure built over a saved index's rows in the local cache, so the next load of
    that file, in any process, reads it instead of building it again (see :mod:`._seismic_store`): ``True``
    for the library's cache folder (``$SPLADE_ONNX_CACHE``, else ``$XDG_CACHE_HOME/splade-onnx``, else
    ``~/.cache/splade-onnx``), a folder to use that one instead (its ``seismic/``), ``False`` for none.

    >>> Seismic(query_cut=10, heap_factor=0.8).heap_factor
    0.8
    """

    query_cut: int = 20
    heap_factor: float = 0.7
    n_postings: int = 3500
    centroid_fraction: float = 0.1
    summary_energy: float = 0.4
    doc_cut: int = 15
    max_fraction: float = 1.5
    min_cluster_size: int = 2
    num_threads: int = 0
    cache: bool | str | os.PathLike[str] = True

    def __post_init__(self) -> None:
        cache = self.cache
        folder = os.fspath(cache) if isinstance(cache, (str, os.PathLike)) else None
        if not isinstance(cache, bool) and not isinstance(folder, str):
            raise ArgumentTypeError(f"Seismic(cache=...) must be True, False or a folder, got {cache!r}")
        if folder is not None:
            if not folder:
                raise ArgumentError("Seismic(cache='') names no folder; pass a folder, True or False")
            object.__setattr__(self, "cache", Path(folder).expanduser().absolute())  # frozen: set once, here
        for name, value in asdict(self).items():
            if name == "cache":
                continue
            kind = float if isinstance(getattr(Seismic, name), float) else int
            if type(value) is bool or not isinstance(value, (int, float) if kind is float else int):
                raise ArgumentTypeError(f"Seismic({name}=...) must be {kind.__name__}, got {value!r}")
            low = 0 if name == "num_threads" else 1 if kind is int else 0.0
            if value < low or (kind is float and not value > 0):
                raise ArgumentError(f"Seismic({name}={value!r}) must be > 0" + (" (or 0)" if low == 0 else ""))


def _seismic() -> Any:
    try:
        import seismic
    except ImportError as exc:
        raise missing_extra("engine='seismic' (pyseismic-lsr)", "splade-onnx", "ann", exc) from exc
    return seismic


class SeismicEngine:
    """A Seismic index over every row, rebuilt on the first search after a change."""

    name = "seismic"

    def __init__(self, settings: Seismic | None = None) -> None:
        self.settings = settings or Seismic()
        self._lib = _seismic()  # fail now, not on the first search
        self._index: Any = None
        self._n_docs = 0
        self._source: Source | None = None  # the index file the rows equal, up to its _source_docs
        self._source_docs = 0

    def persisted(self, path: str, stamp: FileStamp | None, rows: Rows) -> None:
        """The rows now equal the index file at ``path`` (just saved or loaded, ``stamp`` taken from its open
        descriptor): a structure built over them is kept in the local cache, and read from it instead of built."""
        cache = self.settings.cache
        if cache is False or stamp is None:
            return
        root = None if cache is True else Path(cache)
        self._source, self._source_docs = Source(path, stamp, root), rows.n_docs
        if self._index is not None and self._n_docs == rows.n_docs and (entry := self._entry(rows.n_docs)):
            store_built(self._index, entry)

    def _entry(self, n_docs: int) -> Path | None:
        """Where a structure over the first ``n_docs`` rows is kept, if they are a saved file's."""
        if self._source is None or self._source_docs != n_docs:
            return None
        try:
            entry = self._source.entry({k: v for k, v in asdict(self.settings).items() if k not in _SEARCH_ONLY})
        except Exception as exc:  # noqa: BLE001 - no cache (no home folder, no package metadata): build as before
            logger.warning("seismic: the structure cannot be cached (%s: %s)", type(exc).__name__, exc)
            entry = None
        if entry is None:
            self._source = None
        return entry

    def sync(self, rows: Rows, *, full: bool = False) -> None:
        if self._index is not None and self._n_docs == rows.n_docs:
            return
        n = rows.n_docs
        entry = self._entry(n)
        built = None
        if entry is not None:
            held = int(np.count_nonzero(np.diff(rows.indptr)))  # Seismic skips documents without terms
            built = load_built(self._lib, entry, held)
        fresh = built is None
        self._index, self._n_docs = built if built is not None else self._build(rows), n
        if fresh and entry is not None:  # after the assignment: a store that fails keeps the structure
            store_built(self._index, entry)

    def _build(self, rows: Rows) -> Any:
        s, lib = self.settings, self._lib
        dataset = lib.SeismicDataset()
        n = rows.n_docs
        nnz = int(rows.indptr[-1])
        dataset.add_documents_by_id(
            [str(d) for d in range(n)],
            np.asarray(rows.indices[:nnz], np.int64),
            np.asarray(rows.values[:nnz], np.float32),
            np.asarray(rows.indptr, np.int64),
        )
        with quiet_stdout():
            built = lib.SeismicIndex.build_from_dataset(
                dataset,
                n_postings=s.n_postings,
                centroid_fraction=s.centroid_fraction,
                min_cluster_size=s.min_cluster_size,
                summary_energy=s.summary_energy,
                max_fraction=s.max_fraction,
                doc_cut=s.doc_cut,
                num_threads=s.num_threads,
            )
        logger.debug("seismic: built over %d documents", n)
        return built

    def drop(self, keep: _Bool) -> None:
        self._index = self._source = None  # the rows are renumbered: no file holds them

    def tune(self, *, query_cut: int | None, heap_factor: float | None) -> None:
        """New search settings (checked by :class:`Seismic`); the structure built stays."""
        s = self.settings
        self.settings = replace(
            s,
            query_cut=s.query_cut if query_cut is None else query_cut,
            heap_factor=s.heap_factor if heap_factor is None else heap_factor,
        )

    def search_batch(self, rows: Rows, queries: list[_Query], k: int, mask: _Bool | None) -> list[_Hits]:
        excluded = 0 if mask is None else rows.n_docs - int(mask.sum())
        if excluded * 2 > rows.n_docs:  # a narrow filter: score what it allows
            allowed = np.flatnonzero(mask).astype(np.int64) if mask is not None else np.zeros(0, np.int64)
            return [self._rescore(rows, q, allowed, k) for q in queries]
        ask = min(rows.n_docs, k + excluded)
        strings = self._lib.get_seismic_string()
        comps = [np.array([str(t) for t in q[0].tolist()], dtype=strings) for q in queries]
        vals = [np.asarray(q[1], np.float32) for q in queries]
        s = self.settings
        cut, heap = s.query_cut, s.heap_factor
        if len(queries) == 1:  # its single-query call: batch_search costs about 0.3 ms more for one
            found = [self._index.search("0", comps[0], vals[0], k=ask, query_cut=cut, heap_factor=heap)]
        else:
            names = np.array([str(i) for i in range(len(queries))], dtype=strings)
            found = self._index.batch_search(
                names, comps, vals, k=ask, query_cut=cut, heap_factor=heap, num_threads=s.num_threads
            )
        by_query: dict[int, list[int]] = {i: [] for i in range(len(queries))}
        for hits in found:  # lists in any order: each hit names its query
            for name, _, doc in hits:
                by_query[int(name)].append(int(doc))
        out = []
        for i, q in enumerate(queries):
            docs = np.array(by_query[i], np.int64)
            if mask is not None:
                docs = docs[mask[docs]]
            out.append(self._rescore(rows, q, docs, k))
        return out

    @staticmethod
    def _rescore(rows: Rows, query: _Query, docs: _Int, k: int) -> _Hits:
        dense, member = dense_query(rows.n_terms, *query)
        docs, scores = _impact.score_range(rows.indptr, rows.indices, rows.values, docs, dense, member)
        return _impact.best(docs, scores, k)
