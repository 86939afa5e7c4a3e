"""A checkpoint's architecture, read into one spec: ``config.json`` and its weights -> :class:`EncoderSpec`.

The spec holds every tensor a SPLADE graph needs under this project's names, whatever the checkpoint calls them,
so the graph writers (:mod:`splade_onnx._graph_dense`, :mod:`splade_onnx._graph_pruned`) never see a
checkpoint's naming.  Supported: BERT, DistilBERT, RoBERTa and XLM-RoBERTa (tested); CamemBERT reads as RoBERTa;
ModernBERT (tested).  All have a transform + LayerNorm + tied or untied decoder MLM head.  BERT, DistilBERT and
RoBERTa are post-LayerNorm encoders with absolute positions; ModernBERT (:func:`_read_modernbert`) has
pre-LayerNorm blocks, rotary positions, alternating global and sliding-window attention, a GeGLU MLP, and
linears and LayerNorms whose biases its config switches off, which is what the spec's optional fields say.

**Adding an architecture.** Write one reader ``(weights, config) -> EncoderSpec`` that maps the checkpoint's
tensor names onto :class:`EncoderSpec` (see :func:`_read_distilbert`), and register it under the checkpoint's
``model_type`` in :data:`SPEC_READERS`.  If its computation is the same as BERT's (post-LayerNorm blocks, absolute
or RoBERTa positions), nothing else changes; only where the computation differs (pre-LayerNorm, rotary
positions, ...) does it need a field here and a block in :func:`splade_onnx._graph_dense.build_graph`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._errors import FileMissingError, ModelError
from ._tensors import load_tensors

__all__ = [
    "SPEC_READERS",
    "Array",
    "EncoderSpec",
    "LayerWeights",
    "Linear",
    "Weights",
    "load_spec",
    "load_tensors",
]

Array = NDArray[np.float32]


#: A linear layer's ``(weight [out, in], bias)``, or a LayerNorm's ``(weight, bias)``; ``None`` when it has no bias.
Linear = tuple[Array, Array | None]


@dataclass
class LayerWeights:
    """One encoder block, weights as the checkpoint stores them ([out, in]).

    Post-LayerNorm blocks (BERT): ``ln1`` follows the attention and ``ln2`` the MLP.  Pre-LayerNorm blocks
    (:attr:`EncoderSpec.pre_norm`): ``ln1`` precedes the attention (``None``: none, ModernBERT's first layer)
    and ``ln2`` the MLP.
    """

    q: Linear
    k: Linear
    v: Linear
    attn_out: Linear
    ln1: Linear | None
    ffn_in: Linear  # a gated MLP's holds [input; gate] rows: 2 x its width
    ffn_out: Linear
    ln2: Linear
    #: Local attention: a query sees the keys at most this many positions away; ``None``: every key.
    window: int | None = None
    #: Rotary position embeddings' base (theta) for this layer's queries and keys; ``None``: no rotary.
    rope_theta: float | None = None


@dataclass
class EncoderSpec:
    """Everything the graph needs, independent of the checkpoint's naming."""

    family: str
    num_heads: int
    activation: str
    eps: float
    word: Array
    position: Array | None  # token-type row 0 already added; None when positions are rotary
    emb_ln: Linear
    layers: list[LayerWeights]
    head_dense: Linear
    head_ln: Linear
    decoder: Array  # [vocab, hidden]
    decoder_bias: Array  # zeros when the decoder has none
    roberta_positions: bool = False
    pad_id: int = 0
    notes: list[str] = field(default_factory=list)
    #: Pre-LayerNorm blocks (``x + f(ln(x))``) with ``final_ln`` after the last one (ModernBERT).
    pre_norm: bool = False
    final_ln: Linear | None = None
    #: A gated MLP: ``activation(input) * gate``, the two halves of ``ffn_in``'s output (GeGLU).
    gated_mlp: bool = False
    #: The MLM transform's activation when it is not the encoder's (ModernBERT's ``classifier_activation``).
    head_activation: str | None = None
    #: Positions the rotary tables cover (``max_position_embeddings``); 0 without rotary layers.
    rope_positions: int = 0

    @property
    def hidden(self) -> int:
        return int(self.word.shape[1])

    @property
    def vocab(self) -> int:
        return int(self.decoder.shape[0])

    @property
    def mlp_width(self) -> int:
        """The width of a BERT MLP with as many multiply-adds per token: a gated MLP's width times 3/2."""
        inner = int(self.layers[0].ffn_out[0].shape[1])
        return inner * 3 // 2 if self.gated_mlp else inner


class Weights:
    """A checkpoint's tensors by name; a missing tensor is a :class:`ModelError` naming it."""

    def __init__(self, tensors: Mapping[str, Array], path: Path) -> None:
        self.t = tensors
        self.path = path

    def __call__(self, *names: str) -> Array:
        for n in names:
            if n in self.t:
                return self.t[n]
        raise ModelError(
            f"checkpoint {self.path} lacks tensor {names[0]!r}"
            + (f" (also tried {', '.join(names[1:])})" if len(names) > 1 else "")
            + "; is it a *ForMaskedLM checkpoint with its MLM head?"
        )

    def has(self, name: str) -> bool:
        return name in self.t

    def linear(self, prefix: str) -> tuple[Array, Array]:
        return self(prefix + ".weight"), self(prefix + ".bias")

    def layer(self, prefix: str, *, bias: bool) -> Linear:
        """A linear layer or LayerNorm whose config says whether it has a bias."""
        return self(prefix + ".weight"), (self(prefix + ".bias") if bias else None)

    def without_prefix(self, base: str) -> Weights:
        """These weights with every key under the base-model prefix (``bert.``, ``roberta.``, ...): checkpoints
        are saved with or without it."""
        if any(k.startswith(base + ".") for k in self.t):
            return self
        heads = ("cls.", "lm_head.", "vocab_")
        return Weights({(k if k.startswith(heads) else f"{base}.{k}"): v for k, v in self.t.items()}, self.path)


# LayerWeights field -> the checkpoint's name for it, per family.
_BERT_LAYER = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "attn_out": "attention.output.dense",
    "ln1": "attention.output.LayerNorm",
    "ffn_in": "intermediate.dense",
    "ffn_out": "output.dense",
    "ln2": "output.LayerNorm",
}
_DISTILBERT_LAYER = {
    "q": "attention.q_lin",
    "k": "attention.k_lin",
    "v": "attention.v_lin",
    "attn_out": "attention.out_lin",
    "ln1": "sa_layer_norm",
    "ffn_in": "ffn.lin1",
    "ffn_out": "ffn.lin2",
    "ln2": "output_layer_norm",
}


