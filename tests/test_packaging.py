"""The four distributions build from a checkout (and from a git URL), with what a user needs inside."""

from __future__ import annotations

import email
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT

DISTS = {
    ".": "splade_onnx",
    "integrations/langchain": "langchain_splade",
    "integrations/llamaindex": "llama_index_sparse_embeddings_splade",
    "integrations/haystack": "splade_haystack",
}


def pip_wheel(target: str, out: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), target]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = out.glob("*.whl")
    return wheel


def wheel_metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as zf:
        (name,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        return email.message_from_bytes(zf.read(name))


@pytest.mark.parametrize("dist", sorted(DISTS))
def test_wheel_from_a_checkout(dist: str, tmp_path: Path) -> None:
    wheel = pip_wheel(str(ROOT / dist), tmp_path)
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    assert any(n.endswith("py.typed") for n in names)
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert not any(".venv" in n or ".cache" in n or n.startswith("tests/") for n in names)
    meta = wheel_metadata(wheel)
    assert meta["License-Expression"] == "Apache-2.0"
    if dist != ".":  # adapters bound their dependency on the core from both sides
        (core,) = [r for r in meta.get_all("Requires-Dist") or [] if r.startswith("splade-onnx")]
        assert ">=" in core and "<" in core.replace("<=", ""), core


def test_the_haystack_wheel_keeps_haystack_integrations_a_namespace(tmp_path: Path) -> None:
    """Every Haystack integration installs into ``haystack_integrations``: an ``__init__.py`` above our package
    would hide the others (qdrant-haystack's retrievers and document store among them)."""
    wheel = pip_wheel(str(ROOT / "integrations" / "haystack"), tmp_path)
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if n.startswith("haystack_integrations/")]
    package = "haystack_integrations/components/embedders/splade/"
    assert {n for n in names if n.endswith("__init__.py")} == {package + "__init__.py"}
    assert {package + "py.typed", package + "splade_sparse_text_embedder.py"} <= set(names)
    assert all(n.startswith(package) for n in names), names
    meta = wheel_metadata(wheel)
    assert meta["Name"] == "splade-haystack"
    assert any(r.startswith("haystack-ai") for r in meta.get_all("Requires-Dist") or [])


def test_core_sdist_holds_no_machine_state(tmp_path: Path) -> None:
    hatchling = shutil.which("hatchling", path=str(Path(sys.executable).parent))
    assert hatchling, "hatchling is in the [dev] extra"
    proc = subprocess.run(
        [hatchling, "build", "-t", "sdist", "-d", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    (sdist,) = tmp_path.glob("*.tar.gz")
    with tarfile.open(sdist) as tf:
        members = tf.getmembers()
    assert not [m.name for m in members if m.issym() or m.islnk()]
    assert not [m.name for m in members if "/.venv" in m.name or "/.cache/" in m.name or "/.work/" in m.name]
    assert any(m.name.endswith("/LICENSE") for m in members)


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs a git checkout")
@pytest.mark.parametrize("dist", sorted(DISTS))
def test_wheel_from_a_git_url(dist: str, tmp_path: Path) -> None:
    """What ``pip install "git+URL#subdirectory=..."`` does (here the URL is this checkout's committed HEAD)."""
    sub = "" if dist == "." else f"#subdirectory={dist}"
    name = wheel_metadata(pip_wheel(str(ROOT / dist), tmp_path / "local"))["Name"]
    wheel = pip_wheel(f"git+file://{ROOT}{sub}", tmp_path / "git")
    assert wheel_metadata(wheel)["Name"] == name
