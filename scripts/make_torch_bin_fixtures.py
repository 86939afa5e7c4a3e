"""Write the PyTorch-checkpoint fixtures in tests/fixtures/torch_bin/ with real ``torch.save``.

This is the oracle for ``splade_onnx._torch_bin`` (the torch-free ``pytorch_model.bin`` reader); it never
imports splade_onnx.  Two parts:

* ``small``: one seeded state dict covering float32/16/64, bfloat16 (with signed zero, a subnormal and
  infinities), integer, bool and uint16 tensors, views (transposed, sliced with an offset, strided, expanded
  with a zero stride), tied tensors sharing one storage, a 0-d and an empty tensor, a negated view (torch's
  ``neg`` bit), parameters with and without Python state, inside a module's ``state_dict()`` (whose
  ``_metadata`` is pickled too).  Saved in the zip format and in the legacy format
  (``_use_new_zipfile_serialization=False``); the files are committed with the arrays torch reads back
  (``small_expected.npz``).  Beside them, the seeded query table of the ``st_inference_free`` family, saved as
  sentence-transformers saves a ``SparseStaticEmbedding`` with ``safe_serialization=False``
  (``static_table.bin``).
* ``tiny``: splade-tiny saved by transformers' own ``save_pretrained(..., safe_serialization=False)``
  (transformers 4.x: 5.x writes safetensors only) as one zip file in float32 and in float16, as a legacy
  file (``save_function=torch.save`` with the legacy format), and as two zip shards with their
  ``pytorch_model.bin.index.json``.  Too big to commit, each file is recorded as its *skeleton*: every byte
  but the storages' raw bytes (base64), with, in their place, the name and dtype of the splade-tiny
  safetensors tensor whose bytes they are, and the sha256 of the whole file torch wrote.  The tests rebuild
  each file from its skeleton and ``model.safetensors`` and check that sha256 before reading it.  The float16
  checkpoint's reference vectors (transformers, fp16 weights computed in float32) are recorded beside.

    python -m venv .venv-tf4 && .venv-tf4/bin/pip install torch==2.13.0 'transformers>=4.50,<5' safetensors numpy
    .venv-tf4/bin/python scripts/make_torch_bin_fixtures.py --tiny-dir PATH/TO/splade-tiny

(``make torch-bin-fixtures`` does both.)  The ``small`` part alone needs only torch (``--part small``).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import pickle
import struct
import sys
import tempfile
import zipfile
from collections import OrderedDict
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "torch_bin"
sys.path.insert(0, str(ROOT / "tests"))
import texts  # noqa: E402

#: The texts of the float16 reference (a few documents and queries, the empty string, unicode).
FP16_TEXTS = [*texts.SEED_DOCUMENTS[:4], "", "moon", "How much did the lunar mission cost?", texts.PARITY_TEXTS[14]]


def small_state_dict() -> OrderedDict[str, torch.Tensor]:
    torch.manual_seed(1234)
    module = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.LayerNorm(4))
    sd = module.state_dict()  # an OrderedDict with _metadata, as torch.save(model.state_dict()) writes it
    base = torch.randn(5, 8)
    sd["fp32.base"] = base
    sd["fp32.transposed"] = base.t()  # stride (1, 8)
    sd["fp32.slice"] = base[1:4, 2:7]  # offset 10
    sd["fp32.strided"] = base[::2, 1::3]  # strides (16, 3), offset 1
    sd["fp32.row"] = base[4]  # the last row: offset 32, ends at the storage's end
    tied = torch.randn(3, 5)
    sd["tied.embedding"] = tied
    sd["tied.decoder"] = tied  # one storage, two names (tied weights)
    half = torch.randn(4, 3).half()
    sd["fp16.matrix"] = half
    sd["fp16.column"] = half[:, 2]
    bf = torch.tensor([0.0, -0.0, 1e-40, float("inf"), -float("inf"), 3.14159, -2.5e38, 65504.0]).bfloat16()
    sd["bf16.specials"] = bf
    sd["bf16.transposed"] = torch.randn(3, 2).bfloat16().t()
    sd["fp64.vector"] = torch.randn(4, dtype=torch.float64)
    sd["int64.position_ids"] = torch.arange(12).expand((1, -1))  # stride (0, 1), as transformers' buffers
    sd["int32.values"] = torch.tensor([-(2**31), -1, 0, 2**31 - 1], dtype=torch.int32)
    sd["uint8.values"] = torch.tensor([0, 1, 128, 255], dtype=torch.uint8)
    sd["bool.mask"] = torch.tensor([[True, False, True], [False, False, True]])
    sd["scalar"] = torch.tensor(2.5)
    sd["empty"] = torch.zeros(0, 3)
    sd["neg_view"] = torch._neg_view(torch.tensor([1.5, -2.0, 0.25]))  # stored positive, read negated
    sd["parameter"] = torch.nn.Parameter(torch.randn(2, 2))
    stateful = torch.nn.Parameter(torch.randn(3))
    stateful.note = "python state"  # type: ignore[attr-defined]
    sd["parameter_with_state"] = stateful
    return sd


def expected(t: torch.Tensor) -> np.ndarray:
    t = t.detach().resolve_neg()
    if t.dtype == torch.bfloat16:
        return t.float().numpy()
    if t.dtype == torch.uint16:
        return t.to(torch.int32).numpy().astype(np.uint16)
    return t.contiguous().numpy()


def small() -> None:
    sd = small_state_dict()
    OUT.mkdir(parents=True, exist_ok=True)
    torch.save(sd, OUT / "small_legacy.bin", _use_new_zipfile_serialization=False)
    # uint16 is written as an untyped storage with a dtype (_rebuild_tensor_v3), which torch's own legacy
    # reader cannot read back: it is in the zip file only.
    sd["uint16.values"] = torch.tensor([0, 1, 40000, 65535], dtype=torch.int32).to(torch.uint16)
    torch.save(sd, OUT / "small_zip.bin")
    for name in ("small_zip.bin", "small_legacy.bin"):
        back = torch.load(OUT / name, weights_only=True)
        names = [k for k in sd if k in back]
        assert names == list(back) and len(names) >= len(sd) - 1, name
        assert all(np.array_equal(expected(back[k]), expected(sd[k])) for k in names), name
    np.savez(OUT / "small_expected.npz", **{k: expected(v) for k, v in sd.items()})
    print(f"wrote {OUT.relative_to(ROOT)}/small_zip.bin, small_legacy.bin, small_expected.npz")


class _StaticTable(torch.nn.Module):
    """What a SparseStaticEmbedding saves with safe_serialization=False: ``torch.save(module.state_dict())`` of
    its one ``weight`` parameter."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(weight, requires_grad=False)


