"""The :class:`SparseIndex` file format: its all-or-nothing writer and its reader of untrusted files.

This module knows arrays and headers, not search: :func:`write_index` writes an :class:`IndexData`
and :func:`read_index` returns one, checked; the index builds itself from it.  :func:`check_model`
compares the model a file records with the one that queries it.

File format (version 3)
-----------------------

One uncompressed ``.npz`` zip holding plain arrays only (it loads with
``numpy.load(path, allow_pickle=False)``), each array's data 64-byte aligned in the file so that
it can be memory-mapped (:mod:`._npz_write`).  Only live documents are stored, in insertion order;
row ``i`` of the CSR arrays is the document whose id is ``ids[i]`` in the JSON metadata.

===================  ===============  ======================================================
array                dtype            meaning
===================  ===============  ======================================================
``format_version``   int64, 0-d       ``3``; readers refuse files with a newer version
``doc_indptr``       int64, [n + 1]   CSR row pointers: document ``i`` owns entries
                                      ``doc_indptr[i]:doc_indptr[i + 1]``
``doc_indices``      uint16, int32    vocabulary ids, strictly ascending within each row
                     or int64         (the narrowest type they all fit)
``doc_values``       float32          the weight of each vocabulary id
``meta``             unicode, 0-d     JSON (a uint8 array of UTF-8 bytes is also accepted):
                                      ``{"format": "splade-onnx-sparse-index",
                                      "format_version": 2, "ids": [...], "dim": int | null,
                                      "next_id": int, "model": {...} | null,
                                      "library": "splade-onnx <version>"}``
``payload``          uint8, [bytes]   optional: UTF-8 JSON (ASCII-escaped) the caller saved
                                      with the index, e.g. an adapter's documents; a payload
                                      saved with a :class:`~splade_onnx.integration.PayloadFormat`
                                      is an object with its ``"format"`` and ``"version"``
``imp_indptr``       int64, [t + 1]   optional, the exact engine's impact postings (all three
``imp_docs``         int32            or none): vocabulary id ``v`` owns entries
``imp_weights``      float32          ``imp_indptr[v]:imp_indptr[v + 1]``, documents by weight,
                                      largest first, ties by row (:mod:`._impact`); ``meta``
                                      then has ``"impacts_positive"`` (every weight > 0)
===================  ===============  ======================================================

``ids`` are the document ids (strings) in row order, ``dim`` the vocabulary size the
index was created with (``null`` for unchecked), ``next_id`` the counter that
generates default ids, and ``model`` the :class:`ModelIdentity` of the model that made
the vectors (``{"name", "vocab_size", "fingerprint"}``, or ``null`` when unknown).
Version 1 files (no ``model``, no ``payload``) and version 2 files (``numpy.savez``, no impact
postings, not aligned; read into memory) still load.  Members are stored
uncompressed; other members (any name but the six above) are ignored and never read.

A save is all-or-nothing: everything is validated first (the payload must be JSON nested at
most 256 levels deep, and the error names the key that is not JSON), then written to a
temporary file ``.<name>.<random>.tmp`` in the target's folder, flushed and fsynced, and
renamed over the target, so a failed save (an exception at any step) leaves the previous
file loadable and no temporary file, and a killed one leaves the previous file loadable.  A
writer holds an advisory lock (``flock``) on its temporary file; temporary files whose lock
is free were left by killed saves, and the next save of the same target removes them.

Memory-mapped files
-------------------

A version-3 file's arrays are memory-mapped read-only, not read: opening reads the header (the ids)
and the small arrays, and the operating system pages in what searches touch.  With ``verify=True`` (the
default) :mod:`._index_mapped` checks, on a thread pool while the header is parsed, every member's CRC-32
and passes over the arrays (ids in range and ascending, weights finite, the impact postings in range, in
order and holding as many entries per vocabulary id as the rows); with ``verify=False`` only the structure
below and the small arrays (row and term pointers) are checked.

Reading untrusted files
-----------------------

:func:`read_index` treats the file as untrusted: whatever its bytes, it returns the file's data
or raises :class:`IndexFormatError` (a ``ValueError``), and it allocates nothing larger than the
file before the checks pass.  It refuses a zip directory over 1 MiB or 1,024 members, duplicate
member names, compressed or encrypted members (no zip bombs: only uncompressed members are read,
so a member's bytes are in the file), members whose sizes in the zip directory do not fit inside
the file, object dtypes (pickles), .npy headers over 10,000 bytes, a .npy header whose shape and
dtype do not make exactly the member's size (a 300-byte file cannot claim 10^13 elements), arrays
that disagree (``doc_indptr`` must have one entry per id plus one, ``doc_indices`` as many as
``doc_values``; checked before those arrays are read, or for a version-3 file before they are used: its
arrays are mapped, and only the checksums' steps read them before), bad CRC-32 checksums, and JSON in ``meta``
or ``payload`` nested more than 256 levels (counted without recursion before parsing).  Peak
memory is then a small multiple of the file's size (JSON ``payload`` objects can take ~20x their
bytes).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from ._atomic import atomic_file
from ._digest import FileStamp
from ._errors import FileMissingError, IndexFormatError, ModelMismatchError
from ._impact import Impacts
from ._index_mapped import MappedCheck, mapped, verify_contents
from ._json_io import json_bytes, loads
from ._npz_members import NpyHeader, check_directory, data_offset, members, npy_data, npy_header
from ._npz_write import write_npz
from ._types import ModelIdentity

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "IndexData", "check_model", "read_index", "write_index"]

logger = logging.getLogger(__name__)

FORMAT_NAME = "splade-onnx-sparse-index"
FORMAT_VERSION = 3

_IMPACTS = ("imp_indptr", "imp_docs", "imp_weights")
#: The members a version-3 file's reader memory-maps: each one's header and its bytes.
_Mapped = list[tuple[NpyHeader, NDArray[np.uint8]]]
_MEMBERS = ("format_version", "doc_indptr", "doc_indices", "doc_values", "meta", "payload", *_IMPACTS)

_REQUIRED = ("doc_indptr", "doc_indices", "doc_values", "meta")
#: The dtypes and shapes each member may have.
_KINDS: dict[str, Callable[[np.dtype[Any], tuple[int, ...]], bool]] = {
    "format_version": lambda dt, sh: dt.kind in "iu" and sh == (),
    "doc_indptr": lambda dt, sh: dt.kind in "iu" and len(sh) == 1,
    "doc_indices": lambda dt, sh: dt.kind in "iu" and len(sh) == 1,
    "doc_values": lambda dt, sh: dt.kind == "f" and len(sh) == 1,
    "meta": lambda dt, sh: (dt.kind == "U" and sh == ()) or (dt == np.uint8 and len(sh) == 1),
    "payload": lambda dt, sh: dt == np.uint8 and len(sh) == 1,
    "imp_indptr": lambda dt, sh: dt == np.int64 and len(sh) == 1,
    "imp_docs": lambda dt, sh: dt == np.int32 and len(sh) == 1,
    "imp_weights": lambda dt, sh: dt == np.float32 and len(sh) == 1,
}

#: What reading a malformed file can raise (zipfile and numpy raise these on bad bytes); ``read_index``
#: turns each into an :class:`IndexFormatError` naming the file.
_LOAD_ERRORS = (
    OSError,
    ValueError,
    KeyError,
    TypeError,
    EOFError,
    OverflowError,
    zipfile.BadZipFile,
    zlib.error,
    struct.error,
    NotImplementedError,
)


@dataclass(frozen=True)
class IndexData:
    """What an index file holds: the live documents as CSR rows, in order, and the header's fields."""

    ids: list[str]
    dim: int | None
    next_id: int
    model: ModelIdentity | None
    indptr: NDArray[np.int64]  # [len(ids) + 1]
    indices: NDArray[np.int64]  # vocabulary ids, ascending within each row
    values: NDArray[np.float32]
    payload: Any = None  # any JSON value; None for none
    impacts: Impacts | None = None  # the exact engine's postings, when saved
    stamp: FileStamp | None = None  # the version of the file read, from its open descriptor

    def n_terms(self) -> int:
        """One more than the largest vocabulary id: the saved postings' term count when present (``verify``
        checks it against the rows), so that a mapped file's rows are not paged in for it."""
        if self.impacts is not None:
            return self.impacts.indptr.size - 1
        return int(self.indices.max()) + 1 if self.indices.size else 0


