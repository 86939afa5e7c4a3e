"""``SpladeRetriever``: a LangChain retriever on splade-onnx's in-process ``SparseIndex``."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables.config import run_in_executor
from pydantic import ConfigDict, Field, PrivateAttr, field_validator

from splade_onnx import SparseIndex

from .embeddings import SpladeSparseEmbeddings

__all__ = ["SpladeRetriever"]


class SpladeRetriever(BaseRetriever):
    """Exact SPLADE retrieval over documents held in memory.

    Build it with :meth:`from_texts` or :meth:`from_documents`; ``invoke(query, k=...)``
    overrides ``k`` for one call.  Each returned document carries its ``score``
    (the SPLADE dot product) in ``metadata["score"]`` and its id in ``Document.id``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    embeddings: SpladeSparseEmbeddings = Field(default_factory=SpladeSparseEmbeddings)
    k: int = 4
    #: Texts or Documents to index at construction (consumed, then cleared).
    documents: list[str | Document] | None = Field(default=None, exclude=True, repr=False)
    _index: SparseIndex = PrivateAttr(default_factory=SparseIndex)
    _docs: dict[str, Document] = PrivateAttr(default_factory=dict)

    @field_validator("k")
    @classmethod
    def _check_k(cls, k: int) -> int:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        return k

    def model_post_init(self, context: Any, /) -> None:
        if self.documents:
            docs = [d if isinstance(d, Document) else Document(page_content=d) for d in self.documents]
            self.add_documents(docs)
        self.documents = None

    @classmethod
    def from_texts(
        cls,
        texts: Iterable[str],
        metadatas: Sequence[dict[str, Any]] | None = None,
        ids: Sequence[str] | None = None,
        *,
        embeddings: SpladeSparseEmbeddings | None = None,
        k: int = 4,
        **kwargs: Any,
    ) -> SpladeRetriever:
        texts = list(texts)
        if metadatas is not None and len(metadatas) != len(texts):
            raise ValueError(f"got {len(metadatas)} metadatas for {len(texts)} texts")
        docs = [Document(page_content=t, metadata=dict(metadatas[i]) if metadatas else {}) for i, t in enumerate(texts)]
        return cls.from_documents(docs, ids=ids, embeddings=embeddings, k=k, **kwargs)

    @classmethod
    def from_documents(
        cls,
        documents: Iterable[Document],
        ids: Sequence[str] | None = None,
        *,
        embeddings: SpladeSparseEmbeddings | None = None,
        k: int = 4,
        **kwargs: Any,
    ) -> SpladeRetriever:
        retriever = cls(embeddings=embeddings or SpladeSparseEmbeddings(), k=k, **kwargs)
        retriever.add_documents(list(documents), ids=ids)
        return retriever

    def add_documents(self, documents: Sequence[Document], ids: Sequence[str] | None = None) -> list[str]:
        """Encode and index ``documents``; ids come from ``ids``, else ``Document.id``, else are generated."""
        if ids is None and all(d.id for d in documents):
            ids = [str(d.id) for d in documents]
        vectors = self.embeddings.encoder.encode_documents([d.page_content for d in documents])
        new_ids = self._index.add(vectors, ids=list(ids) if ids is not None else None)
        for i, d in zip(new_ids, documents):
            self._docs[i] = Document(page_content=d.page_content, metadata=dict(d.metadata), id=i)
        return new_ids

    def add_texts(
        self, texts: Iterable[str], metadatas: Sequence[dict[str, Any]] | None = None, ids: Sequence[str] | None = None
    ) -> list[str]:
        texts = list(texts)
        return self.add_documents([Document(page_content=t, metadata=dict(metadatas[i]) if metadatas else {})
                                   for i, t in enumerate(texts)], ids=ids)  # fmt: skip

    def delete(self, ids: Iterable[str]) -> int:
        """Remove documents by id; unknown ids raise ``KeyError`` and nothing is removed."""
        ids = list(ids)
        removed = self._index.delete(ids)
        for i in ids:
            self._docs.pop(i, None)
        return removed

    def __len__(self) -> int:
        return len(self._index)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None
    ) -> list[Document]:
        k = self.k if k is None else k
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if not len(self._index):
            return []
        (q,) = self.embeddings.encoder.encode_queries([query])
        out = []
        for doc_id, score in self._index.search(q, k=k):
            d = self._docs[doc_id]
            out.append(Document(page_content=d.page_content, metadata={**d.metadata, "score": score}, id=doc_id))
        return out

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, k: int | None = None
    ) -> list[Document]:
        sync_manager = run_manager.get_sync()
        return await run_in_executor(None, self._get_relevant_documents, query, run_manager=sync_manager, k=k)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write ``path/index.npz`` (the core index format) and ``path/documents.json``, each atomically."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        self._index.save(folder / "index.npz")
        payload = {"format": "langchain-splade-documents", "version": 1, "k": self.k,
                   "documents": {i: {"page_content": d.page_content, "metadata": d.metadata}
                                 for i, d in self._docs.items()}}  # fmt: skip
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".documents.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(payload, f)
            os.replace(tmp, folder / "documents.json")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, embeddings: SpladeSparseEmbeddings | None = None, k: int | None = None
    ) -> SpladeRetriever:
        """Read what :meth:`save` wrote; use the same model for ``embeddings`` as when saving."""
        folder = Path(path)
        for name in ("index.npz", "documents.json"):
            if not (folder / name).is_file():
                raise FileNotFoundError(
                    f"{folder / name} is missing; expected a folder written by SpladeRetriever.save"
                )
        payload = json.loads((folder / "documents.json").read_text(encoding="utf-8"))
        retriever = cls(embeddings=embeddings or SpladeSparseEmbeddings(), k=k or payload.get("k", 4))
        retriever._index = SparseIndex.load(folder / "index.npz")
        docs = payload["documents"]
        if set(docs) != set(retriever._index.ids):
            raise ValueError(f"{folder}: documents.json and index.npz disagree on the document ids")
        retriever._docs = {i: Document(page_content=d["page_content"], metadata=d["metadata"], id=i)
                           for i, d in docs.items()}  # fmt: skip
        return retriever