def _layers(w: Weights, prefix: str, n: int, names: Mapping[str, str]) -> list[LayerWeights]:
    out = []
    for i in range(n):
        pairs = {f: w.linear(f"{prefix}.{i}.{name}") for f, name in names.items()}
        out.append(
            LayerWeights(
                pairs["q"],
                pairs["k"],
                pairs["v"],
                pairs["attn_out"],
                pairs["ln1"],
                pairs["ffn_in"],
                pairs["ffn_out"],
                pairs["ln2"],
            )
        )
    return out


def _decoder(w: Weights, names: tuple[str, ...], word: Array, notes: list[str]) -> Array:
    for n in names:
        if w.has(n):
            return w(n)
    notes.append("decoder tied to word embeddings")
    return word


def _bert_like(w: Weights, cfg: Mapping[str, Any], base: str, *, roberta: bool) -> EncoderSpec:
    notes: list[str] = []
    e = f"{base}.embeddings"
    word = w(f"{e}.word_embeddings.weight")
    pos = w(f"{e}.position_embeddings.weight")
    ptype = cfg.get("position_embedding_type", "absolute")
    if ptype != "absolute":
        raise ModelError(f"position_embedding_type={ptype!r} is not supported; only 'absolute'")
    if w.has(f"{e}.token_type_embeddings.weight"):
        pos = pos + w(f"{e}.token_type_embeddings.weight")[0]
    layers = _layers(w, f"{base}.encoder.layer", int(cfg["num_hidden_layers"]), _BERT_LAYER)
    if roberta:
        head_dense = w.linear("lm_head.dense")
        head_ln = w.linear("lm_head.layer_norm")
        dec = _decoder(w, ("lm_head.decoder.weight",), word, notes)
        dec_bias = w("lm_head.decoder.bias", "lm_head.bias")
    else:
        head_dense = w.linear("cls.predictions.transform.dense")
        head_ln = w.linear("cls.predictions.transform.LayerNorm")
        dec = _decoder(w, ("cls.predictions.decoder.weight",), word, notes)
        dec_bias = w("cls.predictions.decoder.bias", "cls.predictions.bias")
    return EncoderSpec(
        family=base,
        num_heads=int(cfg["num_attention_heads"]),
        activation=str(cfg.get("hidden_act", "gelu")),
        eps=float(cfg.get("layer_norm_eps", 1e-12)),
        word=word,
        position=pos,
        emb_ln=w.linear(f"{e}.LayerNorm"),
        layers=layers,
        head_dense=head_dense,
        head_ln=head_ln,
        decoder=dec,
        decoder_bias=dec_bias,
        roberta_positions=roberta,
        pad_id=int(cfg.get("pad_token_id", 1 if roberta else 0) or 0),
        notes=notes,
    )


