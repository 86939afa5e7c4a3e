"""The exact pruned head (splade_onnx._pruned) against the dense head and the golden files, on the real
splade-tiny: Cranfield and CISI in full, inputs built to sit on the bound, and bases fitted on unrelated text."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from safetensors.numpy import load_file, save_file

import splade_onnx._projection as projection
from splade_onnx import ArgumentError, ArgumentTypeError, SparseEmbedding, SpladeEncoder
from splade_onnx._beir import load_beir
from splade_onnx._cache import save_model
from splade_onnx._graph_dense import build_graph
from splade_onnx._graph_pruned import hidden_graph, pruned_head_graph, pruned_state_graph
from splade_onnx._hub import resolve
from splade_onnx._loading import pooled_graph
from splade_onnx._pruned import AUTO_SHARE, KernelCosts, fit_basis, make_bound, rank_candidates, survivors
from splade_onnx._session import OrtBackend, PrunedBackend
from splade_onnx._spec import load_spec
from splade_onnx._tokenize import TextTokenizer, pad_batch

from conftest import ROOT, TINY, golden, identity_basis

TOL = 1e-4


@pytest.fixture(scope="module")
def dense(cache_dir: Path) -> SpladeEncoder:
    return SpladeEncoder.from_pretrained(TINY, cache_dir=cache_dir, projection="dense")


@pytest.fixture(scope="module")
def pruned(cache_dir: Path) -> SpladeEncoder:
    return SpladeEncoder.from_pretrained(TINY, cache_dir=cache_dir, projection="pruned")


def assert_same_vectors(got: list[SparseEmbedding], want: list[SparseEmbedding], tol: float) -> float:
    """Identical index sets everywhere and values within ``tol``; returns the largest difference."""
    assert len(got) == len(want)
    worst = 0.0
    for i, (g, w) in enumerate(zip(got, want)):
        assert np.array_equal(g.indices, w.indices), f"text {i}: index sets differ"
        worst = max(worst, float(np.max(np.abs(g.values - w.values), initial=0.0)))
    assert worst <= tol, worst
    return worst


def test_the_pruned_head_is_what_auto_takes_for_splade_tiny(pruned: SpladeEncoder, cache_dir: Path) -> None:
    auto = SpladeEncoder.from_pretrained(TINY, cache_dir=cache_dir)
    assert isinstance(auto.loaded.document.backend, PrunedBackend)
    assert isinstance(pruned.loaded.document.backend, PrunedBackend)
    files = pruned.loaded.recipes.get("document")
    assert files is not None and files.head is not None
    plan = json.loads((files.graph.parent / "pruned.json").read_text())
    assert plan["rank"] in rank_candidates(128) and plan["auto"] == "pruned"
    assert plan["network_share"] <= AUTO_SHARE and 0 < plan["kept"] < 0.5


def test_pruned_matches_the_golden_files(pruned: SpladeEncoder) -> None:
    g = golden("splade_tiny.json")
    out = pruned.encode_documents(g["texts"])
    for i, (emb, ref) in enumerate(zip(out, g["vectors"])):
        assert emb.indices.tolist() == ref["indices"], f"text {i}: index sets differ"
        if ref["values"]:
            assert float(np.abs(emb.values - np.asarray(ref["values"], np.float32)).max()) <= TOL


@pytest.mark.slow
@pytest.mark.parametrize("collection", ["cranfield", "cisi"])
def test_pruned_equals_dense_on_every_document(collection: str, dense: SpladeEncoder, run_vectors: Any) -> None:
    texts = load_beir(ROOT / "data" / collection).doc_texts
    assert len(texts) > 1000
    worst = assert_same_vectors(run_vectors(collection), dense.encode_documents(texts), 1e-6)
    # the survivors' logits are the dense head's arithmetic: only onnxruntime's thread split differs
    assert worst <= 2.4e-7


def test_windows_and_queries_go_through_the_same_heads(dense: SpladeEncoder, pruned: SpladeEncoder) -> None:
    long = " ".join(load_beir(ROOT / "data" / "cisi").doc_texts[:6])
    assert_same_vectors(
        pruned.encode_documents([long], long_documents="windows"),
        dense.encode_documents([long], long_documents="windows"),
        1e-6,
    )
    queries = ["what is the flutter of a wing", "boundary layer transition", ""]
    assert_same_vectors(pruned.encode_queries(queries), dense.encode_queries(queries), 1e-6)


@pytest.mark.slow
def test_batches_overlapped_across_threads_come_back_in_order(dense: SpladeEncoder, pruned: SpladeEncoder) -> None:
    """Short texts (latency graph, in the caller's thread) between long ones (pruned head, batches side by side on
    the worker threads): every text gets its own vector, in its own place, and the batch size changes nothing."""
    docs = load_beir(ROOT / "data" / "cranfield").doc_texts[:60]
    texts = [t for i, d in enumerate(docs) for t in (d, f"note {i}")]
    engine = pruned.loaded.document
    kinds = {len(x) <= engine.fast_tokens for x in engine.tokenizer.encode_counted(texts, None)[0]}
    assert kinds == {True, False}
    want = dense.encode_documents(texts)
    for batch_size in (1, 3, 32):
        assert_same_vectors(pruned.encode_documents(texts, batch_size=batch_size), want, 1e-6)
    backend = engine.backend
    assert isinstance(backend, PrunedBackend) and backend.threads == 2  # so batches did overlap


@pytest.mark.slow
def test_a_documents_vector_does_not_depend_on_its_batch(pruned: SpladeEncoder) -> None:
    """Every pruned graph runs on one onnxruntime thread: a document's vector is bit-identical alone, in small
    batches or in big ones (documents too long for the latency graph, so all of them take the pruned head)."""
    engine = pruned.loaded.document
    docs = load_beir(ROOT / "data" / "cranfield").doc_texts
    long = [d for d, x in zip(docs, engine.tokenizer.encode_counted(docs, None)[0]) if len(x) > engine.fast_tokens]
    long = long[:60]
    alone = pruned.encode_documents(long, batch_size=1)
    for batch_size in (3, 256):
        for i, (a, b) in enumerate(zip(alone, pruned.encode_documents(long, batch_size=batch_size), strict=True)):
            assert np.array_equal(a.indices, b.indices) and np.array_equal(a.values, b.values), (batch_size, i)


@pytest.mark.parametrize("collection", ["cranfield", "cisi"])
def test_every_query_through_the_pruned_head_keeps_the_dense_ids(
    collection: str, dense: SpladeEncoder, pruned: SpladeEncoder
) -> None:
    """Every query of the collection through the pruned backend itself (the encoder sends short batches to the
    latency graph), alone and in batches of 16, against the dense head: identical ids, values within 1e-6.  With
    the table's codes at +-127, CPUs without VNNI (AVX2 u8 x s8, saturating int16 pair sums) lost ids here
    (Cranfield query 41 lost id 29180)."""
    texts = [json.loads(line)["text"] for line in (ROOT / "data" / collection / "queries.jsonl").open()]
    assert len(texts) > 100
    side = pruned.loaded.document
    ids, pad = side.tokenizer.encode(texts), side.tokenizer.pad_id
    feeds = [pad_batch([x], pad) for x in ids] + [pad_batch(ids[i : i + 16], pad) for i in range(0, len(ids), 16)]
    assert _assert_backends_agree(side.backend, dense.loaded.document.backend, feeds) > 0


# --------------------------------------------------------------------------------------- graphs made here


def _graphs(spec: Any, bound: Any, folder: Path, threads: int = 2) -> PrunedBackend:
    folder.mkdir(parents=True, exist_ok=True)
    save_model(pruned_state_graph(spec, bound), folder / "state.onnx")
    save_model(pruned_head_graph(spec, bound), folder / "head.onnx")
    return PrunedBackend(folder / "state.onnx", folder / "head.onnx", threads=threads)


def _hidden(spec: Any, feeds: list[dict[str, np.ndarray]]) -> list[np.ndarray]:
    session = ort.InferenceSession(hidden_graph(spec).SerializeToString(), providers=["CPUExecutionProvider"])
    out = []
    for feed in feeds:
        h = session.run(["hidden"], feed)[0]
        out.extend(h[r, : int(m.sum())] for r, m in enumerate(feed["attention_mask"]))
    return out


def _feeds(tok: TextTokenizer, texts: list[str], size: int = 16) -> list[dict[str, np.ndarray]]:
    ids, _ = tok.encode_counted(texts, None)
    return [pad_batch(ids[i : i + size], tok.pad_id) for i in range(0, len(ids), size)]


@pytest.fixture(scope="module")
def dense_backend(tiny_spec: Any, tmp_path_factory: pytest.TempPathFactory) -> OrtBackend:
    path = tmp_path_factory.mktemp("dense") / "dense.onnx"
    save_model(build_graph(tiny_spec), path)
    return OrtBackend(path, threads=2)


@pytest.fixture(scope="module")
def fit_feeds(tiny_tok: TextTokenizer) -> list[dict[str, np.ndarray]]:
    """The documents every basis of ``test_exactness_does_not_depend_on_the_fit`` is checked on, as batches."""
    docs = load_beir(ROOT / "data" / "cranfield").doc_texts[:120] + load_beir(ROOT / "data" / "cisi").doc_texts[:120]
    return _feeds(tiny_tok, docs)


@pytest.fixture(scope="module")
def fit_dense(dense_backend: OrtBackend, fit_feeds: list[dict[str, np.ndarray]]) -> list[np.ndarray]:
    """The dense head's weights on ``fit_feeds``, computed once for every basis."""
    return [dense_backend.run(feed) for feed in fit_feeds]


