"""The structure, pinned: one job per module (size and docstring), no reads of another module's private
names, and every error the library raises is one of its own tree."""

from __future__ import annotations

import ast
import builtins
import importlib.util
from pathlib import Path

import pytest

from conftest import ROOT

CORE = ROOT / "src" / "splade_onnx"
ADAPTERS = [
    ROOT / "integrations" / "langchain" / "langchain_splade",
    ROOT / "integrations" / "llamaindex" / "llama_index" / "sparse_embeddings" / "splade",
    ROOT / "integrations" / "haystack" / "src" / "haystack_integrations" / "components" / "embedders" / "splade",
]
LIBRARY = [p for d in [CORE, *ADAPTERS] for p in sorted(d.rglob("*.py"))]


def _reach_ins_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("reach_ins", ROOT / "scripts" / "reach_ins.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_each_core_module_has_one_job_in_at_most_450_lines(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").count("\n")
    assert lines <= 450, f"{path.name} has {lines} lines; split it along its jobs"
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    assert doc and len(doc.split()) >= 5, f"{path.name} needs a docstring that says its one job"


def test_no_module_reads_another_modules_private_names() -> None:
    reach = _reach_ins_module()
    roots = [CORE, *ADAPTERS, ROOT / "benchmarks"]
    found = [r for root in roots for p in sorted(root.rglob("*.py")) for r in reach.reach_ins(p)]
    assert found == []


def test_the_checker_finds_a_reach_in(tmp_path: Path) -> None:
    reach = _reach_ins_module()
    f = tmp_path / "m.py"
    f.write_text(
        "from ._x import _hidden\nimport x\nclass A:\n    _own = 1\n    def f(self):\n"
        "        return self._y, A._own, x._private\n"
    )
    assert [r.split(": ", 1)[1] for r in reach.reach_ins(f)] == ["from _x import _hidden", "._private"]


_BUILTIN_ERRORS = {
    n
    for n in dir(builtins)
    if isinstance(getattr(builtins, n), type) and issubclass(getattr(builtins, n), BaseException)
}


def _bare_raises(path: Path) -> list[str]:
    """``raise ValueError(...)``-style raises of a built-in, wherever the call spans lines.

    ``AttributeError`` in a module ``__getattr__`` and ``NotImplementedError`` are the language's own protocol.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    allowed = {"NotImplementedError", "StopIteration", "KeyboardInterrupt"}
    getattr_raises = {
        id(n)
        for f in ast.walk(tree)
        if isinstance(f, ast.FunctionDef) and f.name == "__getattr__"
        for n in ast.walk(f)
        if isinstance(n, ast.Raise)
    }
    out = []
    for n in ast.walk(tree):
        if not isinstance(n, ast.Raise) or n.exc is None or id(n) in getattr_raises:
            continue
        exc = n.exc.func if isinstance(n.exc, ast.Call) else n.exc
        if isinstance(exc, ast.Name) and exc.id in _BUILTIN_ERRORS and exc.id not in allowed:
            out.append(f"{path}:{n.lineno}: raise {exc.id}")
    return out


def test_the_library_and_adapters_raise_only_errors_of_the_tree() -> None:
    """Every error derives from ``SpladeError`` and a built-in, so callers catch either."""
    assert [r for p in LIBRARY for r in _bare_raises(p)] == []


def test_the_bare_raise_check_sees_multi_line_raises(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text(
        "def g():\n    raise ValueError(\n        'a'\n    )\n\n\n"
        "def __getattr__(name):\n    raise AttributeError(name)\n"
    )
    assert _bare_raises(f) == [f"{f}:2: raise ValueError"]


def _module_imports(path: Path) -> set[str]:
    """The package modules ``path`` imports when it is imported (top level, outside ``TYPE_CHECKING``)."""
    out: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test):
            continue
        stmts = (
            [node, *(n for n in ast.walk(node) if isinstance(n, ast.ImportFrom))]
            if isinstance(node, ast.Try)
            else [node]
        )
        for n in stmts:
            if isinstance(n, ast.ImportFrom) and n.level == 1:
                out |= {n.module} if n.module else {a.name for a in n.names}
    return out


def test_imports_point_downward_only() -> None:
    """The core's modules import each other without a cycle (a shared piece is a third module both import)."""
    graph = {p.stem: _module_imports(p) for p in CORE.glob("*.py")}
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(m: str, path: list[str]) -> None:
        if state.get(m) == "done":
            return
        assert state.get(m) != "open", f"import cycle: {' -> '.join([*path, m])}"
        state[m] = "open"
        for dep in sorted(graph.get(m, ())):
            visit(dep, [*path, m])
        state[m] = "done"
        order.append(m)

    for m in sorted(graph):
        visit(m, [])
    assert order.index("_errors") < order.index("_encoder") < order.index("cli")
