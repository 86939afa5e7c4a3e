"""No data loss and no wrong results: saves through the core's payload helper that record the model, old layouts
still read, ids kept and never merged."""

from __future__ import annotations

import asyncio
import inspect
import re
from datetime import date
from pathlib import Path
from typing import Any

import langchain_splade
import pytest
import tomllib
from langchain_core.documents import Document
from langchain_splade import SpladeRetriever, SpladeSparseEmbeddings
from langchain_splade.retrievers import PAYLOAD

from splade_onnx import (
    DEFAULT_MODEL,
    ArgumentError,
    ArgumentTypeError,
    IndexFormatError,
    ModelIdentity,
    ModelMismatchError,
    SparseIndex,
    UnknownIdError,
)

from conftest import SEED

QUERIES = ["How much did the mission cost?", "rocket launch site", "moon landing date"]
IDS = [f"s{i}" for i in range(len(SEED))]
PACKAGE = Path(langchain_splade.__file__).parent


def hits(r: SpladeRetriever) -> list[list[tuple[str | None, str, dict[str, Any]]]]:
    return [[(d.id, d.page_content, d.metadata) for d in r.invoke(q, k=len(SEED))] for q in QUERIES]


@pytest.fixture
def saved(embeddings: SpladeSparseEmbeddings, tmp_path: Path) -> tuple[Path, list[Any]]:
    """A folder holding a good save, and the hits it gives when loaded."""
    r = SpladeRetriever.from_texts(
        SEED, metadatas=[{"n": i} for i in range(len(SEED))], ids=IDS, embeddings=embeddings, k=3
    )
    r.save(tmp_path / "r")
    before = hits(SpladeRetriever.load(tmp_path / "r", embeddings=embeddings))
    assert before == hits(r)
    return tmp_path / "r", before


def changed(embeddings: SpladeSparseEmbeddings, **metadata: Any) -> SpladeRetriever:
    """The same ids on other texts: a save that mixed old and new files would return wrong texts."""
    metas = [{"n": i, **(metadata if i == 3 else {})} for i in range(len(SEED))]
    return SpladeRetriever.from_texts(list(reversed(SEED)), metadatas=metas, ids=IDS, embeddings=embeddings)


