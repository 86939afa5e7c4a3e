"""The query side and the per-side options, through every LlamaIndex entry point.

The model is the core's seeded inference-free fixture (sentence-transformers Router layout): its
queries must be weighted tokens from the static table, never the document network.
"""

from __future__ import annotations

import functools
import uuid
from pathlib import Path

import pytest
from llama_index.core.schema import TextNode
from llama_index.sparse_embeddings.splade import SpladeRetriever, SpladeSparseEmbedding, to_qdrant_sparse_fns
from tokenizers import Tokenizer

from splade_onnx import ArgumentError, SpladeEncoder

from conftest import CACHE, SEED


@pytest.fixture(scope="module")
def free_dir(families: Path) -> Path:
    """The core's seeded inference-free fixture, its weights regenerated from their seeds (conftest ``families``)."""
    return families / "st_inference_free"


@pytest.fixture(scope="module")
def free(free_dir: Path) -> SpladeSparseEmbedding:
    return SpladeSparseEmbedding(model_name=str(free_dir), cache_dir=str(CACHE))


@pytest.fixture(scope="module")
def query_text(free: SpladeSparseEmbedding) -> str:
    """A query sharing terms with the random documents: whole words among their heaviest terms."""
    enc = free.encoder
    words = [t for d in enc.encode_documents(SEED) for t, _ in enc.decode(d, top_k=40) if t.isalpha()]
    q = " ".join(dict.fromkeys(words[:: max(1, len(words) // 8)]))
    (v,) = enc.encode_queries([q])
    assert any(v.dot(d) > 0 for d in enc.encode_documents(SEED)), q
    return q


def nodes() -> list[TextNode]:
    return [TextNode(text=t, id_=str(uuid.UUID(int=i + 1)), metadata={"n": i}) for i, t in enumerate(SEED)]


def test_query_methods_go_through_the_static_side(free: SpladeSparseEmbedding, free_dir: Path, query_text: str) -> None:
    enc = free.encoder
    assert enc.query_mode == "static"
    (core_q,) = enc.encode_queries([query_text])
    assert free.get_query_embedding(query_text) == core_q.as_dict() != enc.encode_documents([query_text])[0].as_dict()
    tok = Tokenizer.from_file(str(free_dir / "query_0_SparseStaticEmbedding" / "tokenizer.json"))
    assert set(core_q.as_dict()) <= set(tok.encode(query_text, add_special_tokens=False).ids)  # no expansion
    doc_fn, query_fn = to_qdrant_sparse_fns(free)
    assert query_fn([query_text]) == ([core_q.indices.tolist()], [core_q.values.tolist()])
    assert doc_fn(SEED)[0] == [d.indices.tolist() for d in enc.encode_documents(SEED)]


def test_retriever_queries_go_through_the_static_side(free: SpladeSparseEmbedding, query_text: str) -> None:
    calls: list[list[str]] = []
    real = free.encoder.encode_queries

    @functools.wraps(real)
    def spy(texts, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(list(texts))
        return real(texts, **kwargs)

    r = SpladeRetriever.from_defaults(nodes=nodes(), sparse_embedding=free, similarity_top_k=3)
    free.encoder.encode_queries = spy  # type: ignore[method-assign]
    try:
        hits = r.retrieve(query_text)
    finally:
        del free.encoder.encode_queries
    assert calls == [[query_text]]
    (q,) = free.encoder.encode_queries([query_text])
    texts = [n.get_content(metadata_mode="embed") for n in nodes()]  # type: ignore[arg-type]  # what it indexes
    scores = sorted((q.dot(d) for d in free.encoder.encode_documents(texts)), reverse=True)
    assert [h.score for h in hits] == pytest.approx([s for s in scores if s > 0][:3], rel=1e-6)


def test_pruning_and_windows_options_per_side(free_dir: Path, query_text: str) -> None:
    emb = SpladeSparseEmbedding(
        model_name=str(free_dir),
        cache_dir=str(CACHE),
        document_top_k=5,
        query_min_weight=0.5,
        long_documents="windows",
        stride=4,
    )
    enc = emb.encoder
    want = enc.encode_documents(SEED, top_k=5, long_documents="windows", stride=4)
    assert emb.get_text_embedding_batch(SEED) == [w.as_dict() for w in want]
    assert all(len(d) <= 5 for d in emb.get_text_embedding_batch(SEED))
    q = emb.get_query_embedding(query_text)
    assert q == enc.encode_queries([query_text], min_weight=0.5)[0].as_dict() and all(v >= 0.5 for v in q.values())
    long = " ".join(SEED) * 4  # past the fixture's 40 positions
    windowed = SpladeSparseEmbedding(encoder=enc, long_documents="windows").get_text_embedding(long)
    assert windowed == enc.encode_documents([long], long_documents="windows")[0].as_dict()
    assert windowed != SpladeSparseEmbedding(encoder=enc).get_text_embedding(long)
    hits = SpladeRetriever.from_defaults(nodes=nodes(), sparse_embedding=emb, similarity_top_k=2).retrieve(query_text)
    (pq,) = enc.encode_queries([query_text], min_weight=0.5)
    texts = [n.get_content(metadata_mode="embed") for n in nodes()]  # type: ignore[arg-type]
    pruned = enc.encode_documents(texts, top_k=5, long_documents="windows", stride=4)
    expected = sorted((pq.dot(d) for d in pruned), reverse=True)
    assert [h.score for h in hits] == pytest.approx([s for s in expected if s > 0][:2])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"document_top_k": 0}, "top_k must be a positive int or None, got 0"),
        ({"query_min_weight": float("inf")}, "min_weight must be a finite number or None, got inf"),
        ({"long_documents": "split"}, "long_documents must be one of 'truncate', 'windows', got 'split'"),
        ({"stride": 8}, "stride is the overlap of windows: pass it with long_documents='windows'"),
    ],
)
def test_bad_side_options_fail_at_construction(options: dict[str, object], message: str, free_dir: Path) -> None:
    enc = SpladeEncoder.from_pretrained(free_dir, cache_dir=CACHE)
    with pytest.raises((ArgumentError, TypeError), match=message):
        SpladeSparseEmbedding(encoder=enc, **options)  # an existing encoder is checked too


def test_two_tower_query_model(families: Path, query_text: str) -> None:
    tower = families / "two_tower"
    emb = SpladeSparseEmbedding(
        model_name=str(tower / "document"), query_model=str(tower / "query"), cache_dir=str(CACHE)
    )
    assert emb.encoder.query_mode == "two-tower"
    alone = SpladeEncoder.from_pretrained(tower / "query", cache_dir=CACHE)
    assert emb.get_query_embedding(query_text) == alone.encode_documents([query_text])[0].as_dict()
