"""README snippets are executed, so the documentation cannot drift from the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import ROOT

BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
#: Blocks that start with "# needs ..." want a service or an environment this one lacks (a Pinecone
#: key; the Milvus extra, whose block runs in integrations/llamaindex/tests/milvus instead).
RUNNABLE = [b for b in BLOCKS if "path/to/" not in b and "org/" not in b and not b.startswith("# needs ")]


def test_readme_has_runnable_snippets() -> None:
    assert len(RUNNABLE) >= 2


@pytest.mark.parametrize("block", RUNNABLE, ids=[f"block{i}" for i in range(len(RUNNABLE))])
def test_readme_snippet_runs(block: str, cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPLADE_ONNX_CACHE", str(cache_dir))
    monkeypatch.chdir(tmp_path)  # snippets that save something use relative paths
    exec(compile(block, "README.md", "exec"), {"__name__": "__readme__"})
