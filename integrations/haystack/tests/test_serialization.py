"""Haystack's component serialization: to_dict / from_dict, and a Pipeline through YAML and back."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from haystack import Document, Pipeline
from haystack.components.writers import DocumentWriter
from haystack.core.serialization import component_from_dict, component_to_dict
from haystack_integrations.components.embedders.splade import SpladeSparseDocumentEmbedder, SpladeSparseTextEmbedder
from haystack_integrations.components.retrievers.qdrant import QdrantSparseEmbeddingRetriever
from haystack_integrations.document_stores.qdrant import QdrantDocumentStore

from splade_onnx import ArgumentTypeError, SpladeEncoder

from conftest import CACHE, SEED

MODULE = "haystack_integrations.components.embedders.splade"
LOAD = {
    "query_model": None,
    "revision": None,
    "cache_dir": None,
    "local_files_only": False,
    "threads": None,
    "providers": None,
    "quantize": None,
    "projection": "auto",
}


def test_text_embedder_to_dict() -> None:
    assert SpladeSparseTextEmbedder().to_dict() == {
        "type": f"{MODULE}.splade_sparse_text_embedder.SpladeSparseTextEmbedder",
        "init_parameters": {
            "model": "rasyosef/splade-tiny",
            **LOAD,
            "max_length": None,
            "top_k": None,
            "min_weight": None,
        },
    }


def test_document_embedder_to_dict() -> None:
    embedder = SpladeSparseDocumentEmbedder(
        "rasyosef/splade-tiny", threads=2, providers=["CPUExecutionProvider"], top_k=64, meta_fields_to_embed=["title"]
    )
    assert embedder.to_dict() == {
        "type": f"{MODULE}.splade_sparse_document_embedder.SpladeSparseDocumentEmbedder",
        "init_parameters": {
            "model": "rasyosef/splade-tiny",
            **LOAD,
            "threads": 2,
            "providers": ["CPUExecutionProvider"],
            "batch_size": None,
            "max_length": None,
            "top_k": 64,
            "min_weight": None,
            "long_documents": "truncate",
            "stride": None,
            "progress_bar": True,
            "meta_fields_to_embed": ["title"],
            "embedding_separator": "\n",
        },
    }


@pytest.mark.parametrize(
    "component",
    [
        SpladeSparseTextEmbedder(cache_dir=str(CACHE), top_k=16, min_weight=0.25, max_length=64, quantize="int8"),
        SpladeSparseDocumentEmbedder(
            cache_dir=str(CACHE),
            top_k=32,
            long_documents="windows",
            stride=16,
            batch_size=8,
            progress_bar=False,
            meta_fields_to_embed=["title"],
            embedding_separator=" | ",
            projection="dense",
        ),
    ],
    ids=["text", "document"],
)
def test_from_dict_rebuilds_the_same_component(component: object) -> None:
    data = component.to_dict()  # type: ignore[attr-defined]
    again = type(component).from_dict(data)  # type: ignore[attr-defined]
    assert type(again) is type(component) and again.to_dict() == data
    assert component_to_dict(component_from_dict(type(component), data, "c"), "c") == data  # Haystack's own path


def test_paths_are_serialized_as_str(tmp_path: Path) -> None:
    embedder = SpladeSparseDocumentEmbedder(tmp_path / "model", query_model=tmp_path / "q", cache_dir=tmp_path / "c")
    params = embedder.to_dict()["init_parameters"]
    assert (params["model"], params["query_model"], params["cache_dir"]) == tuple(
        str(tmp_path / p) for p in ("model", "q", "c")
    )
    assert embedder.model == str(tmp_path / "model")


def test_a_rebuilt_embedder_embeds_the_same() -> None:
    docs = SpladeSparseDocumentEmbedder(cache_dir=str(CACHE), meta_fields_to_embed=["t"], progress_bar=False)
    text = SpladeSparseTextEmbedder(cache_dir=str(CACHE), top_k=4)
    batch = [Document(content=t, meta={"t": str(i)}) for i, t in enumerate(SEED)]
    assert SpladeSparseDocumentEmbedder.from_dict(docs.to_dict()).run(batch) == docs.run(batch)
    again = SpladeSparseTextEmbedder.from_dict(text.to_dict()).run("moon")["sparse_embedding"]
    assert again == text.run("moon")["sparse_embedding"] and len(again.indices) == 4


def test_from_dict_refuses_an_unknown_option() -> None:
    data = SpladeSparseTextEmbedder().to_dict()
    data["init_parameters"]["parallel"] = 2
    with pytest.raises(ArgumentTypeError, match=re.escape("got unexpected option(s) 'parallel'; valid: query_model")):
        SpladeSparseTextEmbedder.from_dict(data)


def test_pipelines_round_trip_through_yaml(tmp_path: Path, tiny: SpladeEncoder) -> None:
    """An indexing and a query pipeline, dumped to YAML and loaded back, index and answer as the core scores.

    The store is Qdrant's local mode on disk, so that the two loaded pipelines (each deserializes its own
    store) see the same collection; the original pipelines never open it.
    """
    store = QdrantDocumentStore(path=str(tmp_path / "qdrant"), use_sparse_embeddings=True, progress_bar=False)
    indexing = Pipeline()
    indexing.add_component("embedder", SpladeSparseDocumentEmbedder(cache_dir=str(CACHE), top_k=48, progress_bar=False))
    indexing.add_component("writer", DocumentWriter(store))
    indexing.connect("embedder", "writer")
    querying = Pipeline()
    querying.add_component("embedder", SpladeSparseTextEmbedder(cache_dir=str(CACHE), min_weight=0.1))
    querying.add_component("retriever", QdrantSparseEmbeddingRetriever(store, top_k=3))
    querying.connect("embedder.sparse_embedding", "retriever.query_sparse_embedding")

    yaml_indexing, yaml_querying = indexing.dumps(), querying.dumps()
    assert "SpladeSparseDocumentEmbedder" in yaml_indexing and "top_k: 48" in yaml_indexing
    loaded_indexing, loaded_querying = Pipeline.loads(yaml_indexing), Pipeline.loads(yaml_querying)
    assert loaded_indexing.to_dict() == indexing.to_dict() and loaded_querying.to_dict() == querying.to_dict()

    docs = [Document(id=str(i), content=t) for i, t in enumerate(SEED)]
    assert loaded_indexing.run({"embedder": {"documents": docs}})["writer"]["documents_written"] == len(docs)
    loaded_indexing.get_component("writer").document_store.close()  # one client at a time on a local folder
    question = "How much did the mission cost?"
    hits = loaded_querying.run({"embedder": {"text": question}})["retriever"]["documents"]
    (q,) = tiny.encode_queries([question], min_weight=0.1)
    exact = sorted(((q.dot(d), str(i)) for i, d in enumerate(tiny.encode_documents(SEED, top_k=48))), reverse=True)
    assert [d.id for d in hits] == [i for _, i in exact[:3]] and hits[0].id == "2"  # "... around $35 million"
    assert [d.score for d in hits] == pytest.approx([s for s, _ in exact[:3]], rel=1e-5)