class _VersionError(IndexFormatError):
    pass


def write_index(path: str, data: IndexData) -> FileStamp:
    """Write ``data`` to ``path``, all-or-nothing, and return the written file's stamp; a payload JSON cannot hold
    raises before anything is written."""
    payload_bytes = None if data.payload is None else json_bytes(data.payload, "payload")
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "ids": data.ids,
        "dim": data.dim,
        "next_id": data.next_id,
        "model": None if data.model is None else data.model.as_dict(),
        "library": f"splade-onnx {_library_version()}",
    }
    if data.impacts is not None:
        meta["impacts_positive"] = data.impacts.positive
    top = int(data.indices.max()) if data.indices.size else 0
    kind = np.uint16 if top <= np.iinfo(np.uint16).max else np.int32 if top < np.iinfo(np.int32).max else np.int64
    arrays: dict[str, NDArray[Any]] = {
        "format_version": np.array(FORMAT_VERSION, np.int64),
        "meta": np.array(json.dumps(meta, ensure_ascii=False)),
        "doc_indptr": np.asarray(data.indptr, np.int64),
        "doc_indices": np.asarray(data.indices, kind),
        "doc_values": np.asarray(data.values, np.float32),
    }
    if payload_bytes is not None:
        arrays["payload"] = np.frombuffer(payload_bytes, np.uint8)
    if data.impacts is not None and data.impacts.n_docs == len(data.ids):
        imp = data.impacts
        arrays |= {"imp_indptr": imp.indptr, "imp_docs": imp.docs, "imp_weights": imp.weights}
    with atomic_file(path) as f:
        write_npz(f, arrays)
        f.flush()
        stamp = FileStamp.of(os.fstat(f.fileno()))  # the renamed file keeps its inode, size and mtime
    return stamp


