"""Seeded random ``*ForMaskedLM`` checkpoints written with numpy only (no torch).

Shared by the converter tests and by ``scripts/make_golden.py``, which loads the very
same files into transformers to compute reference outputs, and by the family fixtures'
tests and ``scripts/make_golden_families.py`` (the families' weight files, see the end).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save_file

#: name -> (model_type, config overrides, legacy LayerNorm names, write an untied decoder)
CASES: dict[str, tuple[str, dict[str, Any], bool, bool]] = {
    "bert-tied-legacy-gelu_new": (
        "bert",
        {
            "vocab_size": 1000,
            "hidden_size": 64,
            "num_hidden_layers": 3,
            "num_attention_heads": 4,
            "intermediate_size": 96,
            "max_position_embeddings": 64,
            "hidden_act": "gelu_new",
        },
        True,
        False,
    ),
    "bert-untied-gelu": (
        "bert",
        {
            "vocab_size": 777,
            "hidden_size": 48,
            "num_hidden_layers": 2,
            "num_attention_heads": 3,
            "intermediate_size": 80,
            "max_position_embeddings": 40,
            "hidden_act": "gelu",
        },
        False,
        True,
    ),
    "distilbert": (
        "distilbert",
        {
            "vocab_size": 900,
            "dim": 64,
            "n_layers": 2,
            "n_heads": 4,
            "hidden_dim": 128,
            "max_position_embeddings": 64,
            "activation": "gelu",
        },
        False,
        False,
    ),
    "roberta": (
        "roberta",
        {
            "vocab_size": 800,
            "hidden_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 128,
            "max_position_embeddings": 66,
            "hidden_act": "gelu",
            "type_vocab_size": 1,
            "pad_token_id": 1,
            "bos_token_id": 0,
            "eos_token_id": 2,
        },
        False,
        False,
    ),
}

#: Not part of the parity tests: the BERT-base shape used by benchmarks/ (random weights, real vocabulary size).
BENCH_CASES: dict[str, tuple[str, dict[str, Any], bool, bool]] = {
    "bert-base-shape": (
        "bert",
        {
            "vocab_size": 30522,
            "hidden_size": 768,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "intermediate_size": 3072,
            "max_position_embeddings": 512,
            "hidden_act": "gelu",
        },
        False,
        False,
    ),
}

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


class _Seeded:
    """Seeded random tensors keyed as transformers saves them, drawn from ``np.random.default_rng(seed)`` in call
    order (so each writer below is byte-identical on every run).  Linear weights have ``std`` or, when
    ``fan_in``, ``1 / sqrt(n_in)``; LayerNorms are ``1 + N(0, 0.1)`` and ``N(0, 0.1)`` (``gamma``/``beta`` when
    ``legacy``)."""

    def __init__(self, seed: int, *, std: float, fan_in: bool, legacy: bool = False) -> None:
        self.rng = np.random.default_rng(seed)
        self.t: dict[str, np.ndarray] = {}
        self.std, self.fan_in, self.legacy = std, fan_in, legacy

    def w(self, *shape: int, std: float | None = None) -> np.ndarray:
        return (self.rng.standard_normal(shape) * (self.std if std is None else std)).astype(np.float32)

    def ln(self, prefix: str, n: int, *, bias: bool = True) -> None:
        g, b = ("gamma", "beta") if self.legacy else ("weight", "bias")
        self.t[f"{prefix}.{g}"] = (1 + self.rng.standard_normal(n) * 0.1).astype(np.float32)
        if bias:
            self.t[f"{prefix}.{b}"] = self.w(n, std=0.1)

    def lin(self, prefix: str, n_out: int, n_in: int, *, bias: bool = True) -> None:
        self.t[f"{prefix}.weight"] = self.w(n_out, n_in, std=1 / np.sqrt(n_in) if self.fan_in else None)
        if bias:
            self.t[f"{prefix}.bias"] = self.w(n_out, std=0.1)

    def bert(self, base: str, *, vocab: int, hidden: int, inner: int, positions: int, types: int, layers: int) -> None:
        """Embeddings and encoder layers of a BERT or RoBERTa (``base`` "bert" / "roberta")."""
        e, H = f"{base}.embeddings", hidden
        self.t[f"{e}.word_embeddings.weight"] = self.w(vocab, H)
        self.t[f"{e}.position_embeddings.weight"] = self.w(positions, H)
        self.t[f"{e}.token_type_embeddings.weight"] = self.w(types, H)
        self.ln(f"{e}.LayerNorm", H)
        for i in range(layers):
            p = f"{base}.encoder.layer.{i}"
            for n in ("query", "key", "value"):
                self.lin(f"{p}.attention.self.{n}", H, H)
            self.lin(f"{p}.attention.output.dense", H, H)
            self.ln(f"{p}.attention.output.LayerNorm", H)
            self.lin(f"{p}.intermediate.dense", inner, H)
            self.lin(f"{p}.output.dense", H, inner)
            self.ln(f"{p}.output.LayerNorm", H)

    def distilbert(self, *, vocab: int, hidden: int, inner: int, positions: int, layers: int) -> None:
        """Embeddings, layers and the MLM transform of a DistilBERT (the output bias is the caller's)."""
        e, H = "distilbert.embeddings", hidden
        self.t[f"{e}.word_embeddings.weight"] = self.w(vocab, H)
        self.t[f"{e}.position_embeddings.weight"] = self.w(positions, H)
        self.ln(f"{e}.LayerNorm", H)
        for i in range(layers):
            p = f"distilbert.transformer.layer.{i}"
            for n in ("q_lin", "k_lin", "v_lin", "out_lin"):
                self.lin(f"{p}.attention.{n}", H, H)
            self.ln(f"{p}.sa_layer_norm", H)
            self.lin(f"{p}.ffn.lin1", inner, H)
            self.lin(f"{p}.ffn.lin2", H, inner)
            self.ln(f"{p}.output_layer_norm", H)
        self.lin("vocab_transform", H, H)
        self.ln("vocab_layer_norm", H)


def write_checkpoint(name: str, folder: Path, seed: int = 0) -> dict[str, Any]:
    """Write config.json and model.safetensors for case ``name``; return the config."""
    model_type, over, legacy, untied = {**CASES, **BENCH_CASES}[name]
    r = _Seeded(seed, std=0.2, fan_in=True, legacy=legacy)
    t = r.t
    if model_type == "distilbert":
        cfg = {
            "model_type": "distilbert",
            "architectures": ["DistilBertForMaskedLM"],
            "dropout": 0.0,
            "attention_dropout": 0.0,
            "sinusoidal_pos_embds": False,
            "pad_token_id": 0,
            **over,
        }
        V, H, F = cfg["vocab_size"], cfg["dim"], cfg["hidden_dim"]
        r.distilbert(vocab=V, hidden=H, inner=F, positions=cfg["max_position_embeddings"], layers=cfg["n_layers"])
        t["vocab_projector.bias"] = r.w(V, std=0.5)
    else:
        arch = "RobertaForMaskedLM" if model_type == "roberta" else "BertForMaskedLM"
        cfg = {
            "model_type": model_type,
            "architectures": [arch],
            "hidden_dropout_prob": 0.0,
            "attention_probs_dropout_prob": 0.0,
            "type_vocab_size": 2,
            "layer_norm_eps": 1e-12,
            "pad_token_id": 0,
            "tie_word_embeddings": not untied,
            **over,
        }
        V, H, F = cfg["vocab_size"], cfg["hidden_size"], cfg["intermediate_size"]
        r.bert(
            "roberta" if model_type == "roberta" else "bert",
            vocab=V,
            hidden=H,
            inner=F,
            positions=cfg["max_position_embeddings"],
            types=cfg["type_vocab_size"],
            layers=cfg["num_hidden_layers"],
        )
        if model_type == "roberta":
            r.lin("lm_head.dense", H, H)
            r.ln("lm_head.layer_norm", H)
            t["lm_head.bias"] = r.w(V, std=0.5)
        else:
            r.lin("cls.predictions.transform.dense", H, H)
            r.ln("cls.predictions.transform.LayerNorm", H)
            t["cls.predictions.bias"] = r.w(V, std=0.5)
            if untied:
                t["cls.predictions.decoder.weight"] = r.w(V, H)
                t["cls.predictions.decoder.bias"] = r.w(V, std=0.5)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(t, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(cfg, indent=1))
    return cfg


# --------------------------------------------------------------------------------------------
# Tiny ModernBertForMaskedLM checkpoints with BERT's 30,522-token vocabulary (splade-tiny's
# tokenizer): too big to commit, so the tests write them byte for byte from the seed and the
# output-bias shift that scripts/make_golden_modernbert.py recorded in tests/golden/modernbert.json.
# --------------------------------------------------------------------------------------------

_MODERNBERT_BASE: dict[str, Any] = {
    "model_type": "modernbert",
    "architectures": ["ModernBertForMaskedLM"],
    "vocab_size": 30522,
    "hidden_size": 64,
    "intermediate_size": 96,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "max_position_embeddings": 128,
    "pad_token_id": 0,
    "cls_token_id": 101,
    "bos_token_id": 101,
    "sep_token_id": 102,
    "eos_token_id": 102,
    "embedding_dropout": 0.0,
    "attention_dropout": 0.0,
    "mlp_dropout": 0.0,
    "initializer_range": 0.02,
}

#: name -> config.json of the ModernBERT cases.
MODERNBERT_CASES: dict[str, dict[str, Any]] = {
    # ModernBERT-base's flags, in the config form it was published with (transformers 4.4x): no biases but
    # the decoder's, tied decoder, global layers 0 and 3 of 4, a legacy (ignored) position_embedding_type.
    "modernbert": {
        **_MODERNBERT_BASE,
        "hidden_activation": "gelu",
        "classifier_activation": "gelu",
        "norm_eps": 1e-5,
        "layer_norm_eps": 1e-5,
        "norm_bias": False,
        "attention_bias": False,
        "mlp_bias": False,
        "classifier_bias": False,
        "decoder_bias": True,
        "tie_word_embeddings": True,
        "global_attn_every_n_layers": 3,
        "global_rope_theta": 160000.0,
        "local_rope_theta": 10000.0,
        "local_attention": 16,
        "position_embedding_type": "absolute",
        "classifier_pooling": "mean",
    },
    # transformers 5's config form (layer_types, rope_parameters), every bias on, an untied decoder, a local first
    # layer, an odd local_attention (11: |i - j| <= 5) and other activations.
    "modernbert-biases-untied": {
        **_MODERNBERT_BASE,
        "hidden_activation": "silu",
        "classifier_activation": "gelu_pytorch_tanh",
        "norm_eps": 1e-6,
        "norm_bias": True,
        "attention_bias": True,
        "mlp_bias": True,
        "classifier_bias": True,
        "decoder_bias": True,
        "tie_word_embeddings": False,
        "layer_types": ["sliding_attention", "full_attention", "sliding_attention", "full_attention"],
        "rope_parameters": {
            "full_attention": {"rope_type": "default", "rope_theta": 1000.0},
            "sliding_attention": {"rope_type": "default", "rope_theta": 500.0},
        },
        "local_attention": 11,
    },
}


def modernbert_tensors(name: str, *, seed: int, bias_shift: float = 0.0) -> dict[str, np.ndarray]:
    """The state dict of ModernBERT case ``name``, keyed as transformers saves ``ModernBertForMaskedLM`` (a tied
    decoder has no ``decoder.weight``), every tensor from ``np.random.default_rng(seed)`` in a fixed order; the
    float32 ``bias_shift`` is subtracted from ``decoder.bias`` (how the oracle makes the vectors sparse)."""
    cfg = MODERNBERT_CASES[name]
    shift = np.float32(bias_shift)
    if float(shift) != bias_shift:
        raise ValueError(f"bias_shift {bias_shift!r} is not a float32 value")
    V, H, F = cfg["vocab_size"], cfg["hidden_size"], cfg["intermediate_size"]
    norm, attn, mlp = cfg["norm_bias"], cfg["attention_bias"], cfg["mlp_bias"]
    r = _Seeded(seed, std=0.2, fan_in=True)
    t = r.t
    t["model.embeddings.tok_embeddings.weight"] = r.w(V, H)
    r.ln("model.embeddings.norm", H, bias=norm)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}"
        if i:
            r.ln(f"{p}.attn_norm", H, bias=norm)
        r.lin(f"{p}.attn.Wqkv", 3 * H, H, bias=attn)
        r.lin(f"{p}.attn.Wo", H, H, bias=attn)
        r.ln(f"{p}.mlp_norm", H, bias=norm)
        r.lin(f"{p}.mlp.Wi", 2 * F, H, bias=mlp)
        r.lin(f"{p}.mlp.Wo", H, F, bias=mlp)
    r.ln("model.final_norm", H, bias=norm)
    r.lin("head.dense", H, H, bias=cfg["classifier_bias"])
    r.ln("head.norm", H, bias=norm)
    if not cfg["tie_word_embeddings"]:
        t["decoder.weight"] = r.w(V, H)
    t["decoder.bias"] = r.w(V, std=0.5) - shift
    assert t["decoder.bias"].dtype == np.float32
    return t


