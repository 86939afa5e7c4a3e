"""List reads of another module's private names: ``obj._name`` where ``_name`` is not defined in the same file,
and ``from module import _name``.  Exit status 1 when there is any.

    python scripts/reach_ins.py src integrations benchmarks

A module reads only what another module declares; a read of ``self._x``/``cls._x`` is the object's own.
Importing a private *module* of the same package (``from . import _registry``) is not a reach-in.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path


def _own_names(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for n in ast.walk(tree):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(n.name)
        elif isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store):
            names.add(n.attr)
        elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            names.add(n.id)
        elif isinstance(n, ast.arg):
            names.add(n.arg)
    return names


def reach_ins(path: Path) -> Iterator[str]:
    """``path:line: what`` for each read of a private name that ``path`` does not define."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    own = _own_names(tree)
    for n in ast.walk(tree):
        if isinstance(n, ast.Attribute) and n.attr.startswith("_") and not n.attr.startswith("__"):
            if n.attr in own or (isinstance(n.value, ast.Name) and n.value.id in ("self", "cls")):
                continue
            yield f"{path}:{n.lineno}: .{n.attr}"
        elif isinstance(n, ast.ImportFrom) and n.module is not None:
            for a in n.names:
                if a.name.startswith("_") and not a.name.startswith("__"):
                    yield f"{path}:{n.lineno}: from {n.module} import {a.name}"


def main(roots: list[str]) -> int:
    found = [r for root in roots for p in sorted(Path(root).rglob("*.py")) for r in reach_ins(p)]
    for line in found:
        print(line)
    print(f"total {len(found)}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
