"""ModernBERT (``ModernBertForMaskedLM``) converted without torch, against transformers.

The golden file is tests/golden/modernbert.json, from scripts/make_golden_modernbert.py.

Two seeded checkpoints in transformers' on-disk layout with BERT's 30,522-token vocabulary (splade-tiny's
tokenizer): ModernBERT-base's flags in its published config form (no biases but the decoder's, tied decoder,
global layers 0 and 3), and transformers 5's form with every bias, an untied decoder, a local first layer and
other activations.  Their weights are written here from the seeds of tests/golden/modernbert.json and checked
against its sha256; the references are transformers' logits pooled each way the dense graph pools, identical
with eager and sdpa attention, alone and in a padded batch.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from splade_onnx import ModelError, SparseEmbedding, SpladeEncoder
from splade_onnx._graph_dense import build_graph, convert_checkpoint
from splade_onnx._hub import resolve
from splade_onnx._loading import pooled_graph
from splade_onnx._session import OrtBackend, PrunedBackend
from splade_onnx._spec import load_spec
from splade_onnx._tokenize import TextTokenizer, pad_batch

from checkpoints import MODERNBERT_CASES, write_modernbert
from conftest import golden

GOLDEN = golden("modernbert.json")
TEXTS: list[str] = GOLDEN["texts"]
QUERIES = TEXTS[: GOLDEN["queries"]]
TOL = 1e-4


@pytest.fixture(scope="module")
def folders(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each case written from its recorded seed and bias shift, byte for byte the oracle's file."""
    root = tmp_path_factory.mktemp("modernbert")
    out = {}
    for name, rec in GOLDEN["cases"].items():
        digest = write_modernbert(
            name, root / name, seed=rec["seed"], bias_shift=float.fromhex(rec["bias_shift"]), tokenizer_dir=tiny_dir
        )
        assert digest == rec["sha256"], f"{name}: the weights are not the oracle's; rerun make_golden_modernbert.py"
        out[name] = root / name
    assert sorted(out) == sorted(MODERNBERT_CASES)
    return out


def check(got: SparseEmbedding | tuple[np.ndarray, np.ndarray], ref: dict[str, Any], key: str, what: str) -> float:
    """Identical index sets and values within TOL; returns the largest difference."""
    indices, values = (got.indices, got.values) if isinstance(got, SparseEmbedding) else got
    assert indices.tolist() == ref["indices"], f"{what}: index sets differ"
    diff = float(np.max(np.abs(values - np.asarray(ref[key], np.float32)), initial=0.0))
    assert diff <= TOL, f"{what}: max abs diff {diff:.2e} > {TOL}"
    return diff


def test_the_references_cover_local_windows_and_the_position_limit() -> None:
    """The texts reach past both local windows (17 and 11 positions wide) and up to the 128 positions."""
    n = [v["n_tokens"] for v in GOLDEN["cases"]["modernbert"]["vectors"]]
    assert max(n) == GOLDEN["max_length"] == 128 and n.count(128) >= 2  # one filled exactly, one truncated
    assert sum(k > 17 for k in n) >= 10 and min(n) == 2  # the empty text is [CLS] [SEP]
    for rec in GOLDEN["cases"].values():
        assert max(rec["reference_spread"].values()) <= 2e-5  # eager/sdpa, alone/batched agreed
        assert all(0 < len(v["indices"]) < 1000 for v in rec["vectors"])


@pytest.mark.parametrize("name", sorted(MODERNBERT_CASES))
def test_documents_and_queries_match_transformers(name: str, folders: dict[str, Path], tmp_path: Path) -> None:
    enc = SpladeEncoder.from_pretrained(folders[name], cache_dir=tmp_path / "cache", projection="dense")
    refs = GOLDEN["cases"][name]["vectors"]
    for i, (g, r) in enumerate(zip(enc.encode_documents(TEXTS), refs, strict=True)):
        check(g, r, "max_relu", f"{name} document {i}")
    for i, (g, r) in enumerate(zip(enc.encode_queries(QUERIES), refs[: len(QUERIES)], strict=True)):
        check(g, r, "max_relu", f"{name} query {i}")
    for i in (4, len(TEXTS) - 3, len(TEXTS) - 1):  # alone: a short document, the long one, the one of 128 tokens
        check(enc.encode_documents([TEXTS[i]])[0], refs[i], "max_relu", f"{name} text {i} alone")


@pytest.mark.parametrize("pooling", GOLDEN["poolings"])
@pytest.mark.parametrize("name", sorted(MODERNBERT_CASES))
def test_every_pooling_of_a_padded_batch_matches(name: str, pooling: str, folders: dict[str, Path]) -> None:
    """One batch padded to 128 tokens: padding keys are masked in the global and the local layers alike."""
    pool, activation = pooling.split("_", 1)
    folder = folders[name]
    spec = load_spec(folder, folder / "model.safetensors")
    backend = OrtBackend(build_graph(spec, pooling=pool, activation=activation).SerializeToString(), threads=1)
    tok = TextTokenizer.from_folder(folder, max_length=None, model_limit=128)
    feed = pad_batch(tok.encode(TEXTS), tok.pad_id)
    assert feed["input_ids"].shape == (len(TEXTS), 128)
    weights = backend.run(feed)
    for r, ref in enumerate(GOLDEN["cases"][name]["vectors"]):
        nz = np.flatnonzero(weights[r] > 0)
        check((nz, weights[r][nz]), ref, pooling, f"{name} {pooling} row {r}")


