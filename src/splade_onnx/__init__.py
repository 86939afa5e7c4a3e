"""Exact, fast SPLADE sparse embeddings on onnxruntime, from any checkpoint, offline."""

from typing import Any

from ._beir import InputError
from ._encoder import DEFAULT_MODEL, SpladeEncoder
from ._eval import evaluate
from ._fastembed import SparseTextEmbedding
from ._fusion import fuse
from ._hub import ModelNotFoundError
from ._index import SparseIndex
from ._registry import ModelInfo
from ._types import SparseEmbedding

__all__ = [
    "DEFAULT_MODEL",
    "InputError",
    "ModelInfo",
    "ModelNotFoundError",
    "SparseEmbedding",
    "SparseIndex",
    "SparseTextEmbedding",
    "SpladeEncoder",
    "evaluate",
    "fuse",
    "list_supported_models",
]


def list_supported_models() -> list[dict[str, Any]]:
    """The registry: name, sources, license (and whether commercial use is allowed), size,
    vocab size, architecture, pooling/activation and query mode of each model."""
    from ._registry import list_models

    return [m.as_dict() for m in list_models()]
