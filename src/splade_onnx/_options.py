"""Option values and their checks: the one place an encoding option's type and range are decided.

:class:`EncodeOptions` holds the options of one side's encoding calls (what ``encode*``, the Ray
encoder, the FastEmbed facade, the CLI and the adapters pass around); it checks itself when built.
What depends on the model (a ``max_length`` above its limit, windows that do not fit) is checked
when the options meet a side (:func:`splade_onnx._engine.settings_for`).  :func:`positive_int` and
:func:`count` are the one "an int, not a bool" check every module uses.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from ._errors import ArgumentError, ArgumentTypeError

__all__ = [
    "LONG_DOCUMENTS",
    "EncodeOptions",
    "check_bool",
    "count",
    "int_option",
    "keyword_options",
    "positive_int",
    "reject_options",
]

_P = ParamSpec("_P")
_R = TypeVar("_R")

#: What ``long_documents`` may be: cut at ``max_length``, or encode every token in windows merged by max.
LONG_DOCUMENTS = ("truncate", "windows")


def int_option(name: str, v: object, *, least: int, allowed: str, allow_none: bool = False) -> None:
    """``v`` must be an int >= ``least`` (or None with ``allow_none``); ``allowed`` says so in the error."""
    if v is None and allow_none:
        return
    if not isinstance(v, int) or isinstance(v, bool):
        raise ArgumentTypeError(f"{name} must be {allowed}, got {type(v).__name__} {v!r}")
    if v < least:
        raise ArgumentError(f"{name} must be {allowed}, got {v!r}")


def positive_int(name: str, v: object, *, allow_none: bool = True) -> None:
    """``v`` must be an int >= 1 (or None unless ``allow_none=False``)."""
    int_option(name, v, least=1, allowed=f"a positive int{' or None' if allow_none else ''}", allow_none=allow_none)


def count(name: str, v: object) -> None:
    """``v`` must be an int >= 0, where 0 turns the feature off."""
    int_option(name, v, least=0, allowed="an int >= 0 (0: off)")


def check_bool(name: str, v: object) -> None:
    if not isinstance(v, bool):
        raise ArgumentTypeError(f"{name} must be a bool, got {type(v).__name__} {v!r}")


def reject_options(where: str, unknown: Iterable[str], valid: Iterable[str]) -> None:
    """Raise :class:`ArgumentTypeError` naming the ``unknown`` options and listing the ``valid`` ones."""
    bad = sorted(unknown)
    if bad:
        raise ArgumentTypeError(
            f"{where} got unexpected option(s) {', '.join(map(repr, bad))}; valid: {', '.join(valid) or '(none)'}"
        )


def keyword_options(f: Callable[_P, _R]) -> Callable[_P, _R]:
    """Make an unknown keyword, or an option passed by position, an :class:`ArgumentTypeError`
    that lists ``f``'s keyword-only options (Python's own error lists none)."""
    params = list(inspect.signature(f).parameters.values())
    positional = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
    options = tuple(p.name for p in params if p.kind is p.KEYWORD_ONLY)
    names = frozenset(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
    where = f"{f.__qualname__}()"

    @functools.wraps(f)
    def checked(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        if len(args) > positional:
            raise ArgumentTypeError(
                f"{where} takes its options by keyword only, got {len(args) - positional} extra positional "
                f"argument(s); options: {', '.join(options) or '(none)'}"
            )
        if not names.issuperset(kwargs):
            reject_options(where, set(kwargs) - names, options)
        return f(*args, **kwargs)

    return checked


@dataclass(frozen=True, kw_only=True)
class EncodeOptions:
    """The options of one side's encoding calls, checked when built.

    ``batch_size`` caps texts per batch (default 256, under a token budget); ``max_length``
    truncates at another length than the side's; ``min_weight`` drops weights below it, then
    ``top_k`` keeps the largest (``None``: the model's ``max_active_dims``, if any);
    ``long_documents="windows"`` encodes every token in windows sharing ``stride`` tokens.

    >>> EncodeOptions(top_k=64).top_k
    64
    >>> EncodeOptions(top_k=0)
    Traceback (most recent call last):
    ...
    splade_onnx._errors.ArgumentError: top_k must be a positive int or None, got 0
    """

    batch_size: int | None = None
    max_length: int | None = None
    top_k: int | None = None
    min_weight: float | None = None
    long_documents: str = "truncate"
    stride: int | None = None

    def __post_init__(self) -> None:
        positive_int("batch_size", self.batch_size)  # max_length is checked against the side's limit
        positive_int("top_k", self.top_k)
        w = self.min_weight
        if w is not None and (not isinstance(w, (int, float)) or isinstance(w, bool) or not math.isfinite(w)):
            raise ArgumentTypeError(f"min_weight must be a finite number or None, got {w!r}")
        if self.long_documents not in LONG_DOCUMENTS:
            raise ArgumentError(
                f"long_documents must be one of {', '.join(map(repr, LONG_DOCUMENTS))}, got {self.long_documents!r}; "
                "'windows' encodes every token in overlapping windows merged by max"
            )
        if self.stride is not None:
            if self.long_documents != "windows":
                raise ArgumentError("stride is the overlap of windows: pass it with long_documents='windows'")
            if not isinstance(self.stride, int) or isinstance(self.stride, bool):
                got = f"{type(self.stride).__name__} {self.stride!r}"
                raise ArgumentTypeError(f"stride must be an int or None, got {got}")

    @classmethod
    def of(cls, options: Mapping[str, Any], where: str = "options") -> EncodeOptions:
        """Options from a mapping of option names; an unknown name is an error listing the valid ones."""
        names = [f.name for f in dataclasses.fields(cls)]
        reject_options(where, set(options) - set(names), names)
        return cls(**options)

    @classmethod
    def given(cls, options: EncodeOptions | None, **keywords: Any) -> EncodeOptions:
        """``options``, or a verb's ``keywords`` as one value; both at once is an error that names the keywords."""
        if options is None:
            return cls(**keywords)
        if not isinstance(options, EncodeOptions):
            raise ArgumentTypeError(f"options must be an EncodeOptions or None, got {type(options).__name__}")
        given = sorted(k for k, v in keywords.items() if v != getattr(_DEFAULT, k))
        if given:
            raise ArgumentError(
                f"pass the encoding options once: options= was given with {', '.join(given)}; "
                "put them in the EncodeOptions value (options.replace(...))"
            )
        return options

    def replace(self, **changes: Any) -> EncodeOptions:
        """A copy with ``changes``, checked again."""
        return dataclasses.replace(self, **changes)

    def as_kwargs(self) -> dict[str, Any]:
        """The options as keyword arguments of ``SpladeEncoder.encode``."""
        return dataclasses.asdict(self)


_DEFAULT = EncodeOptions()
