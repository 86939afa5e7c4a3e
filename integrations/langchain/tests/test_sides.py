"""The query side and the per-side options, through every LangChain entry point.

The model is the core's seeded inference-free fixture (sentence-transformers Router layout): its
queries must be weighted tokens from the static table, never the document network.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from langchain_qdrant import QdrantVectorStore, RetrievalMode
from langchain_splade import SpladeRetriever, SpladeSparseEmbeddings
from tokenizers import Tokenizer

from splade_onnx import ArgumentError, SpladeEncoder

from conftest import CACHE, SEED


@pytest.fixture(scope="module")
def free_dir(families: Path) -> Path:
    """The core's seeded inference-free fixture, its weights regenerated from their seeds (conftest ``families``)."""
    return families / "st_inference_free"


def query_of(enc: SpladeEncoder) -> str:
    """A query sharing terms with the random documents: whole words among their heaviest terms."""
    words = [t for d in enc.encode_documents(SEED) for t, _ in enc.decode(d, top_k=40) if t.isalpha()]
    return " ".join(dict.fromkeys(words[:: max(1, len(words) // 8)]))


@pytest.fixture(scope="module")
def free(free_dir: Path) -> SpladeSparseEmbeddings:
    return SpladeSparseEmbeddings(str(free_dir), cache_dir=CACHE)


@pytest.fixture(scope="module")
def query_text(free: SpladeSparseEmbeddings) -> str:
    q = query_of(free.encoder)
    (v,) = free.encoder.encode_queries([q])
    assert any(v.dot(d) > 0 for d in free.encoder.encode_documents(SEED)), q
    return q


def distinct_tokens(free_dir: Path, text: str) -> list[int]:
    tok = Tokenizer.from_file(str(free_dir / "query_0_SparseStaticEmbedding" / "tokenizer.json"))
    return sorted(set(tok.encode(text, add_special_tokens=False).ids))


def test_embed_query_goes_through_the_static_side(
    free: SpladeSparseEmbeddings, free_dir: Path, query_text: str
) -> None:
    enc = free.encoder
    assert enc.query_mode == "static"
    q = free.embed_query(query_text)
    (core_q,) = enc.encode_queries([query_text])
    assert (q.indices, q.values) == (core_q.indices.tolist(), core_q.values.tolist())
    assert core_q != enc.encode_documents([query_text])[0]
    assert set(q.indices) <= set(distinct_tokens(free_dir, query_text))  # no expansion term: the query's own tokens


def test_retriever_queries_go_through_the_static_side(free: SpladeSparseEmbeddings, query_text: str) -> None:
    calls: list[list[str]] = []
    real = free.encoder.encode_queries

    @functools.wraps(real)
    def spy(texts, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(list(texts))
        return real(texts, **kwargs)

    r = SpladeRetriever.from_texts(SEED, embeddings=free, k=3)
    free.encoder.encode_queries = spy  # type: ignore[method-assign]
    try:
        hits = r.invoke(query_text)
    finally:
        del free.encoder.encode_queries
    assert calls == [[query_text]]
    (q,) = free.encoder.encode_queries([query_text])
    docs = dict(zip(SEED, free.encoder.encode_documents(SEED)))
    assert [h.metadata["score"] for h in hits] == pytest.approx(
        sorted((q.dot(d) for d in docs.values()), reverse=True)[:3], rel=1e-6
    )


def test_qdrant_hybrid_store_uses_the_static_side(free: SpladeSparseEmbeddings, query_text: str) -> None:
    from langchain_core.embeddings import DeterministicFakeEmbedding

    store = QdrantVectorStore.from_texts(
        SEED,
        embedding=DeterministicFakeEmbedding(size=8),
        sparse_embedding=free,
        location=":memory:",
        collection_name="free",
        retrieval_mode=RetrievalMode.SPARSE,
    )
    hits = store.similarity_search_with_score(query_text, k=3)
    (q,) = free.encoder.encode_queries([query_text])
    expected = sorted((q.dot(d) for d in free.encoder.encode_documents(SEED)), reverse=True)[:3]
    assert [s for _, s in hits] == pytest.approx(expected, rel=1e-5)


def test_pruning_and_windows_options_per_side(free_dir: Path, query_text: str) -> None:
    emb = SpladeSparseEmbeddings(
        str(free_dir), cache_dir=CACHE, document_top_k=5, query_min_weight=0.5, long_documents="windows", stride=4
    )
    enc = emb.encoder
    docs = emb.embed_documents(SEED)
    want = enc.encode_documents(SEED, top_k=5, long_documents="windows", stride=4)
    assert [(d.indices, d.values) for d in docs] == [(w.indices.tolist(), w.values.tolist()) for w in want]
    assert all(len(d.indices) <= 5 for d in docs)
    q = emb.embed_query(query_text)
    assert (
        all(v >= 0.5 for v in q.values)
        and q.indices == enc.encode_queries([query_text], min_weight=0.5)[0].indices.tolist()
    )
    long = " ".join(SEED) * 4  # past the fixture's 40 positions
    windowed = SpladeSparseEmbeddings(enc, long_documents="windows").embed_documents([long])[0]
    assert windowed.indices == enc.encode_documents([long], long_documents="windows")[0].indices.tolist()
    assert windowed.indices != SpladeSparseEmbeddings(enc).embed_documents([long])[0].indices
    hits = SpladeRetriever.from_texts(SEED, embeddings=emb, k=2).invoke(query_text)  # pruned on both sides
    (pq,) = enc.encode_queries([query_text], min_weight=0.5)
    assert [h.metadata["score"] for h in hits] == pytest.approx(sorted((pq.dot(w) for w in want), reverse=True)[:2])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"document_top_k": 0}, "top_k must be a positive int or None, got 0"),
        ({"query_min_weight": "high"}, "min_weight must be a finite number or None, got 'high'"),
        ({"long_documents": "split"}, "long_documents must be one of 'truncate', 'windows', got 'split'"),
    ],
)
def test_bad_side_options_fail_at_construction(options: dict[str, object], message: str, free_dir: Path) -> None:
    enc = SpladeEncoder.from_pretrained(free_dir, cache_dir=CACHE)
    with pytest.raises((ArgumentError, TypeError), match=message):
        SpladeSparseEmbeddings(enc, **options)  # an existing encoder is checked too


def test_two_tower_query_model(families: Path, query_text: str) -> None:
    tower = families / "two_tower"
    emb = SpladeSparseEmbeddings(str(tower / "document"), query_model=str(tower / "query"), cache_dir=CACHE)
    assert emb.encoder.query_mode == "two-tower"
    alone = SpladeEncoder.from_pretrained(tower / "query", cache_dir=CACHE)
    assert emb.embed_query(query_text).indices == alone.encode_documents([query_text])[0].indices.tolist()
