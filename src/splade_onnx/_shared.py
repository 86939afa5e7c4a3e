"""One loaded encoder per set of load options, shared by the components an adapter builds separately.

A framework that builds its query and its document component on their own (Haystack's text and
document embedders, each with its own constructor and its own ``warm_up``) names the same model
twice.  :class:`PretrainedEncoder` holds ``SpladeEncoder.from_pretrained``'s arguments as one value,
checked when it is built, before anything is loaded; :meth:`PretrainedEncoder.shared` gives every
component built from an equal value the same :class:`~splade_onnx.SpladeEncoder`, loaded once and
kept while any of them holds it.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._errors import ArgumentTypeError
from ._options import check_bool, count
from ._registry import DEFAULT_MODEL

if TYPE_CHECKING:
    from ._encoder import SpladeEncoder

__all__ = ["PretrainedEncoder"]

#: Loaded encoders by the spec that loaded them, while something holds them.
_LOADED: weakref.WeakValueDictionary[str, SpladeEncoder] = weakref.WeakValueDictionary()
_LOCK = threading.Lock()


def _path(name: str, v: object, *, allow_none: bool) -> str | None:
    if v is None and allow_none:
        return None
    if not isinstance(v, (str, os.PathLike)):
        allowed = "a str or os.PathLike" + (" or None" if allow_none else "")
        raise ArgumentTypeError(f"{name} must be {allowed}, got {type(v).__name__} {v!r}")
    return os.fspath(v)


@dataclass(frozen=True, kw_only=True)
class PretrainedEncoder:
    """``SpladeEncoder.from_pretrained(model, query=, revision=, ...)``'s arguments, checked when built.

    Paths become ``str`` and ``providers`` a tuple, so equal options give equal specs.  Nothing is
    read or downloaded until :meth:`load` or :meth:`shared`; what depends on the model's files
    (``max_length``, an int within the model's limit) is checked then.

    >>> PretrainedEncoder(threads=0)
    Traceback (most recent call last):
    ...
    splade_onnx._errors.ArgumentError: threads must be a positive int or None, got 0
    """

    model: str | os.PathLike[str] = DEFAULT_MODEL
    query: str | os.PathLike[str] | None = None
    revision: str | None = None
    cache_dir: str | os.PathLike[str] | None = None
    local_files_only: bool = False
    max_length: int | None = None
    threads: int | None = None
    providers: Sequence[str | tuple[str, dict[str, Any]]] | None = None
    quantize: str | None = None
    projection: str = "auto"
    query_cache: int = 0

    def __post_init__(self) -> None:
        from ._loading import LoadOptions  # the loader's own checks (threads, quantize, projection)
        from ._session import check_providers

        object.__setattr__(self, "model", _path("model", self.model, allow_none=False))
        object.__setattr__(self, "query", _path("query", self.query, allow_none=True))
        object.__setattr__(self, "cache_dir", _path("cache_dir", self.cache_dir, allow_none=True))
        if self.revision is not None and not isinstance(self.revision, str):
            raise ArgumentTypeError(f"revision must be a str or None, got {type(self.revision).__name__}")
        check_bool("local_files_only", self.local_files_only)
        count("query_cache", self.query_cache)
        if self.providers is not None:
            if isinstance(self.providers, str) or not isinstance(self.providers, Sequence):
                raise ArgumentTypeError(f"providers must be a list or None, got {type(self.providers).__name__}")
            object.__setattr__(self, "providers", tuple(self.providers))
        check_providers(self.providers)
        LoadOptions(threads=self.threads, quantize=self.quantize, projection=self.projection)

    def load(self) -> SpladeEncoder:
        """A new encoder: ``SpladeEncoder.from_pretrained`` with these arguments."""
        from ._encoder import SpladeEncoder

        return SpladeEncoder.from_pretrained(
            self.model,
            query=self.query,
            revision=self.revision,
            cache_dir=self.cache_dir,
            local_files_only=self.local_files_only,
            max_length=self.max_length,
            threads=self.threads,
            providers=self.providers,
            quantize=self.quantize,
            projection=self.projection,
            query_cache=self.query_cache,
        )

    def shared(self) -> SpladeEncoder:
        """The encoder loaded for an equal spec if one is still held somewhere, else :meth:`load`'s.

        Thread-safe: two components warming up at once load the model once.
        """
        key = repr(self)
        with _LOCK:
            encoder = _LOADED.get(key)
            if encoder is None:
                encoder = self.load()
                _LOADED[key] = encoder
            return encoder
