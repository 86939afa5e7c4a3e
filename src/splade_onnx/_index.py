"""An embedded inverted index over :class:`SparseEmbedding` with exact (or, if asked, approximate) search.

Documents are kept as CSR rows (one row per internal document number, in insertion order);
a search engine (:mod:`._index_engines`, :mod:`._seismic`) keeps its own structure over them and
brings it up to date on the first search after documents were added.  Deletes only flip a
tombstone in a boolean ``alive`` array; dead rows are dropped ("compaction") once they outnumber
the live ones, and on save.  A loaded index's rows and postings are memory maps of its file; rows
added after the load are held in memory until the next save merges them in.

The exact engines return bit-identical scores (see :mod:`._impact`), so :meth:`SparseIndex.search`,
:meth:`SparseIndex.search_batch`, every exact engine and a reloaded index agree.  The file
:meth:`SparseIndex.save` writes and :meth:`SparseIndex.load` reads is :mod:`._index_file`'s.
"""

from __future__ import annotations

import logging
import operator
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._checks import checked_model, not_single
from ._errors import ArgumentError, ArgumentTypeError, CapacityError, UnknownIdError
from ._index_engines import Engine, EngineName, ExactEngine, Rows, exact_recall, make_engine
from ._index_file import IndexData, check_model, read_index, write_index
from ._payload import PayloadFormat
from ._postings import check_k, top_k
from ._seismic import Seismic
from ._types import ModelIdentity, SparseEmbedding

__all__ = ["SparseIndex", "check_model", "top_k"]

logger = logging.getLogger(__name__)

#: Document numbers are int32 in the postings.
_MAX_DOCS = np.iinfo(np.int32).max

_Int = NDArray[np.int64]
_Float32 = NDArray[np.float32]
_Bool = NDArray[np.bool_]


