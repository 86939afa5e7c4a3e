"""PyTorch checkpoints (``pytorch_model.bin``) read without torch, and nothing in them executed.

The files are torch's own (scripts/make_torch_bin_fixtures.py, run with torch 2.13 and transformers 4.x): small
seeded state dicts committed with the arrays torch reads back, and splade-tiny in the zip, legacy, float16 and
sharded layouts, rebuilt here byte for byte from their committed skeletons (tests/torch_bin_files.py).  Hostile
and damaged files are written by hand, opcode by opcode, in the same layouts.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import os
import pickle
import re
import shutil
import struct
import subprocess
import tempfile
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import splade_onnx._hub as hub
from splade_onnx import ModelError, SpladeEncoder
from splade_onnx._hub import detect_format, resolve
from splade_onnx._tensors import load_tensors
from splade_onnx._torch_bin import read_checkpoint

from conftest import family_folder, golden
from texts import DEMO_QUERIES, SEED_DOCUMENTS
from torch_bin_files import small_files, tiny_spec, tiny_torch_folder

SPEC = tiny_spec()
SMALL = small_files(Path(tempfile.mkdtemp(prefix="torch-bin-")))
EXPECTED = dict(np.load(SMALL / "small_expected.npz"))
TEXTS = [*DEMO_QUERIES[:3], *SEED_DOCUMENTS[:4], ""]
FP32 = ["zip_fp32", "legacy_fp32", "sharded_fp32"]


# --- torch's own small files ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["small_zip.bin", "small_legacy.bin"])
def test_every_tensor_reads_as_torch_reads_it(name: str) -> None:
    """float32/16/64, bfloat16 (signed zero, subnormal, infinities), ints, bool, uint16 (zip only: torch's legacy
    reader cannot read it back), transposed, sliced, strided and zero-stride views, 0-d, empty and negated tensors,
    parameters with and without Python state, in a module's state_dict."""
    got = read_checkpoint(SMALL / name)
    want = [k for k in EXPECTED if name == "small_zip.bin" or k != "uint16.values"]
    assert list(got) == want and len(want) >= 25
    for k, arr in got.items():
        exp = EXPECTED[k]
        assert (arr.dtype, arr.shape) == (exp.dtype, exp.shape), k
        assert np.array_equal(arr, exp), k
        if arr.dtype.kind == "f":
            assert np.array_equal(np.signbit(arr), np.signbit(exp)), k  # -0.0 stays -0.0
        assert arr.flags.c_contiguous and not arr.flags.writeable, k


def test_a_whole_storage_is_not_copied_and_views_are_copied_once() -> None:
    got = read_checkpoint(SMALL / "small_zip.bin")
    assert np.shares_memory(got["tied.embedding"], got["tied.decoder"])  # tied weights: one buffer
    assert got["tied.embedding"] is got["tied.decoder"]
    assert not got["fp32.base"].flags.owndata  # the storage's own buffer
    for view in ("fp32.transposed", "fp32.slice", "fp32.strided", "fp32.row"):  # each its own contiguous copy
        assert got[view].flags.owndata and not np.shares_memory(got[view], got["fp32.base"]), view
    assert np.array_equal(got["fp32.transposed"], got["fp32.base"].T)


def test_the_legacy_and_zip_files_hold_the_same_tensors() -> None:
    z, legacy = read_checkpoint(SMALL / "small_zip.bin"), read_checkpoint(SMALL / "small_legacy.bin")
    assert all(np.array_equal(legacy[k], z[k]) for k in legacy)


# --- splade-tiny as torch and transformers write it -----------------------------------------------------------


