"""SpladeMilvusSparseFunction in llama-index-vector-stores-milvus on real Milvus Lite.

This file runs in its own environment (``make test`` builds ``.venv-li-milvus``): the Milvus
store pins ``pymilvus<3``, and the LangChain adapter's ``langchain-milvus`` needs ``pymilvus>=3``.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path

import numpy as np
import pytest
from llama_index.core import StorageContext, VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.schema import TextNode
from llama_index.sparse_embeddings.splade import SpladeSparseEmbedding
from llama_index.sparse_embeddings.splade.milvus import OOV_VECTOR, SpladeMilvusSparseFunction
from llama_index.vector_stores.milvus import MilvusVectorStore
from llama_index.vector_stores.milvus.utils import BaseSparseEmbeddingFunction
from pymilvus import DataType
from pymilvus.exceptions import MilvusException

from splade_onnx import ArgumentTypeError, SparseEmbedding
from splade_onnx.integration import MILVUS_EMPTY_VECTOR, milvus_vector

from conftest import CACHE, SEED
from harness import run_while_encoding_waits_for_the_loop

README = Path(__file__).resolve().parents[4] / "README.md"
#: The docs page whose Milvus block is skipped by tests/test_docs.py (the main environment lacks this store).
DOCS_PAGE = README.parent / "docs" / "integrations.md"
QUERIES = ["How much did the mission cost?", "rocket launch site", "moon landing date", "lunar rover"]


@pytest.fixture(scope="module")
def fn(embedding: SpladeSparseEmbedding) -> SpladeMilvusSparseFunction:
    return SpladeMilvusSparseFunction(embedding)


def exact_ranking(embedding: SpladeSparseEmbedding, query: str) -> tuple[list[int], list[float]]:
    """The core's exact SPLADE scores of the seed texts (what the Milvus store indexes: ``node.text``)."""
    (q,) = embedding.encoder.encode_queries([query])
    scores = np.array([q.dot(d) for d in embedding.encoder.encode_documents(SEED)])
    order = [int(i) for i in np.argsort(-scores, kind="stable") if scores[i] > 0]
    return order, [float(scores[i]) for i in order]


def build(tmp_path: Path, fn: SpladeMilvusSparseFunction, **store_options: object) -> VectorStoreIndex:
    store = MilvusVectorStore(
        uri=str(tmp_path / "milvus.db"),
        dim=8,
        overwrite=True,
        enable_sparse=True,
        sparse_embedding_function=fn,
        **store_options,
    )
    nodes = [TextNode(text=t, id_=str(uuid.UUID(int=i + 1)), metadata={"n": i}) for i, t in enumerate(SEED)]
    # The dense side is LlamaIndex's MockEmbedding: the sparse side is under test, and the
    # hybrid tests weight the dense side 0.
    return VectorStoreIndex(
        nodes, storage_context=StorageContext.from_defaults(vector_store=store), embed_model=MockEmbedding(embed_dim=8)
    )


def test_is_a_milvus_sparse_function_and_equals_the_core(
    fn: SpladeMilvusSparseFunction, embedding: SpladeSparseEmbedding
) -> None:
    assert isinstance(fn, BaseSparseEmbeddingFunction)
    assert fn.encode_documents(SEED) == embedding.get_text_embedding_batch(SEED)
    assert fn.encode_queries(QUERIES) == [embedding.get_query_embedding(q) for q in QUERIES]
    docs = fn.encode_documents(SEED)
    assert all(type(k) is int and type(v) is float for d in docs for k, v in d.items())

    async def both():  # type: ignore[no-untyped-def]
        return await fn.async_encode_documents(SEED), await fn.async_encode_queries(QUERIES)

    assert asyncio.run(both()) == (docs, fn.encode_queries(QUERIES))


def test_options(embedding: SpladeSparseEmbedding) -> None:
    short = SpladeMilvusSparseFunction(max_length=4, cache_dir=embedding.cache_dir)
    assert short.embedding.encoder.max_length == 4
    assert short.encode_documents([SEED[1]]) != [embedding.get_text_embedding(SEED[1])]
    with pytest.raises(TypeError, match=re.escape("pass either embedding= or options, not both")):
        SpladeMilvusSparseFunction(embedding, max_length=4)
    with pytest.raises(TypeError, match=re.escape("unknown option(s) ['maxlen']")):
        SpladeMilvusSparseFunction(maxlen=4)


def test_stored_vectors_are_exact(
    tmp_path: Path, fn: SpladeMilvusSparseFunction, embedding: SpladeSparseEmbedding
) -> None:
    """Searching the store's collection with no query pruning gives the core's exact scores."""
    index = build(tmp_path, fn)
    store = index.vector_store
    assert isinstance(store, MilvusVectorStore)
    for q in QUERIES:
        (hits,) = store.client.search(
            store.collection_name,
            data=fn.encode_queries([q]),
            limit=len(SEED),
            anns_field=store.sparse_embedding_field,
            output_fields=["n"],
            search_params={"params": {"drop_ratio_search": 0.0}},
        )
        order, scores = exact_ranking(embedding, q)
        assert [h["entity"]["n"] for h in hits] == order
        np.testing.assert_allclose([h["distance"] for h in hits], scores, rtol=1e-5)


