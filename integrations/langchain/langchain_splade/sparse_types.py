"""The base class and the vector type of ``SpladeSparseEmbeddings``, chosen once, at import time.

With the ``[qdrant]`` extra installed, they are langchain-qdrant's own ``SparseEmbeddings`` and
``SparseVector``: ``SpladeSparseEmbeddings`` is then a real ``langchain_qdrant.SparseEmbeddings``,
and ``QdrantVectorStore(sparse_embedding=...)`` type-checks.  Without it (no langchain-qdrant, or
no qdrant-client, which langchain-qdrant imports), they are stand-ins of the same shape defined
here: a pydantic ``SparseVector`` with ``indices: list[int]`` and ``values: list[float]`` (extra
fields forbidden), and an abstract ``SparseEmbeddings`` with the same four methods.  So the
retriever and the Milvus embedding work either way, and qdrant-client stays optional.

Type checkers see langchain-qdrant's classes when they can import it, as at run time.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod

from pydantic import BaseModel

__all__ = ["FROM_LANGCHAIN_QDRANT", "SparseEmbeddings", "SparseVector"]

try:
    from langchain_qdrant import SparseEmbeddings, SparseVector

    #: Whether ``SparseEmbeddings`` and ``SparseVector`` are langchain-qdrant's (the ``[qdrant]`` extra).
    FROM_LANGCHAIN_QDRANT = True
except ImportError:
    FROM_LANGCHAIN_QDRANT = False

    class SparseVector(BaseModel, extra="forbid"):  # type: ignore[no-redef]
        """Unique ``indices`` and their ``values``, as plain Python lists (langchain-qdrant's shape)."""

        indices: list[int]
        values: list[float]

    class SparseEmbeddings(ABC):  # type: ignore[no-redef]
        """What ``langchain_qdrant.SparseEmbeddings`` declares: embed documents and queries, sync and async."""

        @abstractmethod
        def embed_documents(self, texts: list[str]) -> list[SparseVector]:
            """One vector per document."""

        @abstractmethod
        def embed_query(self, text: str) -> SparseVector:
            """The vector of one query."""

        async def aembed_documents(self, texts: list[str]) -> list[SparseVector]:
            return await asyncio.to_thread(self.embed_documents, texts)

        async def aembed_query(self, text: str) -> SparseVector:
            return await asyncio.to_thread(self.embed_query, text)
