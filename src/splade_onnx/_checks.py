"""Argument checks shared by the core and the framework adapters (public through :mod:`splade_onnx.integration`)."""

from __future__ import annotations

from typing import Any

from ._errors import ArgumentTypeError
from ._types import ModelIdentity

__all__ = ["checked_model", "not_single"]


def not_single(value: object, what: str, *single: type[Any], expected: str = "a list") -> None:
    """A bare ``str``/``bytes`` (or an instance of one of ``single``) where a list is expected is an
    :class:`ArgumentTypeError`.

    Iterating it would silently turn ``"12"`` into the ids ``"1"`` and ``"2"``.  ``expected`` says
    what ``what`` must be, in the message.

    >>> not_single(["12"], "ids")
    >>> not_single("12", "ids")
    Traceback (most recent call last):
    ...
    splade_onnx._errors.ArgumentTypeError: ids must be a list, got a single str ('12'); wrap it in a list
    """
    if isinstance(value, (str, bytes, *single)):
        raise ArgumentTypeError(
            f"{what} must be {expected}, got a single {type(value).__name__} ({value!r:.60}); wrap it in a list"
        )


def checked_model(model: object) -> ModelIdentity | None:
    """``model`` if it is a :class:`ModelIdentity` or ``None``; anything else is refused before a file is read."""
    if model is not None and not isinstance(model, ModelIdentity):
        raise ArgumentTypeError(f"model must be a ModelIdentity (SpladeEncoder.identity), got {type(model).__name__}")
    return model
