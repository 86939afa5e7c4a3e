"""SPLADE for LangChain, on splade-onnx: sparse embeddings for Qdrant and Milvus, and a retriever."""

from typing import Any

from .embeddings import SparseVector, SpladeSparseEmbeddings
from .retrievers import SpladeRetriever

__all__ = ["SparseVector", "SpladeMilvusSparseEmbedding", "SpladeRetriever", "SpladeSparseEmbeddings"]


def __getattr__(name: str) -> Any:
    if name == "SpladeMilvusSparseEmbedding":  # imported lazily: it needs the [milvus] extra
        from .milvus import SpladeMilvusSparseEmbedding

        return SpladeMilvusSparseEmbedding
    raise AttributeError(f"module 'langchain_splade' has no attribute {name!r}")
