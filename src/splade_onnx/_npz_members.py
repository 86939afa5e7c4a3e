"""Reading members of an untrusted ``.npz`` zip, each size checked against the file before anything is read.

Only uncompressed, unencrypted members are read, so a member's bytes are in the file; a member's
.npy header must declare exactly the bytes the zip directory gives it, so a 300-byte file cannot
claim 10^13 elements.  Nothing larger than the file is ever allocated, and every refusal is an
:class:`IndexFormatError`.  Which members exist and what dtypes they may have is the caller's
business (:mod:`._index_file`); this module knows zips and .npy headers only.
"""

from __future__ import annotations

import io
import math
import struct
import zipfile
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import numpy.lib.format as npy_format
from numpy.typing import NDArray

from ._errors import IndexFormatError

__all__ = ["MAX_MEMBERS", "NpyHeader", "check_directory", "data_offset", "members", "npy_data", "npy_header"]

MAX_MEMBERS = 1024
_MAX_DIRECTORY_BYTES = 1 << 20  # the zip's central directory (an index's is well under 1 kB)
_MAX_NPY_HEADER = 10_000  # bytes of .npy header text (numpy's own default limit)


@dataclass(frozen=True)
class NpyHeader:
    """A member's .npy header, checked against the member's size in the zip directory."""

    name: str
    info: zipfile.ZipInfo
    dtype: np.dtype[Any]
    shape: tuple[int, ...]
    count: int  # elements
    offset: int  # where the data starts in the member


def check_directory(fh: IO[bytes], size: int) -> None:
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
    if entries > MAX_MEMBERS or cd_size > _MAX_DIRECTORY_BYTES:
        raise IndexFormatError(f"the zip directory declares {entries} members in {cd_size} bytes; too many")


def members(zf: zipfile.ZipFile, size: int, names: Collection[str]) -> dict[str, zipfile.ZipInfo]:
    """The members ``<name>.npy`` for each of ``names`` present, by name; other members are ignored (never read)."""
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise IndexFormatError(f"{len(infos)} zip members; an index has at most {len(names)}")
    counts = Counter(info.filename for info in infos)
    dups = sorted(name for name, c in counts.items() if c > 1)
    if dups:
        raise IndexFormatError(f"duplicate zip members {dups}")
    found = {}
    for info in infos:
        name = info.filename[: -len(".npy")] if info.filename.endswith(".npy") else ""
        if name not in names:
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


def npy_header(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, allowed: Callable[[np.dtype[Any], tuple[int, ...]], bool]
) -> NpyHeader:
    """Read and check ``name``'s .npy header: plain data (no pickles), a dtype and shape ``allowed`` accepts,
    and exactly the member's size declared."""
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
    if dtype.hasobject:
        raise IndexFormatError(f"{name} holds Python objects (a pickle); an index holds plain arrays only")
    if any(d < 0 for d in shape):
        raise IndexFormatError(f"{name} has shape {shape}")
    if not allowed(dtype, shape) or not dtype.itemsize:
        raise IndexFormatError(f"{name} has dtype {dtype} and shape {shape}")
    count = math.prod(shape)
    offset = len(magic) + len(length) + header_size
    if offset + count * dtype.itemsize != info.file_size:
        raise IndexFormatError(
            f"{name}: its header declares {count} elements of {dtype} ({count * dtype.itemsize} bytes), "
            f"but the file holds {info.file_size - offset} bytes for them"
        )
    return NpyHeader(name, info, dtype, shape, count, offset)


def npy_data(zf: zipfile.ZipFile, head: NpyHeader) -> NDArray[Any]:
    """The array whose header was checked, as a read-only view of its bytes (CRC checked)."""
    nbytes = head.count * head.dtype.itemsize
    with zf.open(head.info) as m:
        m.read(head.offset)
        data = m.read(nbytes)  # reads up to the end of the member, so zipfile checks its CRC-32
    if len(data) != nbytes:
        raise IndexFormatError(f"{head.name}: truncated ({len(data)} of {nbytes} bytes)")
    return np.frombuffer(data, head.dtype, count=head.count).reshape(head.shape)


def data_offset(fh: IO[bytes], head: NpyHeader, size: int) -> int:
    """Where ``head``'s array data starts in the file: after the member's local header (read here, as its
    extra field may differ from the directory's) and the .npy header; the data must end inside the file."""
    fh.seek(head.info.header_offset)
    local = fh.read(30)
    if len(local) != 30 or local[:4] != b"PK\x03\x04":
        raise IndexFormatError(f"{head.name}: no local zip header at offset {head.info.header_offset}")
    name_len, extra_len = struct.unpack("<HH", local[26:30])
    start = head.info.header_offset + 30 + name_len + extra_len + head.offset
    if start + head.count * head.dtype.itemsize > size:
        raise IndexFormatError(f"{head.name}: its data would end past the end of the {size}-byte file")
    return int(start)
