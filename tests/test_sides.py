"""One encoder, two sides: which side encodes what, loaders' refusals, pruning, windows and the engine seam."""

from __future__ import annotations

import ast
import dataclasses
import itertools
import json
import logging
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

import splade_onnx._parallel as parallel_module
from splade_onnx import (
    ModelError,
    ModelMismatchError,
    SparseIndex,
    SparseTextEmbedding,
    SpladeEncoder,
    _registry,
)
from splade_onnx._batching import merge_max, prune, token_windows
from splade_onnx.cli import EXIT_OK, main

from conftest import ROOT, golden
from texts import SEED_DOCUMENTS

FAMILIES = golden("families.json")["families"]


@pytest.fixture(scope="module")
def xlmr_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from checkpoints import write_xlmr_checkpoint

    folder = tmp_path_factory.mktemp("xlmr")
    write_xlmr_checkpoint(folder)
    return folder


@pytest.fixture(scope="module")
def free(families: Path, cache_dir: Path) -> SpladeEncoder:
    """A seeded random inference-free model in the sentence-transformers Router layout."""
    return SpladeEncoder.from_pretrained(families / "st_inference_free", cache_dir=cache_dir)


def static_table(folder: Path) -> dict[int, float]:
    from safetensors.numpy import load_file

    w = load_file(str(folder / "query_0_SparseStaticEmbedding" / "model.safetensors"))["weight"]
    return {i: float(w[i]) for i in np.flatnonzero(w)}


def content_ids(folder: Path, text: str) -> list[int]:
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.no_truncation()
    return tok.encode(text, add_special_tokens=False).ids


# ----------------------------------------------------------------------------- the query side


def test_static_query_is_the_distinct_tokens_weighted_from_the_table(free: SpladeEncoder, families: Path) -> None:
    folder = families / "st_inference_free"
    table = static_table(folder)
    text = "the moon the moon and the lunar landing"
    (q,) = free.encode_queries([text])
    ids = sorted(set(content_ids(folder / "query_0_SparseStaticEmbedding", text)))
    assert q.as_dict() == pytest.approx({i: table[i] for i in ids if i in table}, abs=0)
    assert free.query_mode == "static" and free.encode(["x"], task="query") == free.encode_queries(["x"])
    (d,) = free.encode_documents([text])
    assert set(d.indices.tolist()) - set(ids)  # the document side expands; the query side never does


def test_fastembed_facade_queries_use_the_static_side(free: SpladeEncoder, families: Path, cache_dir: Path) -> None:
    model = SparseTextEmbedding(model_name=str(families / "st_inference_free"), cache_dir=str(cache_dir))
    (q,) = list(model.query_embed("how far is the moon"))
    assert model.encoder.query_mode == "static"
    assert q == free.encode_queries(["how far is the moon"])[0] != free.encode_documents(["how far is the moon"])[0]
    assert list(model.passage_embed(["how far is the moon"])) == free.encode_documents(["how far is the moon"])


