"""A checkpoint's architecture, read into one spec: ``config.json`` and safetensors weights -> :class:`EncoderSpec`.

The spec holds every tensor a SPLADE graph needs under this project's names, whatever the checkpoint calls them,
so the graph writers (:mod:`splade_onnx._graph_dense`, :mod:`splade_onnx._graph_pruned`) never see a
checkpoint's naming.  Supported: BERT, DistilBERT and RoBERTa (tested); XLM-RoBERTa and CamemBERT read as
RoBERTa (not yet tested).  All are post-LayerNorm encoders with a transform + LayerNorm + tied or untied decoder
MLM head.

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

__all__ = ["SPEC_READERS", "EncoderSpec", "LayerWeights", "Weights", "load_spec", "load_tensors"]

Array = NDArray[np.float32]


@dataclass
class LayerWeights:
    """One encoder block's ``(weight, bias)`` pairs, weights as the checkpoint stores them ([out, in])."""

    q: tuple[Array, Array]
    k: tuple[Array, Array]
    v: tuple[Array, Array]
    attn_out: tuple[Array, Array]
    ln1: tuple[Array, Array]
    ffn_in: tuple[Array, Array]
    ffn_out: tuple[Array, Array]
    ln2: tuple[Array, Array]


@dataclass
class EncoderSpec:
    """Everything the graph needs, independent of the checkpoint's naming."""

    family: str
    num_heads: int
    activation: str
    eps: float
    word: Array
    position: Array  # token-type row 0 already added
    emb_ln: tuple[Array, Array]
    layers: list[LayerWeights]
    head_dense: tuple[Array, Array]
    head_ln: tuple[Array, Array]
    decoder: Array  # [vocab, hidden]
    decoder_bias: Array
    roberta_positions: bool = False
    pad_id: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def hidden(self) -> int:
        return int(self.word.shape[1])

    @property
    def vocab(self) -> int:
        return int(self.decoder.shape[0])


def load_tensors(path: Path) -> dict[str, Array]:
    """Every tensor of a safetensors file (or of the shards an ``.index.json`` names) as float32, legacy
    ``gamma``/``beta`` LayerNorm names read as ``weight``/``bias``."""
    from safetensors.numpy import load_file

    files: list[Path]
    if path.name.endswith(".index.json"):
        index = json.loads(path.read_text())
        files = [path.parent / f for f in sorted(set(index["weight_map"].values()))]
    else:
        files = [path]
    out: dict[str, Array] = {}
    for f in files:
        try:
            tensors = load_file(str(f))
        except Exception as e:
            raise ModelError(
                f"cannot read {f} as safetensors ({type(e).__name__}: {e}); the file is corrupt or "
                "not safetensors. Delete it and download it again."
            ) from e
        for k, v in tensors.items():
            if v.dtype not in (np.float32, np.float16, np.float64):
                raise ModelError(f"tensor {k} in {f} has dtype {v.dtype}; only float16/32/64 are supported")
            # Legacy checkpoints name LayerNorm parameters gamma/beta.
            if k.endswith(".gamma"):
                k = k[: -len(".gamma")] + ".weight"
            elif k.endswith(".beta"):
                k = k[: -len(".beta")] + ".bias"
            out[k] = np.ascontiguousarray(v, dtype=np.float32)
    return out


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
    return [LayerWeights(**{f: w.linear(f"{prefix}.{i}.{name}") for f, name in names.items()}) for i in range(n)]


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


#: ``model_type`` (``config.json``) -> the reader of its checkpoints.
SPEC_READERS: dict[str, Callable[[Weights, Mapping[str, Any]], EncoderSpec]] = {
    "bert": _read_bert,
    "distilbert": _read_distilbert,
    "roberta": _read_roberta,
    "xlm-roberta": _read_roberta,
    "camembert": _read_roberta,
}


def load_spec(folder: Path, weights: Path) -> EncoderSpec:
    """Read ``config.json`` and the safetensors weights into an :class:`EncoderSpec`."""
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise FileMissingError(f"{cfg_path} is missing; a safetensors checkpoint needs its config.json")
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