def static_table() -> None:
    """The seeded query table of the ``st_inference_free`` family (tests/checkpoints.py) as a pytorch_model.bin."""
    import checkpoints

    spec = json.loads((ROOT / "tests" / "golden" / "families.json").read_text(encoding="utf-8"))["weights"]["files"]
    rec = spec["st_inference_free/query_0_SparseStaticEmbedding/model.safetensors"]
    table = checkpoints.family_static_table(vocab_size=int(rec["vocab_size"]), seed=int(rec["seed"]))
    torch.save(_StaticTable(torch.from_numpy(table)).state_dict(), OUT / "static_table.bin")
    print(f"wrote {OUT.relative_to(ROOT)}/static_table.bin")


SMALL_FILES = ("small_zip.bin", "small_legacy.bin", "small_expected.npz", "static_table.bin")


def pack_small_files() -> None:
    """Move the small binary files into one text file (base64 and sha256), which is what is committed."""
    records = {}
    for name in SMALL_FILES:
        data = (OUT / name).read_bytes()
        records[name] = {"sha256": hashlib.sha256(data).hexdigest(), "base64": base64.b64encode(data).decode()}
        (OUT / name).unlink()
    (OUT / "small_files.json").write_text(json.dumps(records, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}/small_files.json")


class _Walker(pickle.Unpickler):
    """Reads a checkpoint's object pickle only to list its storages: ``{key: (torch dtype, element count)}``."""

    def __init__(self, f: Any) -> None:
        super().__init__(f)
        self.storages: dict[str, tuple[torch.dtype, int]] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name.endswith("Storage"):
            return torch.serialization.StorageType(name).dtype
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        return lambda *args: None

    def persistent_load(self, pid: Any) -> Any:
        self.storages[pid[2]] = (pid[1], pid[4])
        return None


def _holes_zip(data: bytes) -> list[tuple[int, int, str, bytes]]:
    """(start, length, name, bytes) of each ``data/<key>`` record's payload in a zip checkpoint."""
    out = []
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            parts = info.filename.split("/")
            if len(parts) == 3 and parts[1] == "data":
                assert info.compress_type == zipfile.ZIP_STORED
                name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26 : info.header_offset + 30])
                start = info.header_offset + 30 + name_len + extra_len
                out.append((start, info.file_size, info.filename, data[start : start + info.file_size]))
    return out


def _holes_legacy(data: bytes) -> list[tuple[int, int, str, bytes]]:
    """The same for a legacy file: after the object pickle and the key list, each storage is an 8-byte
    element count and its bytes, in the key list's order."""
    f = io.BytesIO(data)
    for _ in range(3):  # magic number, protocol version, sys_info
        pickle.load(f)
    walker = _Walker(f)
    walker.load()
    keys = pickle.load(f)
    out = []
    for key in keys:
        (count,) = struct.unpack("<q", f.read(8))
        dtype, numel = walker.storages[key]
        assert count == numel, (key, count, numel)
        start, nbytes = f.tell(), count * dtype.itemsize
        out.append((start, nbytes, f"storage {key}", data[start : start + nbytes]))
        f.seek(nbytes, 1)
    assert f.tell() == len(data)
    return out