@pytest.mark.parametrize("name", sorted(MODERNBERT_CASES))
def test_the_pruned_head_matches_transformers(name: str, folders: dict[str, Path], tmp_path: Path) -> None:
    """ModernBERT's head (dense, activation, LayerNorm with or without bias) keeps the pruned head's bound exact."""
    enc = SpladeEncoder.from_pretrained(folders[name], cache_dir=tmp_path / "cache", projection="pruned")
    assert isinstance(enc.loaded.document.backend, PrunedBackend)
    refs = GOLDEN["cases"][name]["vectors"]
    for i, (g, r) in enumerate(zip(enc.encode_documents(TEXTS), refs, strict=True)):
        check(g, r, "max_relu", f"{name} pruned document {i}")
    check(enc.encode_documents([TEXTS[-1]])[0], refs[-1], "max_relu", f"{name} pruned, the 128-token text alone")


def test_the_reader_follows_transformers_layer_rules(folders: dict[str, Path]) -> None:
    """Which layers are local, their window and rotary base, and which weights have biases, per config form."""
    legacy = load_spec(folders["modernbert"], folders["modernbert"] / "model.safetensors")
    assert [L.window for L in legacy.layers] == [None, 8, 8, None]  # every 3rd layer global; |i - j| <= 16 // 2
    assert [L.rope_theta for L in legacy.layers] == [160000.0, 10000.0, 10000.0, 160000.0]
    assert legacy.layers[0].ln1 is None and legacy.layers[1].ln1 is not None  # layer 0 has no attn_norm
    assert legacy.layers[0].q[1] is None and legacy.emb_ln[1] is None and legacy.head_dense[1] is None
    assert legacy.decoder is legacy.word and legacy.position is None and legacy.pre_norm and legacy.gated_mlp
    new = load_spec(folders["modernbert-biases-untied"], folders["modernbert-biases-untied"] / "model.safetensors")
    assert [L.window for L in new.layers] == [5, None, 5, None]  # layer_types; 11 // 2
    assert [L.rope_theta for L in new.layers] == [500.0, 1000.0, 500.0, 1000.0]
    assert new.layers[2].q[1] is not None and new.final_ln is not None and new.final_ln[1] is not None
    assert new.decoder is not new.word and (new.activation, new.head_activation) == ("silu", "gelu_pytorch_tanh")
    assert new.mlp_width == 96 * 3 // 2  # the gated MLP's multiply-adds, in a BERT MLP's width


def _with_config(src: Path, dst: Path, **changes: Any) -> Path:
    shutil.copytree(src, dst)
    cfg = json.loads((dst / "config.json").read_text())
    cfg.update(changes)
    (dst / "config.json").write_text(json.dumps(cfg))
    return dst


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"classifier_activation": "quick_gelu"},
            "activation 'quick_gelu' is not supported; supported: gelu, gelu_fast, gelu_new, gelu_python, "
            "gelu_pytorch_tanh, relu, silu, swish",
        ),
        (
            {"rope_parameters": {"full_attention": {"rope_type": "yarn", "factor": 2.0}}},
            "the rotary embeddings of the full_attention layers (rope_type='yarn', rope_theta=160000.0) are not "
            "supported; supported: rope_type 'default' with a positive rope_theta",
        ),
        (
            {"rope_scaling": {"type": "linear", "factor": 2.0}},
            "the rotary embeddings of the full_attention layers (rope_type='linear', rope_theta=160000.0) are not "
            "supported; supported: rope_type 'default' with a positive rope_theta",
        ),
        (
            {"layer_types": ["full_attention", "chunked_attention", "sliding_attention", "full_attention"]},
            "layer_types=['full_attention', 'chunked_attention', 'sliding_attention', 'full_attention'] is not "
            "supported: it needs one entry per layer (4), each one of 'full_attention', 'sliding_attention'; "
            "not: 1: 'chunked_attention'",
        ),
        (
            {"rope_parameters": {"rope_type": "default", "rope_theta": 1000.0}},
            "rope_parameters with rope_theta, rope_type is not supported: it must map 'full_attention' and "
            "'sliding_attention' to their parameters",
        ),
        ({"head_dim": 32}, "head_dim=32 is not supported; only hidden_size / num_attention_heads"),
        ({"local_rope_theta": None}, "(rope_type='default', rope_theta=None) are not supported"),
    ],
    ids=["activation", "rope_type", "rope_scaling", "layer_type", "flat_rope", "head_dim", "no_theta"],
)
def test_unsupported_modernbert_configs_are_refused(
    changes: dict[str, Any], message: str, folders: dict[str, Path], tmp_path: Path
) -> None:
    folder = _with_config(folders["modernbert"], tmp_path / "m", **changes)
    with pytest.raises(ModelError, match=re.escape(message)):
        convert_checkpoint(folder, folder / "model.safetensors")


def test_a_missing_untied_decoder_and_fused_attention_are_refused(folders: dict[str, Path], tmp_path: Path) -> None:
    folder = _with_config(folders["modernbert"], tmp_path / "m", tie_word_embeddings=False)
    with pytest.raises(ModelError, match=re.escape("lacks tensor 'decoder.weight'")):
        load_spec(folder, folder / "model.safetensors")
    spec = load_spec(folders["modernbert"], folders["modernbert"] / "model.safetensors")
    with pytest.raises(ModelError, match=re.escape("fused_attention=True is not supported for modernbert")):
        build_graph(spec, fused_attention=True)


def test_unknown_architectures_are_refused_with_the_supported_list(folders: dict[str, Path], tmp_path: Path) -> None:
    folder = _with_config(folders["modernbert"], tmp_path / "m", model_type="llama")
    with pytest.raises(
        ModelError,
        match=re.escape(
            "model_type='llama' in " + str(folder / "config.json") + " is not supported; supported: bert, camembert, "
            "distilbert, modernbert, roberta, xlm-roberta."
        ),
    ):
        pooled_graph(resolve(folder), tmp_path / "cache")
