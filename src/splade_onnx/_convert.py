"""Build a SPLADE ONNX graph from a ``*ForMaskedLM`` safetensors checkpoint, without torch.

The graph takes ``input_ids`` and ``attention_mask`` ([batch, seq] int64) and returns
``sparse`` ([batch, vocab] float32): the SPLADE pooling
``max over non-padding positions of log(1 + relu(logits))`` is part of the graph, so
the ``[batch, seq, vocab]`` logits never leave onnxruntime.

Supported families, all post-LayerNorm encoders with a transform + LayerNorm + tied or untied
decoder MLM head: BERT, DistilBERT and RoBERTa (tested); XLM-RoBERTa and CamemBERT take the
RoBERTa path (not yet tested).
"""

from __future__ import annotations

import itertools
import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

from ._errors import FileMissingError, ModelError
from ._pruned import HALF_STEP, Q_RANGE, Bound

logger = logging.getLogger(__name__)

__all__ = [
    "CONVERTER_VERSION",
    "OPSET",
    "add_pooling",
    "build_graph",
    "convert_checkpoint",
    "fast_tokens",
    "hidden_graph",
    "load_spec",
    "pool_logits_model",
    "pruned_head_graph",
    "pruned_state_graph",
]

#: Bump whenever the emitted graph changes; cached graphs are keyed by it.
CONVERTER_VERSION = "2"
OPSET = 17
_F32_MIN = float(np.finfo(np.float32).min)
#: Most tokens (rows x padded length) in one batch; the encoder batches within it.
TOKEN_BUDGET = 2048
#: Largest slice of [tokens, vocab] logits the fused pooling materialises.
_CHUNK_BYTES = 16 * 1024 * 1024
#: Largest [tokens, vocab] logits the one-slice latency graph materialises (short queries).
_FAST_BYTES = 32 * 1024 * 1024

Array = NDArray[np.float32]


@dataclass
class LayerWeights:
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


# --------------------------------------------------------------------------- loading


def _load_tensors(path: Path) -> dict[str, Array]:
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


class _Weights:
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


def _strip_prefix(t: dict[str, Array], base: str) -> dict[str, Array]:
    """Accept keys with or without the base-model prefix (``bert.``, ``roberta.``, ...)."""
    if any(k.startswith(base + ".") for k in t):
        return t
    heads = ("cls.", "lm_head.", "vocab_")
    return {(k if k.startswith(heads) else f"{base}.{k}"): v for k, v in t.items()}


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


def _layers(w: _Weights, prefix: str, n: int, names: Mapping[str, str]) -> list[LayerWeights]:
    return [LayerWeights(**{f: w.linear(f"{prefix}.{i}.{name}") for f, name in names.items()}) for i in range(n)]


def _decoder(w: _Weights, names: tuple[str, ...], word: Array, notes: list[str]) -> Array:
    for n in names:
        if w.has(n):
            return w(n)
    notes.append("decoder tied to word embeddings")
    return word


def _bert_like(w: _Weights, cfg: Mapping[str, Any], base: str, roberta: bool) -> EncoderSpec:
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


def _distilbert(w: _Weights, cfg: Mapping[str, Any]) -> EncoderSpec:
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


_FAMILIES = {"bert": "bert", "distilbert": "distilbert", "roberta": "roberta", "xlm-roberta": "roberta",
             "camembert": "roberta"}  # fmt: skip


def load_spec(folder: Path, weights: Path) -> EncoderSpec:
    """Read ``config.json`` and the safetensors weights into an :class:`EncoderSpec`."""
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise FileMissingError(f"{cfg_path} is missing; a safetensors checkpoint needs its config.json")
    cfg = json.loads(cfg_path.read_text())
    model_type = str(cfg.get("model_type", "")).lower()
    family = _FAMILIES.get(model_type)
    if family is None:
        raise ModelError(
            f"model_type={model_type!r} in {cfg_path} is not supported; supported: "
            f"{', '.join(sorted(_FAMILIES))}. Export the model to ONNX with a 'logits' output instead."
        )
    tensors = _load_tensors(weights)
    if family == "distilbert":
        spec = _distilbert(_Weights(tensors, weights), cfg)
    else:
        spec = _bert_like(_Weights(_strip_prefix(tensors, family), weights), cfg, family, family == "roberta")
    heads = spec.num_heads
    if spec.hidden % heads:
        raise ModelError(f"hidden size {spec.hidden} is not divisible by {heads} attention heads")
    return spec


