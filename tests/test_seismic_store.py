"""A saved Seismic index reopens with the structure built before, read from the local cache, and only ever
the structure built over that very file's rows with the same build settings; anything else is built again."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import pytest

from splade_onnx import Seismic, SparseEmbedding, SparseIndex
from splade_onnx import _seismic_store as store
from splade_onnx._beir import load_beir

from conftest import ROOT

pytestmark = pytest.mark.slow

_READ = "read the structure built before"
_KEPT = "kept the built structure"
_SETTINGS = Seismic(query_cut=30, heap_factor=0.9, n_postings=1000)


@pytest.fixture(scope="module")
def cranfield(tiny: Any, run_vectors: Any) -> tuple[list[SparseEmbedding], list[SparseEmbedding]]:
    """The first 320 Cranfield documents and every query: what is kept and read back does not depend on the
    corpus's size, and a Seismic build of 300 documents takes a quarter of the time of 1,400."""
    docs = run_vectors("cranfield")[:320]
    return docs, tiny.encode_queries(load_beir(ROOT / "data" / "cranfield").query_texts)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SPLADE_ONNX_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "seismic"


def _kept(cache: Path) -> list[Path]:
    return sorted(cache.glob("*.index.seismic"))


def _load(path: Path, caplog: pytest.LogCaptureFixture, settings: Seismic = _SETTINGS) -> tuple[SparseIndex, str]:
    """``path`` loaded and searched once (when the structure is read or built), with what the store logged."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=store.__name__):
        index = SparseIndex.load(path, engine=settings)
        index.search(SparseEmbedding.from_dict({1000: 1.0}))
    return index, caplog.text


def _exact_scores(index: SparseIndex, docs: list[SparseEmbedding], queries: list[SparseEmbedding]) -> None:
    """Every hit of ``index`` carries the exhaustive score of its document."""
    exact = SparseIndex(engine="exhaustive")
    exact.add(docs, ids=index.ids)
    queries = queries[:20]
    for hits, every in zip(index.search_batch(queries, 10), exact.search_batch(queries, len(docs))):
        full = dict(every)
        assert hits and all(full[i] == s for i, s in hits)


def test_a_saved_index_reopens_with_its_structure_read_not_built(
    cranfield: Any, tmp_path: Path, cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    docs, queries = cranfield[0][:300], cranfield[1]
    off = Seismic(query_cut=30, heap_factor=0.9, n_postings=1000, cache=False)
    unkept = SparseIndex(engine=off)
    unkept.add(docs)
    unkept.save(tmp_path / "off.npz")
    _, log = _load(tmp_path / "off.npz", caplog, off)
    assert _READ not in log and _KEPT not in log and not cache.parent.exists()  # not even hashed

    built = SparseIndex(engine=_SETTINGS)
    built.add(docs)
    path = tmp_path / "c.npz"
    built.save(path)
    assert len(_kept(cache)) == 1
    loaded, log = _load(path, caplog)
    assert _READ in log and _KEPT not in log
    assert loaded.search_batch(queries, 10) == built.search_batch(queries, 10)
    built.save(path)  # the same rows again: the same entry, not written twice
    assert len(_kept(cache)) == 1
    assert _load(path, caplog, Seismic(query_cut=5, heap_factor=0.9, n_postings=1000))[1].count(_READ) == 1

    _, log = _load(path, caplog, Seismic(query_cut=30, heap_factor=0.9, n_postings=500))  # another build
    assert _READ not in log and _KEPT in log and len(_kept(cache)) == 2

    _, log = _load(path, caplog, Seismic(query_cut=30, heap_factor=0.9, n_postings=1000, cache=False))
    assert _READ not in log and _KEPT not in log and len(_kept(cache)) == 2


def test_only_the_rows_it_was_built_over_are_served(
    cranfield: Any, tmp_path: Path, cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    docs, queries = cranfield[0][:300], cranfield[1]
    path = tmp_path / "c.npz"
    first = SparseIndex(engine=_SETTINGS)
    first.add(docs)
    first.save(path)
    other = SparseIndex(engine=Seismic(query_cut=30, heap_factor=0.9, n_postings=1000, cache=False))
    other.add(docs[:150], ids=[f"o{i}" for i in range(150)])
    other.save(tmp_path / "other.npz")  # not kept: its structure is built and kept by the first load
    assert len(_kept(cache)) == 1

    copy = tmp_path / "copy.npz"
    shutil.copyfile(path, copy)
    opened = SparseIndex.load(copy, engine=_SETTINGS)  # not searched yet: nothing hashed or built
    assert str(copy.resolve()) not in (cache.parent / "digests.json").read_text()
    shutil.copyfile(tmp_path / "other.npz", tmp_path / "next.npz")
    (tmp_path / "next.npz").replace(copy)  # another file under the same name, before the first search
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=store.__name__):
        _exact_scores(opened, docs, queries)  # its own rows, built: the name no longer shows its file
    assert _READ not in caplog.text and _KEPT not in caplog.text

    (tmp_path / "other.npz").replace(path)
    loaded, log = _load(path, caplog)  # the other file under the first one's name: its own hash, built and kept
    assert _READ not in log and _KEPT in log
    _exact_scores(loaded, docs[:150], queries)
    assert _READ in _load(path, caplog)[1]  # kept by the load that built it

    loaded.add(cranfield[0][300:310], ids=[f"n{i}" for i in range(10)])  # rows no file holds: built, not kept
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=store.__name__):
        assert loaded.search(cranfield[0][305], 3)[0][0] == "n5"
    assert _READ not in caplog.text and _KEPT not in caplog.text


def test_a_damaged_or_foreign_entry_is_built_again(
    cranfield: Any, tmp_path: Path, cache: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs, queries = cranfield[0][:300], cranfield[1]
    path = tmp_path / "c.npz"
    index = SparseIndex(engine=_SETTINGS)
    index.add(docs)
    index.save(path)
    (entry,) = _kept(cache)
    entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])
    loaded, log = _load(path, caplog)
    assert "could not be read" in log and _KEPT in log
    _exact_scores(loaded, docs, queries)

    few = SparseIndex(engine=_SETTINGS)  # a structure of 100 documents under this file's key
    few.add(docs[:100])
    few.save(tmp_path / "few.npz")
    (small,) = set(_kept(cache)) - {entry}
    small.replace(entry)
    loaded, log = _load(path, caplog)
    assert "holds 100 documents, not 300" in log and _KEPT in log
    _exact_scores(loaded, docs, queries)

    monkeypatch.setattr(store, "KEEP", 2)  # the least recently used go first
    for cut in (400, 500, 600, 500):
        _load(path, caplog, Seismic(query_cut=30, heap_factor=0.9, n_postings=cut))
    assert len(_kept(cache)) == 2
    assert _READ in _load(path, caplog, Seismic(query_cut=30, heap_factor=0.9, n_postings=600))[1]
    assert _READ not in _load(path, caplog, Seismic(query_cut=30, heap_factor=0.9, n_postings=400))[1]


def test_an_unwritable_cache_only_costs_the_next_load_a_build(
    cranfield: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs, queries = cranfield[0][:300], cranfield[1]
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("SPLADE_ONNX_CACHE", str(tmp_path / "file" / "cache"))
    index = SparseIndex(engine=_SETTINGS)
    index.add(docs)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=store.__name__):
        index.save(tmp_path / "c.npz")
    assert "could not keep the built structure in the cache (NotADirectoryError" in caplog.text
    loaded, log = _load(tmp_path / "c.npz", caplog)
    assert _READ not in log and "could not keep" in log
    _exact_scores(loaded, docs, queries)


def test_documents_without_terms_do_not_keep_the_structure_from_being_read(
    cranfield: Any, tmp_path: Path, cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    docs, queries = cranfield[0][:300], cranfield[1]
    empty = SparseEmbedding.from_dict({})
    index = SparseIndex(engine=_SETTINGS)
    index.add([empty, *docs, empty])  # Seismic holds 300 documents of these 302
    index.save(tmp_path / "c.npz")
    loaded, log = _load(tmp_path / "c.npz", caplog)
    assert _READ in log and "building it again" not in log
    _exact_scores(loaded, [empty, *docs, empty], queries)


def test_a_folder_given_keeps_the_structures_there(
    cranfield: Any, tmp_path: Path, cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    docs = cranfield[0][:300]
    mine = Seismic(query_cut=30, heap_factor=0.9, n_postings=1000, cache=tmp_path / "mine")
    index = SparseIndex(engine=mine)
    index.add(docs)
    index.save(tmp_path / "c.npz")
    assert len(_kept(tmp_path / "mine" / "seismic")) == 1 and not cache.parent.exists()
    assert _READ in _load(tmp_path / "c.npz", caplog, mine)[1]
    assert _READ not in _load(tmp_path / "c.npz", caplog)[1]  # the library's folder holds none of it
