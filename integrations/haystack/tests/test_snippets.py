"""The Haystack snippets of the READMEs and the docs run here, in this package's own environment.

The main suite (tests/test_readme.py, tests/test_docs.py) runs in an environment without Haystack:
there these blocks are marked ``# needs splade-haystack`` (README.md) or ``<!-- skip: needs
splade-haystack ... -->`` (docs/), and this file runs each of them.
"""

from __future__ import annotations

import contextlib
import doctest
import io
import re
from pathlib import Path

import pytest

from conftest import CACHE, REPO

README = REPO / "integrations" / "haystack" / "README.md"
#: A fenced block of a docs page, with the skip comment that may precede it (as tests/test_docs.py reads them).
FENCE = re.compile(r"^(?:<!-- skip: (?P<reason>[^\n]*?) -->\n)?```(?P<lang>[^\n`]*)\n(?P<body>.*?)^```$", re.S | re.M)
PRINT = re.compile(r"^\s*print\(.*\)\s*#\s?(?P<want>.*)$")


def readme_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def docs_blocks() -> list[tuple[str, str]]:
    """``(language, code)`` of each docs/integrations.md block that is left to this environment."""
    text = (REPO / "docs" / "integrations.md").read_text(encoding="utf-8")
    return [
        (m["lang"], m["body"]) for m in FENCE.finditer(text) if (m["reason"] or "").startswith("needs splade-haystack")
    ]


def front_page_blocks() -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(encoding="utf-8"), flags=re.S)
    return [b for b in blocks if b.startswith("# needs splade-haystack")]


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SPLADE_ONNX_CACHE", str(CACHE))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_readme_shows_two_checked_snippets() -> None:
    blocks = readme_blocks()
    assert len(blocks) == 2 and all("assert " in b and "print(" not in b for b in blocks)


@pytest.mark.parametrize("n", range(2))
def test_readme_snippet_runs(n: int, workdir: Path) -> None:
    exec(compile(readme_blocks()[n], f"{README} (block {n + 1})", "exec"), {"__name__": "__readme__"})


def test_the_docs_blocks_run_in_order(workdir: Path) -> None:
    blocks = docs_blocks()
    assert [lang for lang, _ in blocks] == ["python", "bash"]
    assert blocks[1][1].startswith("python examples/haystack_rag.py ")  # tests/test_rag_example.py runs it
    namespace: dict[str, object] = {"__name__": "__docs__"}
    exec(compile(blocks[0][1], "docs/integrations.md (Haystack)", "exec"), namespace)


def test_the_front_page_snippet_prints_what_it_shows(workdir: Path) -> None:
    (block,) = front_page_blocks()
    want = [m["want"].strip() for line in block.splitlines() if (m := PRINT.match(line))]
    assert len(want) == sum(line.lstrip().startswith("print(") for line in block.splitlines()) >= 1
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, "README.md (Haystack)", "exec"), {"__name__": "__readme__"})
    got = out.getvalue().splitlines()
    assert len(got) == len(want)
    for w, g in zip(want, got):
        assert doctest.OutputChecker().check_output(w + "\n", g + "\n", doctest.ELLIPSIS), (w, g)
