"""SPLADE as ``langchain_milvus``'s ``BaseSparseEmbedding`` (``pip install 'langchain-splade[milvus]'``)."""

from __future__ import annotations

import asyncio
from typing import Any

from splade_onnx import DEFAULT_MODEL, MissingExtraError, SpladeEncoder
from splade_onnx.integration import MILVUS_EMPTY_VECTOR, milvus_vector

from .embeddings import SideEncoder

try:
    from langchain_milvus.utils.sparse import BaseSparseEmbedding
except ImportError as e:  # pragma: no cover - depends on the extra
    raise MissingExtraError(
        "SpladeMilvusSparseEmbedding needs langchain-milvus: pip install 'langchain-splade[milvus]'"
    ) from e

__all__ = ["OOV_QUERY", "SpladeMilvusSparseEmbedding"]

#: What an empty vector becomes (Milvus rejects empty sparse vectors, langchain-milvus#40): the core's
#: ``splade_onnx.integration.MILVUS_EMPTY_VECTOR``, under the name this package has always exported.
OOV_QUERY = MILVUS_EMPTY_VECTOR


class SpladeMilvusSparseEmbedding(BaseSparseEmbedding):
    """SPLADE vectors as ``dict[int, float]`` for ``langchain_milvus.Milvus(builtin_function=None, ...)``."""

    def __init__(self, model: str | SpladeEncoder = DEFAULT_MODEL, **options: Any) -> None:
        self.sides = SideEncoder(model, options)  # the per-side options of SpladeSparseEmbeddings
        self.encoder = self.sides.encoder

    def embed_query(self, query: str) -> dict[int, float]:
        return milvus_vector(self.sides.encode_queries([query])[0])

    def embed_documents(self, texts: list[str]) -> list[dict[int, float]]:
        return [milvus_vector(e) for e in self.sides.encode_documents(texts)]

    async def aembed_query(self, query: str) -> dict[int, float]:
        return await asyncio.to_thread(self.embed_query, query)

    async def aembed_documents(self, texts: list[str]) -> list[dict[int, float]]:
        return await asyncio.to_thread(self.embed_documents, texts)
