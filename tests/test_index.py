"""SparseIndex: exact search against a brute force, deletes, persistence and its failure modes."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from splade_onnx import SparseEmbedding, _index_engines
from splade_onnx._index import SparseIndex, top_k
from splade_onnx._index_engines import ExactEngine

#: "exact" scores small indexes from their rows; "impacts" builds the impact postings from the first row
#: and always takes the bounded path (never scoring every posting, as "exact" does for small queries).
ENGINES = ["exact", "impacts", "exhaustive"]


def make_index(engine: str, **kwargs: Any) -> SparseIndex:
    index = SparseIndex(engine="exact" if engine == "impacts" else engine, **kwargs)  # type: ignore[arg-type]
    if engine == "impacts":
        index._engine = ExactEngine(late_min=0, always_bound=True)
    return index


VOCAB = 200

# Few distinct weights make exact ties common (and their sums exact); arbitrary float32 weights too.
weights = st.one_of(
    st.sampled_from([0.25, 0.5, 1.0, 2.0]),
    st.floats(min_value=0.0009765625, max_value=10.0, width=32),
)


@st.composite
def vectors(draw: st.DrawFn, max_terms: int = 30, vocab: int = VOCAB) -> SparseEmbedding:
    terms = draw(st.lists(st.integers(0, vocab - 1), unique=True, max_size=max_terms))
    values = draw(st.lists(weights, min_size=len(terms), max_size=len(terms)))
    return SparseEmbedding(values=np.array(values, np.float32), indices=np.array(terms, np.int64))


def brute_force(
    docs: list[tuple[str, SparseEmbedding]], query: SparseEmbedding, k: int, allowed: set[str] | None = None
) -> list[tuple[str, float]]:
    """Every live doc sharing a term with ``query``, by (-score, insertion position); float64 sums in term order."""
    q = query.as_dict()
    rows = []
    for position, (doc_id, doc) in enumerate(docs):
        if allowed is not None and doc_id not in allowed:
            continue
        d = doc.as_dict()
        shared = sorted(set(q) & set(d))
        if not shared:
            continue
        score = 0.0
        for t in shared:
            score += q[t] * d[t]
        assert score == pytest.approx(query.dot(doc), rel=1e-12, abs=1e-12)
        rows.append((-score, position, doc_id, score))
    rows.sort()
    return [(doc_id, score) for _, _, doc_id, score in rows[:k]]


def assert_same(got: list[tuple[str, float]], expected: list[tuple[str, float]]) -> None:
    assert [i for i, _ in got] == [i for i, _ in expected]
    for (_, g), (_, e) in zip(got, expected):
        assert type(g) is float
        assert g == pytest.approx(e, rel=1e-4, abs=1e-12)


def corpus(n: int, seed: int, vocab: int = 1000, terms: tuple[int, int] = (5, 60)) -> list[SparseEmbedding]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        idx = rng.choice(vocab, size=int(rng.integers(*terms)), replace=False)
        out.append(SparseEmbedding(values=rng.random(idx.size).astype(np.float32) + 0.01, indices=idx))
    return out


def vec(d: dict[int, float]) -> SparseEmbedding:
    return SparseEmbedding.from_dict(d)


# ---------------------------------------------------------------------------- properties


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    docs=st.lists(vectors(), max_size=60),
    queries=st.lists(vectors(), min_size=1, max_size=5),
    k=st.integers(1, 70),
)
@pytest.mark.parametrize("engine", ENGINES)
def test_search_equals_brute_force(
    engine: str, docs: list[SparseEmbedding], queries: list[SparseEmbedding], k: int
) -> None:
    index = make_index(engine)
    ids = index.add(docs)
    assert ids == [str(i) for i in range(len(docs))]
    live = list(zip(ids, docs))
    batch = index.search_batch(queries, k)
    for q, from_batch in zip(queries, batch):
        expected = brute_force(live, q, k)
        got = index.search(q, k)
        assert_same(got, expected)
        assert from_batch == got


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
@pytest.mark.parametrize("engine", ENGINES)
def test_deletes_and_readds_equal_brute_force(engine: str, data: st.DataObject) -> None:
    """Random adds, deletes (with and without compaction), re-adds and filtered searches against a model."""
    index = make_index(engine, dim=VOCAB)
    model: list[tuple[str, SparseEmbedding]] = []  # live docs in insertion order
    deleted: list[str] = []
    ops = data.draw(st.lists(st.sampled_from(["add", "add_ids", "delete", "readd", "search"]), min_size=1, max_size=12))
    for op in [*ops, "search"]:
        if op == "add":
            docs = data.draw(st.lists(vectors(), max_size=15))
            model += zip(index.add(docs), docs)
        elif op == "add_ids":
            docs = data.draw(st.lists(vectors(), max_size=5))
            ids = [f"doc-{len(model)}-{j}-{len(deleted)}" for j in range(len(docs))]
            ids = [i for i in ids if i not in index]
            docs = docs[: len(ids)]
            assert index.add(docs, ids=ids) == ids
            model += zip(ids, docs)
        elif op == "delete" and model:
            gone = data.draw(st.lists(st.sampled_from([i for i, _ in model]), unique=True, max_size=len(model)))
            assert index.delete(gone) == len(gone)
            model = [(i, d) for i, d in model if i not in gone]
            deleted += gone
        elif op == "readd" and deleted:
            back = data.draw(st.lists(st.sampled_from(deleted), unique=True, min_size=1, max_size=len(deleted)))
            docs = [data.draw(vectors()) for _ in back]
            assert index.add(docs, ids=back) == back
            model += zip(back, docs)
            deleted = [i for i in deleted if i not in back]
        elif op == "search":
            queries = data.draw(st.lists(vectors(), min_size=1, max_size=4))
            k = data.draw(st.integers(1, 40))
            batch = index.search_batch(queries, k)
            for q, from_batch in zip(queries, batch):
                got = index.search(q, k)
                assert_same(got, brute_force(model, q, k))
                assert from_batch == got
            some = data.draw(st.lists(st.sampled_from([i for i, _ in model] + ["nope", *deleted]), max_size=10))
            filtered = index.search_batch(queries, k, filter_ids=some)
            for q, got in zip(queries, filtered):
                assert_same(got, brute_force(model, q, k, allowed=set(some)))
                assert got == index.search(q, k, filter_ids=iter(some))
        assert len(index) == len(model)
        assert index.ids == [i for i, _ in model]
    for i, d in model:
        assert i in index
        assert index.get(i) == d
    for i in deleted:
        assert i not in index


@pytest.mark.parametrize("engine", ENGINES)
def test_search_batch_equals_search_across_blocks(engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = corpus(400, seed=1)
    queries = [*corpus(150, seed=2, terms=(1, 30)), SparseEmbedding.empty(), vec({5000: 1.0})]
    index = make_index(engine)
    index.add(docs)
    index.delete([str(i) for i in range(0, 400, 7)])
    one_by_one = [index.search(q, 7) for q in queries]
    assert index.search_batch(queries, 7) == one_by_one  # default blocks
    monkeypatch.setattr(_index_engines, "_BLOCK_ENTRIES", 300)  # many small blocks (exhaustive engine)
    assert index.search_batch(queries, 7) == one_by_one
    monkeypatch.setattr(_index_engines, "_BLOCK_CELLS", 1)  # one query per block
    assert index.search_batch(queries, 7) == one_by_one
    assert index.search_batch([], 7) == []
    live = list(zip(index.ids, (index.get(i) for i in index.ids)))
    for q, got in zip(queries[:30], one_by_one):
        assert_same(got, brute_force(live, q, 7))


@pytest.mark.parametrize("engine", ENGINES)
def test_zero_and_negative_weights_still_count_as_shared_terms(engine: str) -> None:
    index = make_index(engine)
    index.add([vec({1: 0.0}), vec({1: 1.0, 2: 1.0}), vec({3: 1.0}), vec({2: 2.0})], ids=["zero", "cancel", "no", "neg"])
    got = index.search(vec({1: 1.0, 2: -1.0}), k=10)
    assert got == [("zero", 0.0), ("cancel", 0.0), ("neg", -2.0)]


# ---------------------------------------------------------------------------- basics


def test_top_k() -> None:
    scores = np.array([1.0, 3.0, 3.0, 0.5, 3.0, 2.0])
    assert top_k(scores, 1).tolist() == [1]
    assert top_k(scores, 2).tolist() == [1, 2]
    assert top_k(scores, 4).tolist() == [1, 2, 4, 5]
    assert top_k(scores, 100).tolist() == [1, 2, 4, 5, 0, 3]
    assert top_k(np.zeros(0), 3).tolist() == []
    with pytest.raises(ValueError, match=re.escape("k must be >= 1, got 0")):
        top_k(scores, 0)


def test_basics_and_repr() -> None:
    index = SparseIndex()
    assert len(index) == 0 and index.ids == [] and repr(index) == "SparseIndex(len=0, dim=None)"
    assert index.search(vec({1: 1.0})) == []
    a, b = vec({1: 1.0, 4: 2.0}), vec({4: 0.5})
    assert index.add([a, b]) == ["0", "1"]
    assert index.add([a], ids=["x"]) == ["x"]
    assert index.add([]) == []
    assert len(index) == 3 and index.ids == ["0", "1", "x"] and "x" in index and "y" not in index and 3 not in index
    assert repr(index) == "SparseIndex(len=3, dim=None)"
    assert index.get("1") == b
    with pytest.raises(KeyError):
        index.get("nope")
    # Fresh ids skip ids in use and never repeat.
    index.add([b], ids=["2"])
    assert index.add([b]) == ["3"]
    index.delete(["3"])
    assert index.add([b]) == ["4"]


def test_bad_k() -> None:
    index = SparseIndex()
    index.add([vec({1: 1.0})])
    for k in (0, -1):
        with pytest.raises(ValueError, match=re.escape(f"k must be >= 1, got {k}")):
            index.search(vec({1: 1.0}), k=k)
        with pytest.raises(ValueError, match=re.escape(f"k must be >= 1, got {k}")):
            index.search_batch([vec({1: 1.0})], k=k)
    with pytest.raises(ValueError, match=re.escape("k must be >= 1, got 0")):
        SparseIndex().search(vec({1: 1.0}), k=0)  # even on an empty index


def test_k_larger_than_corpus_and_unknown_terms() -> None:
    index = SparseIndex()
    index.add([vec({1: 1.0}), vec({2: 1.0}), vec({1: 2.0, 3: 1.0})])
    assert index.search(vec({1: 1.0, 3: 1.0}), k=50) == [("2", 3.0), ("0", 1.0)]
    assert index.search(vec({999: 1.0}), k=5) == []  # beyond any indexed term
    assert index.search(vec({0: 1.0}), k=5) == []  # inside the range, in no document
    assert index.search(SparseEmbedding.empty()) == []
    assert index.search_batch([vec({999: 1.0}), vec({2: 0.5})], k=5) == [[], [("1", 0.5)]]


def test_huge_vocabulary_ids_without_dim(tmp_path: Path) -> None:
    """Postings only hold the ids that occur: no table sized by the largest id."""
    big = 2**40
    index = SparseIndex()
    index.add([vec({big: 1.0, 3: 1.0}), vec({big + 1: 2.0})])
    assert index.search(vec({big: 2.0, big + 1: 1.0, big + 2: 5.0})) == [("0", 2.0), ("1", 2.0)]
    index.save(tmp_path / "i.npz")
    with np.load(tmp_path / "i.npz") as npz:
        assert npz["doc_indices"].dtype == np.int64
    loaded = SparseIndex.load(tmp_path / "i.npz")
    assert loaded.get("0") == index.get("0") and loaded.search(vec({big + 1: 1.0})) == [("1", 2.0)]


@pytest.mark.parametrize("engine", ENGINES)
def test_ties_go_to_the_earlier_insertion(engine: str) -> None:
    index = make_index(engine)
    index.add([vec({1: 1.0})] * 5, ids=["e", "d", "c", "b", "a"])
    assert [i for i, _ in index.search(vec({1: 1.0}), k=3)] == ["e", "d", "c"]
    index.delete(["d"])
    index.add([vec({1: 1.0})], ids=["d"])  # re-added: now the latest
    assert [i for i, _ in index.search(vec({1: 1.0}), k=10)] == ["e", "c", "b", "a", "d"]


@pytest.mark.parametrize("engine", ENGINES)
def test_filter_ids(engine: str) -> None:
    index = make_index(engine)
    index.add([vec({1: float(i + 1)}) for i in range(6)], ids=list("abcdef"))
    q = vec({1: 1.0})
    assert index.search(q, k=2, filter_ids=["b", "e", "unknown"]) == [("e", 5.0), ("b", 2.0)]
    assert index.search(q, k=10, filter_ids={"a"}) == [("a", 1.0)]
    assert index.search(q, filter_ids=[]) == []
    assert index.search(q, filter_ids=["zzz"]) == []
    index.delete(["e"])
    assert index.search(q, k=2, filter_ids=["b", "e"]) == [("b", 2.0)]
    assert index.search_batch([q, vec({2: 1.0})], k=2, filter_ids=(i for i in "fb")) == [[("f", 6.0), ("b", 2.0)], []]
    with pytest.raises(TypeError, match="filter_ids must be an iterable of str ids"):
        index.search(q, filter_ids="abc")


def test_bad_add() -> None:
    index = SparseIndex()
    index.add([vec({1: 1.0})], ids=["a"])
    with pytest.raises(ValueError, match=re.escape("duplicate ids: 'b'")):
        index.add([vec({1: 1.0})] * 3, ids=["b", "c", "b"])
    with pytest.raises(ValueError, match=re.escape("duplicate ids: 'a'")):
        index.add([vec({1: 1.0})], ids=["a"])
    with pytest.raises(TypeError, match=re.escape("embeddings[1] is a dict, not a SparseEmbedding")):
        index.add([vec({1: 1.0}), {1: 1.0}])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="wrap a single one in a list"):
        index.add(vec({1: 1.0}))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=re.escape("got 2 embeddings but 1 ids")):
        index.add([vec({1: 1.0})] * 2, ids=["x"])
    with pytest.raises(TypeError, match=re.escape("ids[1] is a int, ids must be str")):
        index.add([vec({1: 1.0})] * 2, ids=["x", 7])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="ids must be an iterable of str ids"):
        index.add([vec({1: 1.0})], ids="x")
    assert index.ids == ["a"]  # nothing was added by the failed calls


def test_dim() -> None:
    index = SparseIndex(dim=10)
    index.add([vec({9: 1.0})])
    with pytest.raises(ValueError, match=re.escape("embeddings[1] has index 12, which is >= dim=10")):
        index.add([vec({1: 1.0}), vec({3: 1.0, 12: 1.0, 20: 1.0})])
    assert len(index) == 1 and index.dim == 10
    assert index.search(vec({9: 2.0, 50: 1.0})) == [("0", 2.0)]
    with pytest.raises(ValueError, match=re.escape("dim must be >= 1, got 0")):
        SparseIndex(dim=0)


def test_delete() -> None:
    index = SparseIndex()
    index.add([vec({1: 1.0})] * 4, ids=list("abcd"))
    with pytest.raises(KeyError, match=re.escape("unknown ids: 'x', 'y'")):
        index.delete(["a", "x", "y"])
    assert index.ids == list("abcd")  # nothing deleted
    assert index.delete([]) == 0
    assert index.delete(["b", "b"]) == 1
    with pytest.raises(KeyError):
        index.delete(["b"])
    with pytest.raises(TypeError, match="wrap it in a list"):
        index.delete("a")
    assert index.ids == list("acd") and len(index) == 3
    assert index.add([vec({1: 5.0})], ids=["b"]) == ["b"]
    assert index.ids == list("acdb") and index.get("b") == vec({1: 5.0})
    assert index.search(vec({1: 1.0}), k=2) == [("b", 5.0), ("a", 1.0)]


def test_delete_flips_tombstones_and_compacts_lazily() -> None:
    docs = corpus(100, seed=3)
    index = make_index("impacts")
    index.add(docs)
    index.search(docs[0])  # builds the postings
    postings = index._engine.impacts.docs  # type: ignore[attr-defined]
    index.delete([str(i) for i in range(40)])
    assert index._engine.impacts.docs is postings and index._n_dead == 40  # type: ignore[attr-defined]
    live = list(zip(index.ids, docs[40:]))
    for q in docs[:10]:
        assert_same(index.search(q, 5), brute_force(live, q, 5))
    index.delete([str(i) for i in range(40, 70)])  # dead > live: compacted
    assert index._n_dead == 0 and index._n_docs == 30 == len(index)
    live = list(zip(index.ids, docs[70:]))
    for q in docs[:10]:
        assert_same(index.search(q, 5), brute_force(live, q, 5))


def test_compaction_keeps_terms_whose_postings_all_went() -> None:
    """Found by the property test: the last vocabulary ids lose every posting, then the rest go too."""
    index = make_index("impacts")
    index.add([vec({12: 1.0}), vec({12: 0.5}), vec({1: 0.25, 2: 0.25, 3: 0.25, 4: 0.25})], ids=["high", "h2", "low"])
    assert index.search(vec({12: 1.0, 1: 1.0})) == [("high", 1.0), ("h2", 0.5), ("low", 0.25)]
    index.delete(["high", "h2"])  # more dead than live: compacted, ids 5..12 keep empty postings
    assert index.search(vec({12: 1.0, 1: 1.0})) == [("low", 0.25)]
    index.delete(["low"])
    assert len(index) == 0 and index.search(vec({12: 1.0, 1: 1.0})) == []
    index.add([vec({12: 2.0})], ids=["again"])
    assert index.search(vec({12: 1.0})) == [("again", 2.0)]


def test_incremental_postings_equal_a_fresh_build() -> None:
    docs = corpus(300, seed=4)
    checked = {"exhaustive": ("term_ids", "term_indptr", "docs", "values"), "impacts": ("indptr", "docs", "weights")}
    for engine, attrs in checked.items():
        grown = make_index(engine)
        for start in range(0, 300, 50):
            grown.add(docs[start : start + 50])
            grown.search(docs[0])  # merge the new rows into the existing postings
        fresh = make_index(engine)
        fresh.add(docs)
        fresh.search(docs[0])
        built = [getattr(x._engine, "postings" if engine == "exhaustive" else "impacts") for x in (grown, fresh)]
        for attr in attrs:
            assert np.array_equal(getattr(built[0], attr), getattr(built[1], attr)), (engine, attr)


def test_postings_merged_in_small_passes_equal_one_pass() -> None:
    """The exhaustive engine's merge sorts the new entries a bounded chunk at a time (memory at scale)."""
    from splade_onnx import _postings

    docs = corpus(120, seed=5)
    indptr = np.concatenate([[0], np.cumsum([d.indices.size for d in docs])]).astype(np.int64)
    indices = np.concatenate([d.indices for d in docs]).astype(np.uint16)
    values = np.concatenate([d.values for d in docs])
    for chunk in (1, 7, 1000, _postings.MERGE_ENTRIES):
        first = _postings.merge_rows(_postings.Postings(), indptr[:51], indices[: indptr[50]], values[: indptr[50]])
        grown = _postings.merge_rows(first, indptr, indices, values, chunk=chunk)
        whole = _postings.merge_rows(_postings.Postings(), indptr, indices, values, chunk=chunk)
        for got in (grown, whole):
            assert got.n_docs == 120 and got.positive
            for attr in ("term_ids", "term_indptr", "docs", "values"):
                assert np.array_equal(getattr(got, attr), getattr(whole, attr)), (chunk, attr)
        term = np.repeat(whole.term_ids, np.diff(whole.term_indptr))  # every entry once, documents ascending
        entries = sorted(zip(whole.docs.tolist(), term.tolist(), whole.values.tolist()))
        assert entries == sorted(
            (d, int(t), float(v)) for d, doc in enumerate(docs) for t, v in zip(doc.indices, doc.values)
        )
        assert all(np.all(np.diff(whole.docs[a:b]) > 0) for a, b in zip(whole.term_indptr[:-1], whole.term_indptr[1:]))


