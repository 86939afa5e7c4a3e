"""Run FastEmbed's own sparse-embedding tests against splade-onnx's facade, with only the import changed.

    python scripts/run_fastembed_tests.py --fastembed PATH [--ref REF] [--python PY] [--real-models] [--report FILE]

``PATH`` is a qdrant/fastembed checkout, or its git directory (its files are then read at ``--ref``,
default ``HEAD``).  The script copies ``tests/test_sparse_embeddings.py``, ``tests/test_sparse_embedding_base.py``
and ``tests/test_common.py`` (those the checkout has), FastEmbed's ``tests/__init__.py``, ``utils.py`` and
``config.py``, and ``tests/type_stub.py`` into a temporary folder.  The one change is the import:
``SparseTextEmbedding`` and ``SparseEmbedding`` come from ``splade_onnx`` instead of ``fastembed``; every other
name still comes from FastEmbed, which must be installed beside pytest and mypy in ``--python``'s environment
(``make fastembed-contract`` builds one).  Then:

* pytest runs the tests, offline (``HF_HUB_OFFLINE=1``).  Unless ``--real-models`` is given, the Hub
  repositories FastEmbed's SPLADE models come from are look-alikes (``tests/fastembed_lookalikes.py``: the same
  files, a seeded network) in the cache the facade reads by default, so the tests of behaviour run; their
  canonical vectors are those of the real weights, which the look-alikes do not have.
* ``mypy --strict`` checks the type stub, whose ``sparse_embedder`` calls go to the facade.

Each test is reported with a verdict: ``applies`` (it must pass), ``deliberate difference`` (documented in
docs/fastembed.md), ``canonical vectors`` (the real weights' values: applies with ``--real-models`` only),
``not SPLADE`` (BM25, BM42, miniCOIL: refused by name here) or ``FastEmbed's own code`` (it tests a FastEmbed
class or function, not the facade).  The exit status is 1 if a test that applies did not pass, or mypy found an
error on a ``sparse_embedder`` line.  Not part of ``make test``: it needs a FastEmbed checkout.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TESTS = ["test_sparse_embeddings.py", "test_sparse_embedding_base.py", "test_common.py"]
SUPPORT = ["__init__.py", "utils.py", "config.py"]
SWAPPED = {"SparseTextEmbedding", "SparseEmbedding"}
NOT_SPLADE = re.compile(r"bm25|bm42|minicoil", re.I)
#: Where the facade differs from FastEmbed on purpose (docs/fastembed.md, "What changes").
DELIBERATE = {
    "test_from_dict_preserves_index_value_pairs_and_roundtrip": (
        "from_dict sorts the indices (FastEmbed keeps the dict's order); the round trip as_dict() == data holds"
    ),
}


def read(fastembed: Path, ref: str, rel: str) -> str | None:
    """``rel`` of the FastEmbed checkout (or git directory, at ``ref``); ``None`` if it has no such file."""
    if (fastembed / rel).is_file():
        return (fastembed / rel).read_text(encoding="utf-8")
    if (fastembed / "HEAD").is_file() or (fastembed / ".git").exists():
        git = ["git", "--git-dir", str(fastembed if (fastembed / "HEAD").is_file() else fastembed / ".git")]
        proc = subprocess.run([*git, "show", f"{ref}:{rel}"], capture_output=True, text=True)
        return proc.stdout if proc.returncode == 0 else None
    return None


def swap_imports(source: str) -> str:
    """``source`` with ``SparseTextEmbedding`` and ``SparseEmbedding`` imported from ``splade_onnx``; nothing else
    changes (the other names of a ``from fastembed... import`` stay, the lines after it keep their numbers)."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    for node in sorted((n for n in tree.body if isinstance(n, ast.ImportFrom)), key=lambda n: n.lineno, reverse=True):
        if not (node.module or "").startswith("fastembed") or not {a.name for a in node.names} & SWAPPED:
            continue
        kept = [a for a in node.names if a.name not in SWAPPED]
        moved = [a for a in node.names if a.name in SWAPPED]
        parts = []
        if kept:
            parts.append(f"from {node.module} import {', '.join(_alias(a) for a in kept)}")
        parts.append(f"from splade_onnx import {', '.join(_alias(a) for a in moved)}")
        span = (node.end_lineno or node.lineno) - node.lineno + 1
        text = "; ".join(parts) + "\n" + "\n" * (span - 1)  # the same number of lines
        lines[node.lineno - 1 : node.lineno - 1 + span] = [text]
    return "".join(lines)


