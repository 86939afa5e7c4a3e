"""FastEmbed 0.9.1's sparse models: its SPLADE models load here under its names, from look-alikes of the very
repositories it downloads, and encode as FastEmbed does (golden from ``scripts/make_golden_fastembed.py``, FastEmbed
itself); its BM25, BM42 and miniCOIL are refused by name; a checkpoint the converter cannot read is refused before
any weight is downloaded."""

from __future__ import annotations

import json
import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import splade_onnx
from splade_onnx import ArgumentError, ModelError, SparseEmbedding, SparseTextEmbedding, SpladeEncoder
from splade_onnx._registry import HubSource, get
from splade_onnx._spec import SPEC_READERS

from conftest import ROOT, golden
from fastembed_lookalikes import COMMIT, IDF_FOREIGN, IDF_REMOVED, IDF_ZERO, write_repo

TOL = 1e-4
GOLDEN = golden("fastembed.json")
FASTEMBED_LIST = json.loads((ROOT / "tests" / "fixtures" / "fastembed_sparse_models.json").read_text())["models"]
SPLADE = [m for m in FASTEMBED_LIST if m["class"] in ("SpladePP", "IfSplade")]
NOT_SPLADE = [m for m in FASTEMBED_LIST if m["class"] not in ("SpladePP", "IfSplade")]
GTE = "opensearch-project/opensearch-neural-sparse-encoding-doc-v3-gte"