def read_index(path: str, *, verify: bool = True) -> IndexData:
    """The checked contents of the index file at ``path`` (see "Reading untrusted files" above).

    A version-3 file's arrays are memory-mapped, not read; ``verify=False`` skips the passes over
    their contents (see "Memory-mapped files").  A missing file is a :class:`FileMissingError`;
    anything but a well-formed index an :class:`IndexFormatError`.
    """
    if not os.path.exists(path):
        raise FileMissingError(f"no splade-onnx index at {path}")
    # The open is outside the try: permission errors stay what they are.
    with open(path, "rb") as fh, contextlib.ExitStack() as stack:
        try:
            meta, arrays, version, check = _read_npz(fh, path, stack if verify else None)
            data = _checked(meta, arrays) if version < 3 else _checked_mapped(meta, arrays, check)
            return dataclasses.replace(data, stamp=FileStamp.of(os.fstat(fh.fileno())))
        except _VersionError as exc:
            raise IndexFormatError(f"cannot load {path}: {exc}") from None
        except _LOAD_ERRORS as exc:
            raise IndexFormatError(f"not a splade-onnx index or corrupt: {path}: {exc}") from exc


def _read_npz(
    fh: IO[bytes], path: str, stack: contextlib.ExitStack | None
) -> tuple[dict[str, Any], dict[str, NDArray[Any]], int, MappedCheck | None]:
    """The parsed ``meta`` header and the arrays of an index file, every size checked before it is read; for a
    version-3 file with a ``stack``, the verifying pass of its memory-mapped members, started (it checks their
    CRC-32s while the header is parsed and checked) and closed with ``stack``.

    Each member's .npy header is read first and must declare exactly the bytes the zip directory
    gives the member, which must lie inside the file, uncompressed; the arrays must agree with each
    other and with ``meta`` (``n + 1`` row pointers for ``n`` ids, as many indices as values)
    before the big ones are read (mapped members are not read: the pages the CRC-32 steps touch are the
    file's own).  So nothing larger than the file itself is ever allocated.
    """
    size = fh.seek(0, os.SEEK_END)
    fh.seek(0)
    check_directory(fh, size)
    with zipfile.ZipFile(fh) as zf:
        found = members(zf, size, _MEMBERS)
        if "format_version" not in found:
            raise IndexFormatError("no format_version array")
        head = npy_header(zf, found["format_version"], "format_version", _KINDS["format_version"])
        version = int(npy_data(zf, head)[()])
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
        heads = {
            name: npy_header(zf, info, name, _KINDS[name]) for name, info in found.items() if name != "format_version"
        }
        indptr, indices, values = heads["doc_indptr"], heads["doc_indices"], heads["doc_values"]
        if indices.count != values.count:
            raise IndexFormatError(f"doc_indices has {indices.count} entries but doc_values {values.count}")
        raw_meta = npy_data(zf, heads["meta"])
        if version < 3:
            meta = _parse_meta(raw_meta, indptr.count)
            arrays = {name: npy_data(zf, head) for name, head in heads.items() if name != "meta"}
            return meta, arrays, version, None
        arrays = {"payload": npy_data(zf, heads["payload"])} if "payload" in heads else {}
    big: _Mapped = []
    for name, head in heads.items():
        if name not in ("meta", "payload"):
            raw, arrays[name] = mapped(fh, head, data_offset(fh, head, size))
            big.append((head, raw))
    check = None if stack is None else stack.enter_context(MappedCheck(big))
    return _parse_meta(raw_meta, indptr.count), arrays, version, check