def _alias(a: ast.alias) -> str:
    return a.name if a.asname is None else f"{a.name} as {a.asname}"


def verdicts(source: str) -> dict[str, str]:
    """Test function name -> its verdict, from what its body uses (see the module docstring)."""
    tree = ast.parse(source)
    fastembed_names = {
        a.asname or a.name
        for n in tree.body
        if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("fastembed")
        for a in n.names
        if a.name not in SWAPPED
    }
    out = {}
    for fn in tree.body:
        if not isinstance(fn, ast.FunctionDef) or not fn.name.startswith("test"):
            continue
        body = [n for stmt in fn.body for n in ast.walk(stmt)]  # not the decorators: parameters are judged per test
        names = {n.id for n in body if isinstance(n, ast.Name)}
        strings = [n.value for n in body if isinstance(n, ast.Constant) and isinstance(n.value, str)]
        if fn.name in DELIBERATE:
            out[fn.name] = "deliberate difference"
        elif names & fastembed_names and not names & (SWAPPED | {"model_cache"}):
            out[fn.name] = "FastEmbed's own code"
        elif any(NOT_SPLADE.search(s) for s in strings):
            out[fn.name] = "not SPLADE"
        elif any(n.startswith("CANONICAL") for n in names):
            out[fn.name] = "canonical vectors"
        else:
            out[fn.name] = "applies"
    return out


def lookalikes(cache: Path) -> None:
    """The look-alikes of the repositories FastEmbed's SPLADE models come from, in ``cache/hf``."""
    sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]
    from checkpoints import family_fixtures
    from fastembed_lookalikes import REPOS, write_repo

    families = family_fixtures(ROOT, dst=cache.parent / "families")
    golden = json.loads((ROOT / "tests" / "golden" / "fastembed.json").read_text(encoding="utf-8"))
    for repo in REPOS:
        if write_repo(repo, cache / "hf", families) != golden["repos"][repo]:
            raise SystemExit(f"the look-alike of {repo} is not the one the golden file records")


