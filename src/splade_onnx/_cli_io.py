"""The command line's files: reading ``encode``/``index`` input (jsonl, plain text, stdin) and writing output.

Everything is checked before a model loads: UTF-8, JSON, fields and duplicate ids (reported as
``file:line``), and the output folder; output files are written whole or not at all.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ._atomic import atomic_text_file
from ._beir import check_unique_ids, parse_json_object, read_lines
from ._errors import (
    ArgumentError,
    FileMissingError,
    InputError,
    missing_extra,
)

logger = logging.getLogger(__name__)

__all__ = ["INPUT_RULES", "atomic_output", "check_output", "read_texts", "require_eval_extras"]

INPUT_RULES = (
    "Input: a .jsonl file (one JSON object per line: the text in --field, the id in _id or id, else the "
    "line number), any other file as plain text (one text per line, id = its line number; blank lines are "
    "skipped with a warning), or - for stdin: jsonl if its first non-blank line is a JSON object, else "
    "plain text. The whole input is checked (UTF-8, JSON, fields, duplicate ids) before the model loads."
)


# ---------------------------------------------------------------------------- input and output


def read_texts(path: str, field: str) -> list[tuple[str, str]]:
    """``(id, text)`` pairs from the input (rules in the module docstring), all checked before anything is encoded."""
    if path == "-":
        name = "<stdin>"
        stream = getattr(sys.stdin, "buffer", None)
        data = stream.read() if stream is not None else sys.stdin.read().encode("utf-8")
        lines = list(read_lines(io.BytesIO(data), name))
        jsonl = _first_line_is_an_object(lines)
    else:
        name = path
        p = Path(path)
        if not p.exists():
            raise FileMissingError(f"input file {path} does not exist")
        if p.is_dir():
            raise ArgumentError(f"input {path} is a folder; give a .jsonl or text file, or - for stdin")
        with p.open("rb") as f:
            lines = list(read_lines(f, name))
        jsonl = p.suffix == ".jsonl"
    rows: list[tuple[int, str, str]] = []  # (line, id, text)
    blank = 0
    for n, line in lines:
        if not line.strip():
            blank += 1
            continue
        if jsonl:
            obj = parse_json_object(line, f"{name}:{n}", (field,))
            rows.append((n, _row_id(obj, n, f"{name}:{n}"), obj[field]))
        else:
            rows.append((n, str(n), line))
    if blank and not jsonl:
        print(
            f"splade-onnx: warning: skipped {blank} blank line{'s' if blank > 1 else ''} in {name} "
            "(the other lines keep their line numbers as ids)",
            file=sys.stderr,
        )
    check_unique_ids(((n, rid) for n, rid, _ in rows), name)
    return [(rid, text) for _, rid, text in rows]


def _first_line_is_an_object(lines: list[tuple[int, str]]) -> bool:
    first = next((line for _, line in lines if line.strip()), None)
    if first is None:
        return False
    try:
        return isinstance(json.loads(first), dict)
    except (ValueError, RecursionError):
        return False


def _row_id(obj: dict[str, Any], n: int, where: str) -> str:
    for key in ("_id", "id"):
        if key in obj:
            value = obj[key]
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise InputError(f"{where}: field {key!r} must be a string or an integer, got {type(value).__name__}")
            return str(value)
    return str(n)


def check_output(path: str | None, *, create_folder: bool) -> None:
    """Fail before any work if ``path`` cannot be written: a folder, or in a folder that does not exist."""
    if path is None or path == "-":
        return
    target = Path(path)
    if target.is_dir():
        raise ArgumentError(f"output {path} is a folder; give a file name")
    if create_folder:
        target.parent.mkdir(parents=True, exist_ok=True)
    elif not target.parent.is_dir():
        raise FileMissingError(f"cannot write {path}: the folder {target.parent} does not exist")


@contextlib.contextmanager
def atomic_output(path: str | None) -> Iterator[IO[str]]:
    """stdout, or a temp file renamed onto ``path`` only if everything was written."""
    if path is None or path == "-":
        yield sys.stdout
        return
    with atomic_text_file(path) as f:
        yield f


def require_eval_extras(bm25: bool) -> None:
    """Import the ``[eval]`` dependencies ``eval`` will need, so a missing one fails before the model loads."""
    for module in ("ir_measures", *(("bm25s", "Stemmer") if bm25 else ())):
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise missing_extra(f"splade-onnx eval ({module})", "splade-onnx", "eval", e) from e
