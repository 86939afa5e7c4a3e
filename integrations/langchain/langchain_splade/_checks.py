"""Argument checks run before any encoding (the core repeats them; failing here wastes no work)."""

from __future__ import annotations

from collections.abc import Container, Iterable
from typing import Any

from splade_onnx import ArgumentError, ArgumentTypeError

__all__ = ["check_ids", "not_single"]


def not_single(value: object, what: str, *single: type[Any]) -> None:
    """A bare ``str``/``bytes`` (or one of ``single``) where a list is expected is an :class:`ArgumentTypeError`.

    Iterating it would silently turn ``"12"`` into the ids ``"1"`` and ``"2"``.
    """
    if isinstance(value, (str, bytes, *single)):
        raise ArgumentTypeError(
            f"{what} must be a list, got a single {type(value).__name__} ({value!r:.60}); wrap it in a list"
        )


def check_ids(ids: Iterable[object], in_use: Container[str] = ()) -> None:
    """Ids must be ``str``, given once, and not already in use; the error lists every offender."""
    seen: set[str] = set()
    dups: dict[str, None] = {}  # ordered set
    for pos, i in enumerate(ids):
        if not isinstance(i, str):
            raise ArgumentTypeError(f"ids[{pos}] is a {type(i).__name__} ({i!r:.60}); ids must be str")
        if i in seen or i in in_use:
            dups[i] = None
        seen.add(i)
    if dups:
        shown = ", ".join(repr(i) for i in list(dups)[:10]) + (f", ... ({len(dups)} in all)" if len(dups) > 10 else "")
        raise ArgumentError(
            f"duplicate ids: {shown}; each document needs its own id (delete the old one first to replace it); "
            "nothing was added"
        )