def test_cli_search_and_explain_use_the_query_side(
    free: SpladeEncoder, families: Path, cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps({"_id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(SEED_DOCUMENTS)))
    model = ["--model", str(families / "st_inference_free"), "--cache-dir", str(cache_dir), "-q"]
    assert main(["index", str(docs), "-o", str(tmp_path / "i.npz"), *model]) == EXIT_OK
    capsys.readouterr()
    query = "How much did the mission cost?"
    assert main(["search", str(tmp_path / "i.npz"), query, "-k", "3", "--json", *model]) == EXIT_OK
    hits = json.loads(capsys.readouterr().out)["hits"]
    index = SparseIndex()
    index.add(free.encode_documents(SEED_DOCUMENTS), ids=[f"d{i}" for i in range(len(SEED_DOCUMENTS))])
    expected = index.search(free.encode_queries([query])[0], k=3)
    assert [(h["id"], h["score"]) for h in hits] == [(d, round(s, 6)) for d, s in expected]


def test_two_tower_pair_encodes_queries_with_the_query_checkpoint(families: Path, cache_dir: Path) -> None:
    tower = families / "two_tower"
    pair = SpladeEncoder.from_pretrained(document=tower / "document", query=tower / "query", cache_dir=cache_dir)
    query_alone = SpladeEncoder.from_pretrained(families / "two_tower" / "query", cache_dir=cache_dir)
    doc_alone = SpladeEncoder.from_pretrained(families / "two_tower" / "document", cache_dir=cache_dir)
    texts = ["the moon landing", "a thin wing at high speed"]
    assert pair.query_mode == "two-tower"
    assert pair.encode_queries(texts) == query_alone.encode_documents(texts)
    assert pair.encode_documents(texts) == doc_alone.encode_documents(texts)
    assert pair.identity.fingerprint not in (query_alone.identity.fingerprint, doc_alone.identity.fingerprint)
    with pytest.raises(Exception, match="pass the document checkpoint once"):
        SpladeEncoder.from_pretrained(families / "st_max_relu", document=families / "two_tower" / "document")


def test_two_tower_vocabularies_must_match(families: Path, cache_dir: Path, xlmr_dir: Path) -> None:
    xlmr_sized = golden("families.json")["xlmr"]["dim"]
    with pytest.raises(ModelMismatchError, match=f"the query model has a vocabulary of {xlmr_sized} and the document"):
        SpladeEncoder.from_pretrained(document=families / "st_max_relu", query=xlmr_dir, cache_dir=cache_dir)


def test_registry_query_mode_is_read(monkeypatch: pytest.MonkeyPatch, families: Path, cache_dir: Path) -> None:
    base = _registry.get(_registry.DEFAULT_MODEL)
    assert base is not None
    tokens = dataclasses.replace(
        base, name=str(families / "st_max_relu"), sources=(), aliases=(), query_mode="static", static_query="tokens"
    )
    pair = dataclasses.replace(
        base,
        name=str(families / "two_tower" / "document"),
        sources=(),
        aliases=(),
        query_mode="two-tower",
        query_model=str(families / "two_tower" / "query"),
    )
    table = dataclasses.replace(tokens, name=str(families / "st_sum_relu"), static_query="table")
    monkeypatch.setattr(_registry, "_MODELS", (*_registry._MODELS, tokens, pair, table))

    enc = SpladeEncoder.from_pretrained(families / "st_max_relu", cache_dir=cache_dir)
    text = "the moon the moon landing"
    (q,) = enc.encode_queries([text])
    assert enc.query_mode == "static"
    assert q.as_dict() == dict.fromkeys(sorted(set(content_ids(families / "st_max_relu", text))), 1.0)

    two = SpladeEncoder.from_pretrained(families / "two_tower" / "document", cache_dir=cache_dir)
    assert two.query_mode == "two-tower"
    ref = FAMILIES["two_tower"]
    assert [e.indices.tolist() for e in two.encode_queries(ref["texts"])] == [r["indices"] for r in ref["queries"]]

    with pytest.raises(ModelError, match=r"is inference-free in the registry, but .* has no query weight table"):
        SpladeEncoder.from_pretrained(families / "st_sum_relu", cache_dir=cache_dir)


def test_registry_entries_have_what_users_ask_for() -> None:
    required = {
        "naver/splade-v3",
        "naver/splade-v3-distilbert",
        "naver/splade-v3-doc",
        "naver/efficient-splade-VI-BT-large-doc",
        "naver/efficient-splade-VI-BT-large-query",
        "opensearch-project/opensearch-neural-sparse-encoding-doc-v2-distill",
        "opensearch-project/opensearch-neural-sparse-encoding-doc-v2-mini",
        "opensearch-project/opensearch-neural-sparse-encoding-doc-v3-distill",
        "prithivida/Splade_PP_en_v2",
        "rasyosef/splade-mini",
        "rasyosef/splade-small",
    }
    models = {m.name: m for m in _registry.list_models()}
    assert required <= set(models)
    for m in models.values():
        assert m.query_mode in ("same", "two-tower", "static"), m.name
        assert (m.query_model is not None) == (m.query_mode == "two-tower" and m.name.endswith("-doc")), m.name
        assert (m.static_query is not None) == (m.query_mode == "static"), m.name
        assert m.architecture and m.license and isinstance(m.commercial_use, bool)
    assert models["naver/efficient-splade-VI-BT-large-doc"].query_model in models
    assert _registry.get("naver/efficient-splade-VI-BT-large") is models["naver/efficient-splade-VI-BT-large-doc"]
    assert models["naver/splade-v3-doc"].static_query == "tokens"
    assert models["opensearch-project/opensearch-neural-sparse-encoding-doc-v3-distill"].activation == "log1p_relu"


# ----------------------------------------------------------------------------- loaders refuse what they cannot encode


def _edit(folder: Path, name: str, change: dict) -> None:  # type: ignore[type-arg]
    p = folder / name
    p.write_text(json.dumps({**json.loads(p.read_text()), **change}))


@pytest.mark.parametrize(
    ("family", "edit", "message"),
    [
        ("st_max_relu", ("modules.json", None), r"module '1_SpladePooling' .* of type 'Normalize' is not supported"),
        (
            "st_max_relu",
            ("1_SpladePooling/config.json", {"pooling_strategy": "mean"}),
            r"pooling_strategy='mean' is not supported; supported: max, sum",
        ),
        (
            "st_max_relu",
            ("1_SpladePooling/config.json", {"activation_function": "gelu"}),
            r"activation_function='gelu' is not supported; supported: relu, log1p_relu",
        ),
        (
            "st_max_relu",
            ("config_sentence_transformers.json", {"model_type": "SentenceTransformer"}),
            r"model_type='SentenceTransformer': this is not a SparseEncoder",
        ),
        (
            "st_inference_free",
            ("router_config.json", {"structure": {"document": ["document_0_MLMTransformer"]}}),
            r"module chain MLMTransformer is not supported",
        ),
        (
            "st_inference_free",
            ("router_config.json", {"structure": {"query": ["query_0_SparseStaticEmbedding"]}}),
            r"no route for documents; routes: query",
        ),
    ],
)
def test_a_model_that_cannot_be_encoded_exactly_is_refused(
    family: str,
    edit: tuple[str, dict | None],  # type: ignore[type-arg]
    message: str,
    tmp_path: Path,
    families: Path,
    cache_dir: Path,
) -> None:
    folder = tmp_path / family
    shutil.copytree(families / family, folder)
    name, change = edit
    if change is None:  # a module type splade-onnx does not know
        mods = json.loads((folder / name).read_text())
        mods[1]["type"] = "sentence_transformers.models.Normalize"
        (folder / name).write_text(json.dumps(mods))
    else:
        _edit(folder, name, change)
    with pytest.raises(ModelError, match=message):
        SpladeEncoder.from_pretrained(folder, cache_dir=cache_dir)


def test_a_csr_model_is_named_as_such(tmp_path: Path, families: Path, cache_dir: Path) -> None:
    folder = tmp_path / "csr"
    shutil.copytree(families / "st_max_relu", folder)
    mods = json.loads((folder / "modules.json").read_text())
    mods[1]["type"] = "sentence_transformers.sparse_encoder.models.SparseAutoEncoder"
    (folder / "modules.json").write_text(json.dumps(mods))
    with pytest.raises(ModelError, match=r"SparseAutoEncoder' \(a CSR model, not SPLADE\)"):
        SpladeEncoder.from_pretrained(folder, cache_dir=cache_dir)


def test_a_static_table_of_another_vocabulary_is_refused(tmp_path: Path, families: Path, cache_dir: Path) -> None:
    from safetensors.numpy import save_file

    folder = tmp_path / "free"
    shutil.copytree(families / "st_inference_free", folder)
    save_file({"weight": np.ones(100, np.float32)}, str(folder / "query_0_SparseStaticEmbedding" / "model.safetensors"))
    with pytest.raises(ModelMismatchError, match="has 100 entries but the document model's vocabulary has"):
        SpladeEncoder.from_pretrained(folder, cache_dir=cache_dir)


# ----------------------------------------------------------------------------- pruning


def test_pruning_per_side(free: SpladeEncoder, tiny: SpladeEncoder) -> None:
    docs = SEED_DOCUMENTS
    full = tiny.encode_documents(docs)
    for kw in ({"top_k": 7}, {"min_weight": 0.8}, {"top_k": 5, "min_weight": 1.0}):
        pruned = tiny.encode_documents(docs, **kw)  # type: ignore[arg-type]
        assert pruned == [prune(e, **kw) for e in full]  # type: ignore[arg-type]
        for p, f in zip(pruned, full):
            kept = p.as_dict()
            assert len(kept) <= kw.get("top_k", len(f)) and all(v >= kw.get("min_weight", 0) for v in kept.values())
            assert set(kept) <= set(f.as_dict()) and all(f.as_dict()[i] == v for i, v in kept.items())
            if "top_k" in kw and len(f) > kw["top_k"]:  # the heaviest are kept
                assert min(kept.values()) >= sorted(f.values.tolist())[-kw["top_k"]]
    (q,) = free.encode_queries(["the moon and the lunar landing module"], top_k=2)
    assert len(q) == 2 and free.encode_documents(["the moon"], top_k=2) != free.encode_documents(["the moon"])


def test_max_active_dims_is_the_default_top_k(tmp_path: Path, families: Path, cache_dir: Path) -> None:
    folder = tmp_path / "k5"
    shutil.copytree(families / "st_max_relu", folder)
    _edit(folder, "config_sentence_transformers.json", {"max_active_dims": 5})
    enc = SpladeEncoder.from_pretrained(folder, cache_dir=cache_dir)
    full = SpladeEncoder.from_pretrained(families / "st_max_relu", cache_dir=cache_dir)
    texts = FAMILIES["st_max_relu"]["texts"]
    assert enc.max_active_dims == 5
    assert enc.encode_documents(texts) == full.encode_documents(texts, top_k=5)
    assert enc.encode_queries(texts) == full.encode_queries(texts, top_k=5)
    assert enc.encode_documents(texts, top_k=50) == full.encode_documents(texts, top_k=50)


def test_prune_and_merge_are_exact() -> None:
    rng = np.random.default_rng(3)
    from splade_onnx import SparseEmbedding

    parts = [
        SparseEmbedding(values=rng.random(20).astype(np.float32), indices=rng.choice(60, 20, replace=False))
        for _ in range(4)
    ]
    dense = np.zeros((4, 60), np.float32)
    for r, p in enumerate(parts):
        dense[r, p.indices] = p.values
    m = merge_max(parts)
    expect = dense.max(axis=0)
    assert m.indices.tolist() == np.flatnonzero(expect).tolist() and m.values.tolist() == expect[expect > 0].tolist()
    tie = SparseEmbedding(values=[1.0, 2.0, 2.0, 2.0], indices=[4, 9, 2, 7])
    assert prune(tie, top_k=2).as_dict() == {2: 2.0, 7: 2.0}  # ties keep the smaller ids


# ----------------------------------------------------------------------------- long documents


def test_windows_cover_every_token_with_the_stride_shared() -> None:
    for n in range(0, 300, 7):
        for size, stride in ((10, 0), (10, 3), (510, 127), (38, 8)):
            spans = token_windows(n, size, stride)
            covered = np.zeros(n, bool)
            for lo, hi in spans:
                assert hi - lo <= size
                covered[lo:hi] = True
            assert covered.all()
            assert all(a[1] - b[0] == stride for a, b in itertools.pairwise(spans) if a[1] - a[0] == size)


def test_windows_on_a_short_text_equal_one_pass_and_keep_every_token(tiny: SpladeEncoder) -> None:
    assert tiny.encode_documents(SEED_DOCUMENTS, long_documents="windows") == tiny.encode_documents(SEED_DOCUMENTS)
    tail = " ".join(SEED_DOCUMENTS)
    long = "the moon " * 400 + tail  # the seed documents start past token 512
    (one,) = tiny.encode_documents([long])
    (win,) = tiny.encode_documents([long], long_documents="windows")
    (end,) = tiny.encode_documents([tail])
    assert set(one.indices.tolist()) < set(win.indices.tolist())  # the windows see what truncation drops
    assert not set(end.indices.tolist()) <= set(one.indices.tolist())
    assert np.all(win.values[np.isin(win.indices, one.indices)] >= one.values[np.isin(one.indices, win.indices)])


def test_truncation_warns_once_per_call_naming_the_first_text(
    tiny: SpladeEncoder, caplog: pytest.LogCaptureFixture
) -> None:
    long = "moon " * 600
    with caplog.at_level(logging.WARNING, logger="splade_onnx._encoder"):
        tiny.encode_documents(["short", long, long, "short", long])
    warnings = [r for r in caplog.records if "was cut" in r.getMessage()]
    assert len(warnings) == 1
    assert "text at position 1 was longer than 512 tokens" in warnings[0].getMessage()
    assert "long_documents='windows'" in warnings[0].getMessage()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="splade_onnx._encoder"):
        tiny.encode_documents(["short", long], long_documents="windows")
        tiny.encode_documents(["short"] * 3)
    assert not caplog.records


def test_a_static_side_with_windows_keeps_every_token(free: SpladeEncoder, families: Path) -> None:
    query_dir = families / "st_inference_free" / "query_0_SparseStaticEmbedding"
    vocab = Tokenizer.from_file(str(query_dir / "tokenizer.json"))
    words = sorted(w for w in vocab.get_vocab() if w.isalpha() and len(w) > 3)
    text = " ".join(words[:700])
    (cut,) = free.encode_queries([text], max_length=64)
    (whole,) = free.encode_queries([text], max_length=64, long_documents="windows")
    assert set(cut.indices.tolist()) < set(whole.indices.tolist())


# ----------------------------------------------------------------------------- the engine seam


def test_the_parallel_module_does_not_import_the_encoder() -> None:
    tree = ast.parse(Path(parallel_module.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "_encoder" not in imported and "_engine" in imported


def test_workers_get_the_encoders_settings(tiny: SpladeEncoder, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    real = parallel_module.parallel_embed

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(kwargs["settings"])
        return real(*args, **kwargs)

    monkeypatch.setattr(parallel_module, "parallel_embed", spy)
    monkeypatch.setattr(tiny, "token_budget", 128)
    docs = SEED_DOCUMENTS * 3
    got = list(tiny.embed(docs, parallel=2, top_k=9))
    assert seen and seen[0].token_budget == 128 and seen[0].top_k == 9
    assert got == tiny.encode_documents(docs, top_k=9)


def test_the_ascii_fast_path_gives_the_tokenizers_ids(tiny: SpladeEncoder) -> None:
    """One short ASCII text is tokenized word by word from a cache; the ids are the tokenizer's own."""
    ref = Tokenizer.from_str(tiny.loaded.document.tokenizer._tok.to_str())
    rng = random.Random(0)
    alphabet = [chr(c) for c in range(32, 127)] + ["\t", "\n", " "] * 8
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 90))) for _ in range(2000)]
    texts += [json.loads(line)["text"] for line in (ROOT / "data" / "cisi" / "queries.jsonl").open()]
    texts += ["[CLS] hi", "a[MASK]b", "x" * 150, "UPPER lower", "caf\u00e9", "\x7f", "moon " * 600]
    for t in texts:
        assert tiny.loaded.document.tokenizer.encode([t])[0] == ref.encode(t).ids, repr(t)
    assert (
        tiny.loaded.document.tokenizer._ascii is not None and len(tiny.loaded.document.tokenizer._ascii._cache) > 1000
    )
