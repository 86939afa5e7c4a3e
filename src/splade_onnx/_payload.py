"""The versioned JSON payload an application saves inside an index file: its name, version and checks.

Public through :mod:`splade_onnx.integration`; :meth:`SparseIndex.save` and :meth:`SparseIndex.load`
take it as ``payload_format=``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._errors import ArgumentError, ArgumentTypeError, IndexFormatError

__all__ = ["PayloadFormat"]


@dataclass(frozen=True)
class PayloadFormat:
    """Names and versions the JSON object an application stores in a :class:`SparseIndex` file.

    ``index.save(path, payload=data, payload_format=fmt)`` stores ``data`` (a dict) with two more
    keys, ``"format": fmt.name`` and ``"version": fmt.version``, in the same all-or-nothing file as
    the vectors.  ``SparseIndex.load(path, payload_format=fmt)`` then checks them: a payload of another
    format, or of a newer version than ``fmt.version`` (bump it when the layout changes; readers keep
    reading older ones), or no payload at all is an :class:`IndexFormatError`; the error names
    ``reader``, the package to upgrade.  :attr:`SparseIndex.payload` is the checked dict, those two keys
    included.

    >>> fmt = PayloadFormat("my-app-documents", 2, reader="my-app")
    >>> fmt.wrap({"documents": {}})
    {'format': 'my-app-documents', 'version': 2, 'documents': {}}
    >>> fmt.check({"format": "my-app-documents", "version": 1, "documents": {}}, where="x.npz")["version"]
    1
    """

    name: str
    version: int
    reader: str

    def __post_init__(self) -> None:
        for field in ("name", "reader"):
            value = getattr(self, field)
            if not isinstance(value, str) or not value:
                raise ArgumentTypeError(f"PayloadFormat.{field} must be a non-empty str, got {value!r}")
        if type(self.version) is not int or self.version < 1:
            raise ArgumentError(f"PayloadFormat.version must be an int >= 1, got {self.version!r}")

    def wrap(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """``data`` with this format's name and version: what :meth:`SparseIndex.save` stores."""
        if not isinstance(data, Mapping):
            raise ArgumentTypeError(f"a payload with a payload_format must be a dict, got {type(data).__name__}")
        taken = [key for key in ("format", "version") if key in data]
        if taken:
            raise ArgumentError(f"payload keys {taken} are the payload_format's own; rename them in your payload")
        return {"format": self.name, "version": self.version, **data}

    def check(self, payload: Any, *, where: object) -> dict[str, Any]:
        """``payload`` read from ``where``, if it is of this format at a version this reader knows."""
        if payload is None:
            raise IndexFormatError(f"{where} holds no payload; expected the {self.reader} payload {self.name!r}")
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        if not isinstance(payload, dict) or found != self.name:
            raise IndexFormatError(
                f"{where} holds no {self.reader} payload (format {self.name!r} expected, found {found!r})"
            )
        version = payload.get("version")
        if not isinstance(version, int) or version > self.version:
            raise IndexFormatError(
                f"{where} has {self.name} version {version!r}; this {self.reader} reads version "
                f"{self.version} at most: upgrade {self.reader}"
            )
        return payload
