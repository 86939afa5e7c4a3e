"""An in-memory inverted index over :class:`SparseEmbedding` with exact dot-product search.

Pure numpy (no scipy).  Documents are kept as CSR rows (one row per internal
document number, in insertion order); a CSC-like posting structure (for each
vocabulary id that occurs: the document numbers containing it, ascending, and the
weights) is derived from them lazily, on the first search after documents were
added, by merging only the new rows into the existing postings.  A search gathers
the postings of the query's ids, accumulates the products into a dense score row
per query (a block of queries at a time in :meth:`SparseIndex.search_batch`) and
selects the top k with ``argpartition``.  Deletes only flip a tombstone in a boolean ``alive`` array;
dead rows are dropped ("compaction") once they outnumber the live ones, and on save.

Scores are exact: each product of two float32 weights is exact in float64 and the
products of one (query, document) pair are summed in float64 in ascending
vocabulary-id order, so :meth:`SparseIndex.search`, :meth:`SparseIndex.search_batch`
and a reloaded index return bit-identical scores.

File format (version 2)
-----------------------

:meth:`SparseIndex.save` writes one uncompressed ``numpy.savez`` zip holding plain
arrays only (it loads with ``numpy.load(path, allow_pickle=False)``).  Only live
documents are stored, in insertion order; row ``i`` of the CSR arrays is the
document whose id is ``ids[i]`` in the JSON metadata.

===================  ===============  ======================================================
array                dtype            meaning
===================  ===============  ======================================================
``format_version``   int64, 0-d       ``2``; readers refuse files with a newer version
``doc_indptr``       int64, [n + 1]   CSR row pointers: document ``i`` owns entries
                                      ``doc_indptr[i]:doc_indptr[i + 1]``
``doc_indices``      int32 or int64   vocabulary ids, strictly ascending within each row
                                      (written as int32 whenever they all fit)
``doc_values``       float32          the weight of each vocabulary id
``meta``             unicode, 0-d     JSON (a uint8 array of UTF-8 bytes is also accepted):
                                      ``{"format": "splade-onnx-sparse-index",
                                      "format_version": 2, "ids": [...], "dim": int | null,
                                      "next_id": int, "model": {...} | null,
                                      "library": "splade-onnx <version>"}``
``payload``          uint8, [bytes]   optional: UTF-8 JSON (ASCII-escaped) the caller saved
                                      with the index, e.g. an adapter's documents
===================  ===============  ======================================================

``ids`` are the document ids (strings) in row order, ``dim`` the vocabulary size the
index was created with (``null`` for unchecked), ``next_id`` the counter that
generates default ids, and ``model`` the :class:`ModelIdentity` of the model that made
the vectors (``{"name", "vocab_size", "fingerprint"}``, or ``null`` when unknown).
Version 1 files (no ``model``, no ``payload``) still load.  Members are stored
uncompressed; other members (any name but the six above) are ignored and never read.

A save is all-or-nothing: everything is validated first (the payload must be JSON nested at
most 256 levels deep, and the error names the key that is not JSON), then written to a
temporary file ``.<name>.<random>.tmp`` in the target's folder, flushed and fsynced, and
renamed over the target, so a failed save (an exception at any step) leaves the previous
file loadable and no temporary file, and a killed one leaves the previous file loadable.  A
writer holds an advisory lock (``flock``) on its temporary file; temporary files whose lock
is free were left by killed saves, and the next save of the same target removes them.

Reading untrusted files
-----------------------

:meth:`SparseIndex.load` treats the file as untrusted: whatever its bytes, it returns an
index or raises :class:`IndexFormatError` (a ``ValueError``), and it allocates nothing
larger than the file before the checks pass.  It refuses a zip directory over 1 MiB or
1,024 members, duplicate member names, compressed or encrypted members (no zip bombs: only
uncompressed members are read, so a member's bytes are in the file), members whose sizes
in the zip directory do not fit inside the file, object dtypes (pickles), .npy headers over
10,000 bytes, a .npy header whose shape and dtype do not make exactly the member's size
(a 300-byte file cannot claim 10^13 elements), arrays that disagree (``doc_indptr`` must
have one entry per id plus one, ``doc_indices`` as many as ``doc_values``; checked before
those arrays are read), bad CRC-32 checksums, and JSON in ``meta`` or ``payload`` nested
more than 256 levels (counted without recursion before parsing).  Peak memory is then
a small multiple of the file's size (JSON ``payload`` objects can take ~20x their bytes).
"""

from __future__ import annotations

import io
import json
import logging
import math
import operator
import os
import re
import struct
import threading
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import numpy.lib.format as npy_format
from numpy.typing import NDArray

from ._atomic import atomic_file
from ._errors import (
    ArgumentError,
    ArgumentTypeError,
    CapacityError,
    FileMissingError,
    IndexFormatError,
    ModelMismatchError,
    UnknownIdError,
)
from ._types import ModelIdentity, SparseEmbedding