def _rows(weights: np.ndarray) -> list[tuple[list[int], np.ndarray]]:
    return [(np.flatnonzero(w > 0).tolist(), w[w > 0]) for w in weights]


def _assert_backends_agree(a: Any, b: Any, feeds: list[dict[str, np.ndarray]], tol: float = 1e-6) -> int:
    """Identical index sets and values within ``tol`` on every row of every batch; returns the active count."""
    return _assert_agrees_with(a, feeds, [b.run(feed) for feed in feeds], tol)


def _assert_agrees_with(a: Any, feeds: list[dict[str, np.ndarray]], want: list[np.ndarray], tol: float = 1e-6) -> int:
    """``_assert_backends_agree`` against ``want``, another backend's outputs on ``feeds`` computed beforehand."""
    active = 0
    for feed, w in zip(feeds, want, strict=True):
        for (ia, va), (ib, vb) in zip(_rows(a.run(feed)), _rows(w)):
            assert ia == ib
            assert float(np.max(np.abs(va - vb), initial=0.0)) <= tol
            active += len(ia)
    return active


@pytest.mark.slow
@pytest.mark.parametrize("basis_from", ["random token ids", "identity", "a German sample", "a skewed identity"])
def test_exactness_does_not_depend_on_the_fit(
    basis_from: str,
    tiny_spec: Any,
    tiny_tok: TextTokenizer,
    fit_feeds: list[dict[str, np.ndarray]],
    fit_dense: list[np.ndarray],
    tmp_path: Path,
) -> None:
    """A basis fitted on text unrelated to the documents (or none at all) changes the speed, not the vectors.

    "a skewed identity" scales one axis of the states by 1000 (and the decoder's by 1/1000): that coordinate
    sets each text's int8 scale, so every other coordinate's code is 0 or +-1, the quantization error is as
    large as it gets, and only the error terms of the bound keep the active ids."""
    H = tiny_spec.hidden
    if basis_from in ("identity", "a skewed identity"):
        basis = identity_basis(H, skewed=basis_from == "a skewed identity")
    else:
        if basis_from == "random token ids":
            rng = np.random.default_rng(3)
            ids = [[101, *rng.integers(1000, 30000, size=n).tolist(), 102] for n in (20, 60, 120, 7)]
            feeds = [pad_batch(ids, tiny_tok.pad_id)]
        else:
            german = [
                "Der Hund läuft schnell über die Wiese und bellt laut.",
                "Die Bundesregierung beschloss gestern ein neues Gesetz zum Klimaschutz.",
            ]
            feeds = _feeds(tiny_tok, german)
        hs = _hidden(tiny_spec, feeds)
        basis = fit_basis(np.concatenate([h - h.mean(0) for h in hs]), tiny_spec.decoder, tiny_spec.head_ln[0])
    bound = make_bound(basis, tiny_spec.decoder, tiny_spec.decoder_bias, 64)
    backend = _graphs(tiny_spec, bound, tmp_path)
    assert sum(int(feed["input_ids"].shape[0]) for feed in fit_feeds) == 240
    assert _assert_agrees_with(backend, fit_feeds, fit_dense) > 240 * 50


