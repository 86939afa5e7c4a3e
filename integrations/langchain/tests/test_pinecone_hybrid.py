"""langchain-community's ``PineconeHybridSearchRetriever`` with the core's pinecone-text encoder.

Pinecone is a hosted service, so the retriever gets a stand-in for its index that keeps what is
upserted and scores a query as a dotproduct index does: the dense dot product plus the sparse one.
The retriever and pinecone-text's ``hybrid_convex_scale`` are the real ones; the retriever calls
``encode_documents`` on lists and ``encode_queries`` on a bare ``str``.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from langchain_community.retrievers import PineconeHybridSearchRetriever
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_splade import SpladeSparseEmbeddings

from splade_onnx.pinecone import SpladePineconeEncoder

from conftest import SEED

QUERIES = ["How much did the mission cost?", "rocket launch site", "moon landing date", "lunar rover"]


class DotproductIndex:
    """What the retriever uses of a Pinecone index: ``upsert`` and ``query`` (dense + sparse dot products)."""

    def __init__(self) -> None:
        self.vectors: dict[str, dict[str, Any]] = {}
        self.queries: list[dict[str, Any]] = []

    def upsert(self, vectors: list[dict[str, Any]], namespace: str | None = None) -> None:
        for v in vectors:
            self.vectors[v["id"]] = copy.deepcopy(v)

    def query(self, *, vector: list[float], sparse_vector: dict[str, Any], top_k: int, **kwargs: Any) -> dict[str, Any]:
        self.queries.append(copy.deepcopy(sparse_vector))
        q = dict(zip(sparse_vector["indices"], sparse_vector["values"]))

        def score(v: dict[str, Any]) -> float:
            sparse = v["sparse_values"]
            dense = sum(a * b for a, b in zip(vector, v["values"]))
            return dense + sum(q.get(i, 0.0) * w for i, w in zip(sparse["indices"], sparse["values"]))

        ranked = sorted(self.vectors.values(), key=lambda v: -score(v))[:top_k]
        return {"matches": [{"id": v["id"], "score": score(v), "metadata": dict(v["metadata"])} for v in ranked]}


@pytest.fixture(scope="module")
def encoder(embeddings: SpladeSparseEmbeddings) -> SpladePineconeEncoder:
    return SpladePineconeEncoder(embeddings.encoder)


def test_sparse_only_ranks_by_the_exact_splade_score(encoder: SpladePineconeEncoder) -> None:
    index = DotproductIndex()
    retriever = PineconeHybridSearchRetriever(
        embeddings=DeterministicFakeEmbedding(size=8), sparse_encoder=encoder, index=index, alpha=0.0, top_k=3
    )
    retriever.add_texts(SEED, ids=[str(i) for i in range(len(SEED))], metadatas=[{"n": i} for i in range(len(SEED))])
    stored = [index.vectors[str(i)]["sparse_values"] for i in range(len(SEED))]
    assert stored == encoder.encode_documents(SEED)
    core = encoder.encoder
    for q in QUERIES:
        hits = retriever.invoke(q)
        assert index.queries[-1] == encoder.encode_queries(q)  # alpha=0 leaves the sparse query unscaled
        (qv,) = core.encode_queries([q])
        exact = sorted(((qv.dot(d), n) for n, d in enumerate(core.encode_documents(SEED))), key=lambda s: -s[0])[:3]
        assert [h.metadata["n"] for h in hits] == [n for _, n in exact]
        assert [h.metadata["score"] for h in hits] == pytest.approx([s for s, _ in exact], rel=1e-5)
        assert [h.page_content for h in hits] == [SEED[n] for _, n in exact]


def test_hybrid_scales_the_sparse_query(encoder: SpladePineconeEncoder) -> None:
    index = DotproductIndex()
    retriever = PineconeHybridSearchRetriever(
        embeddings=DeterministicFakeEmbedding(size=8), sparse_encoder=encoder, index=index, alpha=0.25, top_k=2
    )
    retriever.add_texts(SEED)
    assert len(retriever.invoke("lunar rover")) == 2
    sent, query = index.queries[-1], encoder.encode_queries("lunar rover")
    assert sent["indices"] == query["indices"]
    assert sent["values"] == pytest.approx([0.75 * v for v in query["values"]])