def _parse_meta(raw: NDArray[Any], rows: int) -> dict[str, Any]:
    """The JSON header of a file whose ``doc_indptr`` has ``rows`` entries (one per id, plus one), checked."""
    if raw.dtype.kind == "U" and raw.shape == ():
        text = str(raw[()])
    elif raw.dtype == np.uint8 and raw.ndim == 1:
        text = raw.tobytes().decode("utf-8")
    else:
        raise IndexFormatError(f"meta has dtype {raw.dtype} and shape {raw.shape}")
    meta = loads(text, "meta")
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
    if not isinstance(ids, list) or not set(map(type, ids)) <= {str}:
        raise IndexFormatError("ids must be a list of str")
    if rows != len(ids) + 1:
        raise IndexFormatError(f"doc_indptr has {rows} entries for {len(ids)} ids")
    return meta


def _header(meta: dict[str, Any], arrays: dict[str, NDArray[Any]]) -> tuple[list[str], Any, int, Any, Any]:
    """The header's fields, checked: the ids (each once), dim, next_id, model and the payload."""
    ids, dim, next_id = meta["ids"], _dim(meta), meta["next_id"]
    model = None if meta.get("model") is None else ModelIdentity.from_dict(meta["model"])
    if model is not None and dim != model.vocab_size:
        raise IndexFormatError(f"dim {dim!r} disagrees with the model's vocabulary size {model.vocab_size}")
    payload = None
    if "payload" in arrays:
        raw = arrays["payload"]
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise IndexFormatError(f"payload has dtype {raw.dtype} and shape {raw.shape}")
        payload = loads(raw.tobytes().decode("utf-8"), "payload")
    if len(set(ids)) != len(ids):
        raise IndexFormatError("duplicate ids")
    if type(next_id) is not int or next_id < 0:
        raise IndexFormatError(f"bad next_id {next_id!r}")
    return ids, dim, next_id, model, payload


def _dim(meta: dict[str, Any]) -> int | None:
    """The header's vocabulary size, checked: a positive int or ``None``."""
    dim = meta["dim"]
    if dim is not None and (type(dim) is not int or dim < 1):
        raise IndexFormatError(f"bad dim {dim!r}")
    return dim


def _check_rows(indptr: NDArray[np.int64], indices: NDArray[Any], values: NDArray[np.float32], n: int) -> None:
    """The CSR arrays' shapes agree with ``n`` documents, and the row pointers rise from 0 to the entries."""
    nnz = indices.size
    if indptr.size != n + 1 or indptr[0] != 0 or indptr[-1] != nnz or values.size != nnz:
        raise IndexFormatError(f"inconsistent CSR arrays for {n} ids")
    if np.any(np.diff(indptr) < 0):
        raise IndexFormatError("doc_indptr is not non-decreasing")


