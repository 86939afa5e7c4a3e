"""``SpladeRetriever``: a local SPLADE retriever for LlamaIndex on splade-onnx's ``SparseIndex``."""

from __future__ import annotations

import asyncio
import logging
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.indices.base import BaseIndex
from llama_index.core.schema import BaseNode, MetadataMode, NodeWithScore, QueryBundle
from llama_index.core.storage.docstore import BaseDocumentStore, SimpleDocumentStore
from llama_index.core.vector_stores.types import MetadataFilter, MetadataFilters
from llama_index.core.vector_stores.utils import build_metadata_filter_fn, node_to_metadata_dict

from splade_onnx import ArgumentError, ArgumentTypeError, FileMissingError, IndexFormatError, Seismic, SparseIndex
from splade_onnx.integration import EngineName, PayloadFormat, not_single

from .base import SpladeSparseEmbedding

logger = logging.getLogger(__name__)

__all__ = ["SpladeRetriever"]

#: The payload of ``index.npz`` that :meth:`SpladeRetriever.persist` writes: the nodes, top-k and filters.
FORMAT, VERSION = "llama-index-splade-retriever", 2
PAYLOAD = PayloadFormat(FORMAT, VERSION, reader="llama-index-sparse-embeddings-splade")
INDEX_FILE = "index.npz"
#: The 0.1 layout, still read: ``index.npz`` without a payload beside this docstore.
LEGACY_DOCSTORE = "docstore.json"
#: Stands for a nested group's result in its parent (no metadata key holds a NUL).
_GROUP = "\x00splade-group-"


def _filter_fn(filters: MetadataFilters, lookup: Callable[[str], Mapping[str, Any]]) -> Callable[[str], bool]:
    """LlamaIndex's own ``build_metadata_filter_fn`` (what ``SimpleVectorStore`` applies).

    It refuses nested ``MetadataFilters``; here each nested group is evaluated by that same
    function and enters its parent as one filter, ``<group result> == 1``, so every level's
    operators and its AND / OR / NOT are the library's.
    """
    groups = {
        f"{_GROUP}{n}": _filter_fn(f, lookup) for n, f in enumerate(filters.filters) if isinstance(f, MetadataFilters)
    }
    if not groups:
        return build_metadata_filter_fn(lookup, filters)
    flat: list[MetadataFilter | MetadataFilters] = [
        MetadataFilter(key=f"{_GROUP}{n}", value=1) if isinstance(f, MetadataFilters) else f
        for n, f in enumerate(filters.filters)
    ]
    return build_metadata_filter_fn(
        lambda i: {**lookup(i), **{k: int(g(i)) for k, g in groups.items()}},
        MetadataFilters(filters=flat, condition=filters.condition),
    )


