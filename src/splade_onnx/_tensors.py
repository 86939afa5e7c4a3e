"""A checkpoint's weight files read into float32 arrays by name: safetensors or a PyTorch ``pytorch_model.bin``
(:mod:`splade_onnx._torch_bin`, no torch), one file or the shards an ``.index.json`` names.

Which format a file is follows from its name (``*.bin`` is torch's), and :func:`weights_format` says it for the
cache entries built from it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._errors import ModelError

__all__ = ["load_tensors", "weights_format"]

#: Integer buffers some checkpoints carry beside their weights (older transformers saved ``position_ids``);
#: the graph computes them itself, so they are skipped.
_BUFFERS = (".position_ids", ".token_type_ids")


def weights_format(path: Path) -> str:
    """``"pytorch"`` for a ``torch.save`` checkpoint (``pytorch_model.bin``, its shards or their index),
    else ``"safetensors"``: the source format that cached graphs record."""
    return "pytorch" if path.name.endswith((".bin", ".bin.index.json")) else "safetensors"


def _read_file(f: Path) -> dict[str, NDArray[Any]]:
    if f.name.endswith(".bin"):
        from ._torch_bin import read_checkpoint

        return read_checkpoint(f, as_float32=True)  # float16 widened while read: no 16-bit copy held
    from safetensors.numpy import load_file

    try:
        return load_file(str(f))
    except Exception as e:
        raise ModelError(
            f"cannot read {f} as safetensors ({type(e).__name__}: {e}); the file is corrupt or "
            "not safetensors. Delete it and download it again."
        ) from e


def load_tensors(path: Path) -> dict[str, NDArray[np.float32]]:
    """Every tensor of a safetensors file or a PyTorch ``.bin`` checkpoint (or of the shards an ``.index.json``
    names) as float32, legacy ``gamma``/``beta`` LayerNorm names read as ``weight``/``bias``.

    Integer ``position_ids``/``token_type_ids`` buffers are skipped; any other tensor that is not float16,
    bfloat16 (read as float32), float32 or float64 is a :class:`ModelError`.
    """
    files: list[Path]
    if path.name.endswith(".index.json"):
        index = json.loads(path.read_text())
        shards = set(index["weight_map"].values())
        bad = [s for s in shards if not isinstance(s, str) or Path(s).name != s or s in ("", ".", "..")]
        if bad:
            raise ModelError(f"{path}: weight_map names shards {bad[:3]!r} outside its folder; expected file names")
        files = [path.parent / f for f in sorted(shards)]
    else:
        files = [path]
    out: dict[str, NDArray[np.float32]] = {}
    for f in files:
        tensors = _read_file(f)
        for k in list(tensors):
            v = tensors.pop(k)  # each source array is released once converted
            if v.dtype not in (np.float32, np.float16, np.float64):
                if v.dtype.kind in "iub" and k.endswith(_BUFFERS):
                    continue
                raise ModelError(f"tensor {k} in {f} has dtype {v.dtype}; only float16/32/64 are supported")
            # Legacy checkpoints name LayerNorm parameters gamma/beta.
            if k.endswith(".gamma"):
                k = k[: -len(".gamma")] + ".weight"
            elif k.endswith(".beta"):
                k = k[: -len(".beta")] + ".bias"
            out[k] = np.ascontiguousarray(v, dtype=np.float32)
    return out
