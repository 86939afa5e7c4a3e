"""The embedders only translate: their vectors are the core's, as Haystack ``SparseEmbedding`` values."""

from __future__ import annotations

import asyncio
import re

import haystack_integrations.components.embedders.splade as splade
import pytest
from haystack import Document, Pipeline
from haystack.dataclasses import SparseEmbedding
from haystack_integrations.components.embedders.splade import SpladeSparseDocumentEmbedder, SpladeSparseTextEmbedder

from splade_onnx import DEFAULT_MODEL, ArgumentTypeError, SpladeEncoder
from splade_onnx import SparseEmbedding as CoreSparseEmbedding

from conftest import CACHE, SEED
from demo import DOCUMENTS
from harness import run_while_encoding_waits_for_the_loop


def same(got: SparseEmbedding, want: CoreSparseEmbedding) -> bool:
    """Equal vectors, as Haystack's plain lists of Python ``int`` (ascending) and ``float``."""
    assert all(type(i) is int for i in got.indices) and all(type(v) is float for v in got.values)
    assert got.indices == sorted(set(got.indices))
    return got.indices == want.indices.tolist() and got.values == want.values.tolist()


@pytest.fixture(scope="module")
def text_embedder() -> SpladeSparseTextEmbedder:
    embedder = SpladeSparseTextEmbedder(cache_dir=str(CACHE))
    embedder.warm_up()
    return embedder


@pytest.fixture(scope="module")
def document_embedder() -> SpladeSparseDocumentEmbedder:
    embedder = SpladeSparseDocumentEmbedder(cache_dir=str(CACHE), progress_bar=False)
    embedder.warm_up()
    return embedder


def test_public_names() -> None:
    assert sorted(splade.__all__) == ["SpladeSparseDocumentEmbedder", "SpladeSparseTextEmbedder"]


def test_the_default_model_is_the_cores() -> None:
    assert SpladeSparseTextEmbedder().model == SpladeSparseDocumentEmbedder().model == DEFAULT_MODEL


def test_queries_equal_the_cores_query_side(text_embedder: SpladeSparseTextEmbedder, tiny: SpladeEncoder) -> None:
    texts = ["lunar landing", "", "Chandrayaan-3 🚀 cost?", *DOCUMENTS[:4]]
    for text, want in zip(texts, tiny.encode_queries(texts)):
        assert same(text_embedder.run(text)["sparse_embedding"], want), text


def test_documents_equal_the_cores_document_side(
    document_embedder: SpladeSparseDocumentEmbedder, tiny: SpladeEncoder
) -> None:
    docs = [Document(content=t, meta={"n": i}) for i, t in enumerate(DOCUMENTS)]
    out = document_embedder.run(docs)["documents"]
    assert len(out) == len(docs)
    for d, got, want in zip(docs, out, tiny.encode_documents(DOCUMENTS)):
        assert same(got.sparse_embedding, want)
        assert (got.id, got.content, got.meta) == (d.id, d.content, d.meta)  # a copy, with only the vector set
        assert d.sparse_embedding is None  # the input Documents are not modified
    one = document_embedder.run(docs[3:4])["documents"][0]
    assert one.sparse_embedding == out[3].sparse_embedding  # alone as in a batch
    assert document_embedder.run([])["documents"] == []


def test_other_fields_are_kept(document_embedder: SpladeSparseDocumentEmbedder) -> None:
    doc = Document(id="x1", content="wing flutter", meta={"a": 1}, embedding=[0.5, 0.25], score=0.7)
    (out,) = document_embedder.run([doc])["documents"]
    assert (out.id, out.embedding, out.score, out.meta) == ("x1", [0.5, 0.25], 0.7, {"a": 1})
    assert out.sparse_embedding is not None and out.sparse_embedding.indices


def test_meta_fields_are_embedded_before_the_content(tiny: SpladeEncoder) -> None:
    embedder = SpladeSparseDocumentEmbedder(
        cache_dir=str(CACHE), meta_fields_to_embed=["title", "year", "missing", "none"], embedding_separator=" | "
    )
    docs = [
        Document(content="landed near the south pole", meta={"title": "Chandrayaan-3", "year": 2023, "none": None}),
        Document(content=None, meta={"title": "no content"}),
        Document(content="no meta"),
    ]
    assert [embedder.text_to_embed(d) for d in docs] == [
        "Chandrayaan-3 | 2023 | landed near the south pole",
        "no content | ",
        "no meta",
    ]
    out = embedder.run(docs)["documents"]
    for got, want in zip(out, tiny.encode_documents([embedder.text_to_embed(d) for d in docs])):
        assert same(got.sparse_embedding, want)
    assert (
        out[0].sparse_embedding
        != SpladeSparseDocumentEmbedder(cache_dir=str(CACHE)).run(docs[:1])["documents"][0].sparse_embedding
    )  # the meta changed the vector


