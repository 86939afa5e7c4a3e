"""splade-tiny's ``pytorch_model.bin`` files as torch and transformers wrote them, rebuilt with numpy alone.

``tests/fixtures/torch_bin/splade_tiny.json`` (``scripts/make_torch_bin_fixtures.py``, run with torch) keeps each
file's skeleton: its bytes between the storages, and for each storage the splade-tiny safetensors tensor (and
dtype) whose raw bytes fill it, with the sha256 of the file torch wrote.  :func:`tiny_torch_folder` writes the
file back and checks that sha256, so a test reads byte for byte what ``torch.save`` wrote.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "torch_bin"
#: The small files torch wrote (``small_files.json``: each file's bytes as base64, and its sha256).
SMALL_FILES = ("small_zip.bin", "small_legacy.bin", "small_expected.npz", "static_table.bin")


def small_files(dest: Path) -> Path:
    """Write the small torch-written files into ``dest``, each checked against its recorded sha256; return ``dest``."""
    records = json.loads((FIXTURES / "small_files.json").read_text(encoding="utf-8"))
    dest.mkdir(parents=True, exist_ok=True)
    for name in SMALL_FILES:
        data = base64.b64decode(records[name]["base64"])
        assert hashlib.sha256(data).hexdigest() == records[name]["sha256"], name
        (dest / name).write_bytes(data)
    return dest


#: The folder files beside the weights that a loadable checkpoint needs (copied from splade-tiny's folder).
_SIDE_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json")


def tiny_spec() -> dict[str, Any]:
    return json.loads((FIXTURES / "splade_tiny.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def write_file(record: dict[str, Any], tensors: dict[str, np.ndarray], dest: Path) -> str:
    """Write one skeleton's file to ``dest``; return the sha256 of what was written."""
    h = hashlib.sha256()
    with dest.open("wb") as f:
        for seg in record["segments"]:
            if "bytes" in seg:
                chunk = base64.b64decode(seg["bytes"])
            else:
                chunk = np.ascontiguousarray(tensors[seg["tensor"]], dtype=seg["dtype"]).tobytes()
                assert len(chunk) == seg["nbytes"], seg
            h.update(chunk)
            f.write(chunk)
    return h.hexdigest()


def tiny_torch_folder(variant: str, tiny_dir: Path, dest: Path) -> Path:
    """``dest`` holding splade-tiny as the ``variant`` checkpoint (``zip_fp32``, ``legacy_fp32``, ``zip_fp16``,
    ``sharded_fp32``) with its config and tokenizer; every weight file is checked against torch's sha256."""
    from safetensors.numpy import load_file

    spec = tiny_spec()
    source = tiny_dir / spec["source"]["file"]
    assert hashlib.sha256(source.read_bytes()).hexdigest() == spec["source"]["sha256"], "not splade-tiny's weights"
    tensors = load_file(str(source))
    dest.mkdir(parents=True, exist_ok=True)
    for name in _SIDE_FILES:
        shutil.copy(tiny_dir / name, dest / name)
    for name, record in spec["variants"][variant]["files"].items():
        if "text" in record:
            (dest / name).write_text(record["text"], encoding="utf-8")
            continue
        got = write_file(record, tensors, dest / name)
        assert got == record["sha256"], f"{variant}/{name}: rebuilt sha256 {got} != torch's {record['sha256']}"
        assert (dest / name).stat().st_size == record["size"]
    return dest
