"""Reading a PyTorch checkpoint file (``torch.save``, e.g. ``pytorch_model.bin``) into numpy arrays: no torch,
and nothing in the file is executed.

Two on-disk formats, as ``torch/serialization.py`` writes them:

* **zip** (torch >= 1.6): one top folder ``<archive>/`` holding ``data.pkl`` (the pickled object),
  ``data/<key>`` (each storage's raw bytes, stored uncompressed), ``byteorder`` (``little`` or ``big``;
  absent means little) and bookkeeping records (``version``, ``.format_version``, ...);
* **legacy** (``_use_new_zipfile_serialization=False``): the pickles of the magic number, the protocol version
  (1001) and the system info, then the object's pickle, then the sorted list of storage keys, then each
  storage in that order as an 8-byte little-endian element count and its raw little-endian bytes.

The object pickle is read by an unpickler that admits only the globals a tensor checkpoint names (torch 2.x
writes ``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2`` / ``_rebuild_parameter`` /
``_rebuild_parameter_with_state``, the ``torch.<Type>Storage`` classes, and for the newer dtypes
``_rebuild_tensor_v3`` with ``torch.storage.UntypedStorage`` and a ``torch.<dtype>``).  Any other global is
refused by name before it is imported or called.  Storages are only noted while unpickling; every size is
then checked against the archive (element count x item size against the stored bytes, each view's extent
against its storage) before anything is allocated, and each storage is read once into one buffer.  A tensor
that is its whole storage, contiguous, is a read-only view of that buffer (tied weights share it); any other
view is copied once into a contiguous array.  bfloat16 becomes float32 exactly (its bits shifted into the
high half); torch's ``neg`` bit (a negated view) is applied.
"""

from __future__ import annotations

import io
import logging
import math
import pickle
import struct
import zipfile
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from ._errors import ModelError

logger = logging.getLogger(__name__)

__all__ = ["read_checkpoint"]

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
#: torch's legacy storage classes -> the element type of their bytes (bfloat16 is read as uint16 bits).
_STORAGES = {
    "FloatStorage": "float32",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "DoubleStorage": "float64",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
}
#: ``torch.<dtype>`` globals (``_rebuild_tensor_v3``) that numpy can hold.
_DTYPES = {*_STORAGES.values(), "uint16", "uint32", "uint64"}
#: 16-bit floats that ``as_float32`` widens while reading, ``_CHUNK`` bytes at a time.
_HALVES = ("float16", "bfloat16")
_CHUNK = 4 << 20


@dataclass(frozen=True, slots=True)
class _Kind:
    """A storage class or dtype global: the torch element type (``bfloat16``; ``untyped`` for raw bytes)."""

    name: str

    @property
    def stored(self) -> np.dtype[Any]:
        """The numpy type of the stored elements (bfloat16: their uint16 bits)."""
        return np.dtype({"bfloat16": "uint16", "untyped": "uint8"}.get(self.name, self.name))


@dataclass(frozen=True, slots=True)
class _Storage:
    key: str
    kind: _Kind
    numel: int

    @property
    def nbytes(self) -> int:
        return self.numel * self.kind.stored.itemsize


@dataclass(frozen=True, slots=True)
class _View:
    """A tensor: ``size``/``stride``/``offset`` in elements of ``dtype`` over ``storage``."""

    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: _Kind
    neg: bool


