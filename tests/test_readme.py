"""README snippets are executed, so the documentation cannot drift from the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import ROOT

BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
RUNNABLE = [b for b in BLOCKS if "path/to/" not in b and "org/" not in b]


def test_readme_has_runnable_snippets() -> None:
    assert len(RUNNABLE) >= 2


@pytest.mark.parametrize("block", RUNNABLE, ids=[f"block{i}" for i in range(len(RUNNABLE))])
def test_readme_snippet_runs(block: str, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPLADE_ONNX_CACHE", str(cache_dir))
    exec(compile(block, "README.md", "exec"), {"__name__": "__readme__"})
