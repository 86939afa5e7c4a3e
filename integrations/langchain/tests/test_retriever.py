"""SpladeRetriever: the real langchain-tests suite, k handling, engines, persistence, async."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_splade import SpladeRetriever, SpladeSparseEmbeddings
from langchain_tests.integration_tests import RetrieversIntegrationTests

from splade_onnx import DEFAULT_MODEL, Seismic

from conftest import SEED
from harness import run_while_encoding_waits_for_the_loop


class TestSpladeRetrieverStandard(RetrieversIntegrationTests):
    """LangChain's own standard retriever tests, no test overridden."""

    @property
    def retriever_constructor(self) -> type[SpladeRetriever]:
        return SpladeRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"embeddings": _embeddings(), "documents": [f"{t} ({i})" for i, t in enumerate(SEED * 2)]}

    @property
    def retriever_query_example(self) -> str:
        return "lunar mission"


_EMB: list[SpladeSparseEmbeddings] = []


def _embeddings() -> SpladeSparseEmbeddings:
    from conftest import CACHE

    if not _EMB:
        _EMB.append(SpladeSparseEmbeddings(DEFAULT_MODEL, cache_dir=CACHE))
    return _EMB[0]


@pytest.fixture(scope="module")
def retriever(embeddings: SpladeSparseEmbeddings) -> SpladeRetriever:
    return SpladeRetriever.from_texts(
        SEED,
        metadatas=[{"n": i} for i in range(len(SEED))],
        ids=[f"s{i}" for i in range(len(SEED))],
        embeddings=embeddings,
        k=2,
    )


def test_k_and_scores(retriever: SpladeRetriever) -> None:
    docs = retriever.invoke("How much did the mission cost?")
    assert len(docs) == 2 and docs[0].id == "s2" and docs[0].metadata["n"] == 2
    assert docs[0].metadata["score"] >= docs[1].metadata["score"] > 0
    more = retriever.invoke("the mission", k=5)
    assert 2 < len(more) <= 5  # k for one call; only documents sharing a term are returned
    with pytest.raises(ValueError, match=re.escape("k must be >= 1, got 0")):
        retriever.invoke("mission", k=0)


def test_ranking_equals_the_core(retriever: SpladeRetriever, embeddings: SpladeSparseEmbeddings) -> None:
    (q,) = embeddings.encoder.encode_queries(["rocket launch site"])
    docs = embeddings.encoder.encode_documents(SEED)
    expected = sorted(range(len(SEED)), key=lambda i: (-q.dot(docs[i]), i))[:4]
    got = retriever.invoke("rocket launch site", k=4)
    assert [d.id for d in got] == [f"s{i}" for i in expected]
    assert [d.metadata["score"] for d in got] == pytest.approx([q.dot(docs[i]) for i in expected], rel=1e-5)


QUERIES = ("How much did the mission cost?", "rocket launch site", "moon landing date", "lunar rover")


@pytest.mark.parametrize("engine", ["exhaustive", "seismic", Seismic(query_cut=5, heap_factor=0.9)])
def test_engines(retriever: SpladeRetriever, embeddings: SpladeSparseEmbeddings, engine: Any, tmp_path: Path) -> None:
    r = SpladeRetriever.from_texts(
        SEED,
        metadatas=[{"n": i} for i in range(len(SEED))],
        ids=[f"s{i}" for i in range(len(SEED))],
        embeddings=embeddings,
        k=2,
        engine=engine,
    )
    assert r.engine == engine and retriever.engine == "exact"
    for query in QUERIES:
        exact = [(d.id, d.metadata["score"]) for d in retriever.invoke(query, k=len(SEED))]
        got = [(d.id, d.metadata["score"]) for d in r.invoke(query, k=len(SEED))]
        if engine == "exhaustive":
            assert got == exact
        else:  # approximate: the exact ranking, some documents perhaps left out, each with its exact score
            assert got[0] == exact[0] and got == [hit for hit in exact if hit in got]
    r.save(tmp_path / "r")
    loaded = SpladeRetriever.load(tmp_path / "r", embeddings=embeddings, engine=engine)
    assert loaded.engine == engine and all(loaded.invoke(q) == r.invoke(q) for q in QUERIES)
    assert SpladeRetriever.load(tmp_path / "r", embeddings=embeddings).engine == "exact"  # the engine is not saved


def test_bad_engine(embeddings: SpladeSparseEmbeddings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match=re.escape("engine='bm25' is not one of ('exact', 'exhaustive', 'seismic')")):
        SpladeRetriever(embeddings=embeddings, engine="bm25")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=re.escape("engine must be one of ('exact', 'exhaustive', 'seismic')")):
        SpladeRetriever.from_texts(SEED, embeddings=embeddings, engine=None)
    SpladeRetriever.from_texts(SEED[:1], embeddings=embeddings).save(tmp_path / "r")
    with pytest.raises(ValueError, match=re.escape("engine='bm25' is not one of")):
        SpladeRetriever.load(tmp_path / "r", embeddings=embeddings, engine="bm25")  # type: ignore[arg-type]
    monkeypatch.setitem(sys.modules, "seismic", None)  # pyseismic-lsr not installed
    with pytest.raises(ImportError, match=re.escape("pip install 'splade-onnx[ann]'")):
        SpladeRetriever(embeddings=embeddings, engine="seismic")


def test_add_delete_save_load(embeddings: SpladeSparseEmbeddings, tmp_path: Path) -> None:
    r = SpladeRetriever.from_documents(
        [Document(page_content=t, id=f"d{i}") for i, t in enumerate(SEED)], embeddings=embeddings, k=3
    )
    r.add_documents([Document(page_content="Vikram lander and Pragyan rover", metadata={"extra": True})], ids=["x"])
    assert r.invoke("Pragyan rover", k=1)[0].id == "x"
    assert r.delete(["x"]) == 1 and all(d.id != "x" for d in r.invoke("Pragyan rover", k=10))
    with pytest.raises(KeyError):
        r.delete(["nope"])
    before = [(d.id, d.metadata["score"]) for d in r.invoke("moon landing date")]
    r.save(tmp_path / "r")
    loaded = SpladeRetriever.load(tmp_path / "r", embeddings=embeddings)
    assert [(d.id, d.metadata["score"]) for d in loaded.invoke("moon landing date")] == before
    assert len(loaded) == len(SEED) and loaded.k == 3


def test_concurrent_ainvoke_keeps_the_loop_free(retriever: SpladeRetriever) -> None:
    """The encoder waits, inside the call, for a callback only a free event loop can run."""
    results = run_while_encoding_waits_for_the_loop(
        retriever.embeddings.encoder,
        "encode_queries",
        lambda: [retriever.ainvoke(f"lunar mission {i}") for i in range(40)],
    )
    assert len(results) == 40 and all(len(r) == 2 for r in results)
    assert results[0] == retriever.invoke("lunar mission 0")  # async equals sync
