"""splade-onnx against the independent reference (transformers + torch, scripts/make_golden.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from splade_onnx import SpladeEncoder
from splade_onnx._graph_dense import build_graph
from splade_onnx._hub import resolve
from splade_onnx._loading import pooled_graph
from splade_onnx._session import OrtBackend
from splade_onnx._spec import load_spec

from checkpoints import CASES, inputs, write_checkpoint
from conftest import golden

TOL = 1e-4


def assert_same(indices: np.ndarray, values: np.ndarray, ref: dict, what: str) -> None:  # type: ignore[type-arg]
    assert indices.tolist() == ref["indices"], f"{what}: index sets differ"
    if ref["values"]:
        diff = float(np.abs(values - np.asarray(ref["values"], np.float32)).max())
        assert diff <= TOL, f"{what}: max abs diff {diff:.2e} > {TOL}"


def test_splade_tiny_matches_transformers(tiny: SpladeEncoder) -> None:
    g = golden("splade_tiny.json")
    assert len(g["texts"]) >= 20 and "" in g["texts"]
    assert max(v["n_tokens"] for v in g["vectors"]) == 512  # the long text was truncated by the reference too
    out = tiny.encode_documents(g["texts"])
    assert len(out) == len(g["texts"])
    for i, (emb, ref) in enumerate(zip(out, g["vectors"])):
        assert_same(emb.indices, emb.values, ref, f"text {i} {g['texts'][i][:30]!r}")


@pytest.mark.parametrize("name", sorted(CASES))
def test_converter_matches_transformers_on_random_checkpoints(name: str, tmp_path: Path) -> None:
    cfg = write_checkpoint(name, tmp_path / name)
    graph = pooled_graph(resolve(tmp_path / name), tmp_path / "cache")
    ids, mask = inputs(cfg["vocab_size"], cfg["pad_token_id"])
    weights = OrtBackend(graph, threads=1).run({"input_ids": ids, "attention_mask": mask})
    assert weights.shape == (ids.shape[0], cfg["vocab_size"])
    for r, ref in enumerate(golden("random_checkpoints.json")["cases"][name]):
        nz = np.flatnonzero(weights[r] > 0)
        assert_same(nz, weights[r][nz], ref, f"{name} row {r}")


def test_converter_handles_legacy_names_and_tied_decoder(tiny_dir: Path) -> None:
    spec = load_spec(tiny_dir, tiny_dir / "model.safetensors")
    assert spec.decoder is spec.word  # tied: no cls.predictions.decoder.weight in the file
    assert "decoder tied to word embeddings" in spec.notes
    assert len(spec.layers) == 2 and spec.hidden == 128 and spec.vocab == 30522


def test_logits_onnx_gets_the_same_pooling(tiny: SpladeEncoder, tiny_dir: Path, tmp_path: Path) -> None:
    """A FastEmbed-style folder (model.onnx with a 'logits' output) encodes like the checkpoint."""
    import onnx

    folder = tmp_path / "logits-model"
    folder.mkdir()
    for f in ("tokenizer.json", "tokenizer_config.json", "config.json"):
        (folder / f).write_bytes((tiny_dir / f).read_bytes())
    onnx.save_model(
        build_graph(load_spec(tiny_dir, tiny_dir / "model.safetensors"), pooled=False), str(folder / "model.onnx")
    )
    enc = SpladeEncoder.from_pretrained(folder, cache_dir=tmp_path / "cache")
    texts = golden("splade_tiny.json")["texts"]
    for i, (a, ref) in enumerate(zip(enc.encode_documents(texts), golden("splade_tiny.json")["vectors"])):
        assert_same(a.indices, a.values, ref, f"logits-onnx text {i}")


def test_contrib_attention_graph_matches_transformers(tiny_dir: Path, tmp_path: Path) -> None:
    """The fused-attention variant that benchmarks/fusion.py measures computes the same weights."""
    from splade_onnx._cache import save_model
    from splade_onnx._tokenize import pad_batch

    g = golden("splade_tiny.json")
    save_model(
        build_graph(load_spec(tiny_dir, tiny_dir / "model.safetensors"), fused_attention=True),
        tmp_path / "attention.onnx",
    )
    backend = OrtBackend(tmp_path / "attention.onnx", threads=1)
    enc = SpladeEncoder.from_pretrained(tiny_dir, cache_dir=tmp_path / "cache")
    ids = enc.loaded.document.tokenizer.encode(g["texts"])
    weights = backend.run(pad_batch(ids, enc.loaded.document.tokenizer.pad_id))
    for r, ref in enumerate(g["vectors"]):
        nz = np.flatnonzero(weights[r] > 0)
        assert_same(nz, weights[r][nz], ref, f"text {r}")