@pytest.mark.slow
def test_an_input_built_to_sit_on_the_bound_loses_no_active_id(
    tiny_dir: Path, tiny_tok: TextTokenizer, tmp_path: Path
) -> None:
    """A copy of splade-tiny whose decoder bias puts one document's exact max logit of every vocabulary id
    within +-1e-3 of zero, many within +-1e-6: the bound cannot rule those ids out by a wide margin, so any
    slack in eps would show as a missing or extra id against the dense head."""
    folder = tmp_path / "edge"
    shutil.copytree(tiny_dir, folder)
    tensors = load_file(str(folder / "model.safetensors"))
    spec = load_spec(folder, folder / "model.safetensors")
    text = load_beir(ROOT / "data" / "cranfield").doc_texts[5]
    (h,) = _hidden(spec, _feeds(tiny_tok, [text]))
    exact = (h.astype(np.float64) @ spec.decoder.astype(np.float64).T).max(0)  # max_t h_t . e_v, no bias
    offsets = np.array([-1e-3, -1e-5, -1e-6, -1e-7, 0.0, 1e-7, 1e-6, 1e-5, 1e-3])
    target = offsets[np.arange(spec.vocab) % len(offsets)]
    tensors["cls.predictions.bias"] = (target - exact).astype(np.float32)
    save_file(tensors, str(folder / "model.safetensors"))

    edge = resolve(folder)
    fit = projection.fitted_plan(edge, folder / "model.safetensors", tmp_path / "cache", folder)
    state, head = projection.pruned_graphs(edge, folder / "model.safetensors", tmp_path / "cache", fit, "relu")
    plan = fit[1]
    backend = PrunedBackend(state, head, threads=2)
    ref = OrtBackend(pooled_graph(edge, tmp_path / "cache"), threads=2)
    feeds = _feeds(tiny_tok, [text])
    weights = ref.run(feeds[0])
    active = int((weights > 0).sum())
    assert 10_000 < active < 25_000  # about half the ids sit just above zero
    _assert_backends_agree(backend, ref, feeds, tol=1e-6)
    edge_spec = load_spec(folder, folder / "model.safetensors")
    _, kept = backend.run_counted(feeds[0])
    assert kept[0] >= active  # every active id was kept by the bound
    assert plan.rank in rank_candidates(edge_spec.hidden)