__all__ = ["SparseIndex", "top_k"]

logger = logging.getLogger(__name__)

FORMAT_NAME = "splade-onnx-sparse-index"
FORMAT_VERSION = 2

#: Upper bounds on one block of :meth:`SparseIndex.search_batch`: cells of the dense
#: ``[queries, documents]`` score array, and posting entries gathered (kept cache-sized).
_BLOCK_CELLS = 1 << 20
_BLOCK_ENTRIES = 1 << 17
#: Document numbers are int32 in the postings.
_MAX_DOCS = np.iinfo(np.int32).max

_Int = NDArray[np.int64]
_Int32 = NDArray[np.int32]
_Float32 = NDArray[np.float32]
_Float64 = NDArray[np.float64]
_Bool = NDArray[np.bool_]


def _check_k(k: int) -> int:
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
    k = _check_k(k)
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


def _no_str(value: object, what: str) -> None:
    if isinstance(value, (str, bytes)):
        raise ArgumentTypeError(
            f"{what} must be an iterable of str ids, not a single {type(value).__name__}; wrap it in a list"
        )


def _fmt_ids(ids: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(repr(i) for i in ids[:limit])
    return shown + (f", ... ({len(ids)} in all)" if len(ids) > limit else "")


class SparseIndex:
    """An in-memory inverted index of sparse vectors with exact top-k dot-product search.

    ``dim`` (the vocabulary size), when given, makes :meth:`add` reject vocabulary ids
    ``>= dim``.  ``model`` (an encoder's :attr:`~SpladeEncoder.identity`) records which
    model made the vectors; it is saved with the index and checked by :meth:`load`, and
    sets ``dim`` to its vocabulary size.  Not safe for concurrent use from several threads while it is modified
    (searches also build postings lazily).

    >>> index = SparseIndex()
    >>> index.add([SparseEmbedding.from_dict({1: 1.0, 5: 2.0}), SparseEmbedding.from_dict({5: 1.0})], ids=["a", "b"])
    ['a', 'b']
    >>> index.search(SparseEmbedding.from_dict({5: 1.0, 9: 3.0}))
    [('a', 2.0), ('b', 1.0)]
    >>> index.delete(["a"]), len(index), index.ids
    (1, 1, ['b'])
    """

    def __init__(self, *, dim: int | None = None, model: ModelIdentity | None = None) -> None:
        if model is not None:
            if not isinstance(model, ModelIdentity):
                raise ArgumentTypeError(
                    f"model must be a ModelIdentity (SpladeEncoder.identity), got {type(model).__name__}"
                )
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
        self._id_to_doc: dict[str, int] = {}  # live ids, in insertion order
        self._alive: _Bool = np.zeros(0, np.bool_)  # capacity >= _n_docs
        self._n_dead = 0
        # Postings over documents [0, _post_ndocs): term j is vocabulary id _term_ids[j] (sorted), its
        # entries are _term_indptr[j]:_term_indptr[j + 1], by ascending document number.
        self._term_ids: _Int = np.zeros(0, np.int64)
        self._term_indptr: _Int = np.zeros(1, np.int64)
        self._post_docs: _Int32 = np.zeros(0, np.int32)
        self._post_values: _Float64 = np.zeros(0, np.float64)  # float64: saves a cast per search
        self._post_ndocs = 0
        self._post_positive = True  # every posting weight > 0 (lets search skip tracking shared terms)

    # ------------------------------------------------------------------ basics

    def __len__(self) -> int:
        return len(self._id_to_doc)

    def __contains__(self, id: object) -> bool:
        return isinstance(id, str) and id in self._id_to_doc

    def __repr__(self) -> str:
        return f"SparseIndex(len={len(self)}, dim={self._dim})"

    @property
    def ids(self) -> list[str]:
        """The live document ids, in insertion order."""
        return list(self._id_to_doc)

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
        chosen = set(ids)
        final: list[str] = []
        for i in ids:  # a fresh id for each None: the counter's next value not in use or chosen
            while i is None:
                cand = str(self._next_id)
                self._next_id += 1
                if cand not in self._id_to_doc and cand not in chosen:
                    i = cand
            final.append(i)
        ids = final
        if not embeddings:
            return []

        lens = np.fromiter((e.indices.size for e in embeddings), dtype=np.int64, count=len(embeddings))
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
        for doc, i in enumerate(ids, start):
            self._id_to_doc[i] = doc
        return list(ids)

    def check_ids(self, ids: Iterable[str | None]) -> list[str | None]:
        """``ids`` as a list, if :meth:`add` would take them: each a ``str`` (or ``None`` for a fresh
        one), given once, and not in the index.  Otherwise the error names every offender.

        Callers that must do work before adding (encoding, say) check first, so a bad id costs nothing.
        """
        _no_str(ids, "ids")
        ids = list(ids)
        seen: set[str] = set()
        dups: dict[str, None] = {}  # ordered set
        for pos, i in enumerate(ids):
            if i is None:
                continue
            if not isinstance(i, str):
                raise ArgumentTypeError(f"ids[{pos}] is a {type(i).__name__}, ids must be str")
            if i in seen or i in self._id_to_doc:
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
        _no_str(ids, "ids")
        wanted = list(dict.fromkeys(ids))
        unknown = [i for i in wanted if not (isinstance(i, str) and i in self._id_to_doc)]
        if unknown:
            raise UnknownIdError(f"unknown ids: {_fmt_ids(unknown)}")
        for i in wanted:
            self._alive[self._id_to_doc.pop(i)] = False
        self._n_dead += len(wanted)
        if self._n_dead > len(self._id_to_doc):
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
        k = _check_k(k)
        if isinstance(queries, SparseEmbedding):
            raise ArgumentTypeError("queries must be a sequence of SparseEmbedding; use search() for one")
        queries = list(queries)
        for pos, q in enumerate(queries):
            if not isinstance(q, SparseEmbedding):
                raise ArgumentTypeError(f"queries[{pos}] is a {type(q).__name__}, not a SparseEmbedding")
        mask = self._base_mask(filter_ids)
        if not queries or not self._id_to_doc:
            return [[] for _ in queries]
        self._ensure_postings()
        n_queries = len(queries)
        q_terms = np.concatenate([q.indices for q in queries])
        q_values = np.concatenate([q.values for q in queries]).astype(np.float64)
        q_rows = np.repeat(np.arange(n_queries, dtype=np.int64), [q.indices.size for q in queries])
        # Map vocabulary ids to postings terms; ids no document has are dropped.
        term_ids = self._term_ids
        slots = np.searchsorted(term_ids, q_terms)
        known = slots < term_ids.size
        known[known] = term_ids[slots[known]] == q_terms[known]
        slots, q_values = slots[known], q_values[known]
        q_lens = np.bincount(q_rows[known], minlength=n_queries).astype(np.int64)
        starts = self._term_indptr[slots]
        lens = self._term_indptr[slots + 1] - starts
        # Cumulative posting entries at each query boundary, to cut blocks of bounded work.
        term_bounds = np.concatenate([np.zeros(1, np.int64), np.cumsum(q_lens)])
        entry_bounds = np.concatenate([np.zeros(1, np.int64), np.cumsum(lens)])[term_bounds]
        max_rows = max(1, _BLOCK_CELLS // max(self._n_docs, 1))
        results: list[list[tuple[str, float]]] = []
        s = 0
        while s < n_queries:
            e = int(np.searchsorted(entry_bounds, entry_bounds[s] + _BLOCK_ENTRIES, side="right")) - 1
            e = min(max(e, s + 1), s + max_rows, n_queries)
            t0, t1 = int(term_bounds[s]), int(term_bounds[e])
            results.extend(self._search_block(q_lens[s:e], starts[t0:t1], lens[t0:t1], q_values[t0:t1], k, mask))
            s = e
        return results

    def _base_mask(self, filter_ids: Iterable[str] | None) -> _Bool | None:
        """Documents eligible for results, or ``None`` for "every document number"."""
        if filter_ids is None:
            return self._alive[: self._n_docs] if self._n_dead else None
        _no_str(filter_ids, "filter_ids")
        mask = np.zeros(self._n_docs, np.bool_)
        docs = [self._id_to_doc[i] for i in filter_ids if isinstance(i, str) and i in self._id_to_doc]
        mask[np.asarray(docs, dtype=np.int64)] = True
        return mask

    def _search_block(
        self, q_lens: _Int, starts: _Int, lens: _Int, q_values: _Float64, k: int, mask: _Bool | None
    ) -> list[list[tuple[str, float]]]:
        """Top-k for a block of queries given, per query term, its postings range and weight."""
        n_rows, n_docs = q_lens.size, self._n_docs
        if not lens.any():
            return [[] for _ in range(n_rows)]
        # The postings of every query term, concatenated (slices copy faster than a gather).
        bounds = zip(starts.tolist(), (starts + lens).tolist())
        post_docs, post_values = self._post_docs, self._post_values
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
        if self._post_positive and (q_values.size == 0 or q_values.min() > 0):
            hits = scores > 0  # a sum of positive products is > 0 exactly when a term is shared
        else:
            matched = np.zeros(size, np.bool_)
            matched[cells] = True
            hits = matched.reshape(n_rows, n_docs)
        if mask is not None:
            hits &= mask
        out: list[list[tuple[str, float]]] = []
        for row in range(n_rows):
            docs = np.flatnonzero(hits[row])
            if docs.size == 0:
                out.append([])
                continue
            row_scores = scores[row, docs]
            best = top_k(row_scores, k)
            out.append([(self._ids[d], s) for d, s in zip(docs[best].tolist(), row_scores[best].tolist())])
        return out

    # ------------------------------------------------------------------ internals

    def _consolidate(self) -> None:
        """Fold rows added since the last call into the CSR arrays."""
        if not self._pending:
            return
        lens = np.concatenate([p[0] for p in self._pending])
        self._doc_indptr = np.concatenate([self._doc_indptr, self._doc_indptr[-1] + np.cumsum(lens)])
        self._doc_indices = np.concatenate([self._doc_indices, *(p[1] for p in self._pending)])
        self._doc_values = np.concatenate([self._doc_values, *(p[2] for p in self._pending)])
        self._pending = []

    def _ensure_postings(self) -> None:
        """Merge the rows not yet in the postings into them (the old postings are not re-sorted).

        Serialised by a lock, so concurrent searches (e.g. from async retrievers running in
        threads) build the postings once; adds and deletes must still not run concurrently.
        """
        with self._lock:
            self._ensure_postings_locked()

    def _ensure_postings_locked(self) -> None:
        self._consolidate()
        if self._post_ndocs == self._n_docs:
            return
        first = self._post_ndocs
        lo = int(self._doc_indptr[first])
        terms = self._doc_indices[lo:]
        docs = np.repeat(np.arange(first, self._n_docs, dtype=np.int64), np.diff(self._doc_indptr[first:]))
        values = self._doc_values[lo:]
        old_ids, old_indptr = self._term_ids, self._term_indptr
        term_ids = np.union1d(old_ids, terms)
        old_slots = np.searchsorted(term_ids, old_ids)  # where each old term sits now
        new_slots = np.searchsorted(term_ids, terms)
        # Entries per term (cumulative) in the old postings and in the new rows, over the merged terms.
        old_ext = np.zeros(term_ids.size + 1, np.int64)
        old_ext[old_slots + 1] = np.diff(old_indptr)
        np.cumsum(old_ext, out=old_ext)
        new_indptr = np.zeros(term_ids.size + 1, np.int64)
        np.cumsum(np.bincount(new_slots, minlength=term_ids.size), out=new_indptr[1:])
        order = np.argsort(new_slots, kind="stable")  # rows are in document order: stays ascending per term
        old_nnz, new_nnz = self._post_docs.size, terms.size
        out_docs = np.empty(old_nnz + new_nnz, np.int32)
        out_values = np.empty(old_nnz + new_nnz, np.float64)
        # An old entry at position p, of merged term t, moves up by the new entries of terms < t; the new
        # entry at position q of the sorted new ones, term t, moves up by the old entries of terms <= t.
        old_dest = np.arange(old_nnz, dtype=np.int64) + np.repeat(new_indptr[old_slots], np.diff(old_indptr))
        new_dest = np.arange(new_nnz, dtype=np.int64) + old_ext[new_slots[order] + 1]
        out_docs[old_dest] = self._post_docs
        out_values[old_dest] = self._post_values
        out_docs[new_dest] = docs[order]
        out_values[new_dest] = values[order]
        self._term_ids, self._term_indptr = term_ids, old_ext + new_indptr
        self._post_docs, self._post_values = out_docs, out_values
        self._post_ndocs = self._n_docs
        self._post_positive = self._post_positive and bool(np.all(values > 0))
        logger.debug("postings: merged %d new documents (%d entries)", self._n_docs - first, new_nnz)

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
        renumber = np.cumsum(keep) - 1
        if self._post_docs.size:
            n_terms = self._term_indptr.size - 1
            post_keep = keep[self._post_docs]
            post_terms = np.repeat(np.arange(n_terms, dtype=np.int64), np.diff(self._term_indptr))
            indptr = np.zeros(n_terms + 1, np.int64)
            np.cumsum(np.bincount(post_terms[post_keep], minlength=n_terms), out=indptr[1:])
            self._term_indptr = indptr
            self._post_docs = renumber[self._post_docs[post_keep]].astype(np.int32)
            self._post_values = self._post_values[post_keep]
        self._post_ndocs = int(keep[: self._post_ndocs].sum())
        self._ids = [self._ids[d] for d in np.flatnonzero(keep).tolist()]
        self._id_to_doc = {i: d for d, i in enumerate(self._ids)}
        n_live = len(self._ids)
        self._alive = np.ones(max(n_live, 64), np.bool_)
        self._alive[n_live:] = False
        logger.debug("compacted: dropped %d deleted documents, %d left", self._n_dead, n_live)
        self._n_docs, self._n_dead = n_live, 0

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | os.PathLike[str], *, payload: Any = None) -> None:
        """Write the index to ``path`` (format in the module docstring), all-or-nothing.

        ``payload`` is any JSON value saved in the same file (read back as :attr:`payload`);
        a value JSON cannot hold raises :class:`ArgumentError` naming its key before anything is written.
        """
        path = os.fspath(path)
        payload_bytes = None if payload is None else json_bytes(payload, "payload")
        self._compact()
        self._consolidate()
        meta = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "ids": self._ids,
            "dim": self._dim,
            "next_id": self._next_id,
            "model": None if self._model is None else self._model.as_dict(),
            "library": f"splade-onnx {_library_version()}",
        }
        small = not self._doc_indices.size or int(self._doc_indices.max()) < np.iinfo(np.int32).max
        arrays: dict[str, NDArray[Any]] = {
            "format_version": np.array(FORMAT_VERSION, np.int64),
            "doc_indptr": self._doc_indptr.astype(np.int64, copy=False),
            "doc_indices": self._doc_indices.astype(np.int32 if small else np.int64),
            "doc_values": self._doc_values.astype(np.float32, copy=False),
            "meta": np.array(json.dumps(meta, ensure_ascii=False)),
        }
        if payload_bytes is not None:
            arrays["payload"] = np.frombuffer(payload_bytes, np.uint8)
        with atomic_file(path) as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]
        logger.debug("saved %d documents to %s", len(self), path)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        model: ModelIdentity | None = None,
        allow_model_mismatch: bool = False,
    ) -> SparseIndex:
        """Read an index written by :meth:`save`.

        Pass the querying encoder's ``identity`` as ``model``: an index made by another model
        (another vocabulary size or fingerprint) raises :class:`ModelMismatchError`, since its
        scores would be meaningless, unless ``allow_model_mismatch=True`` (then it is a warning).
        A file that is not a well-formed index raises :class:`IndexFormatError` before any
        array larger than the file is allocated (see "Reading untrusted files" in the module docstring).
        """
        path = os.fspath(path)
        if model is not None and not isinstance(model, ModelIdentity):
            raise ArgumentTypeError(
                f"model must be a ModelIdentity (SpladeEncoder.identity), got {type(model).__name__}"
            )
        if not os.path.exists(path):
            raise FileMissingError(f"no splade-onnx index at {path}")
        with open(path, "rb") as fh:  # outside the try: permission errors stay what they are
            try:
                meta, arrays = _read_npz(fh)
                index = cls._from_arrays(meta, arrays)
            except _VersionError as exc:
                raise IndexFormatError(f"cannot load {path}: {exc}") from None
            except _LOAD_ERRORS as exc:
                raise IndexFormatError(f"not a splade-onnx index or corrupt: {path}: {exc}") from exc
        if model is not None:
            check_model(index.model, model, where=path, allow_mismatch=allow_model_mismatch)
        logger.debug("loaded %d documents from %s", len(index), path)
        return index

    @classmethod
    def _from_arrays(cls, meta: dict[str, Any], arrays: dict[str, NDArray[Any]]) -> SparseIndex:
        """The index from a parsed header (:func:`_parse_meta`) and the arrays :func:`_read_npz` read."""
        ids, dim, next_id = meta["ids"], meta["dim"], meta["next_id"]
        model = None if meta.get("model") is None else ModelIdentity.from_dict(meta["model"])
        if model is not None and dim != model.vocab_size:
            raise IndexFormatError(f"dim {dim!r} disagrees with the model's vocabulary size {model.vocab_size}")
        payload = None
        if "payload" in arrays:
            raw = arrays["payload"]
            if raw.dtype != np.uint8 or raw.ndim != 1:
                raise IndexFormatError(f"payload has dtype {raw.dtype} and shape {raw.shape}")
            payload = _loads(raw.tobytes().decode("utf-8"), "payload")
        if len(set(ids)) != len(ids):
            raise IndexFormatError("duplicate ids")
        if dim is not None and (type(dim) is not int or dim < 1):
            raise IndexFormatError(f"bad dim {dim!r}")
        if type(next_id) is not int or next_id < 0:
            raise IndexFormatError(f"bad next_id {next_id!r}")
        indptr, indices, values = arrays["doc_indptr"], arrays["doc_indices"], arrays["doc_values"]
        for name, a, kind in (
            ("doc_indptr", indptr, "iu"),
            ("doc_indices", indices, "iu"),
            ("doc_values", values, "f"),
        ):
            if a.ndim != 1 or a.dtype.kind not in kind:
                raise IndexFormatError(f"{name} has dtype {a.dtype} and shape {a.shape}")
        # Copies: the arrays read are read-only views of the file's bytes.
        indptr, indices = indptr.astype(np.int64), indices.astype(np.int64)
        values = values.astype(np.float32)
        n, nnz = len(ids), indices.size
        if indptr.size != n + 1 or indptr[0] != 0 or indptr[-1] != nnz or values.size != nnz:
            raise IndexFormatError(f"inconsistent CSR arrays for {n} ids")
        if np.any(np.diff(indptr) < 0):
            raise IndexFormatError("doc_indptr is not non-decreasing")
        if nnz:
            if indices.min() < 0 or (dim is not None and indices.max() >= dim):
                raise IndexFormatError("doc_indices out of range")
            ascending = np.diff(indices) > 0
            bounds = indptr[1:-1]
            bounds = bounds[(bounds > 0) & (bounds < nnz)]
            ascending[bounds - 1] = True
            if not ascending.all():
                raise IndexFormatError("doc_indices not strictly ascending within a document")
            if not np.all(np.isfinite(values)):
                raise IndexFormatError("doc_values not finite")
        index = cls(dim=dim, model=model)
        index._payload = payload
        index._next_id = next_id
        index._doc_indptr, index._doc_indices, index._doc_values = indptr, indices, values
        index._n_docs = n
        index._ids = list(ids)
        index._id_to_doc = {i: d for d, i in enumerate(ids)}
        index._alive = np.ones(n, np.bool_)
        return index


