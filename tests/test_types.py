import re

import numpy as np
import pytest

from splade_onnx import SparseEmbedding


def test_dtypes_and_sorting() -> None:
    e = SparseEmbedding(values=np.array([1.0, 2.0], np.float64), indices=np.array([9, 2], np.int32))
    assert e.values.dtype == np.float32 and e.indices.dtype == np.int64
    assert e.indices.tolist() == [2, 9] and e.values.tolist() == [2.0, 1.0]


def test_round_trips() -> None:
    e = SparseEmbedding(values=[0.5, 1.25], indices=[3, 10])  # type: ignore[arg-type]
    d = e.as_dict()
    assert d == {3: 0.5, 10: 1.25}
    assert all(type(k) is int and type(v) is float for k, v in d.items())
    assert SparseEmbedding.from_dict(d) == e
    obj = e.as_object()
    assert obj["indices"] is e.indices and obj["values"] is e.values
    assert SparseEmbedding.from_dict({}) == SparseEmbedding.empty()
    assert len(SparseEmbedding.empty()) == 0


def test_dot() -> None:
    a = SparseEmbedding(values=[1.0, 2.0, 3.0], indices=[1, 5, 7])  # type: ignore[arg-type]
    b = SparseEmbedding(values=[10.0, 100.0], indices=[5, 8])  # type: ignore[arg-type]
    assert a.dot(b) == 20.0 and b.dot(a) == 20.0
    assert a.dot(SparseEmbedding.empty()) == 0.0


@pytest.mark.parametrize(
    ("values", "indices", "message"),
    [
        ([1.0], [1, 2], "values and indices must have the same length, got 1 values and 2 indices"),
        ([1.0, 2.0], [4, 4], "indices must be unique, got 4 more than once"),
        ([1.0], [-3], "indices must be >= 0, got -3 at position 0"),
        ([float("nan")], [3], "values must be finite, got nan at position 0"),
        ([[1.0]], [[1]], "values and indices must be 1-D"),
        ([1.0], [1.5], "indices must be integers"),
    ],
)
def test_invalid(values: object, indices: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        SparseEmbedding(values=values, indices=indices)  # type: ignore[arg-type]


def test_trusted_embedding_is_internal_and_equal_to_a_checked_one() -> None:
    """The encoder's own arrays skip the checks through ``_types.trusted_embedding``, which the package does not
    export; the vector is the one the checked constructor makes from the same arrays."""
    import splade_onnx
    from splade_onnx._types import trusted_embedding

    values, indices = np.array([2.0, 0.5], np.float32), np.array([3, 7], np.int64)
    e = trusted_embedding(values, indices)
    assert isinstance(e, SparseEmbedding) and e == SparseEmbedding(values=values, indices=indices)
    assert e.values is values and e.indices is indices  # wrapped, not copied
    assert "trusted_embedding" not in splade_onnx.__all__ and not hasattr(splade_onnx, "trusted_embedding")
    assert not hasattr(SparseEmbedding, "_trusted")