def run_tests(python: str, work: Path, env: dict[str, str]) -> list[dict[str, Any]]:
    xml = work / "junit.xml"
    files = [f"tests/{name}" for name in TESTS if (work / "tests" / name).is_file()]
    cmd = [python, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-o", "addopts=", f"--junitxml={xml}", *files]
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    print(f"pytest: {(proc.stdout.strip().splitlines() or ['no output'])[-1]}")
    if not xml.is_file():
        raise SystemExit(f"pytest wrote no report:\n{proc.stderr[-4000:]}")
    rows = []
    for case in ET.parse(xml).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            found = case.find(tag)
            if found is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                message = (found.get("message") or "").splitlines()[0][:160] if found.get("message") else ""
        module = case.get("classname", "").rsplit(".", 1)[-1]
        rows.append({"file": f"{module}.py", "test": case.get("name", ""), "outcome": outcome, "message": message})
    return rows


def run_mypy(python: str, work: Path, env: dict[str, str]) -> dict[str, Any]:
    """``mypy --strict`` on the type stub, with splade-onnx's own mypy settings (``pyproject.toml``)."""
    stub = work / "tests" / "type_stub.py"
    if not stub.is_file():
        return {"checked": False}
    has_mypy = subprocess.run([python, "-m", "mypy", "--version"], capture_output=True).returncode == 0
    mypy = [python, "-m", "mypy"] if has_mypy else [sys.executable, "-m", "mypy", "--python-executable", python]
    config = ["--config-file", str(ROOT / "pyproject.toml")]
    proc = subprocess.run(
        [*mypy, *config, "--strict", "--no-incremental", str(stub)],
        cwd=work,
        env={**env, "MYPYPATH": str(ROOT / "src")},
        capture_output=True,
        text=True,
    )
    source = stub.read_text(encoding="utf-8").splitlines()
    errors = [line for line in proc.stdout.splitlines() if ": error: " in line]
    if proc.returncode not in (0, 1) or (proc.returncode == 1 and not errors):
        raise SystemExit(f"mypy did not run:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    sparse, other = [], []
    for line in errors:
        m = re.match(r"(.*?):(\d+):", line)
        if m is None or Path(m.group(1)).name != stub.name:
            sparse.append(line)  # an error in splade-onnx itself
            continue
        text = source[int(m.group(2)) - 1]
        (sparse if "sparse_embedder" in text or "splade_onnx" in text else other).append(line)
    return {"checked": True, "sparse_errors": sparse, "other_errors": other}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fastembed", type=Path, required=True, help="a qdrant/fastembed checkout or git directory")
    parser.add_argument("--ref", default="HEAD", help="the commit to read from a git directory")
    parser.add_argument("--python", default=sys.executable, help="an interpreter with fastembed, pytest and mypy")
    parser.add_argument("--real-models", action="store_true", help="use the real models (needs the Hub)")
    parser.add_argument("--report", type=Path, help="write the verdicts here as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fastembed-contract-") as tmp:
        work = Path(tmp) / "work"
        (work / "tests").mkdir(parents=True)
        judged: dict[str, dict[str, str]] = {}
        missing = []
        for name in [*SUPPORT, *TESTS, "type_stub.py"]:
            text = read(args.fastembed, args.ref, f"tests/{name}")
            if text is None:
                missing.append(name)
                continue
            if name in TESTS or name == "type_stub.py":
                text = swap_imports(text)
            if name in TESTS:
                judged[name] = verdicts(text)
            (work / "tests" / name).write_text(text, encoding="utf-8")
        cache = Path(tmp) / "cache"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(work)])}
        env.update(SPLADE_ONNX_CACHE=str(cache), FASTEMBED_CACHE_PATH=str(cache))
        if not args.real_models:
            lookalikes(cache)
            env["HF_HUB_OFFLINE"] = "1"
        rows = run_tests(args.python, work, env)
        typed = run_mypy(args.python, work, env)
    failed = []
    for row in rows:
        base = row["test"].split("[", 1)[0]
        verdict = judged.get(row["file"], {}).get(base, "applies")
        if verdict in ("applies", "canonical vectors") and NOT_SPLADE.search(row["test"]):
            verdict = "not SPLADE"
        if verdict == "canonical vectors" and args.real_models:
            verdict = "applies"
        row["verdict"] = verdict
        if verdict == "applies" and row["outcome"] != "passed":
            failed.append(row)
    width = max((len(f"{r['file']}::{r['test']}") for r in rows), default=10)
    for r in rows:
        note = DELIBERATE.get(r["test"].split("[", 1)[0], r["message"] if r["outcome"] != "passed" else "")
        print(f"{r['file'] + '::' + r['test']:<{width}}  {r['outcome']:<7}  {r['verdict']:<22}  {note}")
    if missing:
        print(f"not in this checkout: {', '.join(missing)}")
    if typed["checked"]:
        print(
            f"mypy --strict tests/type_stub.py: {len(typed['sparse_errors'])} error(s) on the facade's lines, "
            f"{len(typed['other_errors'])} on FastEmbed's other classes"
        )
        for line in typed["sparse_errors"]:
            print("  " + line)
    counts: dict[str, int] = {}
    for r in rows:
        key = f"{r['verdict']}: {r['outcome']}"
        counts[key] = counts.get(key, 0) + 1
    print("; ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if args.report:
        args.report.write_text(json.dumps({"tests": rows, "mypy": typed, "missing": missing}, indent=1) + "\n")
    return 1 if failed or (typed["checked"] and typed["sparse_errors"]) else 0


if __name__ == "__main__":
    sys.exit(main())
