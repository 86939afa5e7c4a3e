"""Writing a ``.npz`` whose members can be memory-mapped: uncompressed, each array's data 64-byte aligned.

The file is an ordinary zip of ``.npy`` members (``numpy.load`` reads it); each member's local
header carries a padding extra field (id ``0x6473``, ignored by zip readers) so that the array's
bytes start at a multiple of 64 in the file.  Arrays are streamed, never copied whole.
"""

from __future__ import annotations

import io
import struct
import zipfile
from typing import IO, Any

import numpy as np
import numpy.lib.format as npy_format
from numpy.typing import NDArray

__all__ = ["ALIGN", "write_npz"]

ALIGN = 64
_PAD_ID = 0x6473
_CHUNK = 1 << 24  # bytes written per call
_ZIP64_EXTRA = 20  # zipfile adds a zip64 extra field of this size to a local header with force_zip64


def _npy_header(arr: NDArray[Any]) -> bytes:
    buf = io.BytesIO()
    npy_format.write_array_header_1_0(buf, npy_format.header_data_from_array_1_0(arr))
    return buf.getvalue()


def write_npz(f: IO[bytes], arrays: dict[str, NDArray[Any]]) -> None:
    """Write ``arrays`` to the seekable binary file ``f`` as an uncompressed, aligned ``.npz``."""
    with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, arr in arrays.items():
            arr = arr if arr.flags.c_contiguous else arr.copy()
            head = _npy_header(arr)  # its length is a multiple of 64 (numpy pads it)
            filename = f"{name}.npy"
            info = zipfile.ZipInfo(filename, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            at = f.tell()
            fixed = 30 + len(filename.encode("utf-8")) + _ZIP64_EXTRA + 4  # + our field's own header
            pad = -(at + fixed) % ALIGN
            info.extra = struct.pack("<HH", _PAD_ID, pad) + b"\0" * pad
            with zf.open(info, "w", force_zip64=True) as out:
                out.write(head)
                raw = arr.reshape(-1).view(np.uint8) if arr.size else np.zeros(0, np.uint8)
                for lo in range(0, raw.size, _CHUNK):
                    out.write(raw[lo : lo + _CHUNK].data)