# --------------------------------------------------------------------------- graph


class _Builder:
    """A tiny helper around onnx.helper that names nodes and initializers uniquely."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0

    def name(self, hint: str) -> str:
        self._n += 1
        return f"{hint}_{self._n}"

    def const(self, value: Any, hint: str = "c", dtype: Any = np.float32) -> str:
        n = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), n))
        return n

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, **attrs: Any) -> str:
        out = self.name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def linear(self, x: str, wb: tuple[Array, Array], hint: str) -> str:
        w = self.const(wb[0].T.copy(), f"{hint}.weight")
        b = self.const(wb[1], f"{hint}.bias")
        return self.op("Add", [self.op("MatMul", [x, w]), b], hint)

    def layer_norm(self, x: str, gb: tuple[Array, Array], eps: float, hint: str) -> str:
        g, b = self.const(gb[0], f"{hint}.weight"), self.const(gb[1], f"{hint}.bias")
        return self.op("LayerNormalization", [x, g, b], hint, axis=-1, epsilon=eps)


def _gelu_tanh(b: _Builder, x: str) -> str:
    # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    cube = b.op("Mul", [b.op("Mul", [x, x]), x])
    inner = b.op("Add", [x, b.op("Mul", [cube, b.const(0.044715)])])
    t = b.op("Tanh", [b.op("Mul", [inner, b.const(math.sqrt(2.0 / math.pi))])])
    return b.op("Mul", [b.op("Mul", [x, b.const(0.5)]), b.op("Add", [t, b.const(1.0)])])


def _gelu_erf(b: _Builder, x: str) -> str:
    erf = b.op("Erf", [b.op("Div", [x, b.const(math.sqrt(2.0))])])
    return b.op("Mul", [b.op("Mul", [x, b.const(0.5)]), b.op("Add", [erf, b.const(1.0)])], "gelu")


_ACTIVATIONS: dict[str, Callable[[_Builder, str], str]] = {
    "gelu": _gelu_erf,
    "gelu_python": _gelu_erf,
    "gelu_new": _gelu_tanh,
    "gelu_fast": _gelu_tanh,
    "gelu_pytorch_tanh": _gelu_tanh,
    "relu": lambda b, x: b.op("Relu", [x]),
    "silu": lambda b, x: b.op("Mul", [x, b.op("Sigmoid", [x])]),
    "swish": lambda b, x: b.op("Mul", [x, b.op("Sigmoid", [x])]),
}


def _activation(name: str) -> Callable[[_Builder, str], str]:
    try:
        return _ACTIVATIONS[name]
    except KeyError:
        valid = ", ".join(sorted(_ACTIVATIONS))
        raise ModelError(f"activation {name!r} is not supported; supported: {valid}") from None


def add_pooling(
    b: _Builder,
    logits: str,
    mask: str,
    out: str,
    *,
    opset: int = OPSET,
    pooling: str = "max",
    activation: str = "relu",
) -> None:
    """Append the SPLADE pooling to ``logits`` [batch, seq, vocab]: see :func:`add_fused_pooling` for the rules."""
    keep = _token_mask(b, mask)
    if pooling == "max":
        masked = b.op("Where", [keep, logits, b.const(-np.inf)])
        pooled = _reduce(b, "ReduceMax", masked, opset)
        _activate(b, pooled, activation, out)
    else:
        act = _activate(b, logits, activation)
        summed = _reduce(b, "ReduceSum", b.op("Where", [keep, act, b.const(0.0)]), opset)
        b.nodes.append(helper.make_node("Identity", [summed], [out], name="splade_pool"))


def _token_mask(b: _Builder, mask: str) -> str:
    """``[batch, seq, 1]`` bool, True at the text's tokens."""
    return b.op("Unsqueeze", [b.op("Cast", [mask], to=TensorProto.BOOL), b.const([2], dtype=np.int64)])


def _padding_as_first(b: _Builder, h: str, keep: str) -> str:
    """``h`` [batch, seq, hidden] with padding positions replaced by position 0's state (always a real token
    with right padding): they then repeat its values and cannot change a max over tokens."""
    first = b.op("Slice", [h, b.const([0], dtype=np.int64), b.const([1], dtype=np.int64),
                           b.const([1], dtype=np.int64)])  # fmt: skip
    return b.op("Where", [keep, h, first], "hidden_masked")


