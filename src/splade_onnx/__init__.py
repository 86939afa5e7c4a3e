"""Exact, fast SPLADE sparse embeddings on onnxruntime, from any checkpoint, offline."""

from typing import Any

from ._encoder import DEFAULT_MODEL, SpladeEncoder
from ._fastembed import SparseTextEmbedding
from ._hub import ModelNotFoundError
from ._registry import ModelInfo
from ._types import SparseEmbedding

__all__ = [
    "DEFAULT_MODEL",
    "ModelInfo",
    "ModelNotFoundError",
    "SparseEmbedding",
    "SparseTextEmbedding",
    "SpladeEncoder",
    "list_supported_models",
]


def list_supported_models() -> list[dict[str, Any]]:
    """The registry: name, sources, license (and whether commercial use is allowed), size,
    vocab size, architecture, pooling/activation and query mode of each model."""
    from ._registry import list_models

    return [m.as_dict() for m in list_models()]