class _VersionError(IndexFormatError):
    pass


#: What reading a malformed file can raise (zipfile and numpy raise these on bad bytes); ``load``
#: turns each into an :class:`IndexFormatError` naming the file.
_LOAD_ERRORS = (
    OSError, ValueError, KeyError, TypeError, EOFError, OverflowError, zipfile.BadZipFile, zlib.error, struct.error,
    NotImplementedError,
)  # fmt: skip

#: Limits of the reader (see "Reading untrusted files" in the module docstring).
_MAX_MEMBERS = 1024
_MAX_DIRECTORY_BYTES = 1 << 20  # the zip's central directory (an index's is well under 1 kB)
_MAX_NPY_HEADER = 10_000  # bytes of .npy header text (numpy's own default limit)
_MAX_JSON_DEPTH = 256  # nesting of JSON arrays and objects in meta and payload
_MEMBERS = ("format_version", "doc_indptr", "doc_indices", "doc_values", "meta", "payload")
_REQUIRED = ("doc_indptr", "doc_indices", "doc_values", "meta")


@dataclass(frozen=True)
class _Npy:
    """A member's .npy header, checked against the member's size in the zip directory."""

    name: str
    info: zipfile.ZipInfo
    dtype: np.dtype[Any]
    shape: tuple[int, ...]
    count: int  # elements
    offset: int  # where the data starts in the member