def _reduce(b: _Builder, op: str, x: str, opset: int) -> str:
    """``op`` over the sequence axis (1), in the form ``opset`` takes (axes as input from 18, 13 for ReduceSum)."""
    if opset >= (13 if op == "ReduceSum" else 18):
        return b.op(op, [x, b.const([1], dtype=np.int64)], keepdims=0)
    return b.op(op, [x], axes=[1], keepdims=0)


def vocab_chunks(vocab: int, token_budget: int = TOKEN_BUDGET) -> int:
    """How many vocabulary slices keep one slice's [tokens, slice] logits under ``_CHUNK_BYTES``.

    Batches never exceed ``token_budget`` rows x length (the encoder's batching
    guarantees it), so this bounds the largest intermediate of the graph.

    >>> vocab_chunks(30522), vocab_chunks(1000)
    (15, 1)
    """
    return max(1, math.ceil(token_budget * vocab * 4 / _CHUNK_BYTES))


def fast_tokens(vocab: int) -> int:
    """Most tokens (rows x padded length) a batch may have to run on the one-slice latency graph.

    >>> fast_tokens(30522), fast_tokens(250002)
    (274, 33)
    """
    return max(1, _FAST_BYTES // (4 * max(1, vocab)))


def add_fused_pooling(
    b: _Builder,
    h: str,
    mask: str,
    decoder: Array,
    bias: Array,
    out: str,
    *,
    chunks: int,
    pooling: str = "max",
    activation: str = "relu",
) -> None:
    """Vocabulary projection fused with the SPLADE pooling, in ``chunks`` vocabulary slices.

    The rules are sentence-transformers' ``SpladePooling``: per token ``log(1 + relu(x))``
    (``activation="log1p_relu"`` takes ``log1p`` once more), then the max or the sum over the
    text's tokens, special tokens included.

    * ``max``: the activation is monotone, so the max is taken over the raw logits and the
      activation applied once per vocabulary id.  Padding positions take the hidden state of
      position 0 (always a real token with right padding), so their logits repeat that token's
      and cannot change a max: the masking costs one pass over [batch, seq, hidden] instead of
      [batch, seq, vocab].  The bias is added after the max (it is the same at every position).
    * ``sum``: the activation is applied per token, padding positions are zeroed, then summed.

    Each slice is a MatMul followed by its own reduction, so at most one slice of logits is
    alive at a time.
    """
    bounds = np.linspace(0, decoder.shape[0], chunks + 1).round().astype(int)
    keep = _token_mask(b, mask)
    parts = []
    if pooling == "max":
        hm = _padding_as_first(b, h, keep)
        for c, (lo, hi) in enumerate(itertools.pairwise(bounds.tolist())):
            w = b.const(decoder[lo:hi].T.copy(), f"decoder.weight.{c}")
            logits = b.op("MatMul", [hm, w], f"logits.{c}")
            parts.append(b.op("ReduceMax", [logits], f"max.{c}", axes=[1], keepdims=0))
        mx = parts[0] if chunks == 1 else b.op("Concat", parts, axis=1)
        _activate(b, b.op("Add", [mx, b.const(bias, "decoder.bias")]), activation, out)
        return
    for c, (lo, hi) in enumerate(itertools.pairwise(bounds.tolist())):
        w = b.const(decoder[lo:hi].T.copy(), f"decoder.weight.{c}")
        logits = b.op("Add", [b.op("MatMul", [h, w]), b.const(bias[lo:hi], f"decoder.bias.{c}")], f"logits.{c}")
        act = b.op("Where", [keep, _activate(b, logits, activation), b.const(0.0)])
        parts.append(_reduce(b, "ReduceSum", act, OPSET))
    summed = parts[0] if chunks == 1 else b.op("Concat", parts, axis=1)
    b.nodes.append(helper.make_node("Identity", [summed], [out], name="splade_pool"))


def _log1p(b: _Builder, x: str, out: str | None = None) -> str:
    """An exact ``log1p`` of ``x >= 0``: ``log(u) * x / (u - 1)`` with ``u = 1 + x``, and ``x`` where ``u == 1``,
    so tiny positive weights are not rounded to zero."""
    u = b.op("Add", [x, b.const(1.0)])
    d = b.op("Sub", [u, b.const(1.0)])
    exact = b.op("Div", [b.op("Mul", [b.op("Log", [u]), x]), d])
    tiny = b.op("Equal", [d, b.const(0.0)])
    name = out or b.name("log1p")
    b.nodes.append(helper.make_node("Where", [tiny, x, exact], [name], name=name))
    return name


def _activate(b: _Builder, x: str, activation: str, out: str | None = None) -> str:
    """``log1p(relu(x))``, and for ``"log1p_relu"`` ``log1p`` of that again (sentence-transformers' names)."""
    if activation not in ("relu", "log1p_relu"):
        raise ModelError(f"SPLADE activation {activation!r} is not supported; supported: relu, log1p_relu")
    y = b.op("Relu", [x])
    if activation == "log1p_relu":
        y = _log1p(b, y)
    return _log1p(b, y, out)


def build_graph(
    spec: EncoderSpec,
    *,
    pooled: bool = True,
    pooling: str = "max",
    activation: str = "relu",
    chunks: int | None = None,
    fused_attention: bool = False,
) -> onnx.ModelProto:
    """The full encoder + MLM head + SPLADE pooling as an ONNX model.

    With ``pooled=False`` the graph stops at ``logits`` [batch, seq, vocab], the
    form that FastEmbed and optimum exports have.  ``chunks`` is the number of vocabulary
    slices of the fused pooling (default :func:`vocab_chunks`, sized for full batches); the
    latency graph for short queries takes one slice.  ``fused_attention`` emits onnxruntime's
    contrib ``Attention`` op (domain ``com.microsoft``) per layer instead of standard ops; it is
    off because it measured no faster here (``benchmarks/fusion.py``), and standard ops run on
    every onnxruntime build and provider.
    """
    b = _Builder()
    ids, mask = "input_ids", "attention_mask"
    H, nh = spec.hidden, spec.num_heads
    hd = H // nh
    act = _activation(spec.activation)

    word = b.op("Gather", [b.const(spec.word, "word_embeddings"), ids])
    table = b.const(spec.position, "position_embeddings")
    if spec.roberta_positions:
        # RoBERTa: positions count non-padding tokens, offset by padding_idx.
        notpad = b.op("Cast", [b.op("Not", [b.op("Equal", [ids, b.const(spec.pad_id, dtype=np.int64)])])],
                      to=TensorProto.INT64)  # fmt: skip
        pid = b.op("Add", [b.op("Mul", [b.op("CumSum", [notpad, b.const(1, dtype=np.int64)]), notpad]),
                           b.const(spec.pad_id, dtype=np.int64)])  # fmt: skip
        pos = b.op("Gather", [table, pid])
    else:
        seq = b.op("Shape", [ids], start=1, end=2)
        pos = b.op("Slice", [table, b.const([0], dtype=np.int64), seq, b.const([0], dtype=np.int64)])
    x = b.layer_norm(b.op("Add", [word, pos]), spec.emb_ln, spec.eps, "emb_ln")

    maskf = b.op("Cast", [mask], to=TensorProto.FLOAT)
    bias = b.op("Mul", [b.op("Sub", [b.const(1.0), maskf]), b.const(_F32_MIN)])
    bias = b.op("Unsqueeze", [bias, b.const([1, 2], dtype=np.int64)], "attn_bias")
    split_heads = b.const([0, 0, nh, hd], dtype=np.int64)
    merge_heads = b.const([0, 0, H], dtype=np.int64)
    scale = b.const(1.0 / math.sqrt(hd))

    mask_i32 = b.op("Cast", [mask], to=TensorProto.INT32) if fused_attention else ""
    for i, L in enumerate(spec.layers):
        p = f"layer{i}"
        if fused_attention:  # onnxruntime's contrib Attention: QKV in one GEMM, masked softmax, heads merged
            qkv_w = b.const(np.concatenate([L.q[0].T, L.k[0].T, L.v[0].T], axis=1), f"{p}.qkv.weight")
            qkv_b = b.const(np.concatenate([L.q[1], L.k[1], L.v[1]]), f"{p}.qkv.bias")
            ctx = b.op("Attention", [x, qkv_w, qkv_b, mask_i32], f"{p}.attention", domain="com.microsoft",
                       num_heads=nh)  # fmt: skip
            x = b.layer_norm(b.op("Add", [b.linear(ctx, L.attn_out, f"{p}.attn_out"), x]), L.ln1, spec.eps,
                             f"{p}.ln1")  # fmt: skip
            h = act(b, b.linear(x, L.ffn_in, f"{p}.ffn_in"))
            x = b.layer_norm(b.op("Add", [b.linear(h, L.ffn_out, f"{p}.ffn_out"), x]), L.ln2, spec.eps, f"{p}.ln2")
            continue
        q = b.op("Transpose", [b.op("Reshape", [b.linear(x, L.q, f"{p}.q"), split_heads])], perm=[0, 2, 1, 3])
        k = b.op("Transpose", [b.op("Reshape", [b.linear(x, L.k, f"{p}.k"), split_heads])], perm=[0, 2, 3, 1])
        v = b.op("Transpose", [b.op("Reshape", [b.linear(x, L.v, f"{p}.v"), split_heads])], perm=[0, 2, 1, 3])
        scores = b.op("Add", [b.op("Mul", [b.op("MatMul", [q, k]), scale]), bias])
        ctx = b.op("MatMul", [b.op("Softmax", [scores], axis=-1), v])
        ctx = b.op("Reshape", [b.op("Transpose", [ctx], perm=[0, 2, 1, 3]), merge_heads])
        x = b.layer_norm(b.op("Add", [b.linear(ctx, L.attn_out, f"{p}.attn_out"), x]), L.ln1, spec.eps, f"{p}.ln1")
        h = act(b, b.linear(x, L.ffn_in, f"{p}.ffn_in"))
        x = b.layer_norm(b.op("Add", [b.linear(h, L.ffn_out, f"{p}.ffn_out"), x]), L.ln2, spec.eps, f"{p}.ln2")

    h = b.layer_norm(act(b, b.linear(x, spec.head_dense, "head.dense")), spec.head_ln, spec.eps, "head.ln")
    if pooled:
        n = chunks or vocab_chunks(spec.vocab)
        add_fused_pooling(b, h, mask, spec.decoder, spec.decoder_bias, "sparse", chunks=n, pooling=pooling,
                          activation=activation)  # fmt: skip
        output = helper.make_tensor_value_info("sparse", TensorProto.FLOAT, ["batch", spec.vocab])
    else:
        logits = b.linear(h, (spec.decoder, spec.decoder_bias), "decoder")
        b.nodes.append(helper.make_node("Identity", [logits], ["logits"], name="logits"))
        output = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "seq", spec.vocab])

    graph = helper.make_graph(
        b.nodes,
        f"splade_{spec.family}",
        inputs=[
            helper.make_tensor_value_info(ids, TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info(mask, TensorProto.INT64, ["batch", "seq"]),
        ],
        outputs=[output],
        initializer=b.inits,
    )
    opsets = [helper.make_opsetid("", OPSET)] + ([helper.make_opsetid("com.microsoft", 1)] if fused_attention else [])
    model = helper.make_model(graph, opset_imports=opsets, producer_name="splade-onnx")
    model.ir_version = 8
    return model


def _opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), OPSET)