def write_modernbert(name: str, folder: Path, *, seed: int, bias_shift: float, tokenizer_dir: Path) -> str:
    """Write ModernBERT case ``name`` to ``folder``: config.json, model.safetensors (metadata ``{"format": "pt"}``,
    as transformers saves it) and the tokenizer files of ``tokenizer_dir`` (splade-tiny's); returns the weights'
    sha256."""
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / "model.safetensors"
    save_file(modernbert_tensors(name, seed=seed, bias_shift=bias_shift), str(weights), metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps(MODERNBERT_CASES[name], indent=1))
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(tokenizer_dir / f, folder / f)
    return hashlib.sha256(weights.read_bytes()).hexdigest()


# --------------------------------------------------------------------------------------------
# A tiny XLM-RoBERTa MLM with the real 250,002-piece vocabulary size (too big to commit: the
# tests regenerate it byte for byte from the seed; scripts/make_golden_families.py records
# reference vectors and the files' sha256 in tests/golden/families.json under "xlmr").
# --------------------------------------------------------------------------------------------

#: config.json of the tiny XLM-R checkpoint (RoBERTa positions start at pad_token_id + 1 = 2,
#: so 64 tokens need 66 position embeddings).
XLMR_CONFIG: dict[str, Any] = {
    "model_type": "xlm-roberta",
    "architectures": ["XLMRobertaForMaskedLM"],
    "vocab_size": 250002,
    "hidden_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 32,
    "max_position_embeddings": 66,
    "type_vocab_size": 1,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "eos_token_id": 2,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.0,
    "attention_probs_dropout_prob": 0.0,
    "layer_norm_eps": 1e-5,
    "initializer_range": 0.02,
    "position_embedding_type": "absolute",
    "tie_word_embeddings": True,
}