def _read_npz(fh: IO[bytes]) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
    """The parsed ``meta`` header and the arrays of an index file, every size checked before it is read.

    Each member's .npy header is read first and must declare exactly the bytes the zip directory
    gives the member, which must lie inside the file, uncompressed; the arrays must agree with each
    other and with ``meta`` (``n + 1`` row pointers for ``n`` ids, as many indices as values)
    before the big ones are read.  So nothing larger than the file itself is ever allocated.
    """
    size = fh.seek(0, os.SEEK_END)
    fh.seek(0)
    _check_directory(fh, size)
    with zipfile.ZipFile(fh) as zf:
        found = _members(zf, size)
        if "format_version" not in found:
            raise IndexFormatError("no format_version array")
        version = int(_npy_data(zf, _npy_header(zf, found["format_version"], "format_version"))[()])
        if version > FORMAT_VERSION:
            raise _VersionError(
                f"it has index format version {version}, but this splade-onnx supports format version "
                f"{FORMAT_VERSION} at most; upgrade splade-onnx to load it"
            )
        if version < 1:
            raise IndexFormatError(f"bad format_version {version}")
        missing = [name for name in _REQUIRED if name not in found]
        if missing:
            raise IndexFormatError(f"missing arrays {missing}")
        heads = {name: _npy_header(zf, info, name) for name, info in found.items() if name != "format_version"}
        indptr, indices, values = heads["doc_indptr"], heads["doc_indices"], heads["doc_values"]
        if indices.count != values.count:
            raise IndexFormatError(f"doc_indices has {indices.count} entries but doc_values {values.count}")
        meta = _parse_meta(_npy_data(zf, heads["meta"]))
        if indptr.count != len(meta["ids"]) + 1:
            raise IndexFormatError(f"doc_indptr has {indptr.count} entries for {len(meta['ids'])} ids")
        arrays = {name: _npy_data(zf, head) for name, head in heads.items() if name != "meta"}
    return meta, arrays