class _Unpickler(pickle.Unpickler):
    """The object pickle, with only a checkpoint's globals; storages are recorded, not read."""

    def __init__(self, f: IO[bytes], path: Path, *, legacy: bool) -> None:
        super().__init__(f)
        self.path, self.legacy = path, legacy
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        full = f"{module}.{name}"
        if full == "collections.OrderedDict":
            return OrderedDict
        if module == "torch" and name in _STORAGES:
            return _Kind(_STORAGES[name])
        if module == "torch" and name in _DTYPES:
            return _Kind(name)
        if full in ("torch.storage.UntypedStorage", "torch.UntypedStorage"):
            return _Kind("untyped")
        rebuild = {
            "torch._utils._rebuild_tensor_v2": self._tensor_v2,
            "torch._utils._rebuild_tensor_v3": self._tensor_v3,
            "torch._utils._rebuild_parameter": self._parameter,
            "torch._utils._rebuild_parameter_with_state": self._parameter,
        }.get(full)
        if rebuild is not None:
            return rebuild
        raise ModelError(
            f"{self.path}: its pickle names the global {full}, which a PyTorch weights file does not need, so the "
            "file was refused and nothing in it was executed. If you trust the file, save it as safetensors "
            "(model.save_pretrained(path, safe_serialization=True)); if it is a plain torch.save of a state dict, "
            f"report the global {full} to splade-onnx."
        )

    def persistent_load(self, pid: Any) -> _Storage:
        n = 6 if self.legacy else 5
        if not (isinstance(pid, tuple) and len(pid) == n and pid[0] == "storage"):
            raise ModelError(f"{self.path}: unexpected persistent record {pid!r:.120}; corrupt or not a state dict")
        kind, key, numel = pid[1], pid[2], pid[4]
        if not (isinstance(kind, _Kind) and type(key) is str and type(numel) is int and numel >= 0):
            raise ModelError(f"{self.path}: malformed storage record {pid!r:.120}; the file is corrupt")
        if self.legacy and pid[5] is not None:
            raise ModelError(
                f"{self.path}: storage {key!r} is a view of another storage (written by torch < 1.0), which is not "
                "supported; save the checkpoint again with a current torch, or as safetensors"
            )
        st = _Storage(key, kind, numel)
        if self.storages.setdefault(key, st) != st:
            raise ModelError(f"{self.path}: storage {key!r} is named twice with different types or sizes; corrupt file")
        return st

    def _tensor_v2(self, storage: Any, offset: Any, size: Any, stride: Any, *rest: Any) -> _View:
        if not isinstance(storage, _Storage) or storage.kind.name == "untyped" or not 2 <= len(rest) <= 3:
            raise ModelError(f"{self.path}: malformed tensor record; the file is corrupt")
        return self._view(storage, offset, size, stride, storage.kind, rest[2] if len(rest) == 3 else None)

    def _tensor_v3(self, storage: Any, offset: Any, size: Any, stride: Any, *rest: Any) -> _View:
        ok = isinstance(storage, _Storage) and storage.kind.name == "untyped" and 3 <= len(rest) <= 4
        if not ok or not isinstance(rest[2], _Kind) or rest[2].name in ("untyped",):
            raise ModelError(f"{self.path}: malformed tensor record; the file is corrupt")
        return self._view(storage, offset, size, stride, rest[2], rest[3] if len(rest) == 4 else None)

    def _view(self, storage: _Storage, offset: Any, size: Any, stride: Any, dtype: _Kind, meta: Any) -> _View:
        ints = (offset, *size, *stride) if isinstance(size, tuple) and isinstance(stride, tuple) else (None,)
        if not all(type(i) is int and i >= 0 for i in ints) or len(size) != len(stride):
            raise ModelError(
                f"{self.path}: a tensor of storage {storage.key!r} has offset {offset!r}, size {size!r} and "
                f"stride {stride!r}; expected non-negative integers, as many strides as sizes (corrupt file)"
            )
        flags = dict(meta) if isinstance(meta, dict) else {}
        if meta and (not isinstance(meta, dict) or set(flags) - {"neg", "conj"} or flags.get("conj")):
            raise ModelError(f"{self.path}: tensor metadata {meta!r:.80} is not supported (only the neg bit)")
        return _View(storage, offset, size, stride, dtype, bool(flags.get("neg")))

    @staticmethod
    def _parameter(data: Any, *rest: Any) -> Any:
        return data


def _unpickle(f: IO[bytes], path: Path, *, legacy: bool) -> tuple[dict[str, _View], dict[str, _Storage]]:
    """The checkpoint's tensors by name (views not yet read) and the storages they use, every size checked."""
    u = _Unpickler(f, path, legacy=legacy)
    obj = u.load()
    if not isinstance(obj, dict):
        raise ModelError(f"{path} holds a pickled {type(obj).__name__}, not a state dict of tensors")
    views: dict[str, _View] = {}
    for name, v in dict.items(obj):  # dict.items: the object's own attributes are never consulted
        if type(name) is not str or not isinstance(v, _View):
            raise ModelError(
                f"{path}: entry {name!r:.80} is a {type(v).__name__}, not a tensor; only a flat state dict "
                "{name: tensor} is read (a checkpoint nesting it, e.g. under 'state_dict', must be re-saved)"
            )
        _check_extent(v, name, path)
        views[name] = v
    return views, u.storages