# ---------------------------------------------------------------------------- persistence


def assert_same_index(a: SparseIndex, b: SparseIndex, queries: list[SparseEmbedding]) -> None:
    assert len(a) == len(b) and a.ids == b.ids
    for i in a.ids:
        assert a.get(i) == b.get(i)
    assert a.search_batch(queries, 10) == b.search_batch(queries, 10)  # ids and scores exactly equal


def test_save_load_round_trip(tmp_path: Path) -> None:
    docs = corpus(200, seed=5)
    queries = corpus(50, seed=6, terms=(1, 30))
    index = SparseIndex(dim=1000)
    index.add(docs[:150])
    index.search(docs[0])
    index.add(docs[150:], ids=[f"late-{i}" for i in range(50)])
    index.delete(["3", "77", "late-4"])
    before = index.search_batch(queries, 10)
    path = tmp_path / "index.npz"
    index.save(path)
    loaded = SparseIndex.load(path)
    assert_same_index(index, loaded, queries)
    assert loaded.search_batch(queries, 10) == before
    assert "3" not in loaded and "late-4" not in loaded and len(loaded) == 197
    assert loaded.dim == 1000
    assert loaded.add([docs[0]]) == index.add([docs[0]]) == ["150"]  # the id counter is saved too
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.npz"]  # no temporary file left

    # The documented format: plain arrays, loadable without pickle.
    with np.load(path, allow_pickle=False) as npz:
        assert sorted(npz.files) == [
            "doc_indices", "doc_indptr", "doc_values", "format_version", "imp_docs", "imp_indptr", "imp_weights", "meta"
        ]  # fmt: skip
        assert int(npz["format_version"]) == 3
        assert npz["doc_indptr"].dtype == np.int64 and npz["doc_indptr"].size == 198
        assert npz["doc_indices"].dtype == np.uint16 and npz["doc_values"].dtype == np.float32
        assert npz["imp_docs"].dtype == np.int32 and npz["imp_weights"].dtype == np.float32
        meta = json.loads(str(npz["meta"]))
    assert meta["format"] == "splade-onnx-sparse-index" and meta["format_version"] == 3
    assert meta["ids"] == loaded.ids[:-1] and meta["dim"] == 1000 and meta["next_id"] == 150
    assert meta["model"] is None and meta["library"].startswith("splade-onnx ")


