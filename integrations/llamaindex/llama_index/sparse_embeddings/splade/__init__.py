"""SPLADE sparse embeddings and a local sparse retriever for LlamaIndex, on splade-onnx."""

from .base import SpladeSparseEmbedding, to_qdrant_sparse_fns
from .retriever import SpladeRetriever

__all__ = ["SpladeRetriever", "SpladeSparseEmbedding", "to_qdrant_sparse_fns"]
