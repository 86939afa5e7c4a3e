"""README snippets are executed, and what they print is checked against what the README shows.

A ``print(...)`` line in a snippet carries its expected output in a trailing comment
(``print(x)   # [('moon', 1.2...)]``), matched with doctest's ELLIPSIS rules: ``...`` stands for
any text.  Every line a snippet prints must be shown that way, so no stale output can hide.  The
adapters' READMEs state their results with ``assert`` instead (their packages are library code:
they log, never print), which the same execution checks.
"""

from __future__ import annotations

import contextlib
import doctest
import io
import re
from pathlib import Path

import pytest

from conftest import ROOT, ray_test_id, run_ray_script

#: The main README and each adapter's; this environment has every distribution and extra installed.
READMES = ["README.md", "integrations/langchain/README.md", "integrations/llamaindex/README.md"]
BLOCKS = [
    (name, b) for name in READMES for b in re.findall(r"```python\n(.*?)```", (ROOT / name).read_text(), flags=re.S)
]
#: Blocks that start with "# needs ..." want a service or an environment this one lacks (a Pinecone
#: key; the Milvus extra, whose block runs in integrations/llamaindex/tests/milvus instead).
RUNNABLE = [(name, b) for name, b in BLOCKS if "path/to/" not in b and "org/" not in b and not b.startswith("# needs ")]
_PRINT = re.compile(r"^\s*print\(.*\)\s*#\s?(?P<want>.*)$")


def expected_lines(block: str) -> list[str]:
    """The output each ``print`` line of ``block`` promises, in order (one line per print)."""
    out = []
    for n, line in enumerate(block.splitlines(), 1):
        if line.lstrip().startswith("print("):
            m = _PRINT.match(line)
            assert m, f"README snippet line {n} prints without showing its output in a comment: {line!r}"
            out.append(m.group("want").strip())
    return out


def test_every_readme_has_runnable_snippets() -> None:
    assert len([b for name, b in RUNNABLE if name == "README.md"]) >= 6
    # The LangChain README: the retriever, Qdrant, Milvus (Milvus Lite) and the hybrid ensemble.
    for name, n in {READMES[1]: 4, READMES[2]: 2}.items():
        blocks = [b for r, b in RUNNABLE if r == name]
        assert len(blocks) == n and all("assert " in b and "print(" not in b for b in blocks), name


def test_expected_output_matching() -> None:
    block = 'print([1, 2])   # [1, ...]\nx = 1\nprint("a b")   # a b\n'
    assert expected_lines(block) == ["[1, ...]", "a b"]
    assert matches("[1, ...]", "[1, 2, 3]") and not matches("[1, ...]", "[2, 1]")


def matches(want: str, got: str) -> bool:
    return doctest.OutputChecker().check_output(want + "\n", got + "\n", doctest.ELLIPSIS)


@pytest.mark.parametrize(
    ("readme", "block"), RUNNABLE, ids=[ray_test_id(f"{n}-{i}", b) for i, (n, b) in enumerate(RUNNABLE)]
)
def test_readme_snippet_runs_and_prints_what_it_shows(
    readme: str, block: str, cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPLADE_ONNX_CACHE", str(cache_dir))
    monkeypatch.chdir(tmp_path)  # snippets that save something use relative paths
    want = expected_lines(block)
    if "ray.init" in block:  # a script that starts its own cluster: run as a user runs it
        printed = run_ray_script(block, cwd=tmp_path)
    else:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            exec(compile(block, readme, "exec"), {"__name__": "__readme__"})
        printed = buf.getvalue()
    got = printed.splitlines()
    assert len(got) == len(want), f"printed {got}, README shows {want}"
    for w, g in zip(want, got):
        assert matches(w, g), f"README shows {w!r}, the snippet printed {g!r}"