def test_unserializable_metadata_is_refused_before_anything_is_written(
    embeddings: SpladeSparseEmbeddings, saved: tuple[Path, list[Any]]
) -> None:
    folder, before = saved
    files = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(ArgumentError, match=re.escape("['documents']['s3']['metadata']['date'] is a date")):
        changed(embeddings, date=date(2024, 1, 1)).save(folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == files  # not one byte changed
    assert hits(SpladeRetriever.load(folder, embeddings=embeddings)) == before


def test_a_save_goes_through_the_core_payload_helper(
    embeddings: SpladeSparseEmbeddings, saved: tuple[Path, list[Any]]
) -> None:
    """One all-or-nothing file, whose payload the core checks (tests/test_index_payload.py has every
    failure mode: failed and killed saves, other formats, newer versions, a missing payload)."""
    folder, _ = saved
    assert sorted(p.name for p in folder.iterdir()) == ["index.npz"]
    payload = SparseIndex.load(folder / "index.npz", payload_format=PAYLOAD).payload
    assert payload["format"] == "langchain-splade-retriever" and payload["version"] == 2 and payload["k"] == 3
    assert payload["documents"]["s3"] == {"page_content": SEED[3], "metadata": {"n": 3}}


def test_a_save_of_the_current_version_written_before_the_helper_loads(
    embeddings: SpladeSparseEmbeddings, tmp_path: Path
) -> None:
    index = SparseIndex(model=embeddings.encoder.identity)
    index.add(embeddings.encoder.encode_documents(SEED), ids=IDS)
    docs = {i: {"page_content": t, "metadata": {"n": n}} for n, (i, t) in enumerate(zip(IDS, SEED))}
    payload = {"format": "langchain-splade-retriever", "version": 2, "k": 3, "documents": docs}
    index.save(tmp_path / "index.npz", payload=payload)  # exactly what SpladeRetriever.save wrote before
    old = SpladeRetriever.load(tmp_path, embeddings=embeddings)
    metadatas = [{"n": i} for i in range(len(SEED))]
    assert old.k == 3 and hits(old) == hits(SpladeRetriever.from_texts(SEED, metadatas, IDS, embeddings=embeddings))
    index.save(tmp_path / "index.npz", payload={**payload, "version": 3})
    with pytest.raises(IndexFormatError, match=re.escape("reads version 2 at most: upgrade langchain-splade")):
        SpladeRetriever.load(tmp_path, embeddings=embeddings)


def test_a_save_records_the_model_and_another_model_is_refused(
    embeddings: SpladeSparseEmbeddings, saved: tuple[Path, list[Any]]
) -> None:
    folder, before = saved
    index = SparseIndex.load(folder / "index.npz")
    assert index.model == embeddings.encoder.identity
    # The same save, as if another model (same vocabulary size, other weights) had made the vectors.
    other = SparseIndex(model=ModelIdentity("someone/other-splade", embeddings.encoder.vocab_size, "0" * 64))
    other.add([index.get(i) for i in index.ids], ids=index.ids)
    other.save(folder / "index.npz", payload=index.payload)
    vocab = embeddings.encoder.vocab_size
    with pytest.raises(ModelMismatchError, match=re.escape(f"was built by someone/other-splade (vocabulary {vocab}")):
        SpladeRetriever.load(folder, embeddings=embeddings)
    assert hits(SpladeRetriever.load(folder, embeddings=embeddings, allow_model_mismatch=True)) == before


def test_the_two_file_layout_of_0_1_still_loads(embeddings: SpladeSparseEmbeddings, tmp_path: Path) -> None:
    import json

    vectors = embeddings.encoder.encode_documents(SEED)
    index = SparseIndex()  # 0.1 recorded no model and no payload
    index.add(vectors, ids=IDS)
    index.save(tmp_path / "index.npz")
    docs = {i: {"page_content": t, "metadata": {"n": n}} for n, (i, t) in enumerate(zip(IDS, SEED))}
    (tmp_path / "documents.json").write_text(
        json.dumps({"format": "langchain-splade-documents", "version": 1, "k": 3, "documents": docs})
    )
    old = SpladeRetriever.load(tmp_path, embeddings=embeddings)
    fresh = SpladeRetriever.from_texts(
        SEED, metadatas=[{"n": i} for i in range(len(SEED))], ids=IDS, embeddings=embeddings
    )
    assert old.k == 3 and hits(old) == hits(fresh)
    changed(embeddings).save(tmp_path)  # the new save wins over the stale documents.json beside it
    assert hits(SpladeRetriever.load(tmp_path, embeddings=embeddings)) == hits(changed(embeddings))


def test_a_bare_string_where_a_list_is_expected_is_a_type_error(embeddings: SpladeSparseEmbeddings) -> None:
    r = SpladeRetriever.from_texts(SEED[:3], ids=["1", "2", "12"], embeddings=embeddings)
    single = "must be a list, got a single str"
    with pytest.raises(ArgumentTypeError, match=re.escape("ids must be a list, got a single str ('12')")):
        r.delete("12")
    assert sorted(r._docs) == ["1", "12", "2"] and len(r) == 3  # nothing deleted
    with pytest.raises(ArgumentTypeError, match=re.escape("texts must be an iterable of str, got a single str")):
        embeddings.embed_documents("hello")  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match=re.escape("texts must be an iterable of str, got a single str")):
        asyncio.run(embeddings.aembed_documents("hello"))  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match=re.escape("ids " + single)):
        r.add_texts(["x", "y"], ids="xy")  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match=re.escape("texts " + single)):
        r.add_texts("hello")
    with pytest.raises(ArgumentTypeError, match=re.escape("texts " + single)):
        SpladeRetriever.from_texts("hello", embeddings=embeddings)
    with pytest.raises(ArgumentTypeError, match=re.escape("metadatas must be a list, got a single dict")):
        r.add_texts(["x"], metadatas={"a": 1})  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match=re.escape("documents must be a list, got a single Document")):
        r.add_documents(Document(page_content="x"))  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match=re.escape("ids must be a list, got a single bytes")):
        r.add_documents([Document(page_content="x")], ids=b"x")  # type: ignore[arg-type]
    assert len(r) == 3