def pool_logits_model(model: onnx.ModelProto, *, pooling: str = "max", activation: str = "relu") -> onnx.ModelProto:
    """Append the SPLADE pooling to an ONNX model that outputs ``logits`` [batch, seq, vocab]."""
    g = model.graph
    outputs = {o.name: o for o in g.output}
    logits = "logits" if "logits" in outputs else None
    if logits is None:
        rank3 = [o.name for o in g.output if len(o.type.tensor_type.shape.dim) == 3]
        if len(rank3) != 1:
            raise ModelError(
                f"cannot find the logits output: outputs are {sorted(outputs)}; expected one named 'logits' "
                "with shape [batch, seq, vocab]"
            )
        logits = rank3[0]
    inputs = {i.name for i in g.input}
    if "attention_mask" not in inputs:
        raise ModelError(f"the ONNX model has no 'attention_mask' input (inputs: {sorted(inputs)})")
    dims = outputs[logits].type.tensor_type.shape.dim
    vocab: str | int = dims[2].dim_value if len(dims) == 3 and dims[2].dim_value else "vocab"
    b = _Builder()
    b._n = 10_000_000  # keep clear of the host graph's names
    add_pooling(b, logits, "attention_mask", "sparse", opset=_opset(model), pooling=pooling, activation=activation)
    g.node.extend(b.nodes)
    g.initializer.extend(b.inits)
    del g.output[:]
    g.output.append(helper.make_tensor_value_info("sparse", TensorProto.FLOAT, ["batch", vocab]))
    return model


