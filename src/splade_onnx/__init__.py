"""Exact, fast SPLADE sparse embeddings on onnxruntime, from any checkpoint, offline."""

from typing import Any

from ._encoder import SpladeEncoder
from ._errors import (
    ArgumentError,
    ArgumentTypeError,
    CapacityError,
    FileMissingError,
    IndexFormatError,
    InputError,
    MissingExtraError,
    ModelError,
    ModelMismatchError,
    ModelNotFoundError,
    SourceError,
    SpladeError,
    UnknownIdError,
)
from ._eval import evaluate
from ._fastembed import SparseTextEmbedding
from ._fusion import fuse
from ._index import SparseIndex
from ._options import EncodeOptions
from ._registry import DEFAULT_MODEL, ModelInfo
from ._types import ModelIdentity, SparseEmbedding

__all__ = [
    "DEFAULT_MODEL",
    "ArgumentError",
    "ArgumentTypeError",
    "CapacityError",
    "EncodeOptions",
    "FileMissingError",
    "IndexFormatError",
    "InputError",
    "MissingExtraError",
    "ModelError",
    "ModelIdentity",
    "ModelInfo",
    "ModelMismatchError",
    "ModelNotFoundError",
    "SourceError",
    "SparseEmbedding",
    "SparseIndex",
    "SparseTextEmbedding",
    "SpladeEncoder",
    "SpladeError",
    "UnknownIdError",
    "evaluate",
    "fuse",
    "list_supported_models",
]


def list_supported_models() -> list[dict[str, Any]]:
    """The registry: name, sources, license (and whether commercial use is allowed), size,
    vocab size, architecture, pooling/activation and query mode of each model."""
    from ._registry import list_models

    return [m.as_dict() for m in list_models()]
