"""Exact, fast SPLADE sparse embeddings on onnxruntime, from any checkpoint, offline."""

from ._encoder import DEFAULT_MODEL, SpladeEncoder
from ._hub import ModelNotFoundError
from ._registry import ModelInfo
from ._types import SparseEmbedding

__all__ = [
    "DEFAULT_MODEL",
    "ModelInfo",
    "ModelNotFoundError",
    "SparseEmbedding",
    "SpladeEncoder",
]
