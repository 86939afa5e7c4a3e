"""The LlamaIndex adapter on the real splade-tiny, Qdrant local mode and the core index."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.embeddings.base_sparse import BaseSparseEmbedding
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores.types import ExactMatchFilter, MetadataFilters
from llama_index.sparse_embeddings.splade import SpladeRetriever, SpladeSparseEmbedding, to_qdrant_sparse_fns

from splade_onnx import DEFAULT_MODEL, Seismic

from conftest import SEED
from harness import run_while_encoding_waits_for_the_loop


@pytest.fixture(scope="module")
def nodes() -> list[TextNode]:
    return [
        TextNode(text=t, id_=str(uuid.UUID(int=i + 1)), metadata={"n": i, "parity": "even" if i % 2 == 0 else "odd"})
        for i, t in enumerate(SEED)
    ]


def test_public_names() -> None:
    import llama_index.sparse_embeddings.splade as pkg

    assert pkg.__all__ == [
        "SpladeMilvusSparseFunction",
        "SpladeRetriever",
        "SpladeSparseEmbedding",
        "to_qdrant_sparse_fns",
    ]
    # The Milvus store is not in this environment (it pins pymilvus<3): the error names the extra.
    with pytest.raises(ImportError, match=re.escape("pip install 'llama-index-sparse-embeddings-splade[milvus]'")):
        pkg.SpladeMilvusSparseFunction  # noqa: B018


def test_mro(embedding: SpladeSparseEmbedding) -> None:
    assert isinstance(embedding, BaseSparseEmbedding) and issubclass(SpladeRetriever, BaseRetriever)
    assert SpladeSparseEmbedding.class_name() == "SpladeSparseEmbedding"
    assert embedding.to_payload() == {
        "class_name": "SpladeSparseEmbedding",
        "model_name": DEFAULT_MODEL,
        "embed_batch_size": 10,
    }


def test_public_methods_equal_the_core(embedding: SpladeSparseEmbedding) -> None:
    core = [e.as_dict() for e in embedding.encoder.encode_documents(SEED)]
    batch = embedding.get_text_embedding_batch(SEED)
    assert batch == core
    assert all(type(k) is int and type(v) is float for d in batch for k, v in d.items())
    q = embedding.get_query_embedding("lunar rover")
    assert q == embedding.encoder.encode_queries(["lunar rover"])[0].as_dict()

    async def both():  # type: ignore[no-untyped-def]
        return await embedding.aget_text_embedding_batch(SEED), await embedding.aget_query_embedding("lunar rover")

    abatch, aq = asyncio.run(both())
    assert abatch == core and aq == q


def test_max_length_is_honoured(embedding: SpladeSparseEmbedding) -> None:
    short = SpladeSparseEmbedding(max_length=4, cache_dir=embedding.cache_dir)
    assert short.encoder.max_length == 4
    assert short.get_text_embedding(SEED[1]) != embedding.get_text_embedding(SEED[1])


def test_query_cache_is_passed_to_the_core(embedding: SpladeSparseEmbedding) -> None:
    cached = SpladeSparseEmbedding(query_cache=4, cache_dir=embedding.cache_dir)
    first = cached.get_query_embedding("lunar rover")
    assert cached.get_query_embedding("lunar rover") == first == embedding.get_query_embedding("lunar rover")
    assert tuple(cached.encoder.query_cache_info()) == (1, 1, 4, 1)  # type: ignore[arg-type]


def test_retriever_ranks_by_exact_dot_product(embedding: SpladeSparseEmbedding, nodes: list[TextNode]) -> None:
    r = SpladeRetriever.from_defaults(nodes=nodes, sparse_embedding=embedding, similarity_top_k=3)
    hits = r.retrieve("How much did the mission cost?")
    assert hits[0].node.metadata["n"] == 2 and len(hits) == 3
    (q,) = embedding.encoder.encode_queries(["How much did the mission cost?"])
    (d,) = embedding.encoder.encode_documents([nodes[2].get_content(metadata_mode="embed")])  # type: ignore[arg-type]
    assert hits[0].score == pytest.approx(q.dot(d), rel=1e-5)
    odd = MetadataFilters(filters=[ExactMatchFilter(key="parity", value="odd")])
    filtered = SpladeRetriever.from_defaults(nodes=nodes, sparse_embedding=embedding, similarity_top_k=3, filters=odd)
    assert all(h.node.metadata["n"] % 2 == 1 for h in filtered.retrieve("How much did the mission cost?"))
    # "qwxj" expands to terms (q, ##x, af, ...) that no seed text has: no hit, not a zero-score one.
    (oov,) = embedding.encoder.encode_queries(["qwxj"])
    assert len(oov) > 0 and all(oov.dot(d) == 0 for d in embedding.encoder.encode_documents(SEED))
    plain = SpladeRetriever.from_defaults(nodes=[TextNode(text=t) for t in SEED], sparse_embedding=embedding)
    assert plain.retrieve("qwxj") == [] and len(plain.retrieve("rocket")) > 0


def test_bad_input(embedding: SpladeSparseEmbedding, nodes: list[TextNode], caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ValueError, match=re.escape("SpladeRetriever needs at least one node; got an empty list")):
        SpladeRetriever.from_defaults(nodes=[], sparse_embedding=embedding)
    for k in (0, -1):
        with pytest.raises(ValueError, match=re.escape(f"similarity_top_k must be a positive int, got {k}")):
            SpladeRetriever.from_defaults(nodes=nodes, sparse_embedding=embedding, similarity_top_k=k)
    with pytest.raises(TypeError, match=re.escape("unknown option(s) ['maxlength'] for SpladeSparseEmbedding; valid:")):
        SpladeSparseEmbedding(maxlength=3)
    with caplog.at_level(logging.WARNING):
        r = SpladeRetriever.from_defaults(nodes=nodes, sparse_embedding=embedding, similarity_top_k=50)
    assert r.similarity_top_k == len(nodes) and "similarity_top_k=50 is larger than the 6 nodes" in caplog.text


def test_persist_round_trip(embedding: SpladeSparseEmbedding, nodes: list[TextNode], tmp_path: Path) -> None:
    r = SpladeRetriever.from_defaults(nodes=nodes, sparse_embedding=embedding, similarity_top_k=4)
    r.persist(tmp_path / "p")
    loaded = SpladeRetriever.from_persist_dir(tmp_path / "p", sparse_embedding=embedding, similarity_top_k=4)
    for q in ("rocket launch", "moon landing date", "cost"):
        assert [(h.node.node_id, h.score) for h in loaded.retrieve(q)] == [
            (h.node.node_id, h.score) for h in r.retrieve(q)
        ]


QUERIES = ("How much did the mission cost?", "rocket launch site", "moon landing date", "lunar rover")


def _hits(retriever: SpladeRetriever, query: str) -> list[tuple[str, float | None]]:
    return [(h.node.node_id, h.score) for h in retriever.retrieve(query)]


@pytest.mark.parametrize("engine", ["exhaustive", "seismic", Seismic(query_cut=5, heap_factor=0.9)])
def test_engines(embedding: SpladeSparseEmbedding, nodes: list[TextNode], engine: Any, tmp_path: Path) -> None:
    k = len(nodes)
    exact = SpladeRetriever.from_defaults(nodes=nodes, sparse_embedding=embedding, similarity_top_k=k)
    r = SpladeRetriever.from_defaults(nodes=nodes, sparse_embedding=embedding, similarity_top_k=k, engine=engine)
    for query in QUERIES:
        want, got = _hits(exact, query), _hits(r, query)
        if engine == "exhaustive":
            assert got == want
        else:  # approximate: the exact ranking, some nodes perhaps left out, each with its exact score
            assert got[0] == want[0] and got == [hit for hit in want if hit in got]
    odd = MetadataFilters(filters=[ExactMatchFilter(key="parity", value="odd")])
    filtered = SpladeRetriever.from_defaults(nodes=nodes, sparse_embedding=embedding, filters=odd, engine=engine)
    odd_ids = {n.node_id for n in nodes if n.metadata["parity"] == "odd"}
    for query in QUERIES:
        want, got = [hit for hit in _hits(exact, query) if hit[0] in odd_ids][:4], _hits(filtered, query)
        assert got[0] == want[0] and got == [hit for hit in want if hit in got]
    r.persist(tmp_path / "p")
    loaded = SpladeRetriever.from_persist_dir(tmp_path / "p", sparse_embedding=embedding, engine=engine)
    assert all(_hits(loaded, q) == _hits(r, q) for q in QUERIES)


def test_bad_engine(
    embedding: SpladeSparseEmbedding, nodes: list[TextNode], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match=re.escape("engine='bm25' is not one of ('exact', 'exhaustive', 'seismic')")):
        SpladeRetriever.from_defaults(nodes=nodes, sparse_embedding=embedding, engine="bm25")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=re.escape("engine must be one of ('exact', 'exhaustive', 'seismic')")):
        SpladeRetriever(nodes, embedding, engine=None)  # type: ignore[arg-type]
    SpladeRetriever.from_defaults(nodes=nodes, sparse_embedding=embedding).persist(tmp_path / "p")
    with pytest.raises(ValueError, match=re.escape("engine='bm25' is not one of")):
        SpladeRetriever.from_persist_dir(tmp_path / "p", sparse_embedding=embedding, engine="bm25")  # type: ignore[arg-type]
    monkeypatch.setitem(sys.modules, "seismic", None)  # pyseismic-lsr not installed
    with pytest.raises(ImportError, match=re.escape("pip install 'splade-onnx[ann]'")):
        SpladeRetriever.from_defaults(nodes=nodes, sparse_embedding=embedding, engine="seismic")
    with pytest.raises(ImportError, match=re.escape("pip install 'splade-onnx[ann]'")):
        SpladeRetriever.from_persist_dir(tmp_path / "p", sparse_embedding=embedding, engine="seismic")


def test_concurrent_aretrieve_keeps_the_loop_free(embedding: SpladeSparseEmbedding, nodes: list[TextNode]) -> None:
    """The encoder waits, inside the call, for a callback only a free event loop can run."""
    r = SpladeRetriever.from_defaults(nodes=nodes, sparse_embedding=embedding, similarity_top_k=2)
    res = run_while_encoding_waits_for_the_loop(
        embedding.encoder, "encode_queries", lambda: [r.aretrieve(f"lunar mission {i}") for i in range(40)]
    )
    assert len(res) == 40 and [h.node.node_id for h in res[0]] == [
        h.node.node_id for h in r.retrieve("lunar mission 0")
    ]
    batches = run_while_encoding_waits_for_the_loop(
        embedding.encoder, "encode_documents", lambda: [embedding.aget_text_embedding_batch(SEED) for _ in range(3)]
    )
    assert batches == [embedding.get_text_embedding_batch(SEED)] * 3


def test_the_loop_proof_catches_a_blocking_async_method(embedding: SpladeSparseEmbedding) -> None:
    async def blocking() -> list[dict[int, float]]:  # an async def that encodes on the loop's thread
        return embedding.get_text_embedding_batch(SEED)

    with pytest.raises(AssertionError, match=re.escape("for a callback on the event loop: the loop was blocked")):
        run_while_encoding_waits_for_the_loop(
            embedding.encoder, "encode_documents", lambda: [blocking(), blocking()], timeout=0.5
        )
    assert embedding.get_text_embedding(SEED[0])  # the encoder is restored


def test_qdrant_hybrid_with_the_helper_fns(embedding: SpladeSparseEmbedding, nodes: list[TextNode]) -> None:
    from llama_index.core import StorageContext, VectorStoreIndex
    from llama_index.core.embeddings import MockEmbedding
    from llama_index.vector_stores.qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient

    doc_fn, query_fn = to_qdrant_sparse_fns(embedding)
    store = QdrantVectorStore(
        collection_name="seed",
        client=QdrantClient(location=":memory:"),
        enable_hybrid=True,
        sparse_doc_fn=doc_fn,
        sparse_query_fn=query_fn,
    )
    # The dense side is LlamaIndex's MockEmbedding: the sparse side is under test.
    ctx = StorageContext.from_defaults(vector_store=store)
    index = VectorStoreIndex(
        [n.model_copy() for n in nodes], storage_context=ctx, embed_model=MockEmbedding(embed_dim=8)
    )
    ours = SpladeRetriever.from_defaults(nodes=nodes, sparse_embedding=embedding, similarity_top_k=3)
    for q in ("How much did the mission cost?", "rocket launch site", "moon landing date"):
        sparse = index.as_retriever(vector_store_query_mode="sparse", similarity_top_k=3, sparse_top_k=3).retrieve(q)
        assert [h.node.metadata["n"] for h in sparse] == [h.node.metadata["n"] for h in ours.retrieve(q)]
        # alpha=0 weights the sparse side fully: HYBRID then ranks like SPLADE alone.
        hybrid = index.as_retriever(
            vector_store_query_mode="hybrid", similarity_top_k=3, sparse_top_k=3, alpha=0.0
        ).retrieve(q)
        assert hybrid[0].node.metadata["n"] == ours.retrieve(q)[0].node.metadata["n"]


class RecordingPineconeIndex:
    """Stands in for a hosted Pinecone index, which cannot run here: it keeps what the store
    upserts and answers queries by Pinecone's sparse dot product over the stored vectors."""

    def __init__(self) -> None:
        self.vectors: dict[str, dict] = {}  # type: ignore[type-arg]
        self.queries: list[dict] = []  # type: ignore[type-arg]

    def upsert(self, vectors: list[dict], **kwargs: object) -> object:  # type: ignore[type-arg]
        self.vectors.update({v["id"]: v for v in vectors})
        return SimpleNamespace(errors=None, upserted_count=len(vectors))

    def describe_index_stats(self) -> dict[str, int]:
        return {"dimension": 8}

    def query(self, *, sparse_vector: dict | None, top_k: int, **kwargs: object) -> object:  # type: ignore[type-arg]
        self.queries.append({"sparse_vector": sparse_vector, "top_k": top_k})
        assert sparse_vector is not None
        q = dict(zip(sparse_vector["indices"], sparse_vector["values"]))
        scored = []
        for v in self.vectors.values():
            s = v["sparse_values"]
            score = sum(q.get(i, 0.0) * w for i, w in zip(s["indices"], s["values"]))
            if score > 0:
                scored.append(SimpleNamespace(id=v["id"], score=score, metadata=v["metadata"], values=v["values"]))
        return SimpleNamespace(matches=sorted(scored, key=lambda m: -m.score)[:top_k])


