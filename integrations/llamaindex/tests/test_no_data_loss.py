"""No data loss and no wrong results: persists through the core's payload helper that record the model, old
layouts still read, unique node ids, and LlamaIndex's own metadata-filter semantics."""

from __future__ import annotations

import asyncio
import inspect
import re
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import llama_index.sparse_embeddings.splade as package
import pytest
import tomllib
from llama_index.core import StorageContext, VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.schema import MetadataMode, TextNode
from llama_index.core.storage.docstore import SimpleDocumentStore
from llama_index.core.vector_stores import SimpleVectorStore
from llama_index.core.vector_stores.types import FilterCondition, FilterOperator, MetadataFilter, MetadataFilters
from llama_index.sparse_embeddings.splade import SpladeRetriever, SpladeSparseEmbedding, to_qdrant_sparse_fns
from llama_index.sparse_embeddings.splade.retriever import PAYLOAD

from splade_onnx import (
    DEFAULT_MODEL,
    ArgumentError,
    ArgumentTypeError,
    IndexFormatError,
    ModelIdentity,
    ModelMismatchError,
    SparseIndex,
)

from conftest import SEED

FORMAT = "llama-index-splade-retriever"
QUERIES = ["How much did the mission cost?", "rocket launch site", "moon landing date"]
IDS = [str(uuid.UUID(int=i + 1)) for i in range(len(SEED))]
PACKAGE = Path(package.__file__).parent
DISTRIBUTION = PACKAGE.parents[2]


def seed_nodes(texts: list[str] = SEED, **extra: Any) -> list[TextNode]:
    """The seed as nodes; node 3 gets ``extra`` metadata."""
    return [TextNode(text=t, id_=IDS[i], metadata={"n": i, **(extra if i == 3 else {})}) for i, t in enumerate(texts)]


def hits(r: SpladeRetriever) -> list[list[tuple[str, str, dict[str, Any], float | None]]]:
    return [[(h.node.node_id, h.node.get_content(), h.node.metadata, h.score) for h in r.retrieve(q)] for q in QUERIES]


@pytest.fixture
def saved(embedding: SpladeSparseEmbedding, tmp_path: Path) -> tuple[Path, list[Any]]:
    """A folder holding a good persist, and the hits it gives when loaded."""
    r = SpladeRetriever.from_defaults(nodes=seed_nodes(), sparse_embedding=embedding, similarity_top_k=6)
    r.persist(tmp_path / "p")
    before = hits(SpladeRetriever.from_persist_dir(tmp_path / "p", sparse_embedding=embedding))
    assert before == hits(r)
    return tmp_path / "p", before


def changed(embedding: SpladeSparseEmbedding, **extra: Any) -> SpladeRetriever:
    """The same node ids on other texts: a persist that mixed old and new files would return wrong texts."""
    nodes = seed_nodes(list(reversed(SEED)), **extra)
    return SpladeRetriever.from_defaults(nodes=nodes, sparse_embedding=embedding, similarity_top_k=6)


