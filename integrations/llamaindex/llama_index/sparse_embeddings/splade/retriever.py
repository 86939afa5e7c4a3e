"""``SpladeRetriever``: a local SPLADE retriever for LlamaIndex on splade-onnx's ``SparseIndex``."""

from __future__ import annotations

import asyncio
import logging
import operator
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.indices.base import BaseIndex
from llama_index.core.schema import BaseNode, MetadataMode, NodeWithScore, QueryBundle
from llama_index.core.storage.docstore import BaseDocumentStore, SimpleDocumentStore
from llama_index.core.vector_stores.types import FilterCondition, FilterOperator, MetadataFilters

from splade_onnx import SparseIndex

from .base import SpladeSparseEmbedding

logger = logging.getLogger(__name__)

__all__ = ["SpladeRetriever"]

_OPS: dict[FilterOperator, Callable[[Any, Any], bool]] = {
    FilterOperator.EQ: operator.eq,
    FilterOperator.NE: operator.ne,
    FilterOperator.GT: operator.gt,
    FilterOperator.GTE: operator.ge,
    FilterOperator.LT: operator.lt,
    FilterOperator.LTE: operator.le,
    FilterOperator.IN: lambda v, f: v in f,
    FilterOperator.NIN: lambda v, f: v not in f,
}


def _matches(metadata: dict[str, Any], filters: MetadataFilters) -> bool:
    results = []
    for f in filters.filters:
        if isinstance(f, MetadataFilters):
            results.append(_matches(metadata, f))
            continue
        op = _OPS.get(f.operator)
        if op is None:
            raise ValueError(
                f"filter operator {f.operator!r} is not supported; supported: {sorted(o.value for o in _OPS)}"
            )
        results.append(f.key in metadata and op(metadata[f.key], f.value))
    return all(results) if filters.condition != FilterCondition.OR else any(results)


class SpladeRetriever(BaseRetriever):
    """Exact SPLADE retrieval over nodes held in memory; scores are SPLADE dot products."""

    def __init__(
        self,
        nodes: Sequence[BaseNode],
        sparse_embedding: SpladeSparseEmbedding,
        *,
        similarity_top_k: int = 4,
        filters: MetadataFilters | None = None,
        index: SparseIndex | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(similarity_top_k, int) or similarity_top_k <= 0:
            raise ValueError(f"similarity_top_k must be a positive int, got {similarity_top_k!r}")
        if not nodes:
            raise ValueError("SpladeRetriever needs at least one node; got an empty list (load documents first)")
        self._embedding = sparse_embedding
        self._nodes = {n.node_id: n for n in nodes}
        self.filters = filters
        if similarity_top_k > len(self._nodes):
            logger.warning("similarity_top_k=%d is larger than the %d nodes; using %d",
                           similarity_top_k, len(self._nodes), len(self._nodes))  # fmt: skip
            similarity_top_k = len(self._nodes)
        self.similarity_top_k = similarity_top_k
        if index is None:
            index = SparseIndex()
            texts = [n.get_content(metadata_mode=MetadataMode.EMBED) for n in self._nodes.values()]
            index.add(sparse_embedding.encoder.encode_documents(texts), ids=list(self._nodes))
        self._index = index
        super().__init__(**kwargs)

    @classmethod
    def from_defaults(
        cls,
        *,
        nodes: Sequence[BaseNode] | None = None,
        index: BaseIndex[Any] | None = None,
        docstore: BaseDocumentStore | None = None,
        sparse_embedding: SpladeSparseEmbedding | None = None,
        similarity_top_k: int = 4,
        filters: MetadataFilters | None = None,
    ) -> SpladeRetriever:
        """Index ``nodes``, or every node of ``index``'s or ``docstore``'s document store."""
        if sum(x is not None for x in (nodes, index, docstore)) != 1:
            raise ValueError("pass exactly one of nodes=, index= or docstore=")
        if index is not None:
            docstore = index.docstore
        if docstore is not None:
            nodes = list(docstore.docs.values())
        return cls(list(nodes or []), sparse_embedding or SpladeSparseEmbedding(), similarity_top_k=similarity_top_k,
                   filters=filters)  # fmt: skip

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        (q,) = self._embedding.encoder.encode_queries([query_bundle.query_str])
        allowed = None
        if self.filters is not None:
            allowed = [i for i, n in self._nodes.items() if _matches(n.metadata, self.filters)]
        hits = self._index.search(q, k=self.similarity_top_k, filter_ids=allowed)
        return [NodeWithScore(node=self._nodes[i], score=s) for i, s in hits]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return await asyncio.to_thread(self._retrieve, query_bundle)

    def persist(self, path: str | os.PathLike[str]) -> None:
        """``path/index.npz`` (the core index format) and ``path/docstore.json``."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        self._index.save(folder / "index.npz")
        store = SimpleDocumentStore()
        store.add_documents(list(self._nodes.values()))
        store.persist(str(folder / "docstore.json"))

    @classmethod
    def from_persist_dir(
        cls, path: str | os.PathLike[str], *, sparse_embedding: SpladeSparseEmbedding | None = None,
        similarity_top_k: int = 4,
    ) -> SpladeRetriever:  # fmt: skip
        folder = Path(path)
        for name in ("index.npz", "docstore.json"):
            if not (folder / name).is_file():
                raise FileNotFoundError(f"{folder / name} is missing; expected a folder from SpladeRetriever.persist")
        store = SimpleDocumentStore.from_persist_path(str(folder / "docstore.json"))
        index = SparseIndex.load(folder / "index.npz")
        nodes = [store.docs[i] for i in index.ids]
        return cls(nodes, sparse_embedding or SpladeSparseEmbedding(), similarity_top_k=similarity_top_k, index=index)