def convert_checkpoint(
    folder: Path, weights: Path, *, pooling: str = "max", activation: str = "relu", chunks: int | None = None
) -> tuple[onnx.ModelProto, list[str]]:
    """Load a safetensors checkpoint and build its SPLADE graph; also return notes for the log."""
    spec = load_spec(folder, weights)
    notes = [f"{spec.family}: {len(spec.layers)} layers, hidden {spec.hidden}, vocab {spec.vocab}, "
             f"{spec.activation}", *spec.notes]  # fmt: skip
    return build_graph(spec, pooling=pooling, activation=activation, chunks=chunks), notes


# --------------------------------------------------------------------------- the pruned head


def _head_prefix(spec: EncoderSpec) -> tuple[onnx.ModelProto, list[onnx.NodeProto], list[onnx.TensorProto], str]:
    """:func:`build_graph` up to the head's LayerNorm, node for node: the model, its nodes and initializers, and
    the name of the head state (the tensor the dense head multiplies)."""
    model = build_graph(spec, pooled=False)
    g = model.graph
    last = max(i for i, n in enumerate(g.node) if n.name.startswith("head.ln"))
    nodes = list(g.node[: last + 1])
    used = {i for n in nodes for i in n.input}
    return model, nodes, [t for t in g.initializer if t.name in used], nodes[-1].output[0]