#: tokenizer_config.json: loadable by transformers (AutoTokenizer) from tokenizer.json alone.
XLMR_TOKENIZER_CONFIG: dict[str, Any] = {
    "tokenizer_class": "PreTrainedTokenizerFast",
    "model_max_length": 64,
    "bos_token": "<s>",
    "eos_token": "</s>",
    "cls_token": "<s>",
    "sep_token": "</s>",
    "unk_token": "<unk>",
    "pad_token": "<pad>",
    "mask_token": "<mask>",
    "model_input_names": ["input_ids", "attention_mask"],
    "clean_up_tokenization_spaces": False,
}

#: Whole words given their own "▁word" piece (English plus a few other Latin-script languages).
_XLMR_WORD_TEXT = (
    "the of and to in is was for on that with as by at from it his an were are which this be or has had "
    "not but first one their its new after who they have her she two been other when there all during into "
    "school time may years more most only over city some world would where later up such used many can state "
    "about national out known university united then made also what how why cat sat mat dog fox quick brown "
    "lazy jumps moon lunar mission cost launch rover lander orbit space earth sun weather rainy now today "
    "york new currently paris france capital river water fire house music book page word text query document "
    "passage search sparse vector token model small large long short good great old young high low left right "
    "de la le les des et en du un une est pour que dans sur au avec der die das und ist nicht mit von zu den "
    "el los las del por con para una como más café naïve résumé façade über straße niño"
)
_XLMR_WORDS = tuple(_XLMR_WORD_TEXT.split())