#: Every way a loaded index can first be asked about its ids (the id map is made on the first that needs it).
FIRST_ASKS: dict[str, Any] = {
    "len": len,
    "ids": lambda ix: ix.ids,
    "contains": lambda ix: ("5" in ix, "nope" in ix),
    "get": lambda ix: ix.get("7"),
    "search": lambda ix: ix.search(corpus(1, seed=9)[0], 5),
    "filter": lambda ix: ix.search(corpus(1, seed=9)[0], 5, filter_ids=["2", "9", "nope"]),
    "delete": lambda ix: ix.delete(["4", "late-1"]),
    "add-fresh": lambda ix: ix.add(corpus(2, seed=11)),
    "add-given": lambda ix: ix.add(corpus(1, seed=12), ids=["given"]),
    "add-taken": lambda ix: ix.add(corpus(1, seed=12), ids=["6"]),
}


@pytest.mark.parametrize("first", sorted(FIRST_ASKS))
def test_a_loaded_index_answers_id_questions_in_any_order_as_the_saved_one(tmp_path: Path, first: str) -> None:
    """Whatever a loaded index is asked first, it and the index it was saved from give the same answers,
    then and through the same sequence of changes afterwards."""
    docs = corpus(60, seed=5)
    saved = SparseIndex(dim=1000)
    saved.add(docs[:50])
    saved.add(docs[50:], ids=[f"late-{i}" for i in range(10)])
    saved.delete(["3"])
    saved.save(tmp_path / "index.npz")
    loaded = SparseIndex.load(tmp_path / "index.npz")
    for index in (saved, loaded):  # the same call on both: the same result or the same error
        try:
            got = FIRST_ASKS[first](index)
        except Exception as exc:  # noqa: BLE001 - compared below
            got = (type(exc), str(exc))
        if index is saved:
            want = got
    assert got == want
    for index in (saved, loaded):
        index.delete(["8"])
        index.add(corpus(3, seed=13), ids=["x", None, "y"])
    queries = corpus(20, seed=6, terms=(1, 30))
    assert_same_index(saved, loaded, queries)
    assert "8" not in loaded and "x" in loaded and len(loaded) == len(saved)