def _check_extent(v: _View, name: str, path: Path) -> None:
    """A view's elements must lie inside its storage (torch's own rule), and a view may not hold more elements
    than its storage (only a zero stride could), so memory stays bounded by the file; checked before reading."""
    held = v.storage.nbytes // v.dtype.stored.itemsize
    count = math.prod(v.size)
    if count == 0:
        return
    end = v.offset + sum((n - 1) * s for n, s in zip(v.size, v.stride, strict=True)) + 1
    if end > held:
        raise ModelError(
            f"{path}: tensor {name!r} (size {list(v.size)}, stride {list(v.stride)}, offset {v.offset}) reaches "
            f"element {end} of storage {v.storage.key!r}, which holds {held} {v.dtype.name} elements "
            f"({v.storage.nbytes} bytes); the file is corrupt"
        )
    if count > held:
        raise ModelError(
            f"{path}: tensor {name!r} (size {list(v.size)}, stride {list(v.stride)}) has {count} elements but its "
            f"storage {v.storage.key!r} holds {held}; such a broadcast is refused to keep memory bounded"
        )


def _materialise(buf: NDArray[np.uint8], v: _View, big_endian: bool) -> NDArray[Any]:
    """One tensor from its storage's read-only buffer: a view when it is the whole storage, else one copy."""
    stored = v.dtype.stored.newbyteorder(">") if big_endian else v.dtype.stored
    base = buf[: buf.size - buf.size % stored.itemsize].view(stored)
    out_type = np.dtype(np.float32) if v.dtype.name == "bfloat16" else stored.newbyteorder("=")
    if math.prod(v.size) == 0:
        empty = np.zeros(v.size, dtype=out_type)
        empty.flags.writeable = False
        return empty
    if out_type == stored and math.prod(v.size) == base.size and _is_whole(v):
        return base.reshape(v.size)  # no copy; read-only, shared by every tensor of this storage
    strides = tuple(s * stored.itemsize for s in v.stride)
    src = np.lib.stride_tricks.as_strided(base[v.offset :], shape=v.size, strides=strides, writeable=False)
    if v.dtype.name == "bfloat16":
        out = src.astype(np.uint32, order="C")  # the one copy
        out <<= 16
        arr: NDArray[Any] = out.view(np.float32)
    else:
        arr = np.array(src, dtype=out_type, order="C", copy=True)
    if v.neg:
        np.negative(arr, out=arr)
    arr.flags.writeable = False
    return arr


def _fill(f: io.BufferedReader, view: memoryview, path: Path) -> None:
    """Fill ``view`` from ``f``'s position, or raise: the file ends too soon."""
    done = 0
    while done < len(view):
        got = f.readinto(view[done:])
        if not got:
            raise ModelError(f"{path}: only {done} of {len(view)} bytes at offset {f.tell()} could be read; truncated")
        done += got


def _read_into(f: io.BufferedReader, start: int, nbytes: int, path: Path) -> NDArray[np.uint8]:
    """``nbytes`` at ``start``, read into one new buffer (no intermediate copy), as a read-only uint8 array."""
    raw = bytearray(nbytes)
    f.seek(start)
    with memoryview(raw) as view:
        _fill(f, view, path)
    buf = np.frombuffer(raw, dtype=np.uint8)
    buf.flags.writeable = False
    return buf


def _is_whole(v: _View) -> bool:
    """Whether ``v`` is its whole storage, C-contiguous from element 0 and not negated."""
    contiguous = [math.prod(v.size[i + 1 :]) for i in range(len(v.size))]
    whole = v.offset == 0 and math.prod(v.size) * v.dtype.stored.itemsize == v.storage.nbytes and not v.neg
    return whole and all(s == c or n == 1 for n, s, c in zip(v.size, v.stride, contiguous, strict=True))