def _check_directory(fh: IO[bytes], size: int) -> None:
    """Refuse a zip whose end record declares an oversized central directory (before zipfile reads it).

    Anything this cannot parse is left to :mod:`zipfile`, which refuses it.
    """
    tail_size = min(size, 22 + 0xFFFF)  # the end record, then a comment of up to 64 kB
    fh.seek(size - tail_size)
    tail = fh.read(tail_size)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        return
    entries, cd_size = struct.unpack("<HL", tail[at + 10 : at + 16])
    locator = tail[at - 20 : at] if at >= 20 else b""
    if locator[:4] == b"PK\x06\x07":  # zip64: the real counts are in the zip64 end record
        (record_at,) = struct.unpack("<Q", locator[8:16])
        if record_at < size:
            fh.seek(record_at)
            record = fh.read(56)
            if len(record) == 56 and record[:4] == b"PK\x06\x06":
                entries, cd_size = struct.unpack("<QQ", record[32:48])
    if entries > _MAX_MEMBERS or cd_size > _MAX_DIRECTORY_BYTES:
        raise IndexFormatError(f"the zip directory declares {entries} members in {cd_size} bytes; too many")


def _members(zf: zipfile.ZipFile, size: int) -> dict[str, zipfile.ZipInfo]:
    """The members an index is made of, by array name; unknown members are ignored (never read)."""
    infos = zf.infolist()
    if len(infos) > _MAX_MEMBERS:
        raise IndexFormatError(f"{len(infos)} zip members; an index has at most {len(_MEMBERS)}")
    counts = Counter(info.filename for info in infos)
    dups = sorted(name for name, c in counts.items() if c > 1)
    if dups:
        raise IndexFormatError(f"duplicate zip members {dups}")
    found = {}
    for info in infos:
        name = info.filename[: -len(".npy")] if info.filename.endswith(".npy") else ""
        if name not in _MEMBERS:
            continue
        if info.flag_bits & 0x1:
            raise IndexFormatError(f"{info.filename} is encrypted")
        if info.compress_type != zipfile.ZIP_STORED:
            raise IndexFormatError(
                f"{info.filename} is compressed (zip method {info.compress_type}); an index is written "
                "uncompressed and compressed members are not read"
            )
        end = info.header_offset + 30 + len(info.filename.encode("utf-8")) + info.file_size
        if info.compress_size != info.file_size or end > size:
            raise IndexFormatError(
                f"{info.filename}: the zip directory gives it {info.file_size} bytes, which do not fit the "
                f"{size}-byte file"
            )
        found[name] = info
    return found