def test_duplicate_ids_are_refused_and_nothing_is_added(embeddings: SpladeSparseEmbeddings) -> None:
    r = SpladeRetriever.from_texts(SEED[:2], ids=["a", "b"], embeddings=embeddings)
    two_e = [Document(page_content="x", id="e"), Document(page_content="y"), Document(page_content="z", id="e")]
    in_use = [Document(page_content="x", id="b"), Document(page_content="y", id="a")]
    two_g = [Document(page_content="x", id="g")] * 2
    cases: list[tuple[Any, str]] = [
        (lambda: r.add_texts(["x", "y", "z"], ids=["c", "c", "d"]), "duplicate ids: 'c';"),
        (lambda: r.add_texts(["x"], ids=["a"]), "duplicate ids: 'a';"),  # already in the index
        (lambda: r.add_documents(two_e), "duplicate ids: 'e';"),
        (lambda: r.add_documents(in_use), "duplicate ids: 'b', 'a';"),
        (lambda: SpladeRetriever.from_texts(["x", "y"], ids=["f", "f"], embeddings=embeddings), "duplicate ids: 'f';"),
        (lambda: SpladeRetriever.from_documents(two_g, embeddings=embeddings), "duplicate ids: 'g';"),
    ]
    for call, message in cases:
        with pytest.raises(ArgumentError, match=re.escape(message)):
            call()
        assert r._index.ids == ["a", "b"] and sorted(r._docs) == ["a", "b"]
    with pytest.raises(UnknownIdError):
        r.delete(["a", "nope"])
    assert len(r) == 2


def test_document_ids_are_kept_and_generated_only_when_absent(embeddings: SpladeSparseEmbeddings) -> None:
    docs = [
        Document(page_content=SEED[0], id="moon"),
        Document(page_content=SEED[1]),
        Document(page_content=SEED[2], id="cost"),
    ]
    r = SpladeRetriever.from_documents(docs, embeddings=embeddings, k=3)
    assert r._index.ids[0] == "moon" and r._index.ids[2] == "cost" and r._index.ids[1] not in ("moon", "cost")
    assert r.invoke("How much did the mission cost?", k=1)[0].id == "cost"
    added = r.add_documents([Document(page_content=SEED[3]), Document(page_content=SEED[4], id="site")])
    assert added[1] == "site" and added[0] not in ("moon", "cost", "site", r._index.ids[1])
    assert r.add_documents([Document(page_content=SEED[5], id="ignored")], ids=["landing"]) == ["landing"]
    assert [d.id for d in r.invoke("moon landing date", k=6)].count("landing") == 1
    with_ids = SpladeRetriever(embeddings=embeddings, documents=[Document(page_content=SEED[0], id="x"), SEED[1]])
    assert with_ids._index.ids[0] == "x"


def test_defaults_are_the_core_default_model() -> None:
    from langchain_splade.milvus import SpladeMilvusSparseEmbedding

    for fn in (SpladeSparseEmbeddings.__init__, SpladeMilvusSparseEmbedding.__init__):
        assert inspect.signature(fn).parameters["model"].default is DEFAULT_MODEL
    for source in PACKAGE.glob("*.py"):
        assert DEFAULT_MODEL not in source.read_text(), source  # one constant, in the core


def test_pyproject_bounds_the_core_and_has_the_hybrid_extra() -> None:
    project = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["project"]
    assert "splade-onnx>=0.1.0,<0.2" in project["dependencies"]
    hybrid = " ".join(project["optional-dependencies"]["hybrid"])
    for dist in ("langchain-classic", "langchain-community", "rank-bm25"):  # EnsembleRetriever + BM25Retriever
        assert dist in hybrid
    assert "[hybrid]" in (PACKAGE.parent / "README.md").read_text()
