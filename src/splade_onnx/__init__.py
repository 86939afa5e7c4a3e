"""Exact, fast SPLADE sparse embeddings on onnxruntime, from any checkpoint, offline.

The encoder, the index, evaluation and the FastEmbed facade are imported on first use, so that
``import splade_onnx`` stays cheap for a process that only needs the types or the errors.
"""

import importlib
from typing import TYPE_CHECKING, Any

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
from ._options import EncodeOptions
from ._registry import DEFAULT_MODEL, ModelInfo
from ._types import ModelIdentity, SparseEmbedding

if TYPE_CHECKING:
    from ._encoder import SpladeEncoder
    from ._eval import evaluate
    from ._fastembed import SparseTextEmbedding
    from ._fusion import fuse
    from ._index import SparseIndex
    from ._seismic import Seismic

#: Public names defined by heavier modules, imported when first asked for.
_LAZY = {
    "SpladeEncoder": "._encoder",
    "SparseIndex": "._index",
    "Seismic": "._seismic",
    "SparseTextEmbedding": "._fastembed",
    "evaluate": "._eval",
    "fuse": "._fusion",
}

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
    "Seismic",
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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'splade_onnx' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
