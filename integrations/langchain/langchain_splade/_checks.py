"""Argument checks run before any encoding, so failing wastes no work."""

from __future__ import annotations

from typing import Any

from splade_onnx import ArgumentTypeError

__all__ = ["not_single"]


def not_single(value: object, what: str, *single: type[Any]) -> None:
    """A bare ``str``/``bytes`` (or one of ``single``) where a list is expected is an :class:`ArgumentTypeError`.

    Iterating it would silently turn ``"12"`` into the ids ``"1"`` and ``"2"``.
    """
    if isinstance(value, (str, bytes, *single)):
        raise ArgumentTypeError(
            f"{what} must be a list, got a single {type(value).__name__} ({value!r:.60}); wrap it in a list"
        )