_XLMR_CHARS = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    ".,;:!?'\"()[]{}<>-_/\\@#$%&*+=~`^|"
    "àáâãäåæçèéêëìíîïñòóôõöøùúûüýÿßÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÑÒÓÔÕÖØÙÚÛÜÝ"
)


def xlmr_pieces() -> list[tuple[str, float]]:
    """The 250,002 (piece, log-probability) pairs of the tiny XLM-R Unigram model, in id order.

    ``<s> <pad> </s> <unk>`` first (ids 0-3, as in XLM-R), then real pieces (words, single
    characters with and without the ``▁`` word-start marker, lowercase letter pairs), then
    ``▁tok000123``-style fillers, and ``<mask>`` last (id 250001).
    """
    pieces: dict[str, float] = {"<s>": 0.0, "<pad>": 0.0, "</s>": 0.0, "<unk>": 0.0}
    for rank, word in enumerate(_XLMR_WORDS):
        pieces.setdefault("▁" + word, round(-6.0 - 0.01 * rank, 4))
    for ch in _XLMR_CHARS:
        pieces.setdefault("▁" + ch, -11.0)
        pieces.setdefault(ch, -11.5)
    pieces.setdefault("▁", -12.0)
    letters = "abcdefghijklmnopqrstuvwxyz"
    for a in letters:
        for b in letters:
            pieces.setdefault("▁" + a + b, -9.5)
            pieces.setdefault(a + b, -10.0)
    n_fill = XLMR_CONFIG["vocab_size"] - 1 - len(pieces)
    for i in range(n_fill):
        pieces[f"▁tok{i:06d}"] = -20.0
    out = list(pieces.items())
    out.append(("<mask>", 0.0))
    assert len(out) == XLMR_CONFIG["vocab_size"]
    return out


