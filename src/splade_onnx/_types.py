"""The one result type of the core: a sparse vector over the model vocabulary."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._errors import ArgumentError, ArgumentTypeError

__all__ = ["ModelIdentity", "SparseEmbedding", "trusted_embedding"]


@dataclass(frozen=True, eq=False)
class SparseEmbedding:
    """A sparse vector: ``values[i]`` is the weight of vocabulary id ``indices[i]``.

    ``values`` is float32, ``indices`` is int64 and strictly ascending (so each id
    appears once).  Inputs are converted to those dtypes; anything that cannot be
    represented that way raises :class:`ValueError`.

    >>> e = SparseEmbedding(values=[0.5, 2.0], indices=[7, 3])
    >>> e.indices.tolist(), e.values.tolist()
    ([3, 7], [2.0, 0.5])
    >>> e.as_dict()
    {3: 2.0, 7: 0.5}
    """

    values: NDArray[np.float32]
    indices: NDArray[np.int64]

    def __post_init__(self) -> None:
        values = np.asarray(self.values)
        indices = np.asarray(self.indices)
        if values.ndim != 1 or indices.ndim != 1:
            raise ArgumentError(f"values and indices must be 1-D, got shapes {values.shape} and {indices.shape}")
        if values.shape != indices.shape:
            raise ArgumentError(
                f"values and indices must have the same length, got {values.size} values and {indices.size} indices"
            )
        if indices.size and not np.issubdtype(indices.dtype, np.integer) and not np.all(np.mod(indices, 1) == 0):
            raise ArgumentError(f"indices must be integers, got dtype {indices.dtype}")
        indices = indices.astype(np.int64, copy=False)
        if indices.size and indices.min() < 0:
            pos = int(np.argmin(indices))
            raise ArgumentError(f"indices must be >= 0, got {int(indices[pos])} at position {pos}")
        values = values.astype(np.float32, copy=False)
        if indices.size > 1 and not np.all(indices[1:] > indices[:-1]):
            order = np.argsort(indices, kind="stable")
            indices = indices[order]
            values = values[order]
            dup = np.flatnonzero(indices[1:] == indices[:-1])
            if dup.size:
                raise ArgumentError(f"indices must be unique, got {int(indices[dup[0]])} more than once")
        if not np.all(np.isfinite(values)):
            pos = int(np.flatnonzero(~np.isfinite(values))[0])
            raise ArgumentError(f"values must be finite, got {values[pos]} at position {pos}")
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "indices", indices)

    def __len__(self) -> int:
        return int(self.indices.size)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SparseEmbedding):
            return NotImplemented
        return bool(np.array_equal(self.indices, other.indices) and np.array_equal(self.values, other.values))

    __hash__ = None  # type: ignore[assignment]

    def as_dict(self) -> dict[int, float]:
        """``{index: value}`` with plain Python ``int`` keys and ``float`` values."""
        return dict(zip(self.indices.tolist(), self.values.tolist()))

    def as_object(self) -> dict[str, NDArray[Any]]:
        """``{"values": ..., "indices": ...}``, the form FastEmbed and Qdrant use."""
        return {"values": self.values, "indices": self.indices}

    @classmethod
    def from_dict(cls, data: Mapping[int, float]) -> SparseEmbedding:
        """Build from ``{index: value}``; the inverse of :meth:`as_dict`."""
        if not data:
            return cls.empty()
        return cls(
            values=np.fromiter(data.values(), dtype=np.float32, count=len(data)),
            indices=np.fromiter(data.keys(), dtype=np.int64, count=len(data)),
        )

    @classmethod
    def empty(cls) -> SparseEmbedding:
        """A vector with no terms."""
        return cls(values=np.zeros(0, np.float32), indices=np.zeros(0, np.int64))

    def dot(self, other: SparseEmbedding) -> float:
        """The dot product over shared indices (the SPLADE relevance score)."""
        common, a, b = np.intersect1d(self.indices, other.indices, assume_unique=True, return_indices=True)
        del common
        return float(np.dot(self.values[a].astype(np.float64), other.values[b].astype(np.float64)))


def trusted_embedding(values: NDArray[np.float32], indices: NDArray[np.int64]) -> SparseEmbedding:
    """A :class:`SparseEmbedding` wrapping arrays that already hold its invariants (float32 finite values, int64
    strictly ascending non-negative ids, same length), without the checks: for the encoder's own outputs.

    Internal: not exported by the package, since a caller's arrays must be checked.
    """
    out = object.__new__(SparseEmbedding)
    object.__setattr__(out, "values", values)
    object.__setattr__(out, "indices", indices)
    return out


@dataclass(frozen=True)
class ModelIdentity:
    """Which model made a set of vectors: what saved indexes record and check on load.

    ``fingerprint`` is a sha256 over the model's source files (weights and config), so it
    is the same for the fp32 and int8 graphs of one checkpoint and survives converter
    upgrades; it is ``None`` for an encoder built on a custom backend.

    >>> a = ModelIdentity("m", 30522, "ab12")
    >>> a.matches(ModelIdentity("renamed", 30522, "ab12")), a.matches(ModelIdentity("m", 30522, "cd34"))
    (True, False)
    >>> ModelIdentity.from_dict(a.as_dict()) == a
    True
    """

    name: str
    vocab_size: int
    fingerprint: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise ArgumentTypeError(f"ModelIdentity.name must be a str, got {type(self.name).__name__}")
        if type(self.vocab_size) is not int or self.vocab_size < 1:
            raise ArgumentError(f"ModelIdentity.vocab_size must be a positive int, got {self.vocab_size!r}")
        if self.fingerprint is not None and not isinstance(self.fingerprint, str):
            raise ArgumentTypeError(
                f"ModelIdentity.fingerprint must be a str or None, got {type(self.fingerprint).__name__}"
            )

    def matches(self, other: ModelIdentity) -> bool:
        """Same vocabulary size and, where both are known, the same fingerprint (else the same name)."""
        if self.vocab_size != other.vocab_size:
            return False
        if self.fingerprint is not None and other.fingerprint is not None:
            return self.fingerprint == other.fingerprint
        return self.name == other.name

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "vocab_size": self.vocab_size, "fingerprint": self.fingerprint}

    @classmethod
    def from_dict(cls, data: Any) -> ModelIdentity:
        """The inverse of :meth:`as_dict`; anything else raises :class:`ArgumentError`."""
        if not isinstance(data, Mapping) or set(data) != {"name", "vocab_size", "fingerprint"}:
            raise ArgumentError(f"a model identity is {{name, vocab_size, fingerprint}}, got {data!r:.200}")
        try:
            return cls(name=data["name"], vocab_size=data["vocab_size"], fingerprint=data["fingerprint"])
        except TypeError as e:
            raise ArgumentError(str(e)) from None

    def describe(self) -> str:
        fp = self.fingerprint[:12] if self.fingerprint else "unknown"
        return f"{self.name} (vocabulary {self.vocab_size}, fingerprint {fp})"