def test_save_load_empty_and_str_path(tmp_path: Path) -> None:
    path = str(tmp_path / "empty")  # no .npz suffix is added
    SparseIndex().save(path)
    loaded = SparseIndex.load(path)
    assert len(loaded) == 0 and loaded.search(vec({1: 1.0})) == []
    index = SparseIndex()
    index.add([vec({1: 1.0})])
    index.delete(["0"])
    index.save(path)  # overwrites
    assert len(SparseIndex.load(path)) == 0


def _killed_save(path: str, where: str) -> None:
    """Child process: start saving a bigger index over ``path`` and die mid-save."""
    index = SparseIndex()
    index.add(corpus(3000, seed=8))
    if where == "fsync":  # all bytes written, not yet renamed into place

        def die(fd: Any) -> None:
            os.kill(os.getpid(), signal.SIGKILL)

        os.fsync = die
    else:  # partway through the arrays
        from splade_onnx import _npz_write

        real = _npz_write._npy_header
        calls = []

        def npy_header(*args: Any, **kwargs: Any) -> bytes:
            calls.append(1)
            if len(calls) == 5:  # format_version, meta, doc_indptr and doc_indices written: die in doc_values
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)

        _npz_write._npy_header = npy_header
    index.save(path)


@pytest.mark.parametrize("where", ["fsync", "write"])
def test_interrupted_save_keeps_the_old_index(tmp_path: Path, where: str) -> None:
    path = tmp_path / "index.npz"
    old = SparseIndex()
    old.add(corpus(20, seed=7))
    old.delete(["4"])
    old.save(path)
    p = multiprocessing.get_context("spawn").Process(target=_killed_save, args=(str(path), where))
    p.start()
    p.join(60)
    assert p.exitcode == -signal.SIGKILL
    leftovers = [f for f in tmp_path.iterdir() if f.name != "index.npz"]
    assert len(leftovers) == 1 and leftovers[0].stat().st_size > path.stat().st_size  # it really was mid-write
    assert_same_index(SparseIndex.load(path), old, corpus(20, seed=9, terms=(1, 30)))


