"""One exception tree: every error derives from SpladeError and from the built-in callers already catch."""

from __future__ import annotations

import pytest

import splade_onnx
from splade_onnx import SpladeError

BUILTIN = {
    "ArgumentError": ValueError,
    "InputError": ValueError,
    "ArgumentTypeError": TypeError,
    "FileMissingError": FileNotFoundError,
    "ModelNotFoundError": OSError,
    "SourceError": OSError,
    "ModelError": ValueError,
    "ModelMismatchError": ValueError,
    "IndexFormatError": ValueError,
    "UnknownIdError": KeyError,
    "CapacityError": OverflowError,
    "MissingExtraError": ImportError,
}


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_each_error_derives_from_the_base_and_its_builtin(name: str) -> None:
    cls = getattr(splade_onnx, name)
    assert issubclass(cls, SpladeError) and issubclass(cls, BUILTIN[name])


def test_every_exported_exception_is_in_the_tree() -> None:
    exported = {
        n
        for n in splade_onnx.__all__
        if isinstance(getattr(splade_onnx, n), type) and issubclass(getattr(splade_onnx, n), BaseException)
    }
    assert exported == {*BUILTIN, "SpladeError"}


def test_unknown_id_error_reads_as_its_message() -> None:
    index = splade_onnx.SparseIndex()
    with pytest.raises(KeyError) as err:
        index.delete(["nope"])
    assert str(err.value) == "unknown ids: 'nope'"
