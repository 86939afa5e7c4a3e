"""SparseIndex's engines on real splade-tiny vectors: the exact engine equals the exhaustive one to the bit,
saved files are memory-mapped and checked, and the Seismic engine finds nearly all of the exact top k."""

from __future__ import annotations

import mmap
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from splade_onnx import IndexFormatError, MissingExtraError, Seismic, SparseEmbedding, SparseIndex
from splade_onnx._beir import load_beir
from splade_onnx._index_engines import ExactEngine

from conftest import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def collections(tiny: Any, run_vectors: Any) -> dict[str, tuple[list[SparseEmbedding], list[SparseEmbedding]]]:
    """Each shipped collection's documents and queries, encoded by splade-tiny."""
    return {
        name: (run_vectors(name), tiny.encode_queries(load_beir(ROOT / "data" / name).query_texts))
        for name in ("cranfield", "cisi")
    }


def _index(engine: str, docs: list[SparseEmbedding]) -> SparseIndex:
    index = SparseIndex(engine="exact" if engine in ("impacts", "bounded") else engine)  # type: ignore[arg-type]
    if engine in ("impacts", "bounded"):  # every document in the impact postings, none scored from its row
        index._engine = ExactEngine(late_min=0, always_bound=engine == "bounded")
    index.add(docs)
    return index


@pytest.mark.parametrize("engine", ["impacts", "bounded"])
@pytest.mark.parametrize("collection", ["cranfield", "cisi"])
def test_the_exact_engine_equals_the_exhaustive_one_to_the_bit(collection: str, engine: str, collections: Any) -> None:
    docs, queries = collections[collection]
    exact, exhaustive = _index(engine, docs), _index("exhaustive", docs)
    rng = np.random.default_rng(0)
    some = [str(i) for i in np.flatnonzero(rng.random(len(docs)) < 0.3)]
    for k in (1, 10, 100, 1000):
        want = exhaustive.search_batch(queries, k)
        assert exact.search_batch(queries, k) == want  # ids, order and float scores identical
        assert [exact.search(q, k) for q in queries[:20]] == want[:20]
        assert exact.search_batch(queries, k, filter_ids=some) == exhaustive.search_batch(queries, k, filter_ids=some)
    gone = [str(i) for i in range(0, len(docs), 3)]
    exact.delete(gone)
    exhaustive.delete(gone)
    assert exact.search_batch(queries, 10) == exhaustive.search_batch(queries, 10)


def test_documents_added_after_the_postings_are_scored_from_their_rows(collections: Any) -> None:
    docs, queries = collections["cranfield"]
    grown = _index("exact", docs[:1000])
    grown.search(queries[0])  # the postings of the first 1000, then 400 scored from their rows
    grown.add(docs[1000:])
    assert grown._engine.impacts.n_docs == 1000  # type: ignore[attr-defined]
    assert grown.search_batch(queries, 10) == _index("exhaustive", docs).search_batch(queries, 10)


def _mapped(a: np.ndarray) -> bool:
    """``a`` is a plain ndarray (not a ``numpy.memmap``, whose every slice costs Python-level work) over a file's
    memory mapping."""
    base = a.base
    while base is not None and not isinstance(base, (np.memmap, mmap.mmap)):
        base = getattr(base, "base", None)
    return type(a) is np.ndarray and base is not None


def test_a_saved_index_is_memory_mapped_and_searches_the_same(collections: Any, tmp_path: Path) -> None:
    docs, queries = collections["cisi"]
    index = _index("exact", docs)
    want = index.search_batch(queries, 10)
    path = tmp_path / "cisi.npz"
    index.save(path)
    for verify in (True, False):
        loaded = SparseIndex.load(path, verify=verify)
        assert isinstance(loaded._engine, ExactEngine) and _mapped(loaded._engine.impacts.docs)
        assert _mapped(loaded._doc_values)
        assert loaded.search_batch(queries, 10) == want
    other = SparseIndex.load(path, engine="exhaustive")
    assert other.engine == "exhaustive" and other.search_batch(queries, 10) == want
    # Added after a load (an in-memory delta), deleted, saved again over the mapped file: same as built afresh.
    loaded.add(docs[:5], ids=[f"again-{i}" for i in range(5)])
    loaded.delete(["7"])
    loaded.save(path)
    fresh = _index("exhaustive", docs)
    fresh.add(docs[:5], ids=[f"again-{i}" for i in range(5)])
    fresh.delete(["7"])
    assert SparseIndex.load(path).search_batch(queries, 10) == fresh.search_batch(queries, 10)