@pytest.fixture(scope="module")
def hub_cache(families: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder whose ``hf/`` holds the look-alikes, checked file by file against the oracle's sha256."""
    root = tmp_path_factory.mktemp("fastembed-cache")
    for repo, want in GOLDEN["repos"].items():
        got = write_repo(repo, root / "hf", families)
        assert got == want, f"{repo}: the look-alike files are not the ones FastEmbed encoded (rerun the oracle)"
    return root


def assert_same(got: list[SparseEmbedding], ref: list[dict[str, Any]], what: str) -> None:
    assert len(got) == len(ref) == len(GOLDEN["texts"])
    for i, (e, r) in enumerate(zip(got, ref)):
        assert e.indices.tolist() == r["indices"], f"{what} text {i}: index sets differ"
        if r["values"]:
            diff = float(np.abs(e.values - np.asarray(r["values"], np.float32)).max())
            assert diff <= TOL, f"{what} text {i}: max abs diff {diff:.2e} > {TOL}"


def test_the_oracle_covered_every_splade_model_of_fastembed() -> None:
    assert GOLDEN["fastembed_version"] == "0.9.1"
    assert {m["model"] for m in SPLADE} == set(GOLDEN["models"]) and len(SPLADE) == 3
    assert {m["class"] for m in NOT_SPLADE} == {"Bm25", "Bm42", "MiniCOIL"}


@pytest.mark.parametrize("name", sorted(m["model"] for m in SPLADE))
def test_encoder_loads_fastembed_names_and_encodes_as_fastembed(
    name: str, hub_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    case = GOLDEN["models"][name]
    enc = SpladeEncoder.from_pretrained(name, cache_dir=hub_cache)
    assert enc.source == f"hf:{case['repo']} (onnx)"
    assert enc.name == get(name).name  # type: ignore[union-attr]
    assert enc.query_mode == ("static" if case["class"] == "IfSplade" else "same")
    texts = GOLDEN["texts"]
    assert_same(enc.encode_documents(texts, batch_size=GOLDEN["batch_size"]), case["documents"], f"{name} documents")
    assert_same(enc.encode_queries(texts), case["queries"], f"{name} queries")
    one_by_one = [enc.encode_queries([t])[0] for t in texts]  # the single-query path
    assert_same(one_by_one, case["queries"], f"{name} single queries")


@pytest.mark.parametrize("name", sorted(m["model"] for m in SPLADE))
def test_the_facade_loads_fastembed_names_and_encodes_as_fastembed(
    name: str, hub_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    case = GOLDEN["models"][name]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = SparseTextEmbedding(name, cache_dir=str(hub_cache), local_files_only=True)
    misspelt = name == "prithvida/Splade_PP_en_v1"  # FastEmbed warns that its misspelling is deprecated, as here
    assert [w.category for w in caught] == ([DeprecationWarning] if misspelt else [])
    assert model.encoder.source == f"hf:{case['repo']} (onnx)"
    texts = GOLDEN["texts"]
    assert_same(list(model.embed(texts, batch_size=GOLDEN["batch_size"])), case["documents"], f"{name} embed")
    assert_same(list(model.query_embed(texts)), case["queries"], f"{name} query_embed")


def test_worker_processes_encode_by_the_same_rules(hub_cache: Path) -> None:
    """Workers rebuild the document side from its recipe, the special ids FastEmbed zeroes included."""
    enc = SpladeEncoder.from_pretrained(GTE, cache_dir=hub_cache, local_files_only=True)
    assert enc.loaded.recipes["document"].drop_ids == (0, 100, 101, 102, 103)  # [PAD] [UNK] [CLS] [SEP] [MASK]
    docs = list(enc.embed(GOLDEN["texts"], parallel=2, batch_size=GOLDEN["batch_size"]))
    assert_same(docs, GOLDEN["models"][GTE]["documents"], "parallel documents")


def test_the_facade_applies_fastembed_rules_to_specific_model_path(hub_cache: Path) -> None:
    """FastEmbed encodes ``specific_model_path`` by the rules of the model it is named for; so does the facade."""
    snap = hub_cache / "hf" / f"models--{GOLDEN['models'][GTE]['repo'].replace('/', '--')}" / "snapshots" / COMMIT
    named = SparseTextEmbedding(GTE, cache_dir=str(hub_cache), specific_model_path=str(snap), lazy_load=True)
    texts = GOLDEN["texts"]
    assert_same(list(named.embed(texts, batch_size=GOLDEN["batch_size"])), GOLDEN["models"][GTE]["documents"], "path")
    assert_same(list(named.query_embed(texts)), GOLDEN["models"][GTE]["queries"], "path queries")
    # the same folder by its own layout (a checkpoint + idf.json, sentence-transformers' rules) gives other vectors
    plain = SpladeEncoder.from_pretrained(snap, cache_dir=hub_cache)
    assert plain.encode_queries(texts) != named.encoder.encode_queries(texts)
    assert plain.identity.fingerprint != named.encoder.identity.fingerprint


def test_fastembed_query_rule_differs_from_sentence_transformers_where_it_should(hub_cache: Path) -> None:
    """The inference-free query rule of FastEmbed's IfSplade, on the edits the look-alike's idf.json carries: an
    entry of 0 is kept, special tokens ([MASK], [UNK]) are dropped, and truncation counts the special tokens."""
    enc = SpladeEncoder.from_pretrained(GTE, cache_dir=hub_cache, local_files_only=True)
    tok = enc.loaded.query.tokenizer
    (moon,) = enc.encode_queries([f"{IDF_ZERO} {IDF_REMOVED}"])
    assert moon.as_dict() == {tok.token_to_id(IDF_ZERO): 0.0}  # listed with 0: kept; not listed: left out
    (special,) = enc.encode_queries(["[MASK] [UNK] [CLS] [SEP] [PAD]"])
    assert len(special) == 0
    assert tok.token_to_id(IDF_FOREIGN) is None
    assert enc.query_max_length == enc.max_length == 24  # tokenizer_config.json: min(model_max_length, max_length)
    # a long text (windows: no truncation) takes the table's array path: the same rule as a query's
    ids = tok.encode(["paris is the [MASK] of france, the moon and the mission"])[0]
    assert len(ids * 30) > 256
    shipped = pickle.loads(pickle.dumps(enc.loaded.query))  # as Ray ships a static side to its actors
    assert shipped.vector(ids) == enc.loaded.query.vector(ids)
    assert (
        enc.loaded.query.vector(ids * 30)
        == enc.loaded.query.vector(ids)
        == enc.encode_queries(["paris is the [MASK] of france, the moon and the mission"])[0]
    )


def test_every_splade_model_of_fastembed_is_in_the_registry() -> None:
    """Each SPLADE model of FastEmbed 0.9.1's list, under its FastEmbed name (a name or an alias), from the repository
    FastEmbed downloads and the same files."""
    rows = splade_onnx.list_supported_models()
    names = {r["name"].lower() for r in rows} | {a.lower() for r in rows for a in r["aliases"]}
    for m in SPLADE:
        assert m["model"].lower() in names, m["model"]
        info = get(m["model"])
        assert info is not None and info.fastembed == m["class"], m["model"]
        first = info.sources[0]
        assert isinstance(first, HubSource) and first.repo_id == m["hf"] and first.format == "onnx", m["model"]
        assert {m["model_file"], *m["additional_files"]} <= set(first.files), m["model"]
        assert info.vocab_size == m["vocab_size"] and info.license == m["license"]
    listed = {m["model"]: m for m in SparseTextEmbedding.list_supported_models()}
    assert listed[GTE]["sources"]["hf"] == "Qdrant/opensearch-neural-sparse-encoding-doc-v3-gte"
    assert listed[GTE]["additional_files"] == ["idf.json"] and listed[GTE]["size_in_GB"] == 0.55


def test_the_new_registry_entries() -> None:
    multi = get("opensearch-project/opensearch-neural-sparse-encoding-multilingual-v1")
    granite = get("ibm-granite/granite-embedding-30m-sparse")
    gte = get(GTE)
    assert multi is not None and granite is not None and gte is not None
    assert (multi.vocab_size, multi.query_mode, multi.static_query, multi.parameters) == (
        105879,
        "static",
        "table",
        "160M",
    )
    assert (granite.vocab_size, granite.query_mode, granite.parameters) == (50265, "same", "30M")
    assert (gte.query_mode, gte.activation, gte.parameters, gte.fastembed) == (
        "static",
        "log1p_relu",
        "133M",
        "IfSplade",
    )
    assert all(m.license == "apache-2.0" and m.commercial_use for m in (multi, granite, gte))
    assert get("Qdrant/opensearch-neural-sparse-encoding-doc-v3-gte") is gte


@pytest.mark.parametrize("name", sorted(m["model"] for m in NOT_SPLADE))
def test_fastembeds_other_sparse_models_are_refused_by_name(name: str, tmp_path: Path) -> None:
    for spelling in (name, name.upper()):
        with pytest.raises(ArgumentError, match=re.escape(f"{spelling!r} is FastEmbed's")) as err:
            SpladeEncoder.from_pretrained(spelling, cache_dir=tmp_path, local_files_only=True)
        assert isinstance(err.value, ValueError) and "not a SPLADE model" in str(err.value)
        assert f"fastembed.SparseTextEmbedding({spelling!r})" in str(err.value)
        with pytest.raises(ValueError, match="not a SPLADE model"):  # refused when made, lazy_load or not
            SparseTextEmbedding(spelling, cache_dir=str(tmp_path), lazy_load=True)
    assert get(name) is None


def test_bm25_is_pointed_at_bm25s_and_fusion(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as err:
        SpladeEncoder.from_pretrained("Qdrant/bm25", cache_dir=tmp_path)
    assert "bm25s" in str(err.value) and "splade_onnx.evaluate(..., bm25=True" in str(err.value)
    assert "splade_onnx.fuse" in str(err.value)
    assert hasattr(splade_onnx, "fuse") and hasattr(splade_onnx, "evaluate")


def _hub_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Record every snapshot_download call (still made, so the HF cache answers it)."""
    import huggingface_hub

    calls: list[dict[str, Any]] = []
    real = huggingface_hub.snapshot_download

    def recording(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", recording)
    return calls


def _cached_gte_checkpoint(root: Path, repo_id: str, families: Path) -> None:
    """``repo_id`` in the HF cache as a GTE safetensors repository: config.json (model_type "new") + weights."""
    src = families / "opensearch_idf"
    snap = root / "hf" / f"models--{repo_id.replace('/', '--')}" / "snapshots" / COMMIT
    snap.mkdir(parents=True)
    (snap.parent.parent / "refs").mkdir()
    (snap.parent.parent / "refs" / "main").write_text(COMMIT)
    (snap / "config.json").write_text(json.dumps({"model_type": "new", "architectures": ["NewForMaskedLM"]}))
    for f in ("tokenizer.json", "tokenizer_config.json", "model.safetensors"):
        (snap / f).write_bytes((src / f).read_bytes())


def test_an_unreadable_architecture_is_refused_before_any_weight_download(
    families: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _cached_gte_checkpoint(tmp_path, "someone/gte-sparse-finetune", families)
    calls = _hub_calls(monkeypatch)
    with pytest.raises(ModelError) as err:
        SpladeEncoder.from_pretrained("someone/gte-sparse-finetune", cache_dir=tmp_path)
    msg = str(err.value)
    assert isinstance(err.value, ValueError)
    readers = ", ".join(sorted(SPEC_READERS))
    assert f"model_type='new' (its config.json), which the converter cannot read (it reads {readers})" in msg
    assert "no weights were downloaded" in msg and "export it to ONNX with a 'logits' output" in msg
    # the only download asked for no weight file: ONNX exports, tokenizer and layout files
    assert calls and all(not any("safetensors" in p or p.endswith(".bin") for p in c["allow_patterns"]) for c in calls)


def test_the_registry_refuses_gte_safetensors_without_asking_the_hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The doc-v3-gte entry's own repository is GTE custom code: refused by the registry's model_type, with no Hub
    call, naming the ONNX export that loads (the entry's first source, not in this empty cache)."""
    calls = _hub_calls(monkeypatch)
    with pytest.raises(ModelError) as err:
        SpladeEncoder.from_pretrained(GTE, cache_dir=tmp_path, local_files_only=True)
    msg = str(err.value)
    assert msg.startswith(f"cannot load {GTE!r}: {GTE} has model_type='new'")
    assert "hf:Qdrant/opensearch-neural-sparse-encoding-doc-v3-gte (onnx) is an ONNX export of this model" in msg
    assert "hf:Qdrant/opensearch-neural-sparse-encoding-doc-v3-gte (onnx): not in the local HF cache" in msg
    assert calls == []
