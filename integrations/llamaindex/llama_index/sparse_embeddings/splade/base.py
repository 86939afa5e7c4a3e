"""``SpladeSparseEmbedding``: LlamaIndex's ``BaseSparseEmbedding`` on splade-onnx."""

from __future__ import annotations

import asyncio
from typing import Any

from llama_index.core.base.embeddings.base_sparse import BaseSparseEmbedding, SparseEmbedding
from llama_index.core.bridge.pydantic import Field, PrivateAttr

from splade_onnx import DEFAULT_MODEL, ArgumentTypeError, EncodeOptions, SpladeEncoder
from splade_onnx import SparseEmbedding as CoreSparseEmbedding
from splade_onnx.integration import not_single

__all__ = ["SpladeSparseEmbedding", "to_qdrant_sparse_fns"]


class SpladeSparseEmbedding(BaseSparseEmbedding):
    """SPLADE vectors as ``dict[int, float]`` (Python ints and floats).

    ``model_name`` defaults to ``splade_onnx.DEFAULT_MODEL``; ``query_model`` (a two-tower
    pair's query checkpoint), ``revision``, ``cache_dir``, ``local_files_only``, ``max_length``,
    ``quantize``, ``projection``, ``threads``, ``providers`` and ``query_cache`` (an LRU cache of
    the last N distinct query vectors) go to ``SpladeEncoder.from_pretrained``; pass ``encoder=``
    to reuse a loaded one.  Per side,
    ``document_top_k``/``document_min_weight`` and ``query_top_k``/``query_min_weight`` prune
    the vectors and ``long_documents="windows"`` (with ``stride``) encodes every token of long
    documents; the core checks them at construction.  Batches are encoded in one call, queries use the query side, a
    bare ``str`` given as a batch is a ``TypeError`` (not one vector per character), and async
    methods run in a worker thread so the event loop stays free.
    """

    model_name: str = Field(default=DEFAULT_MODEL, description="registry name, HF repo id or folder")
    query_model: str | None = Field(default=None, description="the query checkpoint of a two-tower pair")
    revision: str | None = Field(default=None, description="a Hub revision (branch, tag or commit)")
    cache_dir: str | None = Field(default=None)
    local_files_only: bool = Field(default=False, description="never download: local folders and caches only")
    max_length: int | None = Field(default=None, description="truncate texts at this many tokens")
    quantize: str | None = Field(default=None, description="None or 'int8'")
    projection: str = Field(default="auto", description="'auto', 'dense' or 'pruned' (same vectors)")
    threads: int | None = Field(default=None)
    providers: list[Any] | None = Field(default=None, description="onnxruntime execution providers")
    document_top_k: int | None = Field(default=None, description="keep each document's k heaviest terms")
    document_min_weight: float | None = Field(default=None, description="drop document weights below this")
    query_top_k: int | None = Field(default=None, description="keep each query's k heaviest terms")
    query_min_weight: float | None = Field(default=None, description="drop query weights below this")
    long_documents: str = Field(default="truncate", description="'truncate' or 'windows' (every token)")
    stride: int | None = Field(default=None, description="tokens shared by consecutive windows")
    query_cache: int = Field(default=0, description="keep the vectors of the last N distinct queries (0: off)")
    _encoder: SpladeEncoder = PrivateAttr()
    _documents: EncodeOptions = PrivateAttr()
    _queries: EncodeOptions = PrivateAttr()

    def __init__(self, encoder: SpladeEncoder | None = None, **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - set(type(self).model_fields))
        if unknown:
            raise ArgumentTypeError(
                f"unknown option(s) {unknown} for SpladeSparseEmbedding; valid: {sorted(type(self).model_fields)}"
            )
        super().__init__(**kwargs)
        if encoder is not None:
            self._encoder = encoder
            self.model_name = encoder.name
        else:
            self._encoder = SpladeEncoder.from_pretrained(
                self.model_name,
                query=self.query_model,
                revision=self.revision,
                cache_dir=self.cache_dir,
                local_files_only=self.local_files_only,
                max_length=self.max_length,
                quantize=self.quantize,
                projection=self.projection,
                threads=self.threads,
                providers=self.providers,
                query_cache=self.query_cache,
            )
        self._documents = EncodeOptions(
            top_k=self.document_top_k,
            min_weight=self.document_min_weight,
            long_documents=self.long_documents,
            stride=self.stride,
        )
        self._queries = EncodeOptions(top_k=self.query_top_k, min_weight=self.query_min_weight)
        self._encoder.check_options(self._documents, task="document")  # now, before any text
        self._encoder.check_options(self._queries, task="query")

    def encode_documents(self, texts: list[str]) -> list[CoreSparseEmbedding]:
        """Document vectors with this embedding's document options (pruning, windows)."""
        return self._encoder.encode_documents(texts, options=self._documents)

    def encode_queries(self, texts: list[str]) -> list[CoreSparseEmbedding]:
        """Query vectors from the model's query side, with this embedding's query options."""
        return self._encoder.encode_queries(texts, options=self._queries)

    @classmethod
    def class_name(cls) -> str:
        return "SpladeSparseEmbedding"

    @property
    def encoder(self) -> SpladeEncoder:
        return self._encoder

    def get_text_embedding_batch(
        self, texts: list[str], show_progress: bool = False, **kwargs: Any
    ) -> list[SparseEmbedding]:
        not_single(texts, "texts", expected="a list of str")  # the base class would batch its characters
        return super().get_text_embedding_batch(texts, show_progress=show_progress, **kwargs)

    async def aget_text_embedding_batch(self, texts: list[str], show_progress: bool = False) -> list[SparseEmbedding]:
        not_single(texts, "texts", expected="a list of str")
        return await super().aget_text_embedding_batch(texts, show_progress=show_progress)

    def _get_query_embedding(self, query: str) -> SparseEmbedding:
        return self.encode_queries([query])[0].as_dict()

    def _get_text_embedding(self, text: str) -> SparseEmbedding:
        return self.encode_documents([text])[0].as_dict()

    def _get_text_embeddings(self, texts: list[str]) -> list[SparseEmbedding]:
        return [e.as_dict() for e in self.encode_documents(texts)]

    async def _aget_query_embedding(self, query: str) -> SparseEmbedding:
        return await asyncio.to_thread(self._get_query_embedding, query)

    async def _aget_text_embedding(self, text: str) -> SparseEmbedding:
        return await asyncio.to_thread(self._get_text_embedding, text)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[SparseEmbedding]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)


def to_qdrant_sparse_fns(embedding: SpladeSparseEmbedding) -> tuple[Any, Any]:
    """``(sparse_doc_fn, sparse_query_fn)`` for ``QdrantVectorStore(enable_hybrid=True, ...)``.

    Both take a list of texts; a bare ``str`` is a ``TypeError`` (the core checks it).
    """

    def split(vectors: list[Any]) -> tuple[list[list[int]], list[list[float]]]:
        return [v.indices.tolist() for v in vectors], [v.values.tolist() for v in vectors]

    def doc_fn(texts: list[str]) -> tuple[list[list[int]], list[list[float]]]:
        return split(embedding.encode_documents(texts))

    def query_fn(texts: list[str]) -> tuple[list[list[int]], list[list[float]]]:
        return split(embedding.encode_queries(texts))

    return doc_fn, query_fn
