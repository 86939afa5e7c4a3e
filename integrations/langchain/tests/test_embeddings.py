"""The adapter only translates: its vectors are the core's, as plain Python lists."""

from __future__ import annotations

import asyncio
import re

import langchain_splade
import pytest
from langchain_splade import SparseVector, SpladeSparseEmbeddings

from splade_onnx import DEFAULT_MODEL

from conftest import CACHE, SEED
from harness import run_while_encoding_waits_for_the_loop


def test_public_names() -> None:
    assert sorted(langchain_splade.__all__) == [
        "SparseVector",
        "SpladeMilvusSparseEmbedding",
        "SpladeRetriever",
        "SpladeSparseEmbeddings",
    ]


def test_documents_equal_the_core(embeddings: SpladeSparseEmbeddings) -> None:
    out = embeddings.embed_documents(SEED)
    core = embeddings.encoder.encode_documents(SEED)
    assert len(out) == len(SEED)
    for v, e in zip(out, core):
        assert isinstance(v, SparseVector)
        assert v.indices == e.indices.tolist() and v.values == e.values.tolist()
        assert all(type(i) is int for i in v.indices) and all(type(x) is float for x in v.values)
        assert len(set(v.indices)) == len(v.indices)


def test_query_uses_the_query_side(embeddings: SpladeSparseEmbeddings) -> None:
    q = embeddings.embed_query("lunar rover")
    (core,) = embeddings.encoder.encode_queries(["lunar rover"])
    assert q.indices == core.indices.tolist() and q.values == core.values.tolist()


def test_query_cache_is_passed_to_the_core(embeddings: SpladeSparseEmbeddings) -> None:
    cached = SpladeSparseEmbeddings(query_cache=4, cache_dir=CACHE)
    first = cached.embed_query("lunar rover")
    assert cached.embed_query("lunar rover") == first == embeddings.embed_query("lunar rover")
    assert tuple(cached.encoder.query_cache_info()) == (1, 1, 4, 1)  # type: ignore[arg-type]


def test_async_equals_sync(embeddings: SpladeSparseEmbeddings) -> None:
    async def both() -> tuple[list[SparseVector], SparseVector]:
        return await embeddings.aembed_documents(SEED), await embeddings.aembed_query("moon")

    docs, q = asyncio.run(both())
    assert docs == embeddings.embed_documents(SEED) and q == embeddings.embed_query("moon")


def test_async_does_not_block_the_loop(embeddings: SpladeSparseEmbeddings) -> None:
    """The encoder waits, inside the call, for a callback only a free event loop can run."""
    texts = SEED * 4
    out = run_while_encoding_waits_for_the_loop(
        embeddings.encoder, "encode_documents", lambda: [embeddings.aembed_documents(texts) for _ in range(4)]
    )
    assert out == [embeddings.embed_documents(texts)] * 4
    (q,) = run_while_encoding_waits_for_the_loop(
        embeddings.encoder, "encode_queries", lambda: [embeddings.aembed_query("moon")]
    )
    assert q == embeddings.embed_query("moon")


def test_the_loop_proof_catches_a_blocking_async_method(embeddings: SpladeSparseEmbeddings) -> None:
    async def blocking() -> list[SparseVector]:  # an async def that encodes on the loop's thread
        return embeddings.embed_documents(SEED)

    with pytest.raises(AssertionError, match=re.escape("for a callback on the event loop: the loop was blocked")):
        run_while_encoding_waits_for_the_loop(
            embeddings.encoder, "encode_documents", lambda: [blocking(), blocking()], timeout=0.5
        )
    assert embeddings.embed_documents(SEED[:1])  # the encoder is restored


def test_options_go_to_the_core(embeddings: SpladeSparseEmbeddings) -> None:
    short = SpladeSparseEmbeddings(embeddings.encoder)
    assert short.encoder is embeddings.encoder
    with pytest.raises(ValueError, match=re.escape("options ['max_length'] apply when loading a model by name")):
        SpladeSparseEmbeddings(embeddings.encoder, max_length=8)
    with pytest.raises(TypeError):
        SpladeSparseEmbeddings(DEFAULT_MODEL, colour="red")