def test_unserializable_metadata_is_refused_before_anything_is_written(
    embedding: SpladeSparseEmbedding, saved: tuple[Path, list[Any]]
) -> None:
    folder, before = saved
    files = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(ArgumentError, match=re.escape(f"['{IDS[3]}']['__data__']['metadata']['date'] is a date")):
        changed(embedding, date=date(2024, 1, 1)).persist(folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == files  # not one byte changed
    assert hits(SpladeRetriever.from_persist_dir(folder, sparse_embedding=embedding)) == before


def test_a_persist_goes_through_the_core_payload_helper(
    embedding: SpladeSparseEmbedding, saved: tuple[Path, list[Any]]
) -> None:
    """One all-or-nothing file, whose payload the core checks (tests/test_index_payload.py has every
    failure mode: failed and killed saves, other formats, newer versions, a missing payload)."""
    folder, _ = saved
    assert sorted(p.name for p in folder.iterdir()) == ["index.npz"]
    payload = SparseIndex.load(folder / "index.npz", payload_format=PAYLOAD).payload
    assert payload["format"] == "llama-index-splade-retriever" and payload["version"] == 2
    assert payload["similarity_top_k"] == 6 and payload["filters"] is None
    assert sorted(SimpleDocumentStore.from_dict(payload["docstore"]).docs) == sorted(IDS)


def test_a_persist_of_the_current_version_written_before_the_helper_loads(
    embedding: SpladeSparseEmbedding, tmp_path: Path
) -> None:
    nodes = seed_nodes()
    index = SparseIndex(model=embedding.encoder.identity)
    texts = [n.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes]
    index.add(embedding.encoder.encode_documents(texts), ids=IDS)
    store = SimpleDocumentStore()
    store.add_documents(nodes)
    filters = G("and", F("n", 2, ">")).model_dump(mode="json")
    payload = {"format": FORMAT, "version": 2, "similarity_top_k": 6, "filters": filters, "docstore": store.to_dict()}
    index.save(tmp_path / "index.npz", payload=payload)  # exactly what SpladeRetriever.persist wrote before
    old = SpladeRetriever.from_persist_dir(tmp_path, sparse_embedding=embedding)
    fresh = SpladeRetriever(seed_nodes(), embedding, similarity_top_k=6, filters=G("and", F("n", 2, ">")))
    assert old.similarity_top_k == 6 and old.filters == fresh.filters and hits(old) == hits(fresh)
    index.save(tmp_path / "index.npz", payload={**payload, "version": 3})
    with pytest.raises(IndexFormatError, match=re.escape("version 2 at most: upgrade llama-index-sparse-embeddings")):
        SpladeRetriever.from_persist_dir(tmp_path, sparse_embedding=embedding)


def test_a_persist_records_the_model_and_another_model_is_refused(
    embedding: SpladeSparseEmbedding, saved: tuple[Path, list[Any]]
) -> None:
    folder, before = saved
    index = SparseIndex.load(folder / "index.npz")
    assert index.model == embedding.encoder.identity
    # The same persist, as if another model (same vocabulary size, other weights) had made the vectors.
    other = SparseIndex(model=ModelIdentity("someone/other-splade", embedding.encoder.vocab_size, "0" * 64))
    other.add([index.get(i) for i in index.ids], ids=index.ids)
    other.save(folder / "index.npz", payload=index.payload)
    vocab = embedding.encoder.vocab_size
    with pytest.raises(ModelMismatchError, match=re.escape(f"was built by someone/other-splade (vocabulary {vocab}")):
        SpladeRetriever.from_persist_dir(folder, sparse_embedding=embedding)
    assert (
        hits(SpladeRetriever.from_persist_dir(folder, sparse_embedding=embedding, allow_model_mismatch=True)) == before
    )


def test_the_two_file_layout_of_0_1_still_loads(embedding: SpladeSparseEmbedding, tmp_path: Path) -> None:
    nodes = seed_nodes()
    index = SparseIndex()  # 0.1 recorded no model and no payload
    texts = [n.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes]
    index.add(embedding.encoder.encode_documents(texts), ids=IDS)
    index.save(tmp_path / "index.npz")
    store = SimpleDocumentStore()
    store.add_documents(nodes)
    store.persist(str(tmp_path / "docstore.json"))
    old = SpladeRetriever.from_persist_dir(tmp_path, sparse_embedding=embedding, similarity_top_k=6)
    fresh = SpladeRetriever.from_defaults(nodes=seed_nodes(), sparse_embedding=embedding, similarity_top_k=6)
    assert hits(old) == hits(fresh)
    changed(embedding).persist(tmp_path)  # the new persist wins over the stale docstore.json beside it
    assert hits(SpladeRetriever.from_persist_dir(tmp_path, sparse_embedding=embedding)) == hits(changed(embedding))


def test_top_k_and_nested_filters_survive_a_persist(embedding: SpladeSparseEmbedding, tmp_path: Path) -> None:
    nested = G("or", F("n", 5, ">="), G("not", F("n", [0, 1], "in"), F("n", 3.5, ">")))  # n in {2, 3, 5}
    r = SpladeRetriever(seed_nodes(), embedding, similarity_top_k=5, filters=nested)
    r.persist(tmp_path)
    loaded = SpladeRetriever.from_persist_dir(tmp_path, sparse_embedding=embedding)
    assert loaded.similarity_top_k == 5 and loaded.filters == nested
    assert hits(loaded) == hits(r) and {h[2]["n"] for q in hits(r) for h in q} == {2, 3, 5}
    everything = SpladeRetriever.from_persist_dir(
        tmp_path, sparse_embedding=embedding, similarity_top_k=6, filters=MetadataFilters(filters=[])
    )
    assert len(everything.retrieve(QUERIES[2])) > len(loaded.retrieve(QUERIES[2]))


def test_a_bare_string_where_a_list_is_expected_is_a_type_error(embedding: SpladeSparseEmbedding) -> None:
    with pytest.raises(ArgumentTypeError, match=re.escape("texts must be a list of str, got a single str ('hello')")):
        embedding.get_text_embedding_batch("hello")  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match=re.escape("texts must be a list of str, got a single str ('hello')")):
        asyncio.run(embedding.aget_text_embedding_batch("hello"))  # type: ignore[arg-type]
    for fn in to_qdrant_sparse_fns(embedding):
        with pytest.raises(ArgumentTypeError, match=re.escape("texts must be an iterable of str, got a single str")):
            fn("hello")
    with pytest.raises(ArgumentTypeError, match=re.escape("nodes must be a list of nodes, got a single TextNode")):
        SpladeRetriever(seed_nodes()[0], embedding)  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match=re.escape("nodes must be a list of nodes, got a single str")):
        SpladeRetriever.from_defaults(nodes="hello", sparse_embedding=embedding)  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match=re.escape("nodes[1] is a str, not a BaseNode")):
        SpladeRetriever.from_defaults(nodes=[seed_nodes()[0], "x"], sparse_embedding=embedding)  # type: ignore[list-item]