def _widen(f: io.BufferedReader, span: tuple[int, int, int | None], v: _View, big: bool, path: Path) -> NDArray[Any]:
    """A whole float16/bfloat16 storage read straight into float32, a few MB at a time: no 16-bit copy is held."""
    start, nbytes, crc = span
    stored = v.dtype.stored.newbyteorder(">") if big else v.dtype.stored
    out = np.empty(nbytes // 2, dtype=np.float32)
    chunk, check, done = bytearray(min(nbytes, _CHUNK)), 0, 0
    f.seek(start)
    while done < nbytes:
        n = min(len(chunk), nbytes - done)
        with memoryview(chunk)[:n] as view:
            _fill(f, view, path)
            check = zlib.crc32(view, check)
        src = np.frombuffer(chunk, dtype=stored, count=n // 2)
        if v.dtype.name == "bfloat16":
            out.view(np.uint32)[done // 2 : (done + n) // 2] = src  # the bits, shifted below
        else:
            out[done // 2 : (done + n) // 2] = src
        done += n
    if crc and check != crc:
        raise ModelError(f"{path}: storage {v.storage.key!r} fails its CRC-32 check; the file is corrupt")
    if v.dtype.name == "bfloat16":
        out.view(np.uint32)[...] <<= 16
    arr = out.reshape(v.size)
    arr.flags.writeable = False
    return arr


def _build(
    f: io.BufferedReader,
    views: dict[str, _View],
    spans: dict[str, tuple[int, int, int | None]],
    big_endian: bool,
    path: Path,
    as_float32: bool,
) -> dict[str, NDArray[Any]]:
    """Read each storage once (in file order) and make its tensors; ``spans``: key -> (start, bytes, crc)."""
    by_key: dict[str, list[str]] = {}
    for name, v in views.items():
        by_key.setdefault(v.storage.key, []).append(name)
    out: dict[str, NDArray[Any]] = {}
    for key in sorted(by_key, key=lambda k: spans[k][0]):
        shared = {views[name] for name in by_key[key]}
        if as_float32 and len(shared) == 1 and (v := shared.pop()).dtype.name in _HALVES and _is_whole(v):
            arr = _widen(f, spans[key], v, big_endian, path)
            out.update(dict.fromkeys(by_key[key], arr))
            continue
        start, nbytes, crc = spans[key]
        buf = _read_into(f, start, nbytes, path)
        if crc and zlib.crc32(buf.data) != crc:
            raise ModelError(f"{path}: storage {key!r} fails its CRC-32 check; the file is corrupt")
        made: dict[_View, NDArray[Any]] = {}  # the same view under two names (tied weights) is made once
        for name in by_key[key]:
            v = views[name]
            if v not in made:
                made[v] = _materialise(buf, v, big_endian)
                if as_float32 and v.dtype.name in _HALVES:
                    made[v] = np.ascontiguousarray(made[v], dtype=np.float32)
                    made[v].flags.writeable = False
            out[name] = made[v]
        del buf, made
    return {name: out[name] for name in views}


def _read_zip(path: Path, as_float32: bool) -> dict[str, NDArray[Any]]:
    with zipfile.ZipFile(path) as zf:
        tops = {n.split("/", 1)[0] for n in zf.namelist() if n.count("/") == 1 and n.endswith("/data.pkl")}
        if len(tops) != 1:
            raise ModelError(f"{path} is a zip archive but not a torch checkpoint: expected one <archive>/data.pkl")
        top = tops.pop()
        if zf.getinfo(f"{top}/data.pkl").compress_type != zipfile.ZIP_STORED:
            raise ModelError(f"{path}: record {top}/data.pkl is compressed; torch stores its records uncompressed")
        views, storages = _unpickle(io.BytesIO(zf.read(f"{top}/data.pkl")), path, legacy=False)
        names = set(zf.namelist())
        order = zf.read(f"{top}/byteorder").decode("ascii", "replace") if f"{top}/byteorder" in names else "little"
        if order not in ("little", "big"):
            raise ModelError(f"{path}: byteorder record {order!r:.20}; expected 'little' or 'big'")
        infos = {}
        for key, st in storages.items():
            record = f"{top}/data/{key}"
            if record not in names:
                raise ModelError(f"{path}: the pickle names storage {key!r} but the archive has no record {record}")
            info = zf.getinfo(record)
            if info.compress_type != zipfile.ZIP_STORED:
                raise ModelError(f"{path}: record {record} is compressed; torch stores storages uncompressed")
            if info.file_size != st.nbytes:
                raise ModelError(
                    f"{path}: storage {key!r} is {st.numel} {st.kind.name} elements ({st.nbytes} bytes) in the "
                    f"pickle but its record {record} holds {info.file_size} bytes; the file is corrupt"
                )
            infos[key] = info
    size = path.stat().st_size
    with path.open("rb") as f:
        spans: dict[str, tuple[int, int, int | None]] = {}
        for key, info in infos.items():
            f.seek(info.header_offset)
            head = f.read(30)
            if len(head) != 30 or head[:4] != b"PK\x03\x04":
                raise ModelError(f"{path}: no local header for {info.filename}; the file is corrupt")
            name_len, extra_len = struct.unpack("<HH", head[26:30])
            start = info.header_offset + 30 + name_len + extra_len
            if start + info.file_size > size:
                raise ModelError(f"{path}: record {info.filename} runs past the end of the file; it is truncated")
            spans[key] = (start, info.file_size, info.CRC)
        return _build(f, views, spans, order == "big", path, as_float32)


def _read_legacy(path: Path, as_float32: bool) -> dict[str, NDArray[Any]]:
    size = path.stat().st_size
    with path.open("rb") as f:
        header = [_Unpickler(f, path, legacy=True).load() for _ in range(3)]
        if header[0] != _LEGACY_MAGIC or header[1] != _LEGACY_PROTOCOL or not isinstance(header[2], dict):
            raise ModelError(f"{path}: not a torch checkpoint (no legacy magic number and protocol {_LEGACY_PROTOCOL})")
        views, storages = _unpickle(f, path, legacy=True)
        keys = _Unpickler(f, path, legacy=True).load()
        if not isinstance(keys, list) or not all(type(k) is str for k in keys) or sorted(keys) != sorted(storages):
            raise ModelError(f"{path}: the storage list does not match the storages the pickle names; corrupt file")
        spans: dict[str, tuple[int, int, int | None]] = {}
        pos = f.tell()
        for key in keys:
            st = storages[key]
            f.seek(pos)
            raw = f.read(8)
            count = struct.unpack("<q", raw)[0] if len(raw) == 8 else -1
            if count != st.numel:
                raise ModelError(
                    f"{path}: storage {key!r} is {st.numel} {st.kind.name} elements in the pickle but its data "
                    f"says {count}; the file is corrupt or truncated"
                )
            if pos + 8 + st.nbytes > size:
                raise ModelError(
                    f"{path}: storage {key!r} needs {st.nbytes} bytes at offset {pos + 8} but the file ends at "
                    f"{size}; it is truncated"
                )
            spans[key] = (pos + 8, st.nbytes, None)
            pos += 8 + st.nbytes
        return _build(f, views, spans, False, path, as_float32)


def read_checkpoint(path: Path, *, as_float32: bool = False) -> dict[str, NDArray[Any]]:
    """Every tensor of the ``torch.save`` file ``path`` (a flat state dict) by name, in the file's order.

    Float types keep their dtype except bfloat16, which becomes float32 exactly; with ``as_float32``, float16
    becomes float32 too, converted as it is read (no 16-bit copy of a whole tensor is held).  Integer and
    bool tensors are read as they are.  Arrays are read-only; tensors that share a whole storage (tied
    weights) share one array.  Raises :class:`ModelError` naming the file for a global outside the
    allowlist, a corrupt or truncated file, or sizes that disagree (those before any storage is read).
    """
    try:
        with path.open("rb") as f:
            head = f.read(512)
        if head[:4] == b"PK\x03\x04":
            return _read_zip(path, as_float32)
        if head[257:262] == b"ustar":
            raise ModelError(f"{path} is a torch checkpoint in the tar format of torch < 0.4, which is not read")
        return _read_legacy(path, as_float32)
    except ModelError:
        raise
    except OSError as e:
        raise ModelError(f"cannot read {path} ({type(e).__name__}: {e})") from e
    except Exception as e:  # pickle, zipfile and struct raise many types for one cause
        raise ModelError(
            f"cannot read {path} as a PyTorch checkpoint ({type(e).__name__}: {e}); the file is corrupt, "
            "truncated or not a torch.save file. Delete it and download it again."
        ) from e
