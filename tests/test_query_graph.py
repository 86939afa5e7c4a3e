"""The pruned head's query graph (one short text, the encoder and the exact head in one run, centred on a fixed
state) against the dense head, on the real splade-tiny: every Cranfield and CISI query, texts far from the
centre, bases unrelated to the texts, and a bias built to put a query's logits on the bound."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

import splade_onnx._projection as projection
from splade_onnx import SpladeEncoder
from splade_onnx._cache import save_model
from splade_onnx._graph_dense import build_graph
from splade_onnx._graph_pruned import hidden_graph, pruned_query_graph
from splade_onnx._hub import resolve
from splade_onnx._loading import pooled_graph
from splade_onnx._pruned import fit_basis, make_bound
from splade_onnx._session import OrtBackend, PerTextBackend
from splade_onnx._tokenize import TextTokenizer, pad_batch

from conftest import ROOT, TINY, identity_basis


def _queries(collection: str) -> list[str]:
    return [json.loads(line)["text"] for line in (ROOT / "data" / collection / "queries.jsonl").open()]


@pytest.fixture(scope="module")
def latency(tiny_spec: Any, tmp_path_factory: pytest.TempPathFactory) -> OrtBackend:
    """The dense head's one-slice latency graph, what short batches of a dense side run."""
    path = tmp_path_factory.mktemp("latency") / "latency.onnx"
    save_model(build_graph(tiny_spec, chunks=1), path)
    return OrtBackend(path, threads=2)


def _texts(tok: TextTokenizer) -> list[list[int]]:
    """Every Cranfield and CISI query, an empty text, and random token ids of 1 to 40 tokens."""
    ids = tok.encode([*_queries("cranfield"), *_queries("cisi"), ""])
    rng = np.random.default_rng(5)
    ids += [[101, *rng.integers(1000, 30000, size=n).tolist(), 102] for n in (1, 3, 9, 20, 40)]
    return ids


def _assert_same(got: np.ndarray, want: np.ndarray) -> int:
    """Identical active ids per row and weights within 1e-6; returns the active count."""
    assert got.shape == want.shape
    for g, w in zip(got, want):
        assert np.array_equal(np.flatnonzero(g), np.flatnonzero(w))
        assert float(np.abs(g - w).max()) <= 1e-6
    return int((want > 0).sum())


def test_short_texts_of_a_pruned_fp32_side_run_the_query_graph(cache_dir: Path) -> None:
    """fp32 with the pruned head sends short batches to the query graph; the dense head and int8 keep the
    one-slice latency graph (the int8 one is faster than the fp32 exact head for a short text)."""
    for projection_, quantize, kind in [
        ("auto", None, PerTextBackend),
        ("pruned", None, PerTextBackend),
        ("dense", None, OrtBackend),
        ("pruned", "int8", OrtBackend),
    ]:
        enc = SpladeEncoder.from_pretrained(TINY, cache_dir=cache_dir, projection=projection_, quantize=quantize)
        fast = enc.loaded.query.fast
        assert fast is not None and type(fast.get()) is kind, (projection_, quantize)


@pytest.mark.slow
def test_every_query_equals_the_dense_head(cache_dir: Path, tiny_tok: TextTokenizer, latency: OrtBackend) -> None:
    """Every query of both collections, alone and in padded batches of 8, through the query graph of the real
    loader's plan (its centre and rank): the dense head's ids and weights."""
    enc = SpladeEncoder.from_pretrained(TINY, cache_dir=cache_dir, projection="pruned")
    backend = enc.loaded.query.fast.get()  # type: ignore[union-attr]
    assert isinstance(backend, PerTextBackend)
    tok = tiny_tok
    ids = _texts(tok)
    feeds = [pad_batch([x], tok.pad_id) for x in ids] + [
        pad_batch(ids[i : i + 8], tok.pad_id) for i in range(0, len(ids), 8)
    ]
    assert sum(_assert_same(backend.run(f), latency.run(f)) for f in feeds) > 2 * len(ids) * 10