def test_duplicate_node_ids_are_refused(embedding: SpladeSparseEmbedding) -> None:
    nodes = [*seed_nodes(), TextNode(text="another text", id_=IDS[2]), TextNode(text="and one more", id_=IDS[0])]
    with pytest.raises(ArgumentError, match=re.escape(f"duplicate node ids: '{IDS[0]}', '{IDS[2]}'; each node needs")):
        SpladeRetriever.from_defaults(nodes=nodes, sparse_embedding=embedding)


# ------------------------------------------------------------------ metadata filters, as SimpleVectorStore applies them

TAGS = [["a", "b"], ["b"], []]
TITLES = ["Lunar mission", "lunar rover", "Cost report", "LUNAR landing", "rocket report", "site", "Report", None]


def filter_nodes() -> list[TextNode]:
    nodes = []
    for i in range(8):
        meta: dict[str, Any] = {
            "n": i,
            "parity": "odd" if i % 2 else "even",
            "tags": TAGS[i % 3],
            "day": date(2024, 1, 1 + i),
        }
        if TITLES[i] is not None:
            meta["title"] = TITLES[i]
        meta.update([{"note": ""}, {"note": None}, {}, {"note": "x"}][min(i, 3)])
        nodes.append(TextNode(text=f"mission report number {i}", id_=f"node{i}", metadata=meta))
    return nodes


def F(key: str, value: Any, op: str = "==") -> MetadataFilter:
    return MetadataFilter(key=key, value=value, operator=FilterOperator(op))


def G(condition: str, *filters: MetadataFilter | MetadataFilters) -> MetadataFilters:
    return MetadataFilters(filters=list(filters), condition=FilterCondition(condition))


FLAT = [
    F("parity", "even"),
    F("parity", "even", "!="),
    F("absent", "x", "!="),
    F("n", 3, ">"),
    F("n", 3, ">="),
    F("n", 3, "<"),
    F("n", 3.5, "<="),
    F("n", [1, 2, 3], "in"),
    F("n", [1, 2, 3], "nin"),
    F("tags", ["a", "x"], "any"),
    F("tags", ["a", "b"], "all"),
    F("tags", "b", "contains"),
    F("title", "Lunar", "text_match"),
    F("title", "lunar", "text_match_insensitive"),
    F("note", None, "is_empty"),
    F("tags", None, "is_empty"),
    F("day", "2024-01-04", ">"),
    F("doc_id", "None"),
]
CONDITIONS = [
    G("and", F("parity", "even"), F("n", 1, ">")),
    G("or", F("n", 2, "<"), F("tags", "a", "contains")),
    G("not", F("parity", "even"), F("n", 5, ">")),  # neither: odd and <= 5
    G("not", F("note", None, "is_empty")),
]
NESTED = [
    G("or", F("n", 6, ">="), G("not", F("parity", "even"), F("tags", "a", "contains"))),
    G("and", F("parity", "odd"), G("or", F("n", 3, "<"), F("title", "report", "text_match_insensitive"))),
    G("not", G("and", F("parity", "even"), F("n", 4, "<")), F("tags", None, "is_empty")),
    G("and", G("or", G("not", F("n", 2, ">")), F("n", 7)), F("tags", "b", "contains")),
]


