"""SPLADE sparse embedders for Haystack, on splade-onnx: exact, fast on a CPU, offline, no torch."""

from .splade_sparse_document_embedder import SpladeSparseDocumentEmbedder
from .splade_sparse_text_embedder import SpladeSparseTextEmbedder

__all__ = ["SpladeSparseDocumentEmbedder", "SpladeSparseTextEmbedder"]