def _checked(meta: dict[str, Any], arrays: dict[str, NDArray[Any]]) -> IndexData:
    """A version-1/2 file's data from a parsed header (:func:`_parse_meta`) and the arrays read, checked."""
    ids, dim, next_id, model, payload = _header(meta, arrays)
    indptr, indices, values = arrays["doc_indptr"], arrays["doc_indices"], arrays["doc_values"]
    for name, a, kind in (("doc_indptr", indptr, "iu"), ("doc_indices", indices, "iu"), ("doc_values", values, "f")):
        if a.ndim != 1 or a.dtype.kind not in kind:
            raise IndexFormatError(f"{name} has dtype {a.dtype} and shape {a.shape}")
    # Copies: the arrays read are read-only views of the file's bytes.
    indptr, indices = indptr.astype(np.int64), indices.astype(np.int64)
    values = values.astype(np.float32)
    _check_rows(indptr, indices, values, len(ids))
    verify_contents(indptr, indices, values, dim, None)
    return IndexData(ids, dim, next_id, model, indptr, indices, values, payload, None)


def _checked_mapped(meta: dict[str, Any], arrays: dict[str, NDArray[Any]], check: MappedCheck | None) -> IndexData:
    """A version-3 file's data: its small arrays checked whole, its big ones (mapped) only with ``check``, the
    verifying pass (:func:`_read_npz`), which passes over them while the header's ids are checked here."""
    indptr, indices, values = arrays["doc_indptr"], arrays["doc_indices"], arrays["doc_values"]
    if indptr.dtype != np.int64 or indices.dtype.kind not in "iu" or values.dtype != np.float32:
        raise IndexFormatError(f"CSR arrays of dtypes {indptr.dtype}, {indices.dtype}, {values.dtype}")
    n, nnz = len(meta["ids"]), indices.size
    _check_rows(indptr, indices, values, n)
    present = [name for name in _IMPACTS if name in arrays]
    impacts = None
    if present:
        if len(present) != len(_IMPACTS):
            raise IndexFormatError(f"impact arrays {present} without the others")
        imp_indptr, imp_docs, imp_weights = (arrays[name] for name in _IMPACTS)
        if imp_indptr.size < 1 or imp_indptr[0] != 0 or imp_indptr[-1] != nnz or imp_docs.size != nnz:
            raise IndexFormatError("impact arrays inconsistent with the CSR arrays")
        if imp_weights.size != nnz or np.any(np.diff(imp_indptr) < 0):
            raise IndexFormatError("imp_indptr is not non-decreasing over the entries")
        positive = meta.get("impacts_positive")
        if type(positive) is not bool:
            raise IndexFormatError(f"bad impacts_positive {positive!r} in meta")
        impacts = Impacts(n, np.asarray(imp_indptr), imp_docs, imp_weights, positive)
    if check is not None:
        check.contents((indptr, indices, values), _dim(meta), impacts)
    ids, dim, next_id, model, payload = _header(meta, arrays)
    if check is not None:
        check.result()
    return IndexData(ids, dim, next_id, model, indptr, indices, values, payload, impacts)


def check_model(saved: ModelIdentity | None, given: ModelIdentity, *, where: str, allow_mismatch: bool) -> None:
    """Refuse (or, with ``allow_mismatch``, warn about) vectors saved by another model than ``given``."""
    if saved is None:
        logger.warning(
            "%s does not record which model built it (an older save); cannot check it against %s",
            where,
            given.describe(),
        )
        return
    if saved.matches(given):
        return
    msg = (
        f"{where} was built by {saved.describe()}, but the model given is {given.describe()}: "
        "its scores would be meaningless"
    )
    if allow_mismatch:
        logger.warning("%s (allow_model_mismatch=True)", msg)
        return
    raise ModelMismatchError(
        f"{msg}. Load it with the model that built it, re-index, or pass "
        "allow_model_mismatch=True if you know the vectors are compatible."
    )


def _library_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("splade-onnx")
    except PackageNotFoundError:
        return "unknown"
