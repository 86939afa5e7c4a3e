"""Seeded random ``*ForMaskedLM`` checkpoints written with numpy only (no torch).

Shared by the converter tests and by ``scripts/make_golden.py``, which loads the very
same files into transformers to compute reference outputs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save_file

#: name -> (model_type, config overrides, legacy LayerNorm names, write an untied decoder)
CASES: dict[str, tuple[str, dict[str, Any], bool, bool]] = {
    "bert-tied-legacy-gelu_new": (
        "bert",
        {"vocab_size": 1000, "hidden_size": 64, "num_hidden_layers": 3, "num_attention_heads": 4,
         "intermediate_size": 96, "max_position_embeddings": 64, "hidden_act": "gelu_new"},
        True,
        False,
    ),
    "bert-untied-gelu": (
        "bert",
        {"vocab_size": 777, "hidden_size": 48, "num_hidden_layers": 2, "num_attention_heads": 3,
         "intermediate_size": 80, "max_position_embeddings": 40, "hidden_act": "gelu"},
        False,
        True,
    ),
    "distilbert": (
        "distilbert",
        {"vocab_size": 900, "dim": 64, "n_layers": 2, "n_heads": 4, "hidden_dim": 128,
         "max_position_embeddings": 64, "activation": "gelu"},
        False,
        False,
    ),
    "roberta": (
        "roberta",
        {"vocab_size": 800, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
         "intermediate_size": 128, "max_position_embeddings": 66, "hidden_act": "gelu",
         "type_vocab_size": 1, "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2},
        False,
        False,
    ),
}  # fmt: skip

#: Not part of the parity tests: the BERT-base shape used by benchmarks/ (random weights, real vocabulary size).
BENCH_CASES: dict[str, tuple[str, dict[str, Any], bool, bool]] = {
    "bert-base-shape": (
        "bert",
        {"vocab_size": 30522, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
         "intermediate_size": 3072, "max_position_embeddings": 512, "hidden_act": "gelu"},
        False,
        False,
    ),
}  # fmt: skip

#: Token ids fed to every case: a padded batch (pad id filled in per case).
INPUT_LENGTHS = [9, 3, 14, 1]


def inputs(vocab: int, pad_id: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    width = max(INPUT_LENGTHS)
    ids = np.full((len(INPUT_LENGTHS), width), pad_id, dtype=np.int64)
    mask = np.zeros_like(ids)
    for r, n in enumerate(INPUT_LENGTHS):
        ids[r, :n] = rng.integers(3, vocab, size=n)
        mask[r, :n] = 1
    return ids, mask


def write_checkpoint(name: str, folder: Path, seed: int = 0) -> dict[str, Any]:
    """Write config.json and model.safetensors for case ``name``; return the config."""
    model_type, over, legacy, untied = {**CASES, **BENCH_CASES}[name]
    rng = np.random.default_rng(seed)
    t: dict[str, np.ndarray] = {}

    def w(*shape: int, std: float = 0.2) -> np.ndarray:
        return (rng.standard_normal(shape) * std).astype(np.float32)

    def ln(prefix: str, n: int) -> None:
        g, b = ("gamma", "beta") if legacy else ("weight", "bias")
        t[f"{prefix}.{g}"] = (1 + rng.standard_normal(n) * 0.1).astype(np.float32)
        t[f"{prefix}.{b}"] = w(n, std=0.1)

    def lin(prefix: str, n_out: int, n_in: int) -> None:
        t[f"{prefix}.weight"] = w(n_out, n_in, std=1 / np.sqrt(n_in))
        t[f"{prefix}.bias"] = w(n_out, std=0.1)

    if model_type == "distilbert":
        cfg = {"model_type": "distilbert", "architectures": ["DistilBertForMaskedLM"], "dropout": 0.0,
               "attention_dropout": 0.0, "sinusoidal_pos_embds": False, "pad_token_id": 0, **over}  # fmt: skip
        V, H, F = cfg["vocab_size"], cfg["dim"], cfg["hidden_dim"]
        e = "distilbert.embeddings"
        t[f"{e}.word_embeddings.weight"] = w(V, H)
        t[f"{e}.position_embeddings.weight"] = w(cfg["max_position_embeddings"], H)
        ln(f"{e}.LayerNorm", H)
        for i in range(cfg["n_layers"]):
            p = f"distilbert.transformer.layer.{i}"
            for n in ("q_lin", "k_lin", "v_lin", "out_lin"):
                lin(f"{p}.attention.{n}", H, H)
            ln(f"{p}.sa_layer_norm", H)
            lin(f"{p}.ffn.lin1", F, H)
            lin(f"{p}.ffn.lin2", H, F)
            ln(f"{p}.output_layer_norm", H)
        lin("vocab_transform", H, H)
        ln("vocab_layer_norm", H)
        t["vocab_projector.bias"] = w(V, std=0.5)
    else:
        arch = "RobertaForMaskedLM" if model_type == "roberta" else "BertForMaskedLM"
        cfg = {"model_type": model_type, "architectures": [arch], "hidden_dropout_prob": 0.0,
               "attention_probs_dropout_prob": 0.0, "type_vocab_size": 2, "layer_norm_eps": 1e-12,
               "pad_token_id": 0, "tie_word_embeddings": not untied, **over}  # fmt: skip
        V, H, F = cfg["vocab_size"], cfg["hidden_size"], cfg["intermediate_size"]
        base = "roberta" if model_type == "roberta" else "bert"
        e = f"{base}.embeddings"
        t[f"{e}.word_embeddings.weight"] = w(V, H)
        t[f"{e}.position_embeddings.weight"] = w(cfg["max_position_embeddings"], H)
        t[f"{e}.token_type_embeddings.weight"] = w(cfg["type_vocab_size"], H)
        ln(f"{e}.LayerNorm", H)
        for i in range(cfg["num_hidden_layers"]):
            p = f"{base}.encoder.layer.{i}"
            for n in ("query", "key", "value"):
                lin(f"{p}.attention.self.{n}", H, H)
            lin(f"{p}.attention.output.dense", H, H)
            ln(f"{p}.attention.output.LayerNorm", H)
            lin(f"{p}.intermediate.dense", F, H)
            lin(f"{p}.output.dense", H, F)
            ln(f"{p}.output.LayerNorm", H)
        if model_type == "roberta":
            lin("lm_head.dense", H, H)
            ln("lm_head.layer_norm", H)
            t["lm_head.bias"] = w(V, std=0.5)
        else:
            lin("cls.predictions.transform.dense", H, H)
            ln("cls.predictions.transform.LayerNorm", H)
            t["cls.predictions.bias"] = w(V, std=0.5)
            if untied:
                t["cls.predictions.decoder.weight"] = w(V, H)
                t["cls.predictions.decoder.bias"] = w(V, std=0.5)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(t, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(cfg, indent=1))
    return cfg