@pytest.mark.slow
def test_the_reference_bound_keeps_every_active_id(tiny_spec: Any, tiny_tok: TextTokenizer) -> None:
    """The numpy reference used to choose the rank keeps a superset of the active ids too."""
    texts = load_beir(ROOT / "data" / "cisi").doc_texts[:20]
    hs = _hidden(tiny_spec, _feeds(tiny_tok, texts))
    basis = fit_basis(np.concatenate([h - h.mean(0) for h in hs[:10]]), tiny_spec.decoder, tiny_spec.head_ln[0])
    for h in hs:
        logits = (h.astype(np.float64) @ tiny_spec.decoder.astype(np.float64).T).max(0) + tiny_spec.decoder_bias
        active = set(np.flatnonzero(logits > 0).tolist())
        for rank in (48, 96):
            kept = set(survivors(h, tiny_spec.decoder, tiny_spec.decoder_bias, basis, rank).tolist())
            assert active <= kept and len(kept) < tiny_spec.vocab


# ---------------------------------------------------------------------------------------------- choosing


def test_the_pruned_backend_checks_threads(pruned: SpladeEncoder) -> None:
    files = pruned.loaded.recipes.get("document")
    assert files is not None and files.head is not None
    for bad in (0, -1, 1.5, True):
        error = ArgumentError if isinstance(bad, int) and not isinstance(bad, bool) else ArgumentTypeError
        with pytest.raises(
            error, match=re.escape("threads must be a positive int or None, got ") + ".*" + re.escape(repr(bad))
        ):
            PrunedBackend(files.graph, files.head, threads=bad)  # type: ignore[arg-type]


