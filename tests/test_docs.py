"""Every snippet of the documentation site (``docs/``) runs, and the pages say nothing stale.

Each page is a session, like a doctest: its ```python and ```bash blocks run in order, in one
temporary folder, the Python blocks in one shared namespace and the shell blocks under ``bash -e``
with the ``splade-onnx`` command of this checkout.  Snippets state their results with ``assert``.
A block that cannot run here (a server, the Hub, an installer) is preceded by an HTML comment
``<!-- skip: reason -->``; :data:`SKIPPED` pins how many each page has, so nothing is skipped
silently.  The strict site build itself runs in ``make docs``, which ``make test`` runs first.
"""

from __future__ import annotations

import ast
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, ray_test_id, run_ray_script

DOCS = ROOT / "docs"
PAGES = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
#: A fenced block, with the skip comment that may precede it.
FENCE = re.compile(r"^(?:<!-- skip: (?P<reason>[^\n]*?) -->\n)?```(?P<lang>[^\n`]*)\n(?P<body>.*?)^```$", re.S | re.M)
#: Blocks marked ``<!-- skip: reason -->``, per page: change this together with the page.
SKIPPED = {
    "cli.md": 1,  # splade-onnx eval on whole collections
    "encoding.md": 1,  # models from the Hub
    "fastembed.md": 1,  # a model from the Hub
    "getting-started.md": 2,  # pip install, make
    "integrations.md": 8,  # pip install (2), Pinecone (2), Milvus (1) and Haystack (2) in own venvs, an LLM
    "models.md": 1,  # placeholder paths
    "ray.md": 2,  # pip install, a script over all of Cranfield
}
#: Pages and files that must not read like a development log: issue numbers, the dev box.
PUBLIC = ["README.md", "CONTRIBUTING.md", *(f"docs/{p}" for p in PAGES)]
STALE = re.compile(
    r"(?<![\w/&])#\d+\b|\bissues?\s+#?\d+|this (?:machine|box)|(?:measured|met) here|before the pruned head existed",
    re.I,
)


def blocks(page: str) -> list[tuple[str, str, str | None]]:
    """``(language, code, skip reason or None)`` of each fenced block of ``page``, in order."""
    return [(m["lang"], m["body"], m["reason"]) for m in FENCE.finditer((DOCS / page).read_text())]


def test_pages_have_snippets_and_every_skip_is_counted() -> None:
    assert {"index.md", "getting-started.md", "encoding.md", "models.md", "cli.md", "performance.md"} <= set(PAGES)
    skipped = {}
    for page in PAGES:
        found = blocks(page)
        text = (DOCS / page).read_text()
        assert text.count("```") == 2 * len(found), f"{page}: a fence the test does not parse (indented?)"
        assert text.count("<!-- skip") == sum(1 for *_, r in found if r is not None), f"{page}: a stray skip"
        for lang, body, reason in found:
            assert lang in ("python", "bash"), f"{page}: a ```{lang} block; use python or bash"
            assert reason is None or len(reason) > 10, f"{page}: say why the block cannot run"
            assert lang != "python" or "print(" not in body, f"{page}: state results with assert, not print"
            raising = len(re.findall(r"^else:\n    raise AssertionError", body, re.M))
            assert body.count("try:") == raising, f"{page}: a try block needs else: raise AssertionError(...)"
        if n := sum(1 for *_, r in found if r is not None):
            skipped[page] = n
    assert skipped == SKIPPED
    runnable = [b for p in PAGES for b in blocks(p) if b[2] is None]
    assert sum(1 for lang, *_ in runnable if lang == "python") >= 20
    assert sum(1 for lang, body, _ in runnable if lang == "bash" and "splade-onnx " in body) >= 3


def splade_command(folder: Path) -> Path:
    """A ``splade-onnx`` on PATH that runs this checkout's CLI with this interpreter."""
    script = folder / "splade-onnx"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m splade_onnx.cli "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return folder


RUN_PAGES = [p for p in PAGES if any(r is None for *_, r in blocks(p))]


@pytest.mark.parametrize(
    "page", RUN_PAGES, ids=[ray_test_id(p, "".join(b for _, b, r in blocks(p) if r is None)) for p in RUN_PAGES]
)
def test_page_snippets_run(page: str, cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPLADE_ONNX_CACHE", str(cache_dir))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # snippets that write files use relative paths
    (tmp_path / "bin").mkdir()
    bin_dir = splade_command(tmp_path / "bin")
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for n, (lang, body, reason) in enumerate(blocks(page), 1):
        if reason is not None:
            continue
        if lang == "python":
            if "ray.init" in body:  # a whole script that starts its own cluster: run as a user runs it
                run_ray_script(body, cwd=work)
            else:
                exec(compile(body, f"docs/{page} (block {n})", "exec"), namespace)
        else:
            proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", body], env=env, capture_output=True, text=True)
            assert proc.returncode == 0, f"docs/{page} block {n} failed:\n{body}\n{proc.stdout}\n{proc.stderr}"


def test_the_milvus_snippet_is_the_one_its_environment_runs() -> None:
    """The docs' LlamaIndex Milvus block cannot run here; integrations/llamaindex/tests/milvus runs it and
    README.md's in the Milvus store's own environment, and they are the same code."""
    readme = re.findall(r"```python\n(# needs the \[milvus\] extra.*?)```", (ROOT / "README.md").read_text(), re.S)
    docs = [b for lang, b, r in blocks("integrations.md") if r and b.startswith("# needs the [milvus] extra")]
    assert len(readme) == len(docs) == 1
    # The same statements (formatting and comments aside), but the last: an assert here, a print there.
    statements = [[ast.dump(node) for node in ast.parse(block).body] for block in (docs[0], readme[0])]
    assert statements[0][:-1] == statements[1][:-1] and len(statements[0]) > 5


@pytest.mark.parametrize("name", PUBLIC)
def test_no_development_log(name: str) -> None:
    text = (ROOT / name).read_text()
    assert [m.group(0) for m in STALE.finditer(text)] == []


def test_readme_is_a_front_page() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    assert "make demo" in text and "make test" in text
    links = re.findall(r"\]\(((?:docs|integrations|benchmarks)/[^)#\s]+)", text)
    assert any(link.startswith("docs/") for link in links)
    assert [link for link in links if not (ROOT / link).exists()] == []


def test_every_registry_model_is_in_the_tables() -> None:
    from splade_onnx import list_supported_models

    names = [m["name"] for m in list_supported_models()]
    for table in ("README.md", "docs/models.md"):
        text = (ROOT / table).read_text()
        assert [n for n in names if f"`{n}`" not in text] == [], table


def test_benchmark_links_point_at_results() -> None:
    """Performance figures live in benchmarks/results/; the pages link them and copy no table of them."""
    results = sorted((ROOT / "benchmarks" / "results").glob("*.md"))
    site = "\n".join((DOCS / p).read_text() for p in PAGES)
    assert [r.name for r in results if f"benchmarks/results/{r.name}" not in site] == []
    for r in results:
        header = r.read_text().splitlines()[0]
        assert header not in site, f"the table of {r.name} is copied into docs/: link it instead"
