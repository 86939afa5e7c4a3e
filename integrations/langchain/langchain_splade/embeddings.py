"""Sparse embeddings in the shapes LangChain's Qdrant and Milvus stores accept, and the per-side options."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from splade_onnx import DEFAULT_MODEL, ArgumentError, EncodeOptions, SparseEmbedding, SpladeEncoder

from .sparse_types import SparseEmbeddings, SparseVector

__all__ = ["SideEncoder", "SparseVector", "SpladeSparseEmbeddings", "load_encoder", "sparse_vector"]


def sparse_vector(emb: SparseEmbedding) -> SparseVector:
    """``emb`` as a :class:`SparseVector`: ``indices`` and ``values`` as plain Python ``int`` and ``float`` lists."""
    return SparseVector(indices=emb.indices.tolist(), values=emb.values.tolist())


#: Encoding options per side, by the names the adapters take -> the core's option names.
DOCUMENT_OPTIONS = {
    "document_top_k": "top_k",
    "document_min_weight": "min_weight",
    "long_documents": "long_documents",
    "stride": "stride",
}
QUERY_OPTIONS = {"query_top_k": "top_k", "query_min_weight": "min_weight"}


def side_options(options: dict[str, Any], names: dict[str, str], batch_size: int | None = None) -> EncodeOptions:
    """Take the options named in ``names`` out of ``options``, as one side's :class:`~splade_onnx.EncodeOptions`."""
    return EncodeOptions(
        batch_size=batch_size, **{core: options.pop(name) for name, core in names.items() if name in options}
    )


def load_encoder(model: str | SpladeEncoder, options: dict[str, Any]) -> SpladeEncoder:
    """An existing encoder as is, or ``SpladeEncoder.from_pretrained(model, **options)``
    (``query_model`` is its ``query=``: the query checkpoint of a two-tower pair)."""
    if isinstance(model, SpladeEncoder):
        if options:
            raise ArgumentError(f"options {sorted(options)} apply when loading a model by name, not to an encoder")
        return model
    if "query_model" in options:
        options = dict(options)
        options["query"] = options.pop("query_model")
    return SpladeEncoder.from_pretrained(model, **options)


class SideEncoder:
    """An encoder with each side's options bound: what every class of this package encodes through.

    ``document_top_k``/``document_min_weight`` and ``query_top_k``/``query_min_weight`` prune each
    side; ``long_documents="windows"`` (and ``stride``) encodes long documents in windows; the rest
    goes to ``SpladeEncoder.from_pretrained``.  The options are checked by the core here, before
    any text is encoded.
    """

    def __init__(self, model: str | SpladeEncoder, options: dict[str, Any], *, batch_size: int | None = None) -> None:
        options = dict(options)
        self.document_options = side_options(options, DOCUMENT_OPTIONS, batch_size)
        self.query_options = side_options(options, QUERY_OPTIONS)
        self.encoder = load_encoder(model, options)
        self.encoder.check_options(self.document_options, task="document")
        self.encoder.check_options(self.query_options, task="query")

    def encode_documents(self, texts: Sequence[str]) -> list[SparseEmbedding]:
        return self.encoder.encode_documents(texts, options=self.document_options)

    def encode_queries(self, texts: Sequence[str]) -> list[SparseEmbedding]:
        return self.encoder.encode_queries(texts, options=self.query_options)


class SpladeSparseEmbeddings(SparseEmbeddings):
    """SPLADE for ``QdrantVectorStore(sparse_embedding=...)`` (SPARSE and HYBRID modes).

    With the ``[qdrant]`` extra installed it is a ``langchain_qdrant.SparseEmbeddings`` and returns
    ``langchain_qdrant.SparseVector``; without it, stand-ins of the same shape
    (:mod:`langchain_splade.sparse_types`).

    ``model`` is a registry name, HF repo id, local folder or an existing
    :class:`splade_onnx.SpladeEncoder` (default ``splade_onnx.DEFAULT_MODEL``).  Per side:
    ``document_top_k``, ``document_min_weight``, ``query_top_k``, ``query_min_weight`` prune the
    vectors, ``long_documents="windows"`` (with ``stride``) encodes every token of long
    documents, and ``query_model`` names the query checkpoint of a two-tower pair.  Any other
    keyword (``max_length``, ``quantize``, ``threads``, ``cache_dir``, ...) goes to
    ``SpladeEncoder.from_pretrained`` and an unknown one raises ``TypeError`` there.
    Queries use the model's query side (the same network, a query tower, or the static table
    of an inference-free model).  A bare ``str`` given to ``embed_documents`` is a
    ``TypeError``, not one vector per character.  Async methods run in a worker thread
    (onnxruntime releases the GIL), so the event loop stays free.
    """

    def __init__(
        self, model: str | SpladeEncoder = DEFAULT_MODEL, *, batch_size: int | None = None, **options: Any
    ) -> None:
        self.model = model if isinstance(model, str) else model.name
        self.batch_size = batch_size
        self.sides = SideEncoder(model, options, batch_size=batch_size)
        self.encoder = self.sides.encoder

    def __repr__(self) -> str:
        return f"SpladeSparseEmbeddings(model={self.model!r}, batch_size={self.batch_size})"

    def embed_documents(self, texts: Sequence[str]) -> list[SparseVector]:
        return [sparse_vector(e) for e in self.sides.encode_documents(texts)]

    def embed_query(self, text: str) -> SparseVector:
        return sparse_vector(self.sides.encode_queries([text])[0])

    async def aembed_documents(self, texts: Sequence[str]) -> list[SparseVector]:
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> SparseVector:
        return await asyncio.to_thread(self.embed_query, text)
