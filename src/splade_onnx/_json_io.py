"""JSON inside index files: bounded-depth parsing of untrusted text, and serialisation that names what JSON cannot hold.

Both sides share one depth limit, so whatever :func:`json_bytes` accepts, :func:`loads` reads back.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from ._errors import ArgumentError, IndexFormatError

__all__ = ["MAX_JSON_DEPTH", "json_bytes", "loads", "too_deep"]

#: Nesting of JSON arrays and objects accepted in a file's ``meta`` and ``payload``.
MAX_JSON_DEPTH = 256

_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def loads(text: str, what: str) -> Any:
    """``json.loads`` for file contents: malformed or too deeply nested JSON is an :class:`IndexFormatError`."""
    if too_deep(text):
        raise IndexFormatError(f"{what} is JSON nested more than {MAX_JSON_DEPTH} levels deep")
    try:
        return json.loads(text)
    except RecursionError:
        raise IndexFormatError(f"{what} is JSON nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise IndexFormatError(f"{what} is not valid JSON: {exc}") from None


def too_deep(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON ``text`` nests arrays and objects more than ``limit`` deep (brackets in strings do not count).

    Linear and without recursion, so it is safe on any input; exact for valid JSON.
    """
    if text.count("[") + text.count("{") <= limit:
        return False  # it cannot nest deeper than it opens
    brackets = np.frombuffer(_NOT_BRACKET.sub("", _JSON_STRING.sub("", text)).encode("ascii"), np.uint8)
    depth = 0
    for start in range(0, brackets.size, 1 << 20):
        chunk = brackets[start : start + (1 << 20)]
        opens = (chunk == ord("[")) | (chunk == ord("{"))
        run = np.cumsum(np.where(opens, np.int8(1), np.int8(-1)), dtype=np.int32) + depth
        if int(run.max()) > limit:
            return True
        depth = int(run[-1])
    return False


def json_bytes(value: Any, what: str) -> bytes:
    """``value`` as ASCII JSON bytes, or :class:`ArgumentError` naming the first key JSON cannot hold."""
    try:
        text = json.dumps(value, ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        pass
    else:
        if too_deep(text):
            raise ArgumentError(
                f"{what} nests lists and dicts more than {MAX_JSON_DEPTH} levels deep, which SparseIndex.load "
                "refuses; nothing was saved"
            )
        return text.encode("ascii")
    where, bad = _first_unserializable(value, what)
    raise ArgumentError(
        f"{where} is a {type(bad).__name__} ({bad!r:.80}), which JSON cannot hold; nothing was saved. "
        "Convert it to a str, number, bool, None, list or dict first (e.g. a date with .isoformat())."
    )


def _first_unserializable(value: Any, where: str, depth: int = 0) -> tuple[str, Any]:
    if depth > 200:
        return where, value
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, (str, int, float, bool)) and k is not None:
                return f"{where} key {k!r}", k
            try:
                json.dumps(v, allow_nan=False)
            except (TypeError, ValueError, RecursionError):
                return _first_unserializable(v, f"{where}[{k!r}]", depth + 1)
        return where, value
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            try:
                json.dumps(v, allow_nan=False)
            except (TypeError, ValueError, RecursionError):
                return _first_unserializable(v, f"{where}[{i}]", depth + 1)
    return where, value