@pytest.fixture(scope="module")
def simple_store() -> VectorStoreIndex:
    """LlamaIndex's own SimpleVectorStore over the same nodes; MockEmbedding makes every node a candidate."""
    return VectorStoreIndex(
        [n.model_copy() for n in filter_nodes()],
        embed_model=MockEmbedding(embed_dim=8),
        storage_context=StorageContext.from_defaults(vector_store=SimpleVectorStore()),
    )


def by_simple_store(index: VectorStoreIndex, filters: MetadataFilters) -> set[str]:
    return {h.node.node_id for h in index.as_retriever(similarity_top_k=8, filters=filters).retrieve("mission report")}


def reference(index: VectorStoreIndex, filters: MetadataFilters) -> set[str]:
    """SimpleVectorStore's result; for nested filters (which it refuses), the set algebra of its results."""
    if not any(isinstance(f, MetadataFilters) for f in filters.filters):
        return by_simple_store(index, filters)
    parts = [reference(index, f if isinstance(f, MetadataFilters) else G("and", f)) for f in filters.filters]
    everything = {f"node{i}" for i in range(8)}
    if filters.condition == FilterCondition.OR:
        return set().union(*parts)
    if filters.condition == FilterCondition.NOT:
        return everything - set().union(*parts)
    return everything.intersection(*parts)


@pytest.mark.parametrize(
    "filters",
    [G("and", f) for f in FLAT] + CONDITIONS + NESTED,
    ids=[f"flat-{f.operator.name}-{f.key}" for f in FLAT]
    + [f"condition{i}" for i in range(len(CONDITIONS))]
    + [f"nested{i}" for i in range(len(NESTED))],
)
def test_filters_select_what_simple_vector_store_selects(
    filters: MetadataFilters, embedding: SpladeSparseEmbedding, simple_store: VectorStoreIndex
) -> None:
    r = SpladeRetriever(filter_nodes(), embedding, similarity_top_k=8, filters=filters)
    ours = {h.node.node_id for h in r.retrieve("mission report")}
    expected = reference(simple_store, filters)
    assert ours == expected
    assert 0 < len(expected) < 8 or filters.filters[0] in (F("absent", "x", "!="), F("doc_id", "None"))


def test_every_filter_node_is_a_candidate(embedding: SpladeSparseEmbedding) -> None:
    r = SpladeRetriever(filter_nodes(), embedding, similarity_top_k=8)
    assert len(r.retrieve("mission report")) == 8  # so a filtered result is the filter's whole node set
    assert {op for f in FLAT for op in [f.operator]} == set(FilterOperator)  # every operator is covered


def test_defaults_are_the_core_default_model() -> None:
    assert SpladeSparseEmbedding.model_fields["model_name"].default is DEFAULT_MODEL
    assert inspect.signature(SpladeRetriever.from_defaults).parameters["sparse_embedding"].default is None
    for source in PACKAGE.glob("*.py"):
        assert DEFAULT_MODEL not in source.read_text(), source  # one constant, in the core


def test_pyproject_bounds_the_core_and_has_the_hybrid_extra() -> None:
    project = tomllib.loads((DISTRIBUTION / "pyproject.toml").read_text())["project"]
    assert "splade-onnx>=0.1.0,<0.2" in project["dependencies"]
    hybrid = " ".join(project["optional-dependencies"]["hybrid"])
    for dist in ("llama-index-retrievers-bm25", "PyStemmer"):  # QueryFusionRetriever + BM25Retriever + Stemmer
        assert dist in hybrid
    assert "[hybrid]" in (DISTRIBUTION / "README.md").read_text()