def test_progress_bar_is_tqdm_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    docs = [Document(content=t) for t in SEED]
    SpladeSparseDocumentEmbedder(cache_dir=str(CACHE)).run(docs)
    assert f"{len(docs)}/{len(docs)}" in capsys.readouterr().err
    SpladeSparseDocumentEmbedder(cache_dir=str(CACHE), progress_bar=False).run(docs)
    assert capsys.readouterr().err == ""


def test_components_with_equal_load_options_share_one_encoder(text_embedder: SpladeSparseTextEmbedder) -> None:
    docs = SpladeSparseDocumentEmbedder(cache_dir=str(CACHE), top_k=8, long_documents="windows")
    assert docs.encoder is None  # loaded by warm_up, not by the constructor
    docs.warm_up()
    assert docs.encoder is text_embedder.encoder is not None  # encoding options differ, load options do not
    other = SpladeSparseTextEmbedder(cache_dir=str(CACHE), threads=1)
    other.warm_up()
    assert other.encoder is not text_embedder.encoder
    again = other.encoder
    other.warm_up()
    assert other.encoder is again  # warm_up loads once


def test_run_warms_up_on_first_use(tiny: SpladeEncoder) -> None:
    embedder = SpladeSparseTextEmbedder(cache_dir=str(CACHE))
    assert same(embedder.run("moon")["sparse_embedding"], tiny.encode_queries(["moon"])[0])
    assert embedder.encoder is not None


@pytest.mark.parametrize("bad", [["a query"], None, Document(content="x")])
def test_the_text_embedder_takes_one_str(text_embedder: SpladeSparseTextEmbedder, bad: object) -> None:
    with pytest.raises(TypeError, match=re.escape("SpladeSparseTextEmbedder.run takes one str, got ")):
        text_embedder.run(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("text", "takes a list of Documents, got str; to embed a query string use SpladeSparseTextEmbedder"),
        ([Document(content="a"), "b"], "takes a list of Documents, got str at position 1;"),
        ((Document(content="a"),), "takes a list of Documents, got tuple;"),
    ],
)
def test_the_document_embedder_takes_a_list_of_documents(
    document_embedder: SpladeSparseDocumentEmbedder, bad: object, message: str
) -> None:
    with pytest.raises(ArgumentTypeError, match=re.escape(message)):
        document_embedder.run(bad)  # type: ignore[arg-type]


def test_run_async_equals_run(
    text_embedder: SpladeSparseTextEmbedder, document_embedder: SpladeSparseDocumentEmbedder
) -> None:
    docs = [Document(content=t) for t in SEED]

    async def both() -> tuple[dict[str, SparseEmbedding], dict[str, list[Document]]]:
        return await text_embedder.run_async("moon"), await document_embedder.run_async(docs)

    q, d = asyncio.run(both())
    assert q == text_embedder.run("moon") and d == document_embedder.run(docs)


def test_run_async_does_not_block_the_loop(
    text_embedder: SpladeSparseTextEmbedder, document_embedder: SpladeSparseDocumentEmbedder
) -> None:
    """The encoder waits, inside the call, for a callback only a free event loop can run."""
    docs = [Document(content=t) for t in SEED * 4]
    out = run_while_encoding_waits_for_the_loop(
        document_embedder.encoder, "encode_documents", lambda: [document_embedder.run_async(docs) for _ in range(3)]
    )
    assert out == [document_embedder.run(docs)] * 3
    (q,) = run_while_encoding_waits_for_the_loop(
        text_embedder.encoder, "encode_queries", lambda: [text_embedder.run_async("moon")]
    )
    assert q == text_embedder.run("moon")


async def test_a_pipeline_run_async_runs_both(tiny: SpladeEncoder) -> None:
    pipe = Pipeline()
    pipe.add_component("query", SpladeSparseTextEmbedder(cache_dir=str(CACHE)))
    pipe.add_component("docs", SpladeSparseDocumentEmbedder(cache_dir=str(CACHE), progress_bar=False))
    out = await pipe.run_async({"query": {"text": "moon"}, "docs": {"documents": [Document(content=SEED[0])]}})
    assert same(out["query"]["sparse_embedding"], tiny.encode_queries(["moon"])[0])
    assert same(out["docs"]["documents"][0].sparse_embedding, tiny.encode_documents(SEED[:1])[0])
