"""``onnx`` is imported only to convert or quantize: loading an already converted model and encoding with it never
imports it (``import onnx`` costs most of a second, through ``ml_dtypes``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from splade_onnx import SpladeEncoder

from conftest import ROOT, TINY

_SCRIPT = """
import sys
from splade_onnx import SpladeEncoder
enc = SpladeEncoder.from_pretrained({tiny!r}, cache_dir={cache!r})
assert enc.encode_queries(["lunar landing"])[0].indices.size > 0
assert enc.encode_documents(["the lunar module landed on the moon in july 1969"])[0].indices.size > 0
print(sorted(m for m in sys.modules if m == "onnx" or m.startswith("onnx.")))
print("onnxruntime" in sys.modules)
"""


def _run(code: str) -> list[str]:
    env_path = [str(ROOT / "src"), *sys.path]
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": ":".join(env_path)},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.splitlines()


def test_importing_the_package_does_not_import_onnx() -> None:
    assert _run("import sys, splade_onnx; print(sorted(m for m in sys.modules if m.split('.')[0] == 'onnx'))") == ["[]"]


def test_a_converted_model_loads_and_encodes_without_onnx(cache_dir: Path) -> None:
    enc = SpladeEncoder.from_pretrained(TINY, cache_dir=cache_dir)  # converts (or finds) every graph it needs
    enc.encode_queries(["lunar landing"])  # the latency graph too
    enc.encode_documents(["the lunar module landed on the moon in july 1969"])
    onnx_modules, ort_loaded = _run(_SCRIPT.format(tiny=TINY, cache=str(cache_dir)))[-2:]
    assert onnx_modules == "[]" and ort_loaded == "True"