def xlmr_tokenizer_json() -> dict[str, Any]:
    """tokenizer.json of the tiny XLM-R: Unigram model, Metaspace pre-tokenizer, ``<s> $A </s>``."""

    def special(i: int, content: str, lstrip: bool = False) -> dict[str, Any]:
        return {
            "id": i,
            "content": content,
            "single_word": False,
            "lstrip": lstrip,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }

    def tok(name: str, type_id: int = 0) -> dict[str, Any]:
        return {"SpecialToken": {"id": name, "type_id": type_id}}

    def seq(name: str, type_id: int = 0) -> dict[str, Any]:
        return {"Sequence": {"id": name, "type_id": type_id}}

    metaspace = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True}
    vocab_size = XLMR_CONFIG["vocab_size"]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            special(0, "<s>"),
            special(1, "<pad>"),
            special(2, "</s>"),
            special(3, "<unk>"),
            special(vocab_size - 1, "<mask>", lstrip=True),
        ],
        "normalizer": {
            "type": "Sequence",
            "normalizers": [{"type": "NFKC"}, {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}],
        },
        "pre_tokenizer": metaspace,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [tok("<s>"), seq("A"), tok("</s>")],
            "pair": [tok("<s>"), seq("A"), tok("</s>"), tok("</s>"), seq("B"), tok("</s>")],
            "special_tokens": {
                "<s>": {"id": "<s>", "ids": [0], "tokens": ["<s>"]},
                "</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]},
            },
        },
        "decoder": metaspace,
        "model": {"type": "Unigram", "unk_id": 3, "vocab": [[p, s] for p, s in xlmr_pieces()], "byte_fallback": False},
    }


