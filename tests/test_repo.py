"""The repository is self-contained: a clone of it alone builds, tests and runs offline."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT


def tracked_files() -> list[Path]:
    """Files under version control (every file of the work tree when it is not a git checkout)."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".cache", ".venv", ".mypy_cache", ".ruff_cache", ".pytest_cache", "__pycache__"}
        return [
            p
            for p in ROOT.rglob("*")
            if p.is_file()
            and not skip & set(p.relative_to(ROOT).parts)
            and not any(part.startswith(".venv") for part in p.relative_to(ROOT).parts)
        ]
    return [ROOT / p for p in out.decode().split("\0") if p]


def test_no_symlinks_and_no_file_over_3_mb() -> None:
    files = tracked_files()
    assert len(files) > 50
    links = [str(p.relative_to(ROOT)) for p in files if p.is_symlink()]
    big = [str(p.relative_to(ROOT)) for p in files if p.is_file() and p.stat().st_size > 3 * 1024 * 1024]
    assert links == [] and big == []


#: A path to a sibling ``shared`` folder, which a user's clone does not have.
OUTSIDE = re.compile(r"\.\./shared|\.parent\s*/\s*\"shared\"")
#: An absolute path of one machine.
MACHINE = re.compile(r"(?<![\w.])/(?:work|home|root|Users)/[\w.-]+")


def test_nothing_reads_outside_the_repository() -> None:
    """No path to a sibling ``shared`` folder in code, docs or build files, and no machine path in
    code, build files or results."""
    bad = []
    for p in tracked_files():
        if p.suffix not in {".py", ".md", ".json", ".toml", ".cfg", ".txt", ""} or p.name == "LICENSE":
            continue
        rel = p.relative_to(ROOT).as_posix()
        if rel.startswith("data/"):
            continue  # the collections' own provenance notes
        text = p.read_text(encoding="utf-8", errors="replace")
        bad += [f"{rel}: {m.group(0)}" for m in OUTSIDE.finditer(text)]
        if p.suffix != ".md":
            bad += [f"{rel}: {m.group(0)}" for m in MACHINE.finditer(text)]
    assert bad == []


def test_collections_are_in_the_repository_with_provenance() -> None:
    for name, docs in (("cranfield", 1400), ("cisi", 1460)):
        folder = ROOT / "data" / name
        assert (folder / "README.md").is_file() and (folder / "qrels" / "test.tsv").is_file()
        with (folder / "corpus.jsonl").open(encoding="utf-8") as f:
            assert sum(1 for line in f if line.strip()) == docs
    assert "Origin" in (ROOT / "data" / "cranfield" / "README.md").read_text()


@pytest.mark.parametrize("dist", [".", "integrations/langchain", "integrations/llamaindex", "integrations/haystack"])
def test_each_distribution_ships_the_license(dist: str) -> None:
    text = (ROOT / dist / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
