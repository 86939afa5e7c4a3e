"""QdrantVectorStore in SPARSE and HYBRID modes with SpladeSparseEmbeddings, on qdrant-client's local mode."""

from __future__ import annotations

import uuid
from pathlib import Path

import langchain_qdrant
import langchain_splade
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_qdrant import QdrantVectorStore, RetrievalMode
from langchain_splade import SpladeRetriever, SpladeSparseEmbeddings, sparse_types
from qdrant_client import QdrantClient

from conftest import SEED

IDS = [str(uuid.UUID(int=i + 1)) for i in range(len(SEED))]
QUERIES = ["How much did the mission cost?", "rocket launch site", "moon landing date", "lunar rover"]
# The dense side of HYBRID is a deterministic hash embedding: the sparse side is under test here.
DENSE = DeterministicFakeEmbedding(size=16)


@pytest.fixture(scope="module")
def reference(embeddings: SpladeSparseEmbeddings) -> SpladeRetriever:
    return SpladeRetriever.from_texts(SEED, ids=IDS, embeddings=embeddings, k=3)


def ranking(docs: list) -> list[int]:  # type: ignore[type-arg]
    return [d.metadata["n"] for d in docs]


def test_with_the_extra_the_types_are_langchain_qdrants(embeddings: SpladeSparseEmbeddings) -> None:
    """With langchain-qdrant installed, the embeddings are its SparseEmbeddings and return its SparseVector."""
    assert sparse_types.FROM_LANGCHAIN_QDRANT
    assert isinstance(embeddings, langchain_qdrant.SparseEmbeddings)
    assert langchain_splade.SparseVector is langchain_qdrant.SparseVector
    assert sparse_types.SparseEmbeddings is langchain_qdrant.SparseEmbeddings
    q = embeddings.embed_query("lunar rover")
    docs = embeddings.embed_documents(SEED[:2])
    assert type(q) is langchain_qdrant.SparseVector and {type(d) for d in docs} == {langchain_qdrant.SparseVector}
    (core,) = embeddings.encoder.encode_queries(["lunar rover"])
    assert q.model_dump() == {"indices": core.indices.tolist(), "values": core.values.tolist()}


@pytest.mark.parametrize("mode", [RetrievalMode.SPARSE, RetrievalMode.HYBRID])
def test_in_memory(mode: RetrievalMode, embeddings: SpladeSparseEmbeddings, reference: SpladeRetriever) -> None:
    kw = {"embedding": DENSE if mode == RetrievalMode.HYBRID else None}
    qs = QdrantVectorStore.from_texts(
        SEED,
        ids=IDS,
        metadatas=[{"n": i} for i in range(len(SEED))],
        location=":memory:",
        collection_name="seed",
        sparse_embedding=embeddings,
        retrieval_mode=mode,
        **kw,
    )
    for q in QUERIES:
        hits = qs.similarity_search_with_score(q, k=3)
        assert len(hits) == 3
        if mode == RetrievalMode.SPARSE:
            ref = reference.invoke(q)
            assert ranking([d for d, _ in hits]) == [int(IDS.index(d.id)) for d in ref]
            assert [s for _, s in hits] == pytest.approx([d.metadata["score"] for d in ref], rel=1e-5)
    top = qs.as_retriever(search_kwargs={"k": 3}).invoke("How much did the mission cost?")
    assert 2 in ranking(top)  # in HYBRID the (fake) dense side may reorder, but the sparse hit stays in
    qs.delete(ids=[IDS[2]])
    assert 2 not in ranking(qs.similarity_search("How much did the mission cost?", k=3))
    qs.add_texts(["The mission cost about 6.15 billion rupees"], metadatas=[{"n": 99}], ids=[str(uuid.UUID(int=99))])
    assert 99 in ranking(qs.similarity_search("mission cost rupees", k=1 if mode == RetrievalMode.SPARSE else 3))


def test_on_disk_reopened(tmp_path: Path, embeddings: SpladeSparseEmbeddings, reference: SpladeRetriever) -> None:
    path = str(tmp_path / "qdrant")
    qs = QdrantVectorStore.from_texts(
        SEED,
        ids=IDS,
        metadatas=[{"n": i} for i in range(len(SEED))],
        path=path,
        collection_name="seed",
        sparse_embedding=embeddings,
        embedding=None,
        retrieval_mode=RetrievalMode.SPARSE,
    )
    before = ranking(qs.similarity_search("rocket launch site", k=3))
    qs.client.close()
    client = QdrantClient(path=path)
    reopened = QdrantVectorStore(
        client=client,
        collection_name="seed",
        embedding=None,
        sparse_embedding=embeddings,
        retrieval_mode=RetrievalMode.SPARSE,
    )
    after = ranking(reopened.similarity_search("rocket launch site", k=3))
    assert before == after == [IDS.index(d.id) for d in reference.invoke("rocket launch site")]
    client.close()