def hidden_graph(spec: EncoderSpec) -> onnx.ModelProto:
    """The encoder up to the head's LayerNorm, output ``hidden`` [batch, seq, hidden]: what the pruned head's
    basis is fitted on."""
    model, nodes, inits, h = _head_prefix(spec)
    g = model.graph
    del g.node[:], g.initializer[:], g.output[:]
    g.node.extend([*nodes, helper.make_node("Identity", [h], ["hidden"], name="hidden")])
    g.initializer.extend(inits)
    g.output.append(helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["batch", "seq", spec.hidden]))
    return model


def pruned_state_graph(spec: EncoderSpec, bound: Bound) -> onnx.ModelProto:
    """The encoder and the per-text inputs of the pruned head (:mod:`splade_onnx._pruned`), for a padded batch.

    Outputs ``hidden`` [batch, seq, hidden], the very tensor the dense head multiplies (this is
    :func:`build_graph` without the projection, node for node); ``codes`` [batch, seq, rank + 1] (int8), each
    text's ``q`` quantized with its own scale ``scale`` [batch, 1]; and ``lo`` [batch, vocab],
    the rest of the bound: the shared logit part ``c``, the int8 error terms and ``eps``.  The bound of an id
    is ``scale * w_v * max_t (codes_t . k_v) + lo_v``; :func:`pruned_head_graph` computes it per text.
    """
    model, nodes, inits, h = _head_prefix(spec)
    g = model.graph
    b = _Builder()
    b._n = 10_000_000
    i64 = np.int64
    H, r = spec.hidden, bound.rank
    k, table = bound.constants, bound.table

    def last_axis(x: str, lo: int, hi: int) -> str:
        return b.op("Slice", [x, b.const([lo], dtype=i64), b.const([hi], dtype=i64), b.const([2], dtype=i64)])

    def norms(x: str) -> str:  # [B, T, w] -> [B, T, 1]
        return b.op("Sqrt", [b.op("ReduceSum", [b.op("Mul", [x, x]), b.const([2], dtype=i64)], keepdims=1)])

    def over_tokens(x: str) -> str:  # [B, T, 1] -> [B, 1], padding already a copy of position 0
        return b.op("ReduceMax", [x], axes=[1], keepdims=0)

    keep = _token_mask(b, "attention_mask")
    maskf = b.op("Cast", [keep], to=TensorProto.FLOAT)
    mean = b.op(
        "Div",
        [
            b.op("ReduceSum", [b.op("Mul", [h, maskf]), b.const([1], dtype=i64)], keepdims=1),
            b.op("ReduceSum", [maskf, b.const([1], dtype=i64)], keepdims=1),
        ],
    )  # [B, 1, H]
    hm = _padding_as_first(b, h, keep)
    delta = b.op("Sub", [hm, mean])
    rot = b.op("MatMul", [delta, b.const(bound.A, "basis.A")])  # [B, T, H]
    q = b.op("Concat", [last_axis(rot, 0, r), norms(last_axis(rot, r, H))], axis=2)  # [B, T, r + 1]

    # int8 codes of q, one scale per text (padding rows copy row 0, so the max is the text's own).
    absq = b.op("Abs", [q])
    top = b.op("Max", [b.op("ReduceMax", [absq], axes=[1, 2], keepdims=1), b.const(1e-30)])  # [B, 1, 1]
    scale = b.op("Div", [top, b.const(Q_RANGE)])
    codes = b.op("Cast", [b.op("Round", [b.op("Div", [q, scale])])], to=TensorProto.INT8)
    scale2 = b.op("Squeeze", [scale, b.const([2], dtype=i64)])  # [B, 1]
    q_l1 = over_tokens(b.op("ReduceSum", [absq, b.const([2], dtype=i64)], keepdims=1))  # [B, 1]
    half = b.op("Mul", [scale2, b.const(HALF_STEP)])

    # eps per text: SAFETY x the worst-case float32 error of the dot products and sums involved (the GEMM below
    # sums H + 4 terms, each within these norms), plus the basis' own error (A B^T - I) and the rounding that
    # leaves delta not quite orthogonal to 1/gamma.
    off = over_tokens(b.op("Abs", [b.op("MatMul", [delta, b.const(bound.a_hat[:, None], "a_hat")])]))
    dot = b.op("Add", [b.op("Mul", [over_tokens(norms(rot)), b.const(k.rot_norm)]),
                       b.op("Mul", [b.op("Add", [over_tokens(norms(hm)), over_tokens(norms(mean))]),
                                    b.const(k.row_norm)])])  # fmt: skip
    errs = b.op("Add", [b.op("Mul", [half, b.const(k.l1)]), b.op("Mul", [q_l1, b.const(k.step)])])
    eps = b.op("Add", [b.op("Mul", [b.op("Add", [b.op("Add", [dot, errs]), b.const(k.bias)]), b.const(k.rounding)]),
                       b.op("Add", [b.op("Mul", [over_tokens(norms(delta)), b.const(k.basis_error)]),
                                    b.op("Mul", [off, b.const(k.off_axis)])])], "eps")  # [B, 1]  # fmt: skip
    # lo = b_v + mu . e_v + s / 2 |g^_v|_1 + max|g_v - g^_v| |q|_1 + eps: one GEMM [B, H + 4] x [H + 4, V].
    ones = b.op("Expand", [b.const([[1.0]]), b.op("Shape", [eps])])
    terms = b.op("Concat", [b.op("Squeeze", [mean, b.const([1], dtype=i64)]), half, q_l1, eps, ones], axis=1)
    weights = np.concatenate([spec.decoder.T, table.l1[None], table.step[None], np.ones((1, spec.vocab), np.float32),
                              spec.decoder_bias[None]]).astype(np.float32)  # fmt: skip
    b.nodes.append(helper.make_node("MatMul", [terms, b.const(weights, "lo.weight")], ["lo"], name="lo"))
    b.nodes.append(helper.make_node("Identity", [codes], ["codes"], name="codes"))
    b.nodes.append(helper.make_node("Identity", [scale2], ["scale"], name="scale"))
    b.nodes.append(helper.make_node("Identity", [h], ["hidden"], name="hidden"))
    del g.node[:], g.initializer[:], g.output[:]
    g.node.extend([*nodes, *b.nodes])
    g.initializer.extend([*inits, *b.inits])
    g.output.extend([
        helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["batch", "seq", H]),
        helper.make_tensor_value_info("codes", TensorProto.INT8, ["batch", "seq", r + 1]),
        helper.make_tensor_value_info("scale", TensorProto.FLOAT, ["batch", 1]),
        helper.make_tensor_value_info("lo", TensorProto.FLOAT, ["batch", spec.vocab]),
    ])  # fmt: skip
    return model


