"""Sparse embeddings in the shapes LangChain's Qdrant and Milvus stores accept."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from splade_onnx import DEFAULT_MODEL, ArgumentError, SparseEmbedding, SpladeEncoder

__all__ = ["SparseVector", "SpladeSparseEmbeddings", "load_encoder"]


@dataclass(frozen=True)
class SparseVector:
    """``indices`` and ``values`` as plain Python lists (what ``langchain_qdrant`` reads)."""

    indices: list[int]
    values: list[float]

    @classmethod
    def of(cls, emb: SparseEmbedding) -> SparseVector:
        return cls(indices=emb.indices.tolist(), values=emb.values.tolist())


def load_encoder(model: str | SpladeEncoder, options: dict[str, Any]) -> SpladeEncoder:
    """An existing encoder as is, or ``SpladeEncoder.from_pretrained(model, **options)``."""
    if isinstance(model, SpladeEncoder):
        if options:
            raise ArgumentError(f"options {sorted(options)} apply when loading a model by name, not to an encoder")
        return model
    return SpladeEncoder.from_pretrained(model, **options)


class SpladeSparseEmbeddings:
    """SPLADE for ``QdrantVectorStore(sparse_embedding=...)`` (SPARSE and HYBRID modes).

    ``model`` is a registry name, HF repo id, local folder or an existing
    :class:`splade_onnx.SpladeEncoder` (default ``splade_onnx.DEFAULT_MODEL``); any other
    keyword (``max_length``, ``quantize``, ``threads``, ``cache_dir``, ...) goes to
    ``SpladeEncoder.from_pretrained`` and an unknown one raises ``TypeError`` there.
    Queries use the model's query side.  A bare ``str`` given to ``embed_documents`` is a
    ``TypeError``, not one vector per character.  Async methods run in a worker thread
    (onnxruntime releases the GIL), so the event loop stays free.
    """

    def __init__(self, model: str | SpladeEncoder = DEFAULT_MODEL, *, batch_size: int | None = None,
                 **options: Any) -> None:  # fmt: skip
        self.model = model if isinstance(model, str) else model.name
        self.batch_size = batch_size
        self.encoder = load_encoder(model, options)

    def __repr__(self) -> str:
        return f"SpladeSparseEmbeddings(model={self.model!r}, batch_size={self.batch_size})"

    def embed_documents(self, texts: Sequence[str]) -> list[SparseVector]:
        return [SparseVector.of(e) for e in self.encoder.encode_documents(texts, batch_size=self.batch_size)]

    def embed_query(self, text: str) -> SparseVector:
        return SparseVector.of(self.encoder.encode_queries([text])[0])

    async def aembed_documents(self, texts: Sequence[str]) -> list[SparseVector]:
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> SparseVector:
        return await asyncio.to_thread(self.embed_query, text)