def _read_distilbert(w: Weights, cfg: Mapping[str, Any]) -> EncoderSpec:
    notes: list[str] = []
    e = "distilbert.embeddings"
    word = w(f"{e}.word_embeddings.weight")
    layers = _layers(w, "distilbert.transformer.layer", int(cfg["n_layers"]), _DISTILBERT_LAYER)
    return EncoderSpec(
        family="distilbert",
        num_heads=int(cfg["n_heads"]),
        activation=str(cfg.get("activation", "gelu")),
        eps=1e-12,
        word=word,
        position=w(f"{e}.position_embeddings.weight"),
        emb_ln=w.linear(f"{e}.LayerNorm"),
        layers=layers,
        head_dense=w.linear("vocab_transform"),
        head_ln=w.linear("vocab_layer_norm"),
        decoder=_decoder(w, ("vocab_projector.weight",), word, notes),
        decoder_bias=w("vocab_projector.bias"),
        notes=notes,
    )


def _read_bert(w: Weights, cfg: Mapping[str, Any]) -> EncoderSpec:
    return _bert_like(w.without_prefix("bert"), cfg, "bert", roberta=False)


def _read_roberta(w: Weights, cfg: Mapping[str, Any]) -> EncoderSpec:
    return _bert_like(w.without_prefix("roberta"), cfg, "roberta", roberta=True)


# ModernBERT's layer types -> (the legacy config key of their rotary base, its default), as transformers 5 reads them.
_MODERNBERT_ROPE = {
    "full_attention": ("global_rope_theta", 160_000.0),
    "sliding_attention": ("local_rope_theta", 10_000.0),
}


def _modernbert_layer_types(cfg: Mapping[str, Any]) -> list[str]:
    """Each layer's attention: ``layer_types``, or every ``global_attn_every_n_layers``-th layer global (from 0)."""
    n = int(cfg.get("num_hidden_layers", 22))
    types = cfg.get("layer_types")
    if types is None:
        every = cfg.get("global_attn_every_n_layers", 3)
        if not isinstance(every, int) or every < 1:
            raise ModelError(f"global_attn_every_n_layers={every!r} is not supported; it must be an integer >= 1")
        return ["sliding_attention" if i % every else "full_attention" for i in range(n)]
    bad = [f"{i}: {t!r}" for i, t in enumerate(types) if t not in _MODERNBERT_ROPE]
    if bad or len(types) != n:
        raise ModelError(
            f"layer_types={types!r} is not supported: it needs one entry per layer ({n}), each one of "
            f"{', '.join(map(repr, _MODERNBERT_ROPE))}" + (f"; not: {', '.join(bad)}" if bad else "")
        )
    return [str(t) for t in types]


def _modernbert_rope(cfg: Mapping[str, Any]) -> dict[str, float]:
    """The rotary base of each layer type: ``rope_parameters[type]["rope_theta"]``, else the legacy
    ``global_rope_theta`` / ``local_rope_theta``, else transformers' defaults; only the default rope type is exact."""
    params = cfg.get("rope_parameters") or {}
    extra = sorted(set(params) - set(_MODERNBERT_ROPE)) if isinstance(params, Mapping) else [repr(params)]
    if extra:
        raise ModelError(
            f"rope_parameters with {', '.join(extra)} is not supported: it must map "
            f"{' and '.join(map(repr, _MODERNBERT_ROPE))} to their parameters"
        )
    out: dict[str, float] = {}
    for kind, (legacy, default) in _MODERNBERT_ROPE.items():
        p = {**(params.get(kind) or {}), **(cfg.get("rope_scaling") or {})}
        rope_type = p.get("rope_type", p.get("type", "default"))
        theta = p.get("rope_theta", cfg.get(legacy, default))
        if rope_type != "default" or not isinstance(theta, (int, float)) or theta <= 0:
            raise ModelError(
                f"the rotary embeddings of the {kind} layers (rope_type={rope_type!r}, rope_theta={theta!r}) are not "
                "supported; supported: rope_type 'default' with a positive rope_theta"
            )
        out[kind] = float(theta)
    return out