#: Vocabulary ids per tile of the per-text bound: a tile's [tile, tokens] products stay in cache.
BOUND_TILE = 512


def pruned_head_graph(spec: EncoderSpec, bound: Bound, *, activation: str = "relu") -> onnx.ModelProto:
    """One text's exact SPLADE max pooling from its ``hidden`` [tokens, hidden] (no padding rows) and the
    outputs of :func:`pruned_state_graph` for it (``codes`` [tokens, rank + 1], ``scale`` [1], ``lo`` [vocab]).

    The bound: per vocabulary tile one integer product of the table (uint8, zero point 128: VNNI's u8 x s8
    form) with the transposed codes, [tile, tokens], and its max along the rows (the contiguous axis); then
    ``scale * w_v * max + lo_v``.  The product is onnxruntime's ``MatMulIntegerToFloat`` (a contrib op of every
    CPU build) with unit scales: the exact int32 sums written as float32 (exact below 2^24; they are at most
    ``(rank + 1) * 127^2``), because a float32 max is faster than an int32 one (benchmarks/pruned_kernels.py).
    The ids whose bound is > 0 get the dense head's own arithmetic (the same decoder rows times the same
    ``hidden``, max over tokens, plus the bias).  Outputs ``indices`` (int64, ascending), ``values`` (float32,
    all > 0) and ``kept`` (int64 [1], how many ids the bound kept).
    """
    b = _Builder()
    flat = b.const([-1], dtype=np.int64)
    table = bound.table
    zero = b.const(np.array(128, np.uint8), "table.zero_point", dtype=np.uint8)
    one = b.const(1.0)
    codes_t = b.op("Transpose", ["codes"], perm=[1, 0])  # [rank + 1, tokens]
    shifted = (table.codes.astype(np.int16) + 128).astype(np.uint8)
    tops = []
    for j, lo in enumerate(range(0, spec.vocab, BOUND_TILE)):
        w = b.const(shifted[lo : lo + BOUND_TILE], f"table.codes.{j}", dtype=np.uint8)
        products = b.name("table.products")
        b.nodes.append(helper.make_node("MatMulIntegerToFloat", [w, codes_t, one, one, zero], [products],
                                        name=products, domain="com.microsoft"))  # fmt: skip
        tops.append(b.op("ReduceMax", [products], axes=[1], keepdims=0))
    top = tops[0] if len(tops) == 1 else b.op("Concat", tops, axis=0)
    step = b.op("Mul", ["scale", b.const(table.scale, "table.scale")])
    upper = b.op("Add", [b.op("Mul", [top, step]), "lo"])
    idx = b.op("Reshape", [b.op("NonZero", [b.op("Greater", [upper, b.const(0.0)])]), flat])
    rows = b.op("Gather", [b.const(spec.decoder, "decoder.rows"), idx], axis=0)  # [n, H]
    mx = b.op("ReduceMax", [b.op("MatMul", [rows, b.op("Transpose", ["hidden"], perm=[1, 0])], "logits")],
              axes=[1], keepdims=0)  # fmt: skip
    act = _activate(b, b.op("Add", [mx, b.op("Gather", [b.const(spec.decoder_bias, "decoder.bias"), idx], axis=0)]),
                    activation)  # fmt: skip
    pos = b.op("Reshape", [b.op("NonZero", [b.op("Greater", [act, b.const(0.0)])]), flat])
    b.nodes.append(helper.make_node("Gather", [idx, pos], ["indices"], name="indices", axis=0))
    b.nodes.append(helper.make_node("Gather", [act, pos], ["values"], name="values", axis=0))
    b.nodes.append(helper.make_node("Shape", [idx], ["kept"], name="kept"))
    graph = helper.make_graph(
        b.nodes,
        f"splade_pruned_head_{spec.family}",
        inputs=[
            helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["tokens", spec.hidden]),
            helper.make_tensor_value_info("codes", TensorProto.INT8, ["tokens", bound.rank + 1]),
            helper.make_tensor_value_info("scale", TensorProto.FLOAT, [1]),
            helper.make_tensor_value_info("lo", TensorProto.FLOAT, [spec.vocab]),
        ],
        outputs=[
            helper.make_tensor_value_info("indices", TensorProto.INT64, ["active"]),
            helper.make_tensor_value_info("values", TensorProto.FLOAT, ["active"]),
            helper.make_tensor_value_info("kept", TensorProto.INT64, [1]),
        ],
        initializer=b.inits,
    )
    opsets = [helper.make_opsetid("", OPSET), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="splade-onnx")
    model.ir_version = 8
    return model
