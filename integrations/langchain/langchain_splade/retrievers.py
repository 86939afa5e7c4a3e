"""``SpladeRetriever``: a LangChain retriever on splade-onnx's in-process ``SparseIndex``."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables.config import run_in_executor
from pydantic import ConfigDict, Field, PrivateAttr, SkipValidation, field_validator

from splade_onnx import ArgumentError, ArgumentTypeError, FileMissingError, IndexFormatError, Seismic, SparseIndex
from splade_onnx.integration import EngineName, PayloadFormat, not_single

from .embeddings import SpladeSparseEmbeddings

__all__ = ["SpladeRetriever"]

#: The payload of ``index.npz`` that :meth:`SpladeRetriever.save` writes: ``k`` and the documents.
FORMAT, VERSION = "langchain-splade-retriever", 2
PAYLOAD = PayloadFormat(FORMAT, VERSION, reader="langchain-splade")
INDEX_FILE = "index.npz"
#: The 0.1 layout, still read: ``index.npz`` without a payload beside this file.
LEGACY_FILE, LEGACY_FORMAT = "documents.json", "langchain-splade-documents"
LEGACY_PAYLOAD = PayloadFormat(LEGACY_FORMAT, 1, reader="langchain-splade")


class SpladeRetriever(BaseRetriever):
    """SPLADE retrieval over documents held in memory, exact by default.

    Build it with :meth:`from_texts` or :meth:`from_documents`; ``invoke(query, k=...)``
    overrides ``k`` for one call.  Each returned document carries its ``score``
    (the SPLADE dot product) in ``metadata["score"]`` and its id in ``Document.id``.
    ``engine`` is the core ``SparseIndex``'s: ``"exact"`` (default) or ``"exhaustive"`` (the same
    results), or ``"seismic"`` / ``splade_onnx.Seismic(...)`` (approximate; ``pip install 'splade-onnx[ann]'``).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    embeddings: SpladeSparseEmbeddings = Field(default_factory=SpladeSparseEmbeddings)
    k: int = 4
    #: The core index's search engine, checked by ``SparseIndex`` only: an unknown name is a ``ValueError`` (pydantic
    #: wraps the core's ``ArgumentError``), another type the core's ``ArgumentTypeError``.
    engine: SkipValidation[EngineName | Seismic] = "exact"
    #: Texts or Documents to index at construction (consumed, then cleared).
    documents: list[str | Document] | None = Field(default=None, exclude=True, repr=False)
    _index: SparseIndex = PrivateAttr()
    _docs: dict[str, Document] = PrivateAttr(default_factory=dict)

    @field_validator("k")
    @classmethod
    def _check_k(cls, k: int) -> int:
        if k < 1:
            raise ArgumentError(f"k must be >= 1, got {k}")
        return k

    def model_post_init(self, context: Any, /) -> None:
        self._index = SparseIndex(model=self.embeddings.encoder.identity, engine=self.engine)  # model checked on load
        if self.documents:
            self.add_documents([d if isinstance(d, Document) else Document(page_content=d) for d in self.documents])
        self.documents = None

    @classmethod
    def from_texts(
        cls,
        texts: Iterable[str],
        metadatas: Sequence[Mapping[str, Any]] | None = None,
        ids: Sequence[str] | None = None,
        *,
        embeddings: SpladeSparseEmbeddings | None = None,
        k: int = 4,
        **kwargs: Any,
    ) -> SpladeRetriever:
        not_single(texts, "texts")  # before the model loads
        retriever = cls(embeddings=embeddings or SpladeSparseEmbeddings(), k=k, **kwargs)
        retriever.add_texts(texts, metadatas=metadatas, ids=ids)
        return retriever

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
        not_single(documents, "documents", Document)
        retriever = cls(embeddings=embeddings or SpladeSparseEmbeddings(), k=k, **kwargs)
        retriever.add_documents(list(documents), ids=ids)
        return retriever

    def add_documents(self, documents: Sequence[Document], ids: Sequence[str] | None = None) -> list[str]:
        """Encode and index ``documents``; returns their ids.

        Each id is ``ids[i]`` when ``ids`` is given, else ``Document.id``, else generated.  An id
        given twice or already in the index raises :class:`ArgumentError` listing them, and
        nothing is added.
        """
        not_single(documents, "documents", Document)
        documents = list(documents)
        for pos, d in enumerate(documents):
            if not isinstance(d, Document):
                raise ArgumentTypeError(f"documents[{pos}] is a {type(d).__name__}, not a Document")
        if ids is not None:
            not_single(ids, "ids")
            ids = list(ids)
            if len(ids) != len(documents):
                raise ArgumentError(f"got {len(documents)} documents but {len(ids)} ids")
        # Checked before encoding, so a bad id costs nothing; the index generates ids where None.
        chosen = self._index.check_ids(ids if ids is not None else [d.id or None for d in documents])
        vectors = self.embeddings.sides.encode_documents([d.page_content for d in documents])
        added = self._index.add(vectors, ids=chosen)
        for i, d in zip(added, documents):
            self._docs[i] = Document(page_content=d.page_content, metadata=dict(d.metadata), id=i)
        return added

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: Sequence[Mapping[str, Any]] | None = None,
        ids: Sequence[str] | None = None,
    ) -> list[str]:
        not_single(texts, "texts")
        texts = list(texts)
        if metadatas is not None:
            not_single(metadatas, "metadatas", Mapping)
            metadatas = list(metadatas)
            if len(metadatas) != len(texts):
                raise ArgumentError(f"got {len(metadatas)} metadatas for {len(texts)} texts")
        return self.add_documents(
            [Document(page_content=t, metadata=dict(metadatas[i]) if metadatas else {}) for i, t in enumerate(texts)],
            ids=ids,
        )

    def delete(self, ids: Iterable[str]) -> int:
        """Remove documents by id; unknown ids raise ``KeyError`` and nothing is removed."""
        not_single(ids, "ids")
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
            raise ArgumentError(f"k must be >= 1, got {k}")
        if not len(self._index):
            return []
        (q,) = self.embeddings.sides.encode_queries([query])
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
        """Write ``path/index.npz``: one file, replaced all-or-nothing.

        It is the core index format, recording the model that made the vectors, with the
        documents and ``k`` as its JSON payload.  Metadata JSON cannot hold (a date, a set,
        NaN, ...) raises :class:`ArgumentError` naming its key before anything is written, and
        a save that fails or is killed leaves the previous one loadable, with the same results.
        """
        docs = {
            i: {"page_content": self._docs[i].page_content, "metadata": self._docs[i].metadata} for i in self._index.ids
        }
        Path(path).mkdir(parents=True, exist_ok=True)
        self._index.save(Path(path) / INDEX_FILE, payload={"k": self.k, "documents": docs}, payload_format=PAYLOAD)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        embeddings: SpladeSparseEmbeddings | None = None,
        k: int | None = None,
        allow_model_mismatch: bool = False,
        engine: EngineName | Seismic = "exact",
    ) -> SpladeRetriever:
        """Read what :meth:`save` wrote (or the 0.1 layout: ``index.npz`` + ``documents.json``), to search
        with ``engine`` (the engine is not saved).

        A save made by another model than ``embeddings``' raises ``ModelMismatchError``, since
        its scores would be meaningless; ``allow_model_mismatch=True`` loads it anyway, with a warning.
        """
        file, legacy = Path(path) / INDEX_FILE, Path(path) / LEGACY_FILE
        if not file.is_file():
            raise FileMissingError(f"{file} is missing; expected a folder written by SpladeRetriever.save")

        def read_legacy() -> dict[str, Any]:
            if not legacy.is_file():
                raise FileMissingError(
                    f"{file} holds no documents and {legacy} is missing; expected a folder "
                    "written by SpladeRetriever.save"
                )
            return LEGACY_PAYLOAD.check(json.loads(legacy.read_text(encoding="utf-8")), where=legacy)

        embeddings = embeddings or SpladeSparseEmbeddings()
        index = SparseIndex.load(
            file,
            model=embeddings.encoder.identity,
            allow_model_mismatch=allow_model_mismatch,
            payload_format=PAYLOAD,
            legacy_payload=read_legacy,
            engine=engine,
        )
        saved = index.payload
        try:
            docs = {
                i: Document(page_content=d["page_content"], metadata=d["metadata"], id=i)
                for i, d in saved["documents"].items()
            }
        except (KeyError, TypeError, AttributeError, ValueError) as e:
            raise IndexFormatError(f"{path}: malformed documents ({e})") from e
        if set(docs) != set(index.ids):
            raise IndexFormatError(f"{path}: the documents and the index disagree on the document ids")
        retriever = cls(embeddings=embeddings, k=k if k is not None else saved.get("k", 4), engine=engine)
        retriever._index, retriever._docs = index, docs
        return retriever
