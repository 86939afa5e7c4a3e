"""langchain_milvus.Milvus on Milvus Lite (a real embedded Milvus) with the SPLADE sparse embedding."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from conftest import SEED

pytest.importorskip("langchain_milvus", reason="the [milvus] extra is not installed in this environment")

from langchain_milvus import Milvus
from langchain_splade import SpladeSparseEmbeddings
from langchain_splade.milvus import OOV_QUERY, SpladeMilvusSparseEmbedding


@pytest.fixture(scope="module")
def sparse(embeddings: SpladeSparseEmbeddings) -> SpladeMilvusSparseEmbedding:
    return SpladeMilvusSparseEmbedding(embeddings.encoder)


def test_is_a_langchain_milvus_sparse_embedding(sparse: SpladeMilvusSparseEmbedding) -> None:
    from langchain_milvus.utils.sparse import BaseSparseEmbedding

    assert isinstance(sparse, BaseSparseEmbedding)
    d = sparse.embed_query("lunar rover")
    assert d == sparse.encoder.encode_queries(["lunar rover"])[0].as_dict()
    assert all(type(k) is int and type(v) is float for k, v in d.items())


def test_a_bare_string_is_a_type_error(sparse: SpladeMilvusSparseEmbedding) -> None:
    from splade_onnx import ArgumentTypeError

    with pytest.raises(ArgumentTypeError, match=re.escape("texts must be an iterable of str, got a single str")):
        sparse.embed_documents("hello")  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match=re.escape("texts must be an iterable of str, got a single str")):
        asyncio.run(sparse.aembed_documents("hello"))  # type: ignore[arg-type]


def test_insert_search_and_an_empty_query(sparse: SpladeMilvusSparseEmbedding, tmp_path: Path) -> None:
    store = Milvus.from_texts(
        SEED,
        embedding=sparse,
        metadatas=[{"n": i} for i in range(len(SEED))],
        connection_args={"uri": str(tmp_path / "milvus.db")},
        collection_name="splade",
        index_params={"index_type": "SPARSE_INVERTED_INDEX", "metric_type": "IP", "params": {"drop_ratio_build": 0.0}},
        search_params={"metric_type": "IP", "params": {"drop_ratio_search": 0.0}},
        drop_old=True,
    )
    hits = store.similarity_search_with_score("How much did the mission cost?", k=2)
    assert hits[0][0].metadata["n"] == 2
    (q,) = sparse.encoder.encode_queries(["How much did the mission cost?"])
    (d,) = sparse.encoder.encode_documents([SEED[2]])
    assert hits[0][1] == pytest.approx(q.dot(d), rel=1e-4)
    # A query whose vector is empty must not break pymilvus (langchain-milvus#40): it becomes OOV_QUERY.
    from splade_onnx import SparseEmbedding
    from splade_onnx.integration import MILVUS_EMPTY_VECTOR, milvus_vector

    assert milvus_vector(SparseEmbedding.empty()) == OOV_QUERY and OOV_QUERY is MILVUS_EMPTY_VECTOR
    empty_hits = store.similarity_search_by_vector(OOV_QUERY, k=3)  # type: ignore[arg-type]
    assert isinstance(empty_hits, list)


INDEX_PARAMS = {"index_type": "SPARSE_INVERTED_INDEX", "metric_type": "IP", "params": {"drop_ratio_build": 0.0}}


@pytest.mark.parametrize("params", [{}, {"index_params": INDEX_PARAMS}], ids=["defaults", "index_params alone"])
def test_without_search_params_milvus_lite_refuses_the_search(
    params: dict[str, object], sparse: SpladeMilvusSparseEmbedding, tmp_path: Path
) -> None:
    """Why the docs' snippets pass both params: langchain-milvus sends its default drop_ratio_build=0.2 with every
    search unless search_params says otherwise, and Milvus Lite 3.x takes only 0."""
    from pymilvus.exceptions import MilvusException

    store = Milvus.from_texts(
        SEED, embedding=sparse, connection_args={"uri": str(tmp_path / "milvus.db")}, drop_old=True, **params
    )
    with pytest.raises(MilvusException, match=re.escape("only drop_ratio_build=0 is supported")):
        store.similarity_search("How much did the mission cost?", k=1)
