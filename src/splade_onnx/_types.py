"""The one result type of the core: a sparse vector over the model vocabulary."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["SparseEmbedding"]


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
            raise ValueError(f"values and indices must be 1-D, got shapes {values.shape} and {indices.shape}")
        if values.shape != indices.shape:
            raise ValueError(
                f"values and indices must have the same length, got {values.size} values and {indices.size} indices"
            )
        if indices.size and not np.issubdtype(indices.dtype, np.integer) and not np.all(np.mod(indices, 1) == 0):
            raise ValueError(f"indices must be integers, got dtype {indices.dtype}")
        indices = indices.astype(np.int64, copy=False)
        if indices.size and indices.min() < 0:
            pos = int(np.argmin(indices))
            raise ValueError(f"indices must be >= 0, got {int(indices[pos])} at position {pos}")
        values = values.astype(np.float32, copy=False)
        if indices.size > 1 and not np.all(indices[1:] > indices[:-1]):
            order = np.argsort(indices, kind="stable")
            indices = indices[order]
            values = values[order]
            dup = np.flatnonzero(indices[1:] == indices[:-1])
            if dup.size:
                raise ValueError(f"indices must be unique, got {int(indices[dup[0]])} more than once")
        if not np.all(np.isfinite(values)):
            pos = int(np.flatnonzero(~np.isfinite(values))[0])
            raise ValueError(f"values must be finite, got {values[pos]} at position {pos}")
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