def write_xlmr_checkpoint(folder: Path, seed: int = 0) -> dict[str, Any]:
    """Write a tiny random ``XLMRobertaForMaskedLM`` (tied decoder) with XLM-R's 250,002-token vocabulary.

    Files: config.json, model.safetensors (float32), tokenizer.json, tokenizer_config.json. The
    output depends only on ``seed`` (numpy ``default_rng``), so it is byte-identical on every run.
    The decoder bias is shifted well below zero, so only about 1 in 10,000 logits is positive and the
    SPLADE vectors stay sparse. Returns the config.
    """
    cfg = dict(XLMR_CONFIG)
    V, H, F = cfg["vocab_size"], cfg["hidden_size"], cfg["intermediate_size"]
    r = _Seeded(seed, std=0.2, fan_in=True)
    t = r.t
    r.bert(
        "roberta",
        vocab=V,
        hidden=H,
        inner=F,
        positions=cfg["max_position_embeddings"],
        types=cfg["type_vocab_size"],
        layers=cfg["num_hidden_layers"],
    )
    r.lin("lm_head.dense", H, H)
    r.ln("lm_head.layer_norm", H)
    t["lm_head.bias"] = (r.rng.standard_normal(V) * 0.3 - 3.6).astype(np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(t, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(cfg, indent=1))
    (folder / "tokenizer_config.json").write_text(json.dumps(XLMR_TOKENIZER_CONFIG, indent=1))
    with (folder / "tokenizer.json").open("w", encoding="utf-8") as f:
        json.dump(xlmr_tokenizer_json(), f, ensure_ascii=False, separators=(",", ":"))
    return cfg


def shift_mlm_bias(folder: Path, maxima: np.ndarray, target_terms: int) -> float:
    """Shift a BERT checkpoint's MLM bias so texts whose max logits per id are the rows of ``maxima`` have about
    ``target_terms`` positive pooled logits each (the benchmarks' BERT-base shape); returns the shift."""
    from safetensors.numpy import load_file

    shift = float(np.quantile(maxima, 1 - target_terms / maxima.shape[1]))
    path = folder / "model.safetensors"
    t = load_file(str(path))
    t["cls.predictions.bias"] = (t["cls.predictions.bias"] - shift).astype(np.float32)
    save_file(t, str(path))
    return shift


# --------------------------------------------------------------------------------------------
# The weights of the checkpoint-family fixtures (tests/fixtures/families/): the folders are
# committed without their model.safetensors, which the tests write here from seeds, byte for
# byte as scripts/make_golden_families.py wrote them before computing its references. Each
# file's writer arguments and sha256 are in tests/golden/families.json under "weights".
# --------------------------------------------------------------------------------------------

#: Shape of the families' tiny MLMs (BertForMaskedLM and DistilBertForMaskedLM alike).
FAMILY_MLM: dict[str, int] = {
    "hidden": 16,
    "layers": 2,
    "heads": 2,
    "intermediate": 64,
    "max_position_embeddings": 40,
    "type_vocab_size": 2,
}
#: Standard deviation of every weight matrix and embedding table (the configs' initializer_range).
FAMILY_INIT_STD = 0.5
#: Kinds of weight files: the two MLMs, a SparseStaticEmbedding table (seeded) and its weight-less table of ones.
FAMILY_KINDS = ("bert", "distilbert", "static_table", "ones_table")


def family_mlm_tensors(*, kind: str, vocab_size: int, seed: int, bias_shift: float = 0.0) -> dict[str, np.ndarray]:
    """The state dict of a family MLM (``kind`` "bert" or "distilbert", tied decoder), keyed as transformers saves it.

    Every tensor comes from ``np.random.default_rng(seed)`` in a fixed order; ``bias_shift`` (a float32 value) is
    then subtracted, in float32, from the MLM output bias, which is how the oracle makes documents sparse.
    """
    if kind not in ("bert", "distilbert"):
        raise ValueError(f"not an MLM kind: {kind!r}")
    shift = np.float32(bias_shift)
    if float(shift) != bias_shift:
        raise ValueError(f"bias_shift {bias_shift!r} is not a float32 value")
    V, H, F = vocab_size, FAMILY_MLM["hidden"], FAMILY_MLM["intermediate"]
    r = _Seeded(seed, std=FAMILY_INIT_STD, fan_in=False)
    t = r.t
    positions, layers = FAMILY_MLM["max_position_embeddings"], FAMILY_MLM["layers"]
    if kind == "distilbert":
        r.distilbert(vocab=V, hidden=H, inner=F, positions=positions, layers=layers)
        bias = "vocab_projector.bias"
    else:
        r.bert(
            "bert", vocab=V, hidden=H, inner=F, positions=positions, types=FAMILY_MLM["type_vocab_size"], layers=layers
        )
        r.lin("cls.predictions.transform.dense", H, H)
        r.ln("cls.predictions.transform.LayerNorm", H)
        bias = "cls.predictions.bias"
    t[bias] = r.w(V) - shift
    assert t[bias].dtype == np.float32
    return t


def family_static_table(*, vocab_size: int, seed: int) -> np.ndarray:
    """A strictly positive float32 weight per token (like an IDF table), for a SparseStaticEmbedding."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0.05, 6.0, size=vocab_size).astype(np.float32)


def family_tensors(*, spec: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The tensors of one weight file from its record (``kind``, ``vocab_size``, ``seed``, ``bias_shift``)."""
    kind, vocab_size = spec["kind"], int(spec["vocab_size"])
    if kind in ("bert", "distilbert"):
        shift = float.fromhex(spec["bias_shift"])
        return family_mlm_tensors(kind=kind, vocab_size=vocab_size, seed=int(spec["seed"]), bias_shift=shift)
    if kind == "static_table":
        return {"weight": family_static_table(vocab_size=vocab_size, seed=int(spec["seed"]))}
    if kind == "ones_table":
        return {"weight": np.ones(vocab_size, dtype=np.float32)}
    raise ValueError(f"unknown weight kind {kind!r}; known: {', '.join(FAMILY_KINDS)}")


def write_family_weights(path: Path, *, spec: Mapping[str, Any]) -> None:
    """Write one model.safetensors of the family fixtures from its record, as transformers / sentence-transformers
    save it: MLMs with the metadata ``{"format": "pt"}``, SparseStaticEmbedding tables with none."""
    metadata = {"format": "pt"} if spec["kind"] in ("bert", "distilbert") else None
    save_file(family_tensors(spec=spec), str(path), metadata=metadata)


def materialize_families(src: Path, *, dst: Path, files: Mapping[str, Mapping[str, Any]]) -> Path:
    """Copy the committed family fixtures ``src`` to ``dst`` and write each weight file of ``files`` there.

    ``files`` maps paths relative to ``src`` to their records (tests/golden/families.json, "weights" / "files").
    Any ``*.safetensors`` under ``src`` is ignored, so only regenerated weights are read. Raises AssertionError
    naming every file whose sha256 is not the one the oracle recorded. Returns ``dst``.
    """
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.safetensors"))
    bad = []
    for rel, spec in sorted(files.items()):
        path = dst / rel
        if not path.parent.is_dir():
            bad.append(f"{rel}: no folder {path.parent.relative_to(dst).as_posix()!r} in the fixtures")
            continue
        write_family_weights(path, spec=spec)
        got = hashlib.sha256(path.read_bytes()).hexdigest()
        if got != spec["sha256"]:
            bad.append(f"{rel}: sha256 {got}, the oracle recorded {spec['sha256']}")
    if bad:
        raise AssertionError(
            "the family fixtures' weights regenerated from their seeds are not the ones the references were computed "
            "from (tests/checkpoints.py vs tests/golden/families.json; rerun `make golden-families`):\n  "
            + "\n  ".join(bad)
        )
    return dst


def family_fixtures(root: Path, *, dst: Path) -> Path:
    """The family fixtures of the repository at ``root``, weights included, written to ``dst`` and checked."""
    golden = json.loads((root / "tests" / "golden" / "families.json").read_text(encoding="utf-8"))
    return materialize_families(root / "tests" / "fixtures" / "families", dst=dst, files=golden["weights"]["files"])