def skeleton(path: Path, sources: dict[str, dict[bytes, str]], legacy: bool) -> dict[str, Any]:
    """``path`` as segments: its bytes (base64) between the storages, and for each storage the safetensors
    tensor whose bytes (in ``dtype``) it is."""
    data = path.read_bytes()
    holes = _holes_legacy(data) if legacy else _holes_zip(data)
    segments: list[dict[str, Any]] = []
    pos = 0
    for start, nbytes, what, payload in holes:
        found = [(dt, by[payload]) for dt, by in sources.items() if payload in by]
        if not found:
            raise SystemExit(f"{path.name}: {what} ({nbytes} bytes) matches no splade-tiny tensor")
        dtype, tensor = found[0]
        segments.append({"bytes": base64.b64encode(data[pos:start]).decode()})
        segments.append({"tensor": tensor, "dtype": dtype, "nbytes": nbytes})
        pos = start + nbytes
    segments.append({"bytes": base64.b64encode(data[pos:]).decode()})
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "segments": segments}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@torch.no_grad()
def fp16_reference(folder: Path, tiny_dir: Path) -> list[dict[str, Any]]:
    """splade-tiny's vectors with the float16 checkpoint's weights, computed in float32 (as splade-onnx does)."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    model = AutoModelForMaskedLM.from_pretrained(str(folder), dtype=torch.float16).float().eval()
    tok = AutoTokenizer.from_pretrained(str(tiny_dir))
    out = []
    for text in FP16_TEXTS:
        enc = tok([text], truncation=True, max_length=512, return_tensors="pt")
        logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
        row = (torch.log1p(torch.relu(logits)) * enc["attention_mask"].unsqueeze(-1)).max(dim=1).values[0].numpy()
        idx = np.flatnonzero(row > 0)
        out.append({"indices": idx.tolist(), "values": row[idx].astype(float).tolist()})
    return out


def tiny(tiny_dir: Path) -> None:
    import transformers
    from safetensors.numpy import load_file
    from transformers import AutoModelForMaskedLM

    if int(transformers.__version__.split(".")[0]) >= 5:
        raise SystemExit("the tiny part needs transformers 4.x (5.x no longer writes pytorch_model.bin)")
    st = load_file(str(tiny_dir / "model.safetensors"))
    sources = {
        dt: {np.ascontiguousarray(v, dtype=dt).tobytes(): k for k, v in st.items()} for dt in ("float32", "float16")
    }
    legacy_save = partial(torch.save, _use_new_zipfile_serialization=False)
    variants: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        model = AutoModelForMaskedLM.from_pretrained(str(tiny_dir)).eval()
        plans: dict[str, dict[str, Any]] = {
            "zip_fp32": {},
            "legacy_fp32": {"save_function": legacy_save},
            "sharded_fp32": {"max_shard_size": "10MB"},
        }
        for name, kwargs in plans.items():
            model.save_pretrained(Path(tmp) / name, safe_serialization=False, **kwargs)
        model.half().save_pretrained(Path(tmp) / "zip_fp16", safe_serialization=False)
        for name in (*plans, "zip_fp16"):
            folder = Path(tmp) / name
            files: dict[str, Any] = {}
            for f in sorted(folder.iterdir()):
                if f.name.endswith(".bin"):
                    files[f.name] = skeleton(f, sources, legacy=name.startswith("legacy"))
                elif f.name.endswith(".index.json"):
                    files[f.name] = {"text": f.read_text(encoding="utf-8")}
            variants[name] = {"files": files}
            sizes = ", ".join(f"{k} ({v.get('size', 'json')})" for k, v in files.items())
            print(f"{name}: {sizes}")
        reference = fp16_reference(Path(tmp) / "zip_fp16", tiny_dir)
    data = {
        "generated_by": f"scripts/make_torch_bin_fixtures.py with torch {torch.__version__}, "
        f"transformers {transformers.__version__}",
        "source": {"file": "model.safetensors", "sha256": _sha256(tiny_dir / "model.safetensors")},
        "variants": variants,
        "fp16_reference": {"max_length": 512, "texts": FP16_TEXTS, "vectors": reference},
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "splade_tiny.json").write_text(json.dumps(data, indent=0, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {(OUT / 'splade_tiny.json').relative_to(ROOT)}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny-dir", type=Path, help="the folder with splade-tiny's files (for --part tiny/all)")
    ap.add_argument("--part", choices=("small", "tiny", "all"), default="all")
    args = ap.parse_args()
    if args.part in ("small", "all"):
        small()
        static_table()
        pack_small_files()
    if args.part in ("tiny", "all"):
        if args.tiny_dir is None:
            ap.error("--tiny-dir is required for the tiny part")
        tiny(args.tiny_dir)