def _fmt_ids(ids: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(repr(i) for i in ids[:limit])
    return shown + (f", ... ({len(ids)} in all)" if len(ids) > limit else "")


class SparseIndex:
    """An in-memory inverted index of sparse vectors with exact top-k dot-product search.

    ``dim`` (the vocabulary size), when given, makes :meth:`add` reject vocabulary ids
    ``>= dim``.  ``model`` (an encoder's :attr:`~SpladeEncoder.identity`) records which
    model made the vectors; it is saved with the index and checked by :meth:`load`, and
    sets ``dim`` to its vocabulary size.  ``engine`` chooses how searches run: ``"exact"`` (impact-ordered
    postings that skip what cannot reach the top k), ``"exhaustive"`` (every posting scored; the same
    results), or ``"seismic"`` / :class:`Seismic` (approximate, ``pip install 'splade-onnx[ann]'``; check it
    with :meth:`recall`).  Not safe for concurrent use from several threads while it is modified
    (searches also build postings lazily).

    >>> index = SparseIndex()
    >>> index.add([SparseEmbedding.from_dict({1: 1.0, 5: 2.0}), SparseEmbedding.from_dict({5: 1.0})], ids=["a", "b"])
    ['a', 'b']
    >>> index.search(SparseEmbedding.from_dict({5: 1.0, 9: 3.0}))
    [('a', 2.0), ('b', 1.0)]
    >>> index.delete(["a"]), len(index), index.ids
    (1, 1, ['b'])
    """

    def __init__(
        self, *, dim: int | None = None, model: ModelIdentity | None = None, engine: EngineName | Seismic = "exact"
    ) -> None:
        model = checked_model(model)
        if model is not None:
            if dim is not None and dim != model.vocab_size:
                raise ArgumentError(f"dim={dim!r} disagrees with the model's vocabulary size {model.vocab_size}")
            dim = model.vocab_size
        self._model = model
        self._payload: Any = None
        if dim is not None:
            try:
                dim = operator.index(dim)
            except TypeError:
                raise ArgumentTypeError(f"dim must be an int or None, got {type(dim).__name__}") from None
            if dim < 1:
                raise ArgumentError(f"dim must be >= 1, got {dim}")
        self._dim: int | None = dim
        self._lock = threading.Lock()
        self._next_id = 0
        # Documents by internal number: consolidated CSR plus rows appended since.
        self._doc_indptr: _Int = np.zeros(1, np.int64)
        self._doc_indices: _Int = np.zeros(0, np.int64)
        self._doc_values: _Float32 = np.zeros(0, np.float32)
        self._pending: list[tuple[_Int, _Int, _Float32]] = []  # (row lengths, indices, values)
        self._n_docs = 0
        self._ids: list[str] = []  # by document number, dead ones included until compaction
        self._id_map: dict[str, int] | None = {}  # live ids -> numbers, in order; None: every row live, not made
        self._alive: _Bool = np.zeros(0, np.bool_)  # capacity >= _n_docs
        self._n_dead = 0
        self._engine: Engine = make_engine(engine)
        self._n_terms = 0  # 1 + the largest vocabulary id stored

    # ------------------------------------------------------------------ basics

    def __len__(self) -> int:
        return self._n_docs if self._id_map is None else len(self._id_map)  # None: no dead rows

    def __contains__(self, id: object) -> bool:
        return isinstance(id, str) and id in self._id_to_doc

    def __repr__(self) -> str:
        return f"SparseIndex(len={len(self)}, dim={self._dim})"

    @property
    def ids(self) -> list[str]:
        """The live document ids, in insertion order."""
        return list(self._ids) if self._id_map is None else list(self._id_map)

    @property
    def dim(self) -> int | None:
        """The vocabulary size checked by :meth:`add`, or ``None``."""
        return self._dim

    @property
    def model(self) -> ModelIdentity | None:
        """The model that made the vectors, when known (saved and checked on load)."""
        return self._model

    @property
    def payload(self) -> Any:
        """The JSON payload read by :meth:`load` (``None`` if the file had none or the index was not loaded)."""
        return self._payload

    def get(self, id: str) -> SparseEmbedding:
        """The stored vector of document ``id`` (a copy)."""
        doc = self._id_to_doc.get(id) if isinstance(id, str) else None
        if doc is None:
            raise UnknownIdError(id)
        with self._lock:
            self._consolidate()
        lo, hi = int(self._doc_indptr[doc]), int(self._doc_indptr[doc + 1])
        return SparseEmbedding(values=self._doc_values[lo:hi].copy(), indices=self._doc_indices[lo:hi].copy())

    # ------------------------------------------------------------------ mutation

    def add(self, embeddings: Sequence[SparseEmbedding], ids: Sequence[str | None] | None = None) -> list[str]:
        """Add documents; returns their ids (``ids`` or fresh ones), in order.

        A ``None`` in ``ids`` (or ``ids=None``) gets a fresh id: the decimal string of a counter
        that never goes back, skipping ids in use or given.  Nothing is added if any input is
        invalid (see :meth:`check_ids`).
        """
        if isinstance(embeddings, SparseEmbedding):
            raise ArgumentTypeError("embeddings must be a sequence of SparseEmbedding; wrap a single one in a list")
        embeddings = list(embeddings)
        for pos, e in enumerate(embeddings):
            if not isinstance(e, SparseEmbedding):
                raise ArgumentTypeError(f"embeddings[{pos}] is a {type(e).__name__}, not a SparseEmbedding")
        if ids is not None:
            ids = self.check_ids(ids)
            if len(ids) != len(embeddings):
                raise ArgumentError(f"got {len(embeddings)} embeddings but {len(ids)} ids")
        if self._dim is not None:
            for pos, e in enumerate(embeddings):
                if e.indices.size and int(e.indices[-1]) >= self._dim:
                    bad = int(e.indices[e.indices >= self._dim][0])
                    raise ArgumentError(f"embeddings[{pos}] has index {bad}, which is >= dim={self._dim}")
        n = len(embeddings)
        if self._n_docs + n > _MAX_DOCS:
            raise CapacityError(f"a SparseIndex holds at most {_MAX_DOCS} documents (deleted ones included)")
        if ids is None:
            ids = [None] * n
        chosen, table = set(ids), self._id_to_doc
        final: list[str] = []
        for i in ids:  # a fresh id for each None: the counter's next value not in use or chosen
            while i is None:
                cand = str(self._next_id)
                self._next_id += 1
                if cand not in table and cand not in chosen:
                    i = cand
            final.append(i)
        ids = final
        if not embeddings:
            return []

        lens = np.fromiter((e.indices.size for e in embeddings), dtype=np.int64, count=len(embeddings))
        tops = [int(e.indices[-1]) for e in embeddings if e.indices.size]
        self._n_terms = max(self._n_terms, max(tops, default=-1) + 1)
        indices = np.concatenate([e.indices for e in embeddings]).astype(np.int64, copy=False)
        values = np.concatenate([e.values for e in embeddings]).astype(np.float32, copy=False)
        self._pending.append((lens, indices, values))
        start = self._n_docs
        if start + n > self._alive.size:
            grown = np.zeros(max(start + n, 2 * self._alive.size, 64), np.bool_)
            grown[:start] = self._alive[:start]
            self._alive = grown
        self._alive[start : start + n] = True
        self._n_docs += n
        self._ids.extend(ids)
        table.update(zip(ids, range(start, start + n)))
        return list(ids)

    def check_ids(self, ids: Iterable[str | None]) -> list[str | None]:
        """``ids`` as a list, if :meth:`add` would take them: each a ``str`` (or ``None`` for a fresh
        one), given once, and not in the index.  Otherwise the error names every offender.

        Callers that must do work before adding (encoding, say) check first, so a bad id costs nothing.
        """
        not_single(ids, "ids", expected="an iterable of str ids")
        ids = list(ids)
        seen: set[str] = set()
        dups: dict[str, None] = {}  # ordered set
        table = self._id_to_doc
        for pos, i in enumerate(ids):
            if i is None:
                continue
            if not isinstance(i, str):
                raise ArgumentTypeError(f"ids[{pos}] is a {type(i).__name__}, ids must be str")
            if i in seen or i in table:
                dups[i] = None
            seen.add(i)
        if dups:
            raise ArgumentError(
                f"duplicate ids: {_fmt_ids(list(dups))}; each document needs its own id (delete the old one first "
                "to replace it); nothing was added"
            )
        return ids

    def delete(self, ids: Iterable[str]) -> int:
        """Remove documents; returns how many.  Unknown ids raise :class:`KeyError` and nothing is removed."""
        not_single(ids, "ids", expected="an iterable of str ids")
        wanted, table = list(dict.fromkeys(ids)), self._id_to_doc
        unknown = [i for i in wanted if not (isinstance(i, str) and i in table)]
        if unknown:
            raise UnknownIdError(f"unknown ids: {_fmt_ids(unknown)}")
        for i in wanted:
            self._alive[table.pop(i)] = False
        self._n_dead += len(wanted)
        if self._n_dead > len(table):
            self._compact()
        return len(wanted)

    # ------------------------------------------------------------------ search

    def search(
        self, query: SparseEmbedding, k: int = 10, *, filter_ids: Iterable[str] | None = None
    ) -> list[tuple[str, float]]:
        """The ``k`` best ``(id, score)`` by exact dot product, best first, ties by insertion order.

        Only documents sharing at least one vocabulary id with ``query`` are returned;
        ``filter_ids`` (if given) restricts the results to those ids (unknown ones are ignored).
        """
        if not isinstance(query, SparseEmbedding):
            raise ArgumentTypeError(f"query must be a SparseEmbedding, got {type(query).__name__}")
        return self.search_batch([query], k, filter_ids=filter_ids)[0]

    def search_batch(
        self, queries: Sequence[SparseEmbedding], k: int = 10, *, filter_ids: Iterable[str] | None = None
    ) -> list[list[tuple[str, float]]]:
        """:meth:`search` for each query (identical results), scored a block of queries at a time."""
        k = check_k(k)
        if isinstance(queries, SparseEmbedding):
            raise ArgumentTypeError("queries must be a sequence of SparseEmbedding; use search() for one")
        queries = list(queries)
        for pos, q in enumerate(queries):
            if not isinstance(q, SparseEmbedding):
                raise ArgumentTypeError(f"queries[{pos}] is a {type(q).__name__}, not a SparseEmbedding")
        mask = self._base_mask(filter_ids)
        if not queries or not len(self):
            return [[] for _ in queries]
        rows = self._sync_engine()
        asked = [(q.indices.astype(np.int64, copy=False), q.values) for q in queries]
        return [
            [(self._ids[d], score) for d, score in zip(docs.tolist(), scores.tolist())]
            for docs, scores in self._engine.search_batch(rows, asked, k, mask)
        ]

    def recall(self, queries: Sequence[SparseEmbedding], k: int = 10) -> float:
        """The mean share of each query's exact top ``k`` that this index's engine returns (1.0 for the
        exact engines): run it on your own queries to choose the approximate engine's settings."""
        found = self.search_batch(queries, k)  # checks the queries and k
        if self._engine.name != "seismic" or not found:
            return 1.0
        asked = [(q.indices.astype(np.int64, copy=False), q.values) for q in queries]
        got = [[self._id_to_doc[i] for i, _ in hits] for hits in found]
        return exact_recall(self._sync_engine(), asked, k, self._base_mask(None), got)

    def tune(self, *, query_cut: int | None = None, heap_factor: float | None = None) -> None:
        """Change the approximate engine's search settings without rebuilding it (see :class:`Seismic`)."""
        tune = getattr(self._engine, "tune", None)
        if tune is None:
            raise ArgumentError(f"tune() sets an approximate engine's search settings; this one is {self.engine!r}")
        tune(query_cut=query_cut, heap_factor=heap_factor)

    @property
    def engine(self) -> str:
        """The search engine's name: ``"exact"``, ``"exhaustive"`` or ``"seismic"``."""
        return self._engine.name

    def _base_mask(self, filter_ids: Iterable[str] | None) -> _Bool | None:
        """Documents eligible for results, or ``None`` for "every document number"."""
        if filter_ids is None:
            return self._alive[: self._n_docs] if self._n_dead else None
        not_single(filter_ids, "filter_ids", expected="an iterable of str ids")
        mask, table = np.zeros(self._n_docs, np.bool_), self._id_to_doc
        docs = [table[i] for i in filter_ids if isinstance(i, str) and i in table]
        mask[np.asarray(docs, dtype=np.int64)] = True
        return mask

    # ------------------------------------------------------------------ internals

    @property
    def _id_to_doc(self) -> dict[str, int]:  # made from _ids on first use after a load or a compaction
        if self._id_map is None:
            self._id_map = dict(zip(self._ids, range(len(self._ids))))
        return self._id_map

    def _consolidate(self) -> None:
        """Fold rows added since the last call into the CSR arrays."""
        if not self._pending:
            return
        lens = np.concatenate([p[0] for p in self._pending])
        self._doc_indptr = np.concatenate([self._doc_indptr, self._doc_indptr[-1] + np.cumsum(lens)])
        self._doc_indices = np.concatenate([self._doc_indices, *(p[1] for p in self._pending)])
        self._doc_values = np.concatenate([self._doc_values, *(p[2] for p in self._pending)])
        self._pending = []

    def _rows(self) -> Rows:
        self._consolidate()
        return Rows(self._doc_indptr, self._doc_indices, self._doc_values, self._n_terms)

    def _sync_engine(self, *, full: bool = False) -> Rows:
        """The rows, with the engine brought up to date with them (``full``: every row in its structure).

        Serialised by a lock, so concurrent searches (e.g. from async retrievers running in
        threads) build the structure once; adds and deletes must still not run concurrently.
        """
        with self._lock:
            rows = self._rows()
            self._engine.sync(rows, full=full)
            return rows

    def _compact(self) -> None:
        """Drop deleted rows and renumber the documents, keeping their order; postings are filtered, not rebuilt."""
        if not self._n_dead:
            return
        self._consolidate()
        keep = self._alive[: self._n_docs].copy()
        row_lens = np.diff(self._doc_indptr)
        entry_keep = np.repeat(keep, row_lens)
        self._doc_indices = self._doc_indices[entry_keep]
        self._doc_values = self._doc_values[entry_keep]
        self._doc_indptr = np.concatenate([np.zeros(1, np.int64), np.cumsum(row_lens[keep])])
        self._engine.drop(keep)
        self._ids = [self._ids[d] for d in np.flatnonzero(keep).tolist()]
        self._id_map = None  # every row left is live: made from _ids when next needed
        n_live = len(self._ids)
        self._alive = np.ones(max(n_live, 64), np.bool_)
        self._alive[n_live:] = False
        logger.debug("compacted: dropped %d deleted documents, %d left", self._n_dead, n_live)
        self._n_docs, self._n_dead = n_live, 0

    # ------------------------------------------------------------------ persistence

    def save(
        self, path: str | os.PathLike[str], *, payload: Any = None, payload_format: PayloadFormat | None = None
    ) -> None:
        """Write the index to ``path`` (the format of :mod:`._index_file`), all-or-nothing.

        ``payload`` is any JSON value saved in the same file (read back as :attr:`payload`);
        a value JSON cannot hold raises :class:`ArgumentError` naming its key before anything is written.
        With ``payload_format`` (a :class:`~splade_onnx.integration.PayloadFormat`), ``payload`` must be
        a dict, saved with the format's name and version for :meth:`load` to check.
        """
        path = os.fspath(path)
        if payload_format is not None:
            payload = payload_format.wrap(payload)
        self._compact()
        rows = self._sync_engine(full=True)
        impacts = self._engine.impacts if isinstance(self._engine, ExactEngine) else None
        arrays = rows.indptr, rows.indices, rows.values
        data = IndexData(self._ids, self._dim, self._next_id, self._model, *arrays, payload, impacts)
        self._engine.persisted(path, write_index(path, data), rows)
        logger.debug("saved %d documents to %s", len(self), path)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        model: ModelIdentity | None = None,
        allow_model_mismatch: bool = False,
        payload_format: PayloadFormat | None = None,
        legacy_payload: Callable[[], Any] | None = None,
        engine: EngineName | Seismic = "exact",
        verify: bool = True,
    ) -> SparseIndex:
        """Read an index written by :meth:`save`, to search with ``engine`` (see :class:`SparseIndex`).

        The arrays of a file saved by this version are memory-mapped, not read: the operating system
        pages in what searches touch.  ``verify=True`` first passes over them (checksums, ids in range,
        orders); ``verify=False`` skips that for a file you trust, and opens in time that grows with the
        number of documents (their ids are parsed), not with their entries.  Either way its structure
        is checked and nothing larger than the file is allocated.  With the Seismic engine, the first
        search reads the structure built over this file before from the local cache, if it is there
        (see :class:`Seismic`'s ``cache``), or builds it.

        Pass the querying encoder's ``identity`` as ``model``: an index made by another model
        (another vocabulary size or fingerprint) raises :class:`ModelMismatchError`, since its
        scores would be meaningless, unless ``allow_model_mismatch=True`` (then it is a warning).
        A file that is not a well-formed index raises :class:`IndexFormatError` before any
        array larger than the file is allocated (see :mod:`._index_file`).

        ``payload_format`` checks the :attr:`payload` :meth:`save` stored with that format: another
        format, a newer version or no payload is an :class:`IndexFormatError`.  ``legacy_payload``
        reads an older layout's payload (e.g. a file beside the index): it is called, and its result
        becomes :attr:`payload` unchecked, only when the file holds no payload.
        """
        path, model = os.fspath(path), checked_model(model)  # a wrong model type before the file is read
        data = read_index(path, verify=verify)
        index = cls._from_data(data, engine)
        index._engine.persisted(path, data.stamp, index._rows())
        if model is not None:
            check_model(index.model, model, where=path, allow_mismatch=allow_model_mismatch)
        if index._payload is None and legacy_payload is not None:
            index._payload = legacy_payload()
        elif payload_format is not None:
            index._payload = payload_format.check(index._payload, where=path)
        logger.debug("loaded %d documents from %s", len(index), path)
        return index

    @classmethod
    def _from_data(cls, data: IndexData, engine: EngineName | Seismic) -> SparseIndex:
        """The index holding what :func:`read_index` read (checked there)."""
        index = cls(dim=data.dim, model=data.model, engine=engine)
        if data.impacts is not None and isinstance(index._engine, ExactEngine):
            index._engine = ExactEngine(data.impacts)
        index._payload = data.payload
        index._next_id = data.next_id
        index._doc_indptr, index._doc_indices, index._doc_values = data.indptr, data.indices, data.values
        index._n_terms = data.n_terms()
        index._ids, index._id_map, index._n_docs = data.ids, None, len(data.ids)  # every row live: no map yet
        index._alive = np.ones(index._n_docs, np.bool_)
        return index