@pytest.fixture(scope="module")
def bins(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    made: dict[str, Path] = {}

    def folder(variant: str) -> Path:
        if variant not in made:
            made[variant] = tiny_torch_folder(variant, tiny_dir, tmp_path_factory.mktemp(variant))
        return made[variant]

    return folder


@pytest.mark.parametrize("variant", sorted(SPEC["variants"]))
def test_rebuilt_files_are_byte_for_byte_what_torch_wrote(variant: str, bins: Callable[[str], Path]) -> None:
    folder = bins(variant)
    for name, record in SPEC["variants"][variant]["files"].items():
        if "sha256" in record:
            assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == record["sha256"]
            kept = sum(len(base64.b64decode(s["bytes"])) for s in record["segments"] if "bytes" in s)
            assert kept + sum(s.get("nbytes", 0) for s in record["segments"]) == record["size"]
            assert kept < 20_000  # only the skeleton is committed: the storages come from model.safetensors


@pytest.mark.parametrize("variant", FP32)
def test_the_weights_are_the_safetensors_weights(variant: str, bins: Callable[[str], Path], tiny_dir: Path) -> None:
    folder = bins(variant)
    fmt, main = detect_format(folder)
    assert fmt == "pytorch" and main.name == (
        "pytorch_model.bin.index.json" if "sharded" in variant else "pytorch_model.bin"
    )
    ref, got = load_tensors(tiny_dir / "model.safetensors"), load_tensors(main)
    assert all(np.array_equal(got[k], v) for k, v in ref.items()) and len(ref) == 42
    # transformers saved the tied decoder too, sharing the embeddings' storage
    assert sorted(set(got) - set(ref)) == ["cls.predictions.decoder.bias", "cls.predictions.decoder.weight"]
    assert np.array_equal(got["cls.predictions.decoder.weight"], ref["bert.embeddings.word_embeddings.weight"])


def test_float16_weights_read_exactly(bins: Callable[[str], Path], tiny_dir: Path) -> None:
    ref = load_tensors(tiny_dir / "model.safetensors")
    got = load_tensors(bins("zip_fp16") / "pytorch_model.bin")
    assert all(got[k].dtype == np.float32 for k in got)
    assert all(np.array_equal(got[k], v.astype(np.float16).astype(np.float32)) for k, v in ref.items())


@pytest.fixture(scope="module")
def dense_tiny(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> SpladeEncoder:
    return SpladeEncoder.from_pretrained(tiny_dir, projection="dense", cache_dir=tmp_path_factory.mktemp("c"))


@pytest.mark.parametrize("variant", FP32)
def test_a_bin_folder_encodes_exactly_like_safetensors(
    variant: str, bins: Callable[[str], Path], dense_tiny: SpladeEncoder, tmp_path: Path
) -> None:
    enc = SpladeEncoder.from_pretrained(bins(variant), projection="dense", cache_dir=tmp_path)
    for side in ("encode_queries", "encode_documents"):
        for got, ref in zip(getattr(enc, side)(TEXTS), getattr(dense_tiny, side)(TEXTS), strict=True):
            assert got.indices.tolist() == ref.indices.tolist() and len(got) > 0
            assert np.array_equal(got.values, ref.values)


def test_float16_checkpoint_matches_transformers(bins: Callable[[str], Path], tmp_path: Path) -> None:
    ref = SPEC["fp16_reference"]
    enc = SpladeEncoder.from_pretrained(bins("zip_fp16"), projection="dense", cache_dir=tmp_path)
    for text, got, want in zip(ref["texts"], enc.encode_documents(ref["texts"]), ref["vectors"], strict=True):
        assert got.indices.tolist() == want["indices"], text
        assert float(np.max(np.abs(got.values - np.asarray(want["values"], np.float32)))) <= 1e-4, text


def test_the_cache_records_the_source_and_a_later_safetensors_wins(
    bins: Callable[[str], Path], tiny_dir: Path, tmp_path: Path
) -> None:
    folder = shutil.copytree(bins("zip_fp32"), tmp_path / "model")
    before = SpladeEncoder.from_pretrained(folder, projection="dense", cache_dir=tmp_path / "c")
    (entry,) = [p for p in (tmp_path / "c" / "onnx").iterdir() if (p / "meta.json").is_file()]
    assert json.loads((entry / "meta.json").read_text())["variant"].startswith("pytorch->splade v")
    shutil.copy(tiny_dir / "model.safetensors", folder / "model.safetensors")  # a safetensors upload arrives
    after = SpladeEncoder.from_pretrained(folder, projection="dense", cache_dir=tmp_path / "c")
    variants = sorted(
        json.loads((p / "meta.json").read_text())["variant"].split("->")[0]
        for p in entry.parent.iterdir()
        if (p / "meta.json").is_file()
    )
    assert variants == ["pytorch", "safetensors"]
    assert before.identity.fingerprint != after.identity.fingerprint
    (a,), (b,) = before.encode_documents(["moon landing"]), after.encode_documents(["moon landing"])
    assert a.indices.tolist() == b.indices.tolist() and np.array_equal(a.values, b.values)


def test_a_static_query_table_in_pytorch_model_bin(families: Path, tmp_path: Path) -> None:
    """A SparseStaticEmbedding saved with safe_serialization=False: the family's queries are unchanged."""
    ref = golden("families.json")["families"]["st_inference_free"]
    folder = shutil.copytree(family_folder(families, ref["folder"]), tmp_path / "st")
    (folder / "query_0_SparseStaticEmbedding" / "model.safetensors").unlink()
    shutil.copy(SMALL / "static_table.bin", folder / "query_0_SparseStaticEmbedding" / "pytorch_model.bin")
    enc = SpladeEncoder.from_pretrained(folder, cache_dir=tmp_path / "c")
    assert enc.query_mode == "static"
    for got, want in zip(enc.encode_queries(ref["texts"]), ref["queries"], strict=True):
        keep = np.asarray(want["values"]) != 0
        assert got.indices.tolist() == np.asarray(want["indices"])[keep].tolist()
        assert np.allclose(got.values, np.asarray(want["values"], np.float32)[keep], rtol=0, atol=1e-6)


# --- where a folder's weights come from -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "fmt", "main"),
    [
        (["pytorch_model.bin"], "pytorch", "pytorch_model.bin"),
        (["pytorch_model.bin.index.json"], "pytorch", "pytorch_model.bin.index.json"),
        (["pytorch_model.bin", "model.onnx"], "onnx", "model.onnx"),
        (["pytorch_model.bin", "model.onnx", "model.safetensors"], "safetensors", "model.safetensors"),
        (["pytorch_model.bin", "model.safetensors.index.json"], "safetensors", "model.safetensors.index.json"),
    ],
)
def test_safetensors_then_onnx_then_pytorch(files: list[str], fmt: str, main: str, tmp_path: Path) -> None:
    for f in files:
        (tmp_path / f).write_bytes(b"")
    assert detect_format(tmp_path) == (fmt, tmp_path / main)


class FakeHub:
    """``snapshot_download`` over local repos: the files matching ``allow_patterns`` (fnmatch, as huggingface_hub)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.repos: dict[str, Path] = {}
        self.calls: list[list[str]] = []

    def __call__(self, repo_id: str, *, allow_patterns: list[str], **kwargs: Any) -> str:
        self.calls.append(allow_patterns)
        snap = self.root / repo_id.replace("/", "--")
        for f in self.repos[repo_id].rglob("*"):
            rel = f.relative_to(self.repos[repo_id]).as_posix()
            if f.is_file() and any(fnmatch.fnmatch(rel, p) for p in allow_patterns):
                (snap / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(f, snap / rel)
        return str(snap)


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeHub]:
    import huggingface_hub

    fake = FakeHub(tmp_path / "snapshots")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hub, "unreachable", lambda endpoint: None)  # the probe answers
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
    yield fake


def test_a_bin_only_registry_model_is_fetched_and_loads(
    fake_hub: FakeHub, bins: Callable[[str], Path], dense_tiny: SpladeEncoder, tmp_path: Path
) -> None:
    """naver/splade-v3 ships only pytorch_model.bin (splade-tiny's stands in for it): a second pass fetches it."""
    fake_hub.repos["naver/splade-v3"] = bins("zip_fp32")
    enc = SpladeEncoder.from_pretrained("naver/splade-v3", projection="dense", cache_dir=tmp_path)
    assert len(fake_hub.calls) == 2
    assert not any("pytorch" in p for p in fake_hub.calls[0]) and "pytorch_model.bin" in fake_hub.calls[1]
    (got,), (ref,) = enc.encode_documents(["moon"]), dense_tiny.encode_documents(["moon"])
    assert got.indices.tolist() == ref.indices.tolist() and np.array_equal(got.values, ref.values)


def test_a_repo_with_safetensors_never_downloads_its_bin(
    fake_hub: FakeHub, bins: Callable[[str], Path], tiny_dir: Path, tmp_path: Path
) -> None:
    repo = shutil.copytree(bins("zip_fp32"), tmp_path / "repo")
    shutil.copy(tiny_dir / "model.safetensors", repo / "model.safetensors")
    fake_hub.repos["someone/both"] = repo
    res = resolve("someone/both", cache_dir=tmp_path / "c")
    assert res.format == "safetensors" and fake_hub.calls[0] == ["config.json"]  # an unknown repo's architecture first
    assert len(fake_hub.calls) == 2 and not any("pytorch_model.bin" in p for p in fake_hub.calls)
    assert not (res.path / "pytorch_model.bin").exists()


# --- hostile files: refused by name, never executed --------------------------------------------------------------


def _s(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _i(n: int) -> bytes:
    raw = n.to_bytes(max(1, (n.bit_length() + 8) // 8), "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw  # LONG1: any int


def _tup(items: tuple[int, ...]) -> bytes:
    return b"(" + b"".join(_i(x) for x in items) + b"t"


class _Reduce:
    def __init__(self, func: Any, *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.func, self.args


def _payloads(target: Path) -> dict[str, bytes]:
    """Pickles that would create ``target``, each through another global."""
    cmd = f"touch {target}"
    return {
        "os.system": b"\x80\x02}(" + _s("bert.weight") + b"cos\nsystem\n(" + _s(cmd) + b"tRu.",  # inside a state dict
        "posix.system": pickle.dumps(_Reduce(os.system, cmd), protocol=4),  # STACK_GLOBAL
        "builtins.eval": pickle.dumps(_Reduce(eval, f"__import__('os').system({cmd!r})"), protocol=3),
        "subprocess.Popen": pickle.dumps(_Reduce(subprocess.Popen, ["touch", str(target)]), protocol=4),
        "torch.load": b"\x80\x02ctorch\nload\n(" + _s(str(target)) + b"tR.",
    }


_LEGACY_HEAD = b"".join(
    pickle.dumps(x, protocol=2)
    for x in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True, "type_sizes": {}})
)


def write_zip(path: Path, pkl: bytes, storages: dict[str, bytes] | None = None, byteorder: str = "little") -> Path:
    """A checkpoint laid out as torch writes one: ``archive/data.pkl``, ``byteorder``, ``data/<key>``, ``version``."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", pkl)
        zf.writestr("archive/byteorder", byteorder)
        for key, data in (storages or {}).items():
            zf.writestr(f"archive/data/{key}", data)
        zf.writestr("archive/version", "3\n")
    return path


def write_legacy(path: Path, pkl: bytes, storages: dict[str, tuple[int, bytes]] | None = None) -> Path:
    """The legacy layout: the three header pickles, the object, the sorted keys, then (count, bytes) per key."""
    keys = sorted(storages or {})
    body = b"".join(struct.pack("<q", storages[k][0]) + storages[k][1] for k in keys) if storages else b""
    path.write_bytes(_LEGACY_HEAD + pkl + pickle.dumps(keys, protocol=2) + body)
    return path


def test_the_payloads_are_live(tmp_path: Path) -> None:
    """Unpickled by pickle itself, a payload creates its file: the refusals below are real."""
    pickle.loads(_payloads(tmp_path / "control")["os.system"])
    assert (tmp_path / "control").exists()


@pytest.mark.parametrize("layout", ["zip", "legacy"])
@pytest.mark.parametrize("name", sorted(_payloads(Path("x"))))
def test_a_foreign_global_is_refused_by_name_and_never_runs(name: str, layout: str, tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    pkl = _payloads(target)[name]
    path = tmp_path / "pytorch_model.bin"
    write_zip(path, pkl) if layout == "zip" else write_legacy(path, pkl)
    msg = (
        f"{path}: its pickle names the global {name}, which a PyTorch weights file does not need, so the file was "
        "refused and nothing in it was executed. If you trust the file, save it as safetensors"
    )
    with pytest.raises(ModelError, match=re.escape(msg)):
        read_checkpoint(path)
    assert not target.exists()


# --- damaged files and lying sizes: clear errors before anything is allocated ----------------------------------


def tensor_pickle(
    numel: int,
    offset: int,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    *,
    legacy: bool = False,
    key: str = "0",
    storage: str = "FloatStorage",
) -> bytes:
    """``{"w": <a view of one storage>}`` pickled as torch does (``_rebuild_tensor_v2``, a persistent storage id)."""
    kind = f"ctorch\n{storage}\n".encode()
    pid = b"(" + _s("storage") + kind + _s(key) + _s("cpu") + _i(numel) + (b"N" if legacy else b"")
    rebuild = b"ctorch._utils\n_rebuild_tensor_v2\n(" + pid + b"tQ" + _i(offset) + _tup(size) + _tup(stride)
    return b"\x80\x02ccollections\nOrderedDict\n)R(" + _s("w") + rebuild + b"\x89ccollections\nOrderedDict\n)RtRu."


DATA = np.arange(24, dtype=np.float32)


@pytest.mark.parametrize("byteorder", ["little", "big"])
def test_hand_built_files_read_back(byteorder: str, tmp_path: Path) -> None:
    """The writers above are faithful: a consistent file reads back (both byte orders; a legacy file)."""
    data = DATA.astype(">f4" if byteorder == "big" else "<f4").tobytes()
    z = write_zip(tmp_path / "z.bin", tensor_pickle(24, 2, (2, 3), (1, 4)), {"0": data}, byteorder)
    legacy = write_legacy(tmp_path / "l.bin", tensor_pickle(24, 2, (2, 3), (1, 4), legacy=True), {"0": (24, data)})
    want = np.lib.stride_tricks.as_strided(DATA[2:], (2, 3), (4, 16))
    assert np.array_equal(read_checkpoint(z)["w"], want)
    if byteorder == "little":
        assert np.array_equal(read_checkpoint(legacy)["w"], want)


def test_as_float32_widens_16_bit_floats_and_nothing_else() -> None:
    for name in ("small_zip.bin", "small_legacy.bin"):
        got = read_checkpoint(SMALL / name, as_float32=True)
        for k, arr in got.items():
            want = EXPECTED[k].astype(np.float32) if EXPECTED[k].dtype == np.float16 else EXPECTED[k]
            assert arr.dtype == want.dtype and np.array_equal(arr, want) and not arr.flags.writeable, k


@pytest.mark.parametrize(("storage", "layout"), [("BFloat16Storage", "zip"), ("HalfStorage", "legacy")])
def test_a_large_16_bit_storage_is_widened_in_chunks(storage: str, layout: str, tmp_path: Path) -> None:
    """5 MB of 16-bit floats (past one 4 MB read) into float32, bit for bit; a flipped byte fails the CRC."""
    bits = np.random.default_rng(7).integers(0, 2**16, size=(1250, 2000), dtype=np.uint16)
    if storage == "BFloat16Storage":
        want = (bits.astype(np.uint32) << 16).view(np.float32)
    else:
        want = bits.view(np.float16).astype(np.float32)
    n = bits.size
    pkl = tensor_pickle(n, 0, bits.shape, (2000, 1), legacy=layout == "legacy", storage=storage)
    path = tmp_path / "m.bin"
    if layout == "zip":
        write_zip(path, pkl, {"0": bits.tobytes()})
    else:
        write_legacy(path, pkl, {"0": (n, bits.tobytes())})
    got = read_checkpoint(path, as_float32=True)["w"]
    assert got.dtype == np.float32 and np.array_equal(got.view(np.uint32), want.view(np.uint32))
    assert np.array_equal(
        read_checkpoint(path)["w"].view(np.uint16 if storage == "HalfStorage" else np.uint32),
        bits if storage == "HalfStorage" else want.view(np.uint32),
    )
    if layout == "zip":
        raw = bytearray(path.read_bytes())
        raw[raw.index(bits.tobytes()[:64]) + 4_500_000] ^= 1
        path.write_bytes(bytes(raw))
        with pytest.raises(ModelError, match=re.escape(f"{path}: storage '0' fails its CRC-32 check")):
            read_checkpoint(path, as_float32=True)


def _refused(path: Path, message: str) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(ModelError, match=re.escape(message)):
            read_checkpoint(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, f"{peak} bytes were allocated before the refusal"


def test_a_storage_shorter_than_the_pickle_claims(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "m.bin", tensor_pickle(2**40, 0, (2**40,), (1,)), {"0": DATA.tobytes()})
    _refused(
        path,
        f"{path}: storage '0' is 1099511627776 float32 elements (4398046511104 bytes) in the pickle but its record "
        "archive/data/0 holds 96 bytes; the file is corrupt",
    )


def test_a_view_past_its_storage_end(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "m.bin", tensor_pickle(24, 1, (2, 12), (12, 1)), {"0": DATA.tobytes()})
    _refused(
        path,
        f"{path}: tensor 'w' (size [2, 12], stride [12, 1], offset 1) reaches element 25 of storage '0', which "
        "holds 24 float32 elements (96 bytes); the file is corrupt",
    )


def test_a_broadcast_larger_than_its_storage(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "m.bin", tensor_pickle(1, 0, (10**12,), (0,)), {"0": DATA[:1].tobytes()})
    _refused(path, f"{path}: tensor 'w' (size [1000000000000], stride [0]) has 1000000000000 elements but its storage")


def test_a_truncated_legacy_file(tmp_path: Path) -> None:
    path = write_legacy(tmp_path / "m.bin", tensor_pickle(2**40, 0, (4,), (1,), legacy=True), {"0": (2**40, b"")})
    size = path.stat().st_size
    _refused(path, f"{path}: storage '0' needs 4398046511104 bytes at offset {size} but the file ends at {size}")


def test_a_legacy_count_that_disagrees(tmp_path: Path) -> None:
    path = write_legacy(tmp_path / "m.bin", tensor_pickle(24, 0, (4,), (1,), legacy=True), {"0": (23, DATA.tobytes())})
    _refused(path, f"{path}: storage '0' is 24 float32 elements in the pickle but its data says 23")


def test_a_missing_storage_record(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "m.bin", tensor_pickle(24, 0, (4,), (1,), key="7"), {"0": DATA.tobytes()})
    _refused(path, f"{path}: the pickle names storage '7' but the archive has no record archive/data/7")


def test_a_flipped_byte_fails_the_crc(tmp_path: Path) -> None:
    raw = bytearray((SMALL / "small_zip.bin").read_bytes())
    with zipfile.ZipFile(SMALL / "small_zip.bin") as zf:
        info = zf.getinfo("small_zip/data/0")
    start = (
        info.header_offset
        + 30
        + len(info.filename)
        + struct.unpack("<H", raw[info.header_offset + 28 : info.header_offset + 30])[0]
    )
    raw[start + 5] ^= 0x40
    path = tmp_path / "small_zip.bin"
    path.write_bytes(bytes(raw))
    _refused(path, f"{path}: storage '0' fails its CRC-32 check; the file is corrupt")


@pytest.mark.parametrize("name", ["small_zip.bin", "small_legacy.bin"])
def test_a_truncated_file_names_itself(name: str, tmp_path: Path) -> None:
    raw = (SMALL / name).read_bytes()
    path = tmp_path / name
    path.write_bytes(raw[: len(raw) * 2 // 3])
    with pytest.raises(ModelError, match=re.escape(str(path))) as err:
        read_checkpoint(path)
    assert "truncated" in str(err.value) or "corrupt" in str(err.value)


def test_only_a_flat_state_dict_is_read(tmp_path: Path) -> None:
    nested = b"\x80\x02}(" + _s("state_dict") + b"}u."
    path = write_zip(tmp_path / "m.bin", nested)
    with pytest.raises(ModelError, match=re.escape("entry 'state_dict' is a dict, not a tensor")):
        read_checkpoint(path)
    path = write_zip(tmp_path / "l.bin", b"\x80\x02].")
    with pytest.raises(ModelError, match=re.escape(f"{path} holds a pickled list, not a state dict of tensors")):
        read_checkpoint(path)
