"""SPLADE sparse embeddings and a local sparse retriever for LlamaIndex, on splade-onnx."""

from typing import Any

from .base import SpladeSparseEmbedding, to_qdrant_sparse_fns
from .retriever import SpladeRetriever

__all__ = ["SpladeMilvusSparseFunction", "SpladeRetriever", "SpladeSparseEmbedding", "to_qdrant_sparse_fns"]


def __getattr__(name: str) -> Any:
    if name == "SpladeMilvusSparseFunction":  # imported lazily: it needs the [milvus] extra
        from .milvus import SpladeMilvusSparseFunction

        return SpladeMilvusSparseFunction
    raise AttributeError(f"module 'llama_index.sparse_embeddings.splade' has no attribute {name!r}")
