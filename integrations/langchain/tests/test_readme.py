"""Every Python snippet of this adapter's README runs, offline, with what its install line gives."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import CACHE

README = Path(__file__).resolve().parents[1] / "README.md"
SNIPPETS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_there_are_snippets() -> None:
    assert len(SNIPPETS) == 2


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[f"snippet{i}" for i in range(len(SNIPPETS))])
def test_snippet_runs(snippet: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPLADE_ONNX_CACHE", str(CACHE))
    scope: dict[str, object] = {"__name__": "__readme__"}
    exec(compile(snippet, str(README), "exec"), scope)
    assert scope["top"] == "wing flutter at supersonic speed"