def test_pinecone_takes_the_embedding_directly(embedding: SpladeSparseEmbedding, nodes: list[TextNode]) -> None:
    from llama_index.core import StorageContext, VectorStoreIndex
    from llama_index.core.embeddings import MockEmbedding
    from llama_index.core.schema import MetadataMode
    from llama_index.vector_stores.pinecone import PineconeVectorStore

    remote = RecordingPineconeIndex()
    store = PineconeVectorStore(pinecone_index=remote, add_sparse_vector=True, sparse_embedding_model=embedding)
    index = VectorStoreIndex(
        [n.model_copy() for n in nodes],
        storage_context=StorageContext.from_defaults(vector_store=store),
        embed_model=MockEmbedding(embed_dim=8),
    )
    # What reaches Pinecone is our document vector of the node's embed content, as parallel lists.
    sent = {
        k: dict(zip(v["sparse_values"]["indices"], v["sparse_values"]["values"])) for k, v in remote.vectors.items()
    }
    assert sent == {n.node_id: embedding.get_text_embedding(n.get_content(MetadataMode.EMBED)) for n in nodes}
    ours = SpladeRetriever.from_defaults(nodes=nodes, sparse_embedding=embedding, similarity_top_k=3)
    for q in ("How much did the mission cost?", "rocket launch site", "moon landing date"):
        hits = index.as_retriever(vector_store_query_mode="sparse", similarity_top_k=3).retrieve(q)
        sq = remote.queries[-1]["sparse_vector"]
        assert dict(zip(sq["indices"], sq["values"])) == embedding.get_query_embedding(q)
        assert [(h.node.node_id, pytest.approx(h.score, rel=1e-6)) for h in hits] == [
            (h.node.node_id, h.score) for h in ours.retrieve(q)
        ]


def test_loading_options_reach_the_core_as_in_the_langchain_adapter(tmp_path: Path) -> None:
    """revision, local_files_only, providers and projection go to ``SpladeEncoder.from_pretrained``."""
    from splade_onnx._session import OrtBackend

    emb = SpladeSparseEmbedding(
        projection="dense", providers=["CPUExecutionProvider"], local_files_only=False, cache_dir=str(tmp_path)
    )
    recipe = emb.encoder.loaded.recipes["document"]
    assert recipe.providers == ["CPUExecutionProvider"] and recipe.head is None
    assert isinstance(emb.encoder.loaded.document.backend, OrtBackend)
    with pytest.raises(ValueError, match="projection must be one of 'auto', 'dense', 'pruned', got 'fast'"):
        SpladeSparseEmbedding(projection="fast")
    with pytest.raises(Exception, match="rasyosef/splade-tiny") as err:
        SpladeSparseEmbedding(revision="no-such-revision", local_files_only=True, cache_dir=str(tmp_path / "empty"))
    assert "no-such-revision" in str(err.value) or "local_files_only" in str(err.value)