def _npy_header(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> _Npy:
    """Read and check ``name``'s .npy header: its dtype and shape, and that it declares the member's exact size."""
    with zf.open(info) as m:
        magic = m.read(8)
        version = npy_format.read_magic(io.BytesIO(magic))
        if version not in ((1, 0), (2, 0)):
            raise IndexFormatError(f"{name}: .npy format version {version} is not read")
        length_format = "<H" if version == (1, 0) else "<I"
        length = m.read(struct.calcsize(length_format))
        (header_size,) = struct.unpack(length_format, length)  # struct.error if truncated
        if header_size > _MAX_NPY_HEADER:
            raise IndexFormatError(f"{name}: a .npy header of {header_size} bytes; at most {_MAX_NPY_HEADER} are read")
        header = m.read(header_size)
        read_header = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
        try:
            shape, _, dtype = read_header(io.BytesIO(length + header), max_header_size=_MAX_NPY_HEADER)
        except (SyntaxError, RecursionError, MemoryError) as exc:
            raise IndexFormatError(f"{name}: unreadable .npy header ({type(exc).__name__})") from None
    _check_kind(name, dtype, shape)
    count = math.prod(shape)
    offset = len(magic) + len(length) + header_size
    if offset + count * dtype.itemsize != info.file_size:
        raise IndexFormatError(
            f"{name}: its header declares {count} elements of {dtype} ({count * dtype.itemsize} bytes), "
            f"but the file holds {info.file_size - offset} bytes for them"
        )
    return _Npy(name, info, dtype, shape, count, offset)


def _check_kind(name: str, dtype: np.dtype[Any], shape: tuple[int, ...]) -> None:
    if dtype.hasobject:
        raise IndexFormatError(f"{name} holds Python objects (a pickle); an index holds plain arrays only")
    if any(d < 0 for d in shape):
        raise IndexFormatError(f"{name} has shape {shape}")
    ok = {
        "format_version": dtype.kind in "iu" and shape == (),
        "doc_indptr": dtype.kind in "iu" and len(shape) == 1,
        "doc_indices": dtype.kind in "iu" and len(shape) == 1,
        "doc_values": dtype.kind == "f" and len(shape) == 1,
        "meta": (dtype.kind == "U" and shape == ()) or (dtype == np.uint8 and len(shape) == 1),
        "payload": dtype == np.uint8 and len(shape) == 1,
    }[name]
    if not ok or not dtype.itemsize:
        raise IndexFormatError(f"{name} has dtype {dtype} and shape {shape}")


def _npy_data(zf: zipfile.ZipFile, head: _Npy) -> NDArray[Any]:
    """The array whose header was checked by :func:`_npy_header`, as a read-only view of its bytes (CRC checked)."""
    nbytes = head.count * head.dtype.itemsize
    with zf.open(head.info) as m:
        m.read(head.offset)
        data = m.read(nbytes)  # reads up to the end of the member, so zipfile checks its CRC-32
    if len(data) != nbytes:
        raise IndexFormatError(f"{head.name}: truncated ({len(data)} of {nbytes} bytes)")
    return np.frombuffer(data, head.dtype, count=head.count).reshape(head.shape)


def _parse_meta(raw: NDArray[Any]) -> dict[str, Any]:
    if raw.dtype.kind == "U" and raw.shape == ():
        text = str(raw[()])
    elif raw.dtype == np.uint8 and raw.ndim == 1:
        text = raw.tobytes().decode("utf-8")
    else:
        raise IndexFormatError(f"meta has dtype {raw.dtype} and shape {raw.shape}")
    meta = _loads(text, "meta")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise IndexFormatError(f"meta is not a {FORMAT_NAME} header")
    version = meta.get("format_version")
    if type(version) is not int or version < 1:
        raise IndexFormatError(f"bad format_version {version!r} in meta")
    if version > FORMAT_VERSION:
        raise _VersionError(
            f"it has index format version {version}, but this splade-onnx supports format version "
            f"{FORMAT_VERSION} at most; upgrade splade-onnx to load it"
        )
    for key in ("ids", "dim", "next_id"):
        if key not in meta:
            raise IndexFormatError(f"meta has no {key!r}")
    ids = meta["ids"]
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise IndexFormatError("ids must be a list of str")
    return meta


def _loads(text: str, what: str) -> Any:
    """``json.loads`` for file contents: malformed or too deeply nested JSON is an :class:`IndexFormatError`."""
    if _too_deep(text):
        raise IndexFormatError(f"{what} is JSON nested more than {_MAX_JSON_DEPTH} levels deep")
    try:
        return json.loads(text)
    except RecursionError:
        raise IndexFormatError(f"{what} is JSON nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise IndexFormatError(f"{what} is not valid JSON: {exc}") from None


_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def _too_deep(text: str, limit: int = _MAX_JSON_DEPTH) -> bool:
    """Whether JSON ``text`` nests arrays and objects more than ``limit`` deep (brackets in strings do not count).

    Linear and without recursion, so it is safe on any input; exact for valid JSON.
    """
    if text.count("[") + text.count("{") <= limit:
        return False  # it cannot nest deeper than it opens
    brackets = np.frombuffer(_NOT_BRACKET.sub("", _JSON_STRING.sub("", text)).encode("ascii"), np.uint8)
    depth = 0
    for start in range(0, brackets.size, 1 << 20):
        chunk = brackets[start : start + (1 << 20)]
        opens = (chunk == ord("[")) | (chunk == ord("{"))
        run = np.cumsum(np.where(opens, np.int8(1), np.int8(-1)), dtype=np.int32) + depth
        if int(run.max()) > limit:
            return True
        depth = int(run[-1])
    return False


def json_bytes(value: Any, what: str) -> bytes:
    """``value`` as ASCII JSON bytes, or :class:`ArgumentError` naming the first key JSON cannot hold."""
    try:
        text = json.dumps(value, ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        pass
    else:
        if _too_deep(text):
            raise ArgumentError(
                f"{what} nests lists and dicts more than {_MAX_JSON_DEPTH} levels deep, which SparseIndex.load "
                "refuses; nothing was saved"
            )
        return text.encode("ascii")
    where, bad = _first_unserializable(value, what)
    raise ArgumentError(
        f"{where} is a {type(bad).__name__} ({bad!r:.80}), which JSON cannot hold; nothing was saved. "
        "Convert it to a str, number, bool, None, list or dict first (e.g. a date with .isoformat())."
    )


def _first_unserializable(value: Any, where: str, depth: int = 0) -> tuple[str, Any]:
    if depth > 200:
        return where, value
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, (str, int, float, bool)) and k is not None:
                return f"{where} key {k!r}", k
            try:
                json.dumps(v, allow_nan=False)
            except (TypeError, ValueError, RecursionError):
                return _first_unserializable(v, f"{where}[{k!r}]", depth + 1)
        return where, value
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            try:
                json.dumps(v, allow_nan=False)
            except (TypeError, ValueError, RecursionError):
                return _first_unserializable(v, f"{where}[{i}]", depth + 1)
    return where, value


def check_model(saved: ModelIdentity | None, given: ModelIdentity, *, where: str, allow_mismatch: bool) -> None:
    """Refuse (or, with ``allow_mismatch``, warn about) vectors saved by another model than ``given``."""
    if saved is None:
        logger.warning("%s does not record which model built it (an older save); cannot check it against %s",
                       where, given.describe())  # fmt: skip
        return
    if saved.matches(given):
        return
    msg = (f"{where} was built by {saved.describe()}, but the model given is {given.describe()}: "
           "its scores would be meaningless")  # fmt: skip
    if allow_mismatch:
        logger.warning("%s (allow_model_mismatch=True)", msg)
        return
    raise ModelMismatchError(f"{msg}. Load it with the model that built it, re-index, or pass "
                             "allow_model_mismatch=True if you know the vectors are compatible.")  # fmt: skip


def _library_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("splade-onnx")
    except PackageNotFoundError:
        return "unknown"
