"""``SpladeMilvusSparseFunction``: SPLADE as the Milvus store's ``BaseSparseEmbeddingFunction``.

Needs the ``[milvus]`` extra (``llama-index-vector-stores-milvus``, which pins ``pymilvus<3``;
keep it out of an environment that has ``langchain-milvus``, which needs ``pymilvus>=3``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from splade_onnx import ArgumentTypeError, MissingExtraError
from splade_onnx.integration import MILVUS_EMPTY_VECTOR, milvus_vector

from .base import SpladeSparseEmbedding

try:
    from llama_index.vector_stores.milvus.utils import BaseSparseEmbeddingFunction
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingExtraError(
        "SpladeMilvusSparseFunction needs llama-index-vector-stores-milvus; "
        "install it with: pip install 'llama-index-sparse-embeddings-splade[milvus]'"
    ) from exc

__all__ = ["OOV_VECTOR", "SpladeMilvusSparseFunction"]

#: What an empty vector becomes (Milvus rejects empty sparse vectors): the core's
#: ``splade_onnx.integration.MILVUS_EMPTY_VECTOR``, under the name this package has always exported.
OOV_VECTOR: dict[int, float] = MILVUS_EMPTY_VECTOR


class SpladeMilvusSparseFunction(BaseSparseEmbeddingFunction):  # type: ignore[misc]
    """SPLADE for ``MilvusVectorStore(enable_sparse=True, sparse_embedding_function=...)``.

    Pass a loaded :class:`SpladeSparseEmbedding` to share its encoder, or the same keyword
    options it takes (``model_name``, ``max_length``, ``quantize``, ``threads``, ``cache_dir``).
    Documents go through the document side and queries through the query side; the async
    methods run in a worker thread so the event loop stays free.
    """

    def __init__(self, embedding: SpladeSparseEmbedding | None = None, **options: Any) -> None:
        if embedding is not None and options:
            raise ArgumentTypeError(f"pass either embedding= or options, not both; got options {sorted(options)}")
        self.embedding = embedding if embedding is not None else SpladeSparseEmbedding(**options)

    def encode_queries(self, queries: list[str]) -> list[dict[int, float]]:
        return [milvus_vector(e) for e in self.embedding.encode_queries(queries)]

    def encode_documents(self, documents: list[str]) -> list[dict[int, float]]:
        return [milvus_vector(e) for e in self.embedding.encode_documents(documents)]

    async def async_encode_queries(self, queries: list[str]) -> list[dict[int, float]]:
        return await asyncio.to_thread(self.encode_queries, queries)

    async def async_encode_documents(self, documents: list[str]) -> list[dict[int, float]]:
        return await asyncio.to_thread(self.encode_documents, documents)