def test_projection_option_is_checked(cache_dir: Path) -> None:
    with pytest.raises(ArgumentError, match="projection must be one of 'auto', 'dense', 'pruned', got 'sparse'"):
        SpladeEncoder.from_pretrained(TINY, cache_dir=cache_dir, projection="sparse")
    int8 = SpladeEncoder.from_pretrained(TINY, cache_dir=cache_dir, projection="pruned", quantize="int8")
    assert isinstance(int8.loaded.document.backend, PrunedBackend)  # the int8 encoder feeds the pruned head
    dense = SpladeEncoder.from_pretrained(TINY, cache_dir=cache_dir, projection="dense", quantize="int8")
    assert isinstance(dense.loaded.document.backend, OrtBackend)


@pytest.mark.slow
def test_auto_takes_dense_where_the_encoder_dominates(tmp_path: Path, tiny_dir: Path) -> None:
    """The BERT-base shape (12 layers of 768, random weights, unshifted bias): the bound keeps about half the
    vocabulary, so at the development machine's kernel costs the fit predicts no gain and ``"auto"`` runs the
    dense head (on this machine it decides from this machine's costs, consistently with its own prediction); a
    24-layer model is ruled out by its shape alone, before any fit or measurement."""
    from checkpoints import write_checkpoint

    folder = tmp_path / "bert-base-shape"
    write_checkpoint("bert-base-shape", folder, seed=1)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_dir / f, folder / f)
    entry, plan = projection.fitted_plan(resolve(folder), folder / "model.safetensors", tmp_path / "cache", folder)
    assert plan.hidden == 768 and (plan.auto == "pruned") == (plan.network_share <= AUTO_SHARE)
    stats = projection.FitStats.from_json((entry / "fit.json").read_text())
    assert min(stats.kept.values()) > 0.3
    development = projection.decide(stats, KernelCosts(bound_fixed=0.14, bound_cost=0.14, final_cost=1.85))
    assert development.auto == "dense" and development.network_share > AUTO_SHARE
    large = {
        "model_type": "bert",
        "hidden_size": 1024,
        "num_hidden_layers": 24,
        "intermediate_size": 4096,
        "vocab_size": 30522,
    }
    tiny = {**large, "hidden_size": 128, "num_hidden_layers": 2, "intermediate_size": 512}
    assert projection.shape_rules_out(large) and not projection.shape_rules_out(tiny)
    assert projection.shape_rules_out({"model_type": "bert"})  # unknown shape: dense


def test_the_fit_is_cached_with_the_graphs(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    SpladeEncoder.from_pretrained(TINY, cache_dir=cache_dir, projection="pruned")  # made (or found) once

    def refit(*args: object, **kwargs: object) -> None:
        raise AssertionError("the basis was fitted again")

    monkeypatch.setattr(projection, "_fit", refit)
    again = SpladeEncoder.from_pretrained(TINY, cache_dir=cache_dir, projection="pruned")
    assert again.encode_documents(["a lunar lander"])[0].indices.size > 0


def test_a_document_whose_every_id_is_ruled_out_gets_an_empty_vector(tiny_dir: Path, tmp_path: Path) -> None:
    """Zero survivors is a normal case for the per-text graph (empty gathers and products), not an error."""
    folder = tmp_path / "negative"
    shutil.copytree(tiny_dir, folder)
    tensors = load_file(str(folder / "model.safetensors"))
    tensors["cls.predictions.bias"] = tensors["cls.predictions.bias"] - 1000.0
    save_file(tensors, str(folder / "model.safetensors"))
    enc = SpladeEncoder.from_pretrained(folder, cache_dir=tmp_path / "cache", projection="pruned")
    assert isinstance(enc.loaded.document.backend, PrunedBackend)
    texts = ["the moon landing " * 30, "", "a"]
    assert [len(v) for v in enc.encode_documents(texts)] == [0, 0, 0]
