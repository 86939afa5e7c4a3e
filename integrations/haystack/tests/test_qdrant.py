"""Sparse and hybrid retrieval on qdrant-haystack's local mode (``":memory:"``), on 200 Cranfield abstracts.

The dense side of the hybrid pipeline is Haystack's own ``MockDocumentEmbedder`` / ``MockTextEmbedder``:
deterministic vectors from a hash of the text, offline, with no meaning.  Any relevant document the
hybrid pipeline finds therefore comes through the SPLADE side, which is what these tests are about;
put a real dense embedder in its place.
"""

from __future__ import annotations

import pytest
from haystack import Document, Pipeline
from haystack.components.embedders import MockDocumentEmbedder, MockTextEmbedder
from haystack.components.writers import DocumentWriter
from haystack_integrations.components.embedders.splade import SpladeSparseDocumentEmbedder, SpladeSparseTextEmbedder
from haystack_integrations.components.retrievers.qdrant import QdrantHybridRetriever, QdrantSparseEmbeddingRetriever
from haystack_integrations.document_stores.qdrant import QdrantDocumentStore

from splade_onnx import SparseIndex, SpladeEncoder

from conftest import CACHE, cranfield

N_DOCS, DIM, K = 200, 16, 10
ROWS, QUERIES, RELEVANT = cranfield(N_DOCS)
#: The first 10 Cranfield queries with at least two judged relevant documents among the 200.
CHOSEN = [q for q in QUERIES if len(RELEVANT.get(q, ())) >= 2][:10]


@pytest.fixture(scope="module")
def store() -> QdrantDocumentStore:
    """The 200 abstracts, indexed by a Haystack pipeline: a dense stand-in, then SPLADE, then the writer."""
    store = QdrantDocumentStore(
        ":memory:", use_sparse_embeddings=True, embedding_dim=DIM, recreate_index=True, progress_bar=False
    )
    indexing = Pipeline()
    indexing.add_component("dense", MockDocumentEmbedder(dimension=DIM))
    indexing.add_component("sparse", SpladeSparseDocumentEmbedder(cache_dir=str(CACHE), progress_bar=False))
    indexing.add_component("writer", DocumentWriter(store))
    indexing.connect("dense.documents", "sparse.documents")
    indexing.connect("sparse.documents", "writer.documents")
    docs = [Document(id=r["_id"], content=r["text"], meta={"title": r["title"]}) for r in ROWS]
    assert indexing.run({"dense": {"documents": docs}})["writer"]["documents_written"] == N_DOCS
    return store


@pytest.fixture(scope="module")
def exact(tiny: SpladeEncoder) -> SparseIndex:
    """The core's exact in-memory index of the same abstracts: the reference ranking."""
    index = SparseIndex(model=tiny.identity)
    index.add(tiny.encode_documents([r["text"] for r in ROWS]), ids=[r["_id"] for r in ROWS])
    return index


def sparse_pipeline(store: QdrantDocumentStore) -> Pipeline:
    pipe = Pipeline()
    pipe.add_component("sparse", SpladeSparseTextEmbedder(cache_dir=str(CACHE)))
    pipe.add_component("retriever", QdrantSparseEmbeddingRetriever(store, top_k=K))
    pipe.connect("sparse.sparse_embedding", "retriever.query_sparse_embedding")
    return pipe


def hybrid_pipeline(store: QdrantDocumentStore) -> Pipeline:
    pipe = Pipeline()
    pipe.add_component("dense", MockTextEmbedder(dimension=DIM))
    pipe.add_component("sparse", SpladeSparseTextEmbedder(cache_dir=str(CACHE)))
    pipe.add_component("retriever", QdrantHybridRetriever(store, top_k=K))
    pipe.connect("dense.embedding", "retriever.query_embedding")
    pipe.connect("sparse.sparse_embedding", "retriever.query_sparse_embedding")
    return pipe


def test_the_chosen_queries_have_judgements_in_the_corpus() -> None:
    assert len(CHOSEN) == 10 and all(RELEVANT[q] <= {r["_id"] for r in ROWS} for q in CHOSEN)


def test_sparse_retrieval_ranks_as_the_core_and_finds_the_relevant_documents(
    store: QdrantDocumentStore, exact: SparseIndex, tiny: SpladeEncoder
) -> None:
    pipe = sparse_pipeline(store)
    found = 0
    for q in CHOSEN:
        hits = pipe.run({"sparse": {"text": QUERIES[q]}})["retriever"]["documents"]
        (vector,) = tiny.encode_queries([QUERIES[q]])
        want = exact.search(vector, k=K)
        assert [d.id for d in hits] == [i for i, _ in want], q  # Qdrant's sparse dot product is the core's
        assert [d.score for d in hits] == pytest.approx([s for _, s in want], rel=1e-5), q
        assert hits[0].meta["title"] == next(r["title"] for r in ROWS if r["_id"] == hits[0].id)
        found += bool(RELEVANT[q] & {d.id for d in hits})
    assert found >= 8  # splade-tiny finds a judged relevant abstract in the top 10 for 9 of these 10 queries


def test_hybrid_retrieval_fuses_the_splade_side(
    store: QdrantDocumentStore, exact: SparseIndex, tiny: SpladeEncoder
) -> None:
    pipe = hybrid_pipeline(store)
    found = 0
    for q in CHOSEN:
        inputs = {"dense": {"text": QUERIES[q]}, "sparse": {"text": QUERIES[q]}}
        hits = pipe.run(inputs)["retriever"]["documents"]
        (vector,) = tiny.encode_queries([QUERIES[q]])
        sparse_ids = [i for i, _ in exact.search(vector, k=K)]
        assert len(hits) == K and sparse_ids[0] in {d.id for d in hits[:2]}, q  # RRF keeps the SPLADE top hit on top
        # RRF weighted [sparse, dense] = [1, 0]: the fused ranking is the SPLADE ranking.
        weighted = pipe.run({**inputs, "retriever": {"rrf_weights": [1.0, 0.0]}})["retriever"]["documents"]
        assert [d.id for d in weighted] == sparse_ids, q
        found += bool(RELEVANT[q] & {d.id for d in hits})
    assert found >= 7  # through the SPLADE side only: the dense stand-in knows nothing