def _read_modernbert(w: Weights, cfg: Mapping[str, Any]) -> EncoderSpec:
    """ModernBERT (transformers' ``ModernBertForMaskedLM``): pre-LayerNorm blocks with rotary positions, global
    and local (sliding window) attention, a GeGLU MLP, and linears and norms with or without bias per config."""
    H, heads = int(cfg.get("hidden_size", 768)), int(cfg.get("num_attention_heads", 12))  # transformers' defaults
    if cfg.get("head_dim") not in (None, H // heads):
        raise ModelError(f"head_dim={cfg['head_dim']!r} is not supported; only hidden_size / num_attention_heads")
    norm_bias, attn_bias, mlp_bias = (bool(cfg.get(k, False)) for k in ("norm_bias", "attention_bias", "mlp_bias"))
    window = int(cfg.get("local_attention", 128)) // 2  # a query sees |i - j| <= local_attention // 2
    thetas = _modernbert_rope(cfg)
    layers = []
    for i, kind in enumerate(_modernbert_layer_types(cfg)):
        p = f"model.layers.{i}"
        qkv, qkv_b = w.layer(f"{p}.attn.Wqkv", bias=attn_bias)  # rows: q, k, v, each [heads x head_dim]
        if qkv.shape != (3 * H, H):
            raise ModelError(
                f"{p}.attn.Wqkv.weight has shape {qkv.shape}; hidden_size={H} in config.json needs {(3 * H, H)}"
            )
        q, k, v = ((qkv[j * H : (j + 1) * H], None if qkv_b is None else qkv_b[j * H : (j + 1) * H]) for j in range(3))
        layers.append(
            LayerWeights(
                q=q,
                k=k,
                v=v,
                attn_out=w.layer(f"{p}.attn.Wo", bias=attn_bias),
                ln1=w.layer(f"{p}.attn_norm", bias=norm_bias) if i else None,
                ffn_in=w.layer(f"{p}.mlp.Wi", bias=mlp_bias),
                ffn_out=w.layer(f"{p}.mlp.Wo", bias=mlp_bias),
                ln2=w.layer(f"{p}.mlp_norm", bias=norm_bias),
                window=window if kind == "sliding_attention" else None,
                rope_theta=thetas[kind],
            )
        )
    word = w("model.embeddings.tok_embeddings.weight")
    notes: list[str] = []
    # transformers 5 ties the decoder only when the file lacks decoder.weight (a saved one wins, tied or not)
    tied = cfg.get("tie_word_embeddings", True)
    decoder = _decoder(w, ("decoder.weight",), word, notes) if tied else w("decoder.weight")
    return EncoderSpec(
        family="modernbert",
        num_heads=heads,
        activation=str(cfg.get("hidden_activation", "gelu")),
        eps=float(cfg.get("norm_eps", 1e-5)),
        word=word,
        position=None,
        emb_ln=w.layer("model.embeddings.norm", bias=norm_bias),
        layers=layers,
        head_dense=w.layer("head.dense", bias=bool(cfg.get("classifier_bias", False))),
        head_ln=w.layer("head.norm", bias=norm_bias),
        decoder=decoder,
        decoder_bias=w("decoder.bias") if cfg.get("decoder_bias", True) else np.zeros(len(decoder), np.float32),
        pad_id=int(cfg.get("pad_token_id") or 0),
        notes=notes,
        pre_norm=True,
        final_ln=w.layer("model.final_norm", bias=norm_bias),
        gated_mlp=True,
        head_activation=str(cfg.get("classifier_activation", "gelu")),
        rope_positions=int(cfg.get("max_position_embeddings", 8192)),
    )


#: ``model_type`` (``config.json``) -> the reader of its checkpoints.
SPEC_READERS: dict[str, Callable[[Weights, Mapping[str, Any]], EncoderSpec]] = {
    "bert": _read_bert,
    "distilbert": _read_distilbert,
    "roberta": _read_roberta,
    "xlm-roberta": _read_roberta,
    "camembert": _read_roberta,
    "modernbert": _read_modernbert,
}


def load_spec(folder: Path, weights: Path) -> EncoderSpec:
    """Read ``config.json`` and the weights (safetensors or a PyTorch ``.bin``) into an :class:`EncoderSpec`."""
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise FileMissingError(f"{cfg_path} is missing; a checkpoint needs its config.json beside {weights.name}")
    cfg = json.loads(cfg_path.read_text())
    model_type = str(cfg.get("model_type", "")).lower()
    reader = SPEC_READERS.get(model_type)
    if reader is None:
        raise ModelError(
            f"model_type={model_type!r} in {cfg_path} is not supported; supported: "
            f"{', '.join(sorted(SPEC_READERS))}. Export the model to ONNX with a 'logits' output instead."
        )
    spec = reader(Weights(load_tensors(weights), weights), cfg)
    heads = spec.num_heads
    if spec.hidden % heads:
        raise ModelError(f"hidden size {spec.hidden} is not divisible by {heads} attention heads")
    return spec