def _flip(path: Path, member: str, at: int) -> None:
    """Flip one byte of ``member``'s array data, ``at`` bytes into it (CRC not updated)."""
    import zipfile

    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(f"{member}.npy")
    with open(path, "r+b") as f:
        f.seek(info.header_offset + 26)
        name_len, extra_len = np.frombuffer(f.read(4), "<u2")
        start = info.header_offset + 30 + int(name_len) + int(extra_len) + 128 + at  # past a 128-byte .npy header
        f.seek(start)
        byte = f.read(1)
        f.seek(start)
        f.write(bytes([byte[0] ^ 0x40]))


@pytest.mark.parametrize("member", ["imp_docs", "imp_weights", "doc_indices", "doc_values"])
def test_verify_catches_a_corrupt_array_that_a_trusting_load_maps(
    collections: Any, tmp_path: Path, member: str
) -> None:
    docs, _ = collections["cranfield"]
    path = tmp_path / "c.npz"
    _index("exact", docs[:200]).save(path)
    _flip(path, member, 1001)
    with pytest.raises(IndexFormatError, match=f"{member}: bad CRC-32"):
        SparseIndex.load(path)
    assert len(SparseIndex.load(path, verify=False)) == 200  # structure intact: opens, at the caller's risk


def test_the_seismic_engine_rescores_what_it_finds_and_reports_its_recall(collections: Any) -> None:
    docs, queries = collections["cranfield"]
    exact = _index("exact", docs)
    approx = SparseIndex(engine=Seismic(query_cut=30, heap_factor=0.9, n_postings=1000))
    approx.add(docs)
    assert approx.engine == "seismic"
    want = exact.search_batch(queries, 10)
    got = approx.search_batch(queries, 10)
    assert [approx.search(q, 10) for q in queries] == got  # Seismic's single-query call finds the same
    exact_scores = {i: s for hits in exact.search_batch(queries, 1400) for i, s in hits}
    for q, hits in zip(queries, got):
        full = dict(exact.search(q, 1400))
        assert all(full[i] == s for i, s in hits)  # every returned score is the exact one
        assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    assert exact_scores
    recall = approx.recall(queries, 10)
    overlap = np.mean([len({i for i, _ in g} & {i for i, _ in w}) / len(w) for g, w in zip(got, want) if w])
    assert recall == pytest.approx(overlap) and recall >= 0.9
    assert exact.recall(queries, 10) == 1.0
    approx.tune(query_cut=5, heap_factor=0.5)  # faster, no rebuild; settings checked as Seismic's
    assert approx.recall(queries, 10) <= recall
    with pytest.raises(ValueError, match=r"Seismic\(heap_factor=-1\) must be > 0"):
        approx.tune(heap_factor=-1)
    with pytest.raises(ValueError, match="this one is 'exact'"):
        exact.tune(query_cut=3)
    gone = [i for i, _ in want[0][:3]]
    approx.delete(gone)
    assert not {i for i, _ in approx.search(queries[0], 10)} & set(gone)
    allowed = [str(i) for i in range(0, 1400, 50)]
    assert approx.search(queries[0], 5, filter_ids=allowed) == exact.search(queries[0], 5, filter_ids=allowed)


def test_the_seismic_engine_without_its_extra_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "seismic", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'splade-onnx\[ann\]'"):
        SparseIndex(engine="seismic")


def test_bad_engines_and_settings_are_refused() -> None:
    with pytest.raises(ValueError, match=r"engine='fast' is not one of \('exact', 'exhaustive', 'seismic'\)"):
        SparseIndex(engine="fast")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="engine must be one of"):
        SparseIndex(engine=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"Seismic\(heap_factor=0.0\) must be > 0"):
        Seismic(heap_factor=0.0)
    with pytest.raises(TypeError, match=r"Seismic\(query_cut=...\) must be int"):
        Seismic(query_cut=2.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Seismic\(cache=...\) must be True, False or a folder, got 3"):
        Seismic(cache=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"must be True, False or a folder, got b'x'"):
        Seismic(cache=b"x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"Seismic\(cache=''\) names no folder"):
        Seismic(cache="")
    assert Seismic(cache="~/c") == Seismic(cache=Path.home() / "c")  # a folder is expanded and made absolute