class SpladeRetriever(BaseRetriever):
    """SPLADE retrieval over nodes held in memory, exact by default; scores are SPLADE dot products.

    ``filters`` are applied as ``SimpleVectorStore`` applies them, by LlamaIndex's own filter
    function on the same metadata (every operator, AND / OR / NOT), and may be nested.
    ``engine`` is the core ``SparseIndex``'s, validated there: ``"exact"`` (default) or ``"exhaustive"``
    (the same results), or ``"seismic"`` / ``splade_onnx.Seismic(...)`` (approximate;
    ``pip install 'splade-onnx[ann]'``).  It builds the index made here; a given ``index`` keeps its own.
    """

    def __init__(
        self,
        nodes: Sequence[BaseNode],
        sparse_embedding: SpladeSparseEmbedding,
        *,
        similarity_top_k: int = 4,
        filters: MetadataFilters | None = None,
        engine: EngineName | Seismic = "exact",
        index: SparseIndex | None = None,
        **kwargs: Any,
    ) -> None:
        not_single(nodes, "nodes", BaseNode, expected="a list of nodes")
        nodes = list(nodes)
        for pos, n in enumerate(nodes):
            if not isinstance(n, BaseNode):
                raise ArgumentTypeError(f"nodes[{pos}] is a {type(n).__name__}, not a BaseNode")
        if not isinstance(similarity_top_k, int) or similarity_top_k <= 0:
            raise ArgumentError(f"similarity_top_k must be a positive int, got {similarity_top_k!r}")
        if not nodes:
            raise ArgumentError("SpladeRetriever needs at least one node; got an empty list (load documents first)")
        dups = [i for i, c in Counter(n.node_id for n in nodes).items() if c > 1]
        if dups:
            raise ArgumentError(
                f"duplicate node ids: {', '.join(map(repr, dups[:10]))}"
                f"{f', ... ({len(dups)} in all)' if len(dups) > 10 else ''}; each node needs "
                "its own node_id (one of two would never be found)"
            )
        self._embedding = sparse_embedding
        self._nodes = {n.node_id: n for n in nodes}
        self._metadata: dict[str, dict[str, Any]] | None = None  # what filters see, built on first use
        self.filters = filters
        if similarity_top_k > len(self._nodes):
            logger.warning(
                "similarity_top_k=%d is larger than the %d nodes; using %d",
                similarity_top_k,
                len(self._nodes),
                len(self._nodes),
            )
            similarity_top_k = len(self._nodes)
        self.similarity_top_k = similarity_top_k
        if index is None:
            index = SparseIndex(model=sparse_embedding.encoder.identity, engine=engine)  # model checked on load
            texts = [n.get_content(metadata_mode=MetadataMode.EMBED) for n in self._nodes.values()]
            index.add(sparse_embedding.encode_documents(texts), ids=list(self._nodes))
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
        engine: EngineName | Seismic = "exact",
    ) -> SpladeRetriever:
        """Index ``nodes``, or every node of ``index``'s or ``docstore``'s document store."""
        if sum(x is not None for x in (nodes, index, docstore)) != 1:
            raise ArgumentError("pass exactly one of nodes=, index= or docstore=")
        if index is not None:
            docstore = index.docstore
        if docstore is not None:
            nodes = list(docstore.docs.values())
        return cls(
            nodes or [],
            sparse_embedding or SpladeSparseEmbedding(),
            similarity_top_k=similarity_top_k,
            filters=filters,
            engine=engine,
        )

    def _filter_metadata(self) -> dict[str, dict[str, Any]]:
        """Each node's metadata as ``SimpleVectorStore`` stores it for filtering (JSON values, ``doc_id``, ...)."""
        if self._metadata is None:
            meta = {}
            for i, n in self._nodes.items():
                meta[i] = node_to_metadata_dict(n, remove_text=True, flat_metadata=False)
                meta[i].pop("_node_content", None)
            self._metadata = meta
        return self._metadata

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        (q,) = self._embedding.encode_queries([query_bundle.query_str])
        allowed = None
        if self.filters is not None:
            match = _filter_fn(self.filters, self._filter_metadata().__getitem__)
            allowed = [i for i in self._nodes if match(i)]
        hits = self._index.search(q, k=self.similarity_top_k, filter_ids=allowed)
        return [NodeWithScore(node=self._nodes[i], score=s) for i, s in hits]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return await asyncio.to_thread(self._retrieve, query_bundle)

    def persist(self, path: str | os.PathLike[str]) -> None:
        """Write ``path/index.npz``: one file, replaced all-or-nothing.

        It is the core index format, recording the model that made the vectors, with the
        nodes (a ``SimpleDocumentStore``'s JSON), ``similarity_top_k`` and ``filters`` as its
        JSON payload.  Metadata JSON cannot hold (a date, a set, NaN, ...) raises
        :class:`ArgumentError` naming its key before anything is written, and a persist that
        fails or is killed leaves the previous one loadable, with the same results.
        """
        store = SimpleDocumentStore()
        store.add_documents([self._nodes[i] for i in self._index.ids])
        filters = None if self.filters is None else self.filters.model_dump(mode="json")
        payload = {"similarity_top_k": self.similarity_top_k, "filters": filters, "docstore": store.to_dict()}
        Path(path).mkdir(parents=True, exist_ok=True)
        self._index.save(Path(path) / INDEX_FILE, payload=payload, payload_format=PAYLOAD)

    @classmethod
    def from_persist_dir(
        cls,
        path: str | os.PathLike[str],
        *,
        sparse_embedding: SpladeSparseEmbedding | None = None,
        similarity_top_k: int | None = None,
        filters: MetadataFilters | None = None,
        allow_model_mismatch: bool = False,
        engine: EngineName | Seismic = "exact",
    ) -> SpladeRetriever:
        """Read what :meth:`persist` wrote (or the 0.1 layout: ``index.npz`` + ``docstore.json``).

        ``similarity_top_k`` and ``filters`` default to the persisted ones; ``engine`` (not persisted)
        is the one to search with.  A persist made by another model than ``sparse_embedding``'s raises
        ``ModelMismatchError``, since its scores would be meaningless; ``allow_model_mismatch=True``
        loads it anyway, with a warning.
        """
        file, legacy = Path(path) / INDEX_FILE, Path(path) / LEGACY_DOCSTORE
        if not file.is_file():
            raise FileMissingError(f"{file} is missing; expected a folder from SpladeRetriever.persist")

        def read_legacy() -> dict[str, Any]:
            if not legacy.is_file():
                raise FileMissingError(
                    f"{file} holds no nodes and {legacy} is missing; expected a folder from SpladeRetriever.persist"
                )
            try:
                return {"docstore": SimpleDocumentStore.from_persist_path(str(legacy)).to_dict()}
            except (KeyError, TypeError, AttributeError, ValueError) as e:
                raise IndexFormatError(f"{legacy}: malformed ({type(e).__name__}: {e})") from e

        sparse_embedding = sparse_embedding or SpladeSparseEmbedding()
        index = SparseIndex.load(
            file,
            model=sparse_embedding.encoder.identity,
            allow_model_mismatch=allow_model_mismatch,
            payload_format=PAYLOAD,
            legacy_payload=read_legacy,
            engine=engine,
        )
        saved = index.payload
        try:
            docs = SimpleDocumentStore.from_dict(saved["docstore"]).docs
            nodes = [docs[i] for i in index.ids]
            if filters is None and saved.get("filters") is not None:
                filters = MetadataFilters.model_validate(saved["filters"])
        except (KeyError, TypeError, AttributeError, ValueError) as e:
            raise IndexFormatError(f"{path}: malformed, or not the nodes of {file} ({type(e).__name__}: {e})") from e
        top_k = similarity_top_k if similarity_top_k is not None else saved.get("similarity_top_k", 4)
        return cls(nodes, sparse_embedding, similarity_top_k=top_k, filters=filters, index=index)