def test_hybrid_mode_with_the_sparse_side_only_ranks_like_splade(
    tmp_path: Path, fn: SpladeMilvusSparseFunction, embedding: SpladeSparseEmbedding
) -> None:
    index = build(tmp_path, fn, hybrid_ranker="WeightedRanker", hybrid_ranker_params={"weights": [0.0, 1.0]})
    for q in QUERIES:
        hits = index.as_retriever(vector_store_query_mode="hybrid", similarity_top_k=3).retrieve(q)
        assert [h.node.metadata["n"] for h in hits] == exact_ranking(embedding, q)[0][:3]


def test_hybrid_rrf_runs_and_keeps_splade_hits(
    tmp_path: Path, fn: SpladeMilvusSparseFunction, embedding: SpladeSparseEmbedding
) -> None:
    index = build(tmp_path, fn, hybrid_ranker="RRFRanker", hybrid_ranker_params={"k": 60})
    hits = index.as_retriever(vector_store_query_mode="hybrid", similarity_top_k=3).retrieve(QUERIES[0])
    assert len(hits) == 3 and exact_ranking(embedding, QUERIES[0])[0][0] in [h.node.metadata["n"] for h in hits]


@pytest.mark.xfail(
    raises=MilvusException,
    strict=True,
    reason="llama-index-vector-stores-milvus 1.2.0 hard-codes drop_ratio_search=0.2 for SPARSE "
    "queries; Milvus Lite 3.x accepts only 0",
)
def test_sparse_mode_on_milvus_lite(tmp_path: Path, fn: SpladeMilvusSparseFunction) -> None:
    index = build(tmp_path, fn)
    index.as_retriever(vector_store_query_mode="sparse", similarity_top_k=3).retrieve(QUERIES[0])


def test_an_empty_vector_becomes_the_documented_placeholder(tmp_path: Path, fn: SpladeMilvusSparseFunction) -> None:
    """Milvus rejects empty sparse vectors; an empty SPLADE output is sent as ``OOV_VECTOR``."""
    assert milvus_vector(SparseEmbedding.empty()) == OOV_VECTOR and OOV_VECTOR is MILVUS_EMPTY_VECTOR
    store = build(tmp_path, fn).vector_store
    assert isinstance(store, MilvusVectorStore)
    (hits,) = store.client.search(
        store.collection_name,
        data=[OOV_VECTOR],
        limit=3,
        anns_field=store.sparse_embedding_field,
        search_params={"params": {"drop_ratio_search": 0.0}},
    )
    assert hits == []  # no seed document has term 0 ([PAD])

    client = store.client
    schema = client.create_schema(auto_id=True)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    params = client.prepare_index_params()
    params.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
    client.create_collection("empty_check", schema=schema, index_params=params)
    with pytest.raises(MilvusException, match="sparse vector must contain at least one nonzero"):
        client.insert("empty_check", [{"sparse": {}}])
    assert client.insert("empty_check", [{"sparse": OOV_VECTOR}])["insert_count"] == 1


def test_async_encoding_keeps_the_loop_free(fn: SpladeMilvusSparseFunction) -> None:
    """The encoder waits, inside the call, for a callback only a free event loop can run."""
    encoder = fn.embedding.encoder
    out = run_while_encoding_waits_for_the_loop(
        encoder, "encode_documents", lambda: [fn.async_encode_documents(SEED * 4) for _ in range(6)]
    )
    assert out == [fn.encode_documents(SEED * 4)] * 6
    queries = run_while_encoding_waits_for_the_loop(
        encoder, "encode_queries", lambda: [fn.async_encode_queries(QUERIES)]
    )
    assert queries == [fn.encode_queries(QUERIES)]


def test_a_bare_string_is_a_type_error(fn: SpladeMilvusSparseFunction) -> None:
    for call in (fn.encode_documents, fn.encode_queries):
        with pytest.raises(ArgumentTypeError, match=re.escape("texts must be an iterable of str, got a single str")):
            call("hello")  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match=re.escape("texts must be an iterable of str, got a single str")):
        asyncio.run(fn.async_encode_documents("hello"))  # type: ignore[arg-type]


@pytest.mark.parametrize("page", [README, DOCS_PAGE], ids=["README.md", "docs/integrations.md"])
def test_the_milvus_snippet_runs_on_milvus_lite_as_written(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocks = re.findall(r"```python\n(# needs the \[milvus\] extra.*?)```", page.read_text(), flags=re.S)
    assert len(blocks) == 1
    monkeypatch.chdir(tmp_path)  # the snippet's database path is relative
    monkeypatch.setenv("SPLADE_ONNX_CACHE", str(CACHE))
    exec(compile(blocks[0], page.name, "exec"), {"__name__": "__readme__"})
    assert (tmp_path / "splade-milvus.db").exists()
