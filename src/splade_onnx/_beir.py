"""Reading BEIR-format folders (corpus.jsonl, queries.jsonl, qrels/<split>.tsv) and jsonl input."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ._errors import FileMissingError, InputError

__all__ = ["BeirData", "InputError", "check_unique_ids", "load_beir", "parse_json_object", "read_jsonl", "read_lines"]


def read_lines(f: IO[bytes], name: str | os.PathLike[str]) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` for each line of a binary stream, without its line ending.

    Lines end at ``\n`` (a ``\r`` before it is dropped too); a UTF-8 byte-order mark on the
    first line is dropped.  A line that is not UTF-8 raises :class:`InputError` naming ``name:line``.
    """
    for n, raw in enumerate(f, 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InputError(f"{name}:{n}: not valid UTF-8 (byte {e.start + 1} of the line)") from None
        if n == 1 and line.startswith("\ufeff"):
            line = line[1:]
        yield n, line.rstrip("\r\n")


def parse_json_object(line: str, where: str, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """One jsonl line as a JSON object holding the ``required`` fields (strings, except ``_id``).

    Anything else raises :class:`InputError` prefixed with ``where`` (``file:line``).
    """
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise InputError(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from None
    except (ValueError, RecursionError) as e:  # e.g. an integer of over 4300 digits, absurd nesting
        raise InputError(f"{where}: not valid JSON ({type(e).__name__}: {e})") from None
    if not isinstance(obj, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    for key in required:
        if key not in obj:
            raise InputError(f"{where}: missing field {key!r} (fields: {', '.join(sorted(obj))})")
        if key != "_id" and not isinstance(obj[key], str):
            raise InputError(f"{where}: field {key!r} must be a string, got {type(obj[key]).__name__}")
    return obj


def read_jsonl(path: Path, *, required: tuple[str, ...] = ()) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each non-blank line; a bad line raises :class:`InputError`."""
    with path.open("rb") as f:
        for n, line in read_lines(f, path):
            if line.strip():
                yield n, parse_json_object(line, f"{path}:{n}", required)


@dataclass
class BeirData:
    doc_ids: list[str]
    doc_texts: list[str]
    query_ids: list[str]
    query_texts: list[str]
    qrels: dict[str, dict[str, int]]

    @property
    def judged_query_ids(self) -> list[str]:
        return [q for q in self.query_ids if q in self.qrels]


def check_unique_ids(rows: Iterable[tuple[int, str]], where: object, key: str = "id") -> None:
    """``(line number, id)`` pairs: an id seen twice is an :class:`InputError` at ``where:line``, naming both lines."""
    seen: dict[str, int] = {}
    for n, rid in rows:
        if rid in seen:
            raise InputError(f"{where}:{n}: duplicate {key} {rid!r} (first on line {seen[rid]})")
        seen[rid] = n


def load_beir(folder: str | os.PathLike[str], *, split: str = "test") -> BeirData:
    """Load a BEIR folder; documents are ``title + " " + text`` (BEIR's convention)."""
    root = Path(folder)
    files = {
        "corpus": root / "corpus.jsonl",
        "queries": root / "queries.jsonl",
        "qrels": root / "qrels" / f"{split}.tsv",
    }
    for p in files.values():
        if not p.is_file():
            raise FileMissingError(
                f"{p} is missing: a BEIR folder holds corpus.jsonl, queries.jsonl and qrels/{split}.tsv"
            )
    doc_ids, doc_texts, doc_lines = [], [], []
    for n, d in read_jsonl(files["corpus"], required=("_id", "text")):
        title = d.get("title") or ""
        doc_lines.append(n)
        doc_ids.append(str(d["_id"]))
        doc_texts.append(f"{title} {d['text']}".strip() if isinstance(title, str) else d["text"])
    check_unique_ids(zip(doc_lines, doc_ids), files["corpus"], key="_id")
    query_ids, query_texts = [], []
    for _, q in read_jsonl(files["queries"], required=("_id", "text")):
        query_ids.append(str(q["_id"]))
        query_texts.append(q["text"])
    qrels: dict[str, dict[str, int]] = {}
    with files["qrels"].open("rb") as raw:
        lines = (line for _, line in read_lines(raw, files["qrels"]))
        for n, row in enumerate(csv.reader(lines, delimiter="\t"), 1):
            if not row or (n == 1 and row[0] == "query-id"):
                continue
            if len(row) != 3:
                raise InputError(f"{files['qrels']}:{n}: expected 3 tab-separated columns, got {len(row)}")
            try:
                grade = int(float(row[2]))
            except ValueError:
                raise InputError(f"{files['qrels']}:{n}: score {row[2]!r} is not a number") from None
            qrels.setdefault(row[0], {})[row[1]] = grade
    return BeirData(doc_ids, doc_texts, query_ids, query_texts, qrels)