def test_the_encoder_gives_the_dense_vectors_for_queries(cache_dir: Path) -> None:
    dense = SpladeEncoder.from_pretrained(TINY, cache_dir=cache_dir, projection="dense")
    pruned = SpladeEncoder.from_pretrained(TINY, cache_dir=cache_dir, projection="pruned")
    queries = [*_queries("cranfield")[:40], "", "moon"]
    for batch in ([q] for q in queries):  # one at a time, as a search service sends them
        (a,), (b,) = pruned.encode_queries(batch), dense.encode_queries(batch)
        assert np.array_equal(a.indices, b.indices) and float(np.abs(a.values - b.values).max(initial=0.0)) <= 1e-6
    for a, b in zip(pruned.encode_queries(queries), dense.encode_queries(queries)):
        assert np.array_equal(a.indices, b.indices) and float(np.abs(a.values - b.values).max(initial=0.0)) <= 1e-6


def _hidden(spec: Any, ids: list[list[int]]) -> list[np.ndarray]:
    backend = OrtBackend(hidden_graph(spec).SerializeToString(), threads=1)
    return [backend.run_outputs(pad_batch([x], 0), ["hidden"])[0][0] for x in ids]


@pytest.mark.slow
@pytest.mark.parametrize("case", ["zero centre", "a centre far off", "identity basis", "a skewed identity"])
def test_exactness_does_not_depend_on_the_centre_or_the_basis(
    case: str, tiny_spec: Any, tiny_tok: TextTokenizer, latency: OrtBackend, tmp_path: Path
) -> None:
    """The centre and the basis change how many ids the bound keeps, never the vectors: a centre at zero or
    ten times the states' mean, an identity basis, and the skewed identity whose one axis sets every text's int8
    scale (so the bound's error terms alone keep the ids)."""
    spec, tok = tiny_spec, tiny_tok
    ids = _texts(tok)[::4]
    hs = _hidden(spec, ids[:40])
    H = spec.hidden
    mean = np.concatenate(hs).mean(0).astype(np.float32)
    center = {"zero centre": np.zeros(H, np.float32), "a centre far off": 10 * mean}.get(case, mean)
    if case in ("identity basis", "a skewed identity"):
        basis = identity_basis(H, skewed=case == "a skewed identity")
    else:
        basis = fit_basis(np.concatenate([h - h.mean(0) for h in hs]), spec.decoder, spec.head_ln[0])
    path = tmp_path / "query.onnx"
    save_model(pruned_query_graph(spec, make_bound(basis, spec.decoder, spec.decoder_bias, 48), center), path)
    backend = PerTextBackend(OrtBackend(path, threads=2))
    feeds = [pad_batch([x], tok.pad_id) for x in ids]
    assert sum(_assert_same(backend.run(f), latency.run(f)) for f in feeds) > len(ids) * 10


@pytest.mark.slow
def test_a_query_built_to_sit_on_the_bound_loses_no_active_id(
    tiny_dir: Path, tiny_spec: Any, tiny_tok: TextTokenizer, tmp_path: Path
) -> None:
    """A copy of splade-tiny whose decoder bias puts one query's exact max logit of every vocabulary id within
    +-1e-3 of zero, many within +-1e-6, through the loader's own query graph (fit, centre, rank)."""
    spec, tok = tiny_spec, tiny_tok
    folder = tmp_path / "edge"
    shutil.copytree(tiny_dir, folder)
    tensors = load_file(str(folder / "model.safetensors"))
    (x,) = tok.encode([_queries("cranfield")[3]])
    (h,) = _hidden(spec, [x])
    exact = (h.astype(np.float64) @ spec.decoder.astype(np.float64).T).max(0)
    offsets = np.array([-1e-3, -1e-5, -1e-6, -1e-7, 0.0, 1e-7, 1e-6, 1e-5, 1e-3])
    tensors["cls.predictions.bias"] = (offsets[np.arange(spec.vocab) % len(offsets)] - exact).astype(np.float32)
    save_file(tensors, str(folder / "model.safetensors"))

    edge = resolve(folder)
    weights = folder / "model.safetensors"
    fit = projection.fitted_plan(edge, weights, tmp_path / "cache", folder)
    backend = PerTextBackend(OrtBackend(projection.pruned_query_path(edge, weights, tmp_path / "cache", fit, "relu")))
    ref = OrtBackend(pooled_graph(edge, tmp_path / "cache", chunks=1), threads=2)
    feed = pad_batch([x], tok.pad_id)
    assert 10_000 < _assert_same(backend.run(feed), ref.run(feed)) < 25_000  # about half the ids sit just above zero