def _rewrite(path: Path, **changes: Any) -> None:
    with np.load(path, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays.update(changes)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def test_newer_format_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "index.npz"
    SparseIndex().save(path)
    meta = json.loads(str(np.load(path)["meta"]))
    _rewrite(path, format_version=np.array(99), meta=np.array(json.dumps({**meta, "format_version": 99})))
    with pytest.raises(ValueError, match=r"format version 99.*supports format version 3.*upgrade splade-onnx"):
        SparseIndex.load(path)
    SparseIndex().save(path)
    _rewrite(path, meta=np.array(json.dumps({**meta, "format_version": 99})))  # only the header says so
    with pytest.raises(ValueError, match=r"99.*upgrade splade-onnx"):
        SparseIndex.load(path)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        SparseIndex.load(path)


def _corrupt_files(tmp_path: Path) -> dict[str, Path]:
    good = tmp_path / "good.npz"
    index = SparseIndex()
    index.add(corpus(30, seed=10))
    index.save(good)
    data = good.read_bytes()
    files = {
        "garbage": b"\x00garbage" * 100,
        "empty": b"",
        "truncated": data[: len(data) // 2],
        "truncated_tail": data[:-10],
    }
    out = {}
    for name, content in files.items():
        out[name] = tmp_path / f"{name}.npz"
        out[name].write_bytes(content)
    out["other_npz"] = tmp_path / "other.npz"
    np.savez(out["other_npz"], a=np.arange(3))
    out["npy"] = tmp_path / "array.npy"
    np.save(out["npy"], np.arange(3))
    out["pickled"] = tmp_path / "pickled.npz"
    np.savez(out["pickled"], format_version=np.array(1), meta=np.array([{"a": 1}], dtype=object))
    broken = {
        "bad_meta": {"meta": np.array("{not json")},
        "wrong_format": {"meta": np.array(json.dumps({"format": "something-else", "format_version": 1}))},
        "bad_indptr": {"doc_indptr": np.arange(5)},
        "unsorted": {"doc_indices": np.load(good)["doc_indices"][::-1]},
        "nan": {"doc_values": np.full(np.load(good)["doc_values"].size, np.nan, np.float32)},
        "zero_version": {"format_version": np.array(0)},
    }
    for name, change in broken.items():
        out[name] = tmp_path / f"{name}.npz"
        out[name].write_bytes(data)
        _rewrite(out[name], **change)
    return out


def test_corrupt_files_are_a_clear_error(tmp_path: Path) -> None:
    for name, path in _corrupt_files(tmp_path).items():
        with pytest.raises(ValueError, match=re.escape(f"not a splade-onnx index or corrupt: {path}")):
            SparseIndex.load(path)
        assert name  # every kind is rejected


def test_ids_can_mix_given_and_fresh_and_are_checked_before_adding() -> None:
    index = SparseIndex()
    e = SparseEmbedding.from_dict({1: 1.0})
    assert index.add([e, e, e], ids=["1", None, "x"]) == ["1", "0", "x"]  # "1" is given, so the counter skips it
    assert index.add([e], ids=[None]) == ["2"]
    assert index.check_ids(["y", None]) == ["y", None]
    with pytest.raises(ValueError, match=re.escape("duplicate ids: 'x', 'z'; each document needs its own id")):
        index.check_ids(["x", "z", "z", None, None])
    with pytest.raises(TypeError, match=re.escape("ids[1] is a int, ids must be str")):
        index.check_ids(["q", 3])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="wrap it in a list"):
        index.check_ids("xy")
    assert index.ids == ["1", "0", "x", "2"]
