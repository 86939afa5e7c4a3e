"""The dense SPLADE graph: encoder, MLM head and pooling, from an :class:`~splade_onnx._spec.EncoderSpec`.

The graph takes ``input_ids`` and ``attention_mask`` ([batch, seq] int64) and returns ``sparse``
([batch, vocab] float32): the SPLADE pooling ``max over non-padding positions of log(1 + relu(logits))`` is part
of the graph, in vocabulary slices (:func:`~splade_onnx._batching.vocab_chunks`), so the ``[batch, seq, vocab]``
logits never leave onnxruntime.  An ONNX export that outputs ``logits`` gets the same pooling appended
(:func:`pool_logits_model`).

The encoder is BERT's (post-LayerNorm blocks, absolute or RoBERTa positions) unless the spec says otherwise, and
the blocks that differ are here beside it: pre-LayerNorm blocks with a final LayerNorm, rotary positions
(:func:`_rotary_tables`, :func:`_rotate`), local attention (:func:`_window_bias`), the gated MLP (:func:`_mlp`),
linears and LayerNorms without bias, and the MLM transform's own activation: ModernBERT.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ._batching import vocab_chunks
from ._errors import ModelError
from ._graph import (
    APPEND_START,
    BOOL,
    FLOAT,
    INT32,
    INT64,
    OPSET,
    GraphBuilder,
    padding_as_first,
    splade_activation,
    token_mask,
    value,
)
from ._spec import Array, EncoderSpec, LayerWeights, Linear, load_spec

if TYPE_CHECKING:
    import onnx

__all__ = ["add_fused_pooling", "add_pooling", "build_graph", "convert_checkpoint", "pool_logits_model"]

_F32_MIN = float(np.finfo(np.float32).min)


def _gelu_tanh(b: GraphBuilder, x: str) -> str:
    # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    cube = b.op("Mul", [b.op("Mul", [x, x]), x])
    inner = b.op("Add", [x, b.op("Mul", [cube, b.const(0.044715)])])
    t = b.op("Tanh", [b.op("Mul", [inner, b.const(math.sqrt(2.0 / math.pi))])])
    return b.op("Mul", [b.op("Mul", [x, b.const(0.5)]), b.op("Add", [t, b.const(1.0)])])


def _gelu_erf(b: GraphBuilder, x: str) -> str:
    erf = b.op("Erf", [b.op("Div", [x, b.const(math.sqrt(2.0))])])
    return b.op("Mul", [b.op("Mul", [x, b.const(0.5)]), b.op("Add", [erf, b.const(1.0)])], "gelu")


_ACTIVATIONS: dict[str, Callable[[GraphBuilder, str], str]] = {
    "gelu": _gelu_erf,
    "gelu_python": _gelu_erf,
    "gelu_new": _gelu_tanh,
    "gelu_fast": _gelu_tanh,
    "gelu_pytorch_tanh": _gelu_tanh,
    "relu": lambda b, x: b.op("Relu", [x]),
    "silu": lambda b, x: b.op("Mul", [x, b.op("Sigmoid", [x])]),
    "swish": lambda b, x: b.op("Mul", [x, b.op("Sigmoid", [x])]),
}


def _activation(name: str) -> Callable[[GraphBuilder, str], str]:
    try:
        return _ACTIVATIONS[name]
    except KeyError:
        valid = ", ".join(sorted(_ACTIVATIONS))
        raise ModelError(f"activation {name!r} is not supported; supported: {valid}") from None


def add_pooling(
    b: GraphBuilder,
    logits: str,
    mask: str,
    out: str,
    *,
    opset: int = OPSET,
    pooling: str = "max",
    activation: str = "relu",
) -> None:
    """Append the SPLADE pooling to ``logits`` [batch, seq, vocab]: see :func:`add_fused_pooling` for the rules."""
    keep = token_mask(b, mask)
    if pooling == "max":
        masked = b.op("Where", [keep, logits, b.const(-np.inf)])
        pooled = _reduce(b, "ReduceMax", masked, opset)
        splade_activation(b, pooled, activation, out)
    else:
        act = splade_activation(b, logits, activation)
        summed = _reduce(b, "ReduceSum", b.op("Where", [keep, act, b.const(0.0)]), opset)
        b.node("Identity", [summed], out, name="splade_pool")


def _reduce(b: GraphBuilder, op: str, x: str, opset: int) -> str:
    """``op`` over the sequence axis (1), in the form ``opset`` takes (axes as input from 18, 13 for ReduceSum)."""
    if opset >= (13 if op == "ReduceSum" else 18):
        return b.op(op, [x, b.const([1], dtype=np.int64)], keepdims=0)
    return b.op(op, [x], axes=[1], keepdims=0)


def add_fused_pooling(
    b: GraphBuilder,
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
    keep = token_mask(b, mask)
    parts = []
    if pooling == "max":
        hm = padding_as_first(b, h, keep)
        for c, (lo, hi) in enumerate(itertools.pairwise(bounds.tolist())):
            w = b.const(decoder[lo:hi].T.copy(), f"decoder.weight.{c}")
            logits = b.op("MatMul", [hm, w], f"logits.{c}")
            parts.append(b.op("ReduceMax", [logits], f"max.{c}", axes=[1], keepdims=0))
        mx = parts[0] if chunks == 1 else b.op("Concat", parts, axis=1)
        splade_activation(b, b.op("Add", [mx, b.const(bias, "decoder.bias")]), activation, out)
        return
    for c, (lo, hi) in enumerate(itertools.pairwise(bounds.tolist())):
        w = b.const(decoder[lo:hi].T.copy(), f"decoder.weight.{c}")
        logits = b.op("Add", [b.op("MatMul", [h, w]), b.const(bias[lo:hi], f"decoder.bias.{c}")], f"logits.{c}")
        act = b.op("Where", [keep, splade_activation(b, logits, activation), b.const(0.0)])
        parts.append(_reduce(b, "ReduceSum", act, OPSET))
    summed = parts[0] if chunks == 1 else b.op("Concat", parts, axis=1)
    b.node("Identity", [summed], out, name="splade_pool")


class _Heads(NamedTuple):
    """What every attention layer shares: the shapes that split and merge the heads, the score scale, the
    additive bias of its mask (global or local) and the head width."""

    split: str
    merge: str
    scale: str
    bias: str
    head_dim: int


def _bias(wb: Linear) -> Array:
    """A linear layer's bias, zeros when it has none."""
    return np.zeros(len(wb[0]), np.float32) if wb[1] is None else wb[1]


def _norm(b: GraphBuilder, x: str, ln: Linear | None, eps: float, hint: str) -> str:
    """The LayerNorm ``ln`` of ``x``; ``x`` itself where the block has none (ModernBERT's first ``attn_norm``)."""
    return x if ln is None else b.layer_norm(x, ln, eps, hint)


def _embeddings(b: GraphBuilder, spec: EncoderSpec, ids: str) -> str:
    """Word embeddings, plus absolute (or RoBERTa) position embeddings unless the positions are rotary."""
    word = b.op("Gather", [b.const(spec.word, "word_embeddings"), ids])
    if spec.position is None:
        return word
    table = b.const(spec.position, "position_embeddings")
    if spec.roberta_positions:
        # RoBERTa: positions count non-padding tokens, offset by padding_idx.
        notpad = b.op("Cast", [b.op("Not", [b.op("Equal", [ids, b.const(spec.pad_id, dtype=np.int64)])])], to=INT64)
        pid = b.op(
            "Add",
            [
                b.op("Mul", [b.op("CumSum", [notpad, b.const(1, dtype=np.int64)]), notpad]),
                b.const(spec.pad_id, dtype=np.int64),
            ],
        )
        pos = b.op("Gather", [table, pid])
    else:
        seq = b.op("Shape", [ids], start=1, end=2)
        pos = b.op("Slice", [table, b.const([0], dtype=np.int64), seq, b.const([0], dtype=np.int64)])
    return b.op("Add", [word, pos])


def _window_bias(b: GraphBuilder, mask: str, window: int) -> str:
    """``[batch, 1, seq, seq]`` additive attention bias of local attention: 0 where key ``j`` is a token of the
    text and ``|i - j| <= window``, the float32 minimum elsewhere (one minimum, never two added: a padding query
    with no key in reach gets uniform weights, as in transformers' eager attention, not NaN)."""
    seq = b.op("Squeeze", [b.op("Shape", [mask], start=1, end=2)])
    pos = b.op("Range", [b.const(0, dtype=np.int64), seq, b.const(1, dtype=np.int64)])
    rows = b.op("Unsqueeze", [pos, b.const([1], dtype=np.int64)])
    cols = b.op("Unsqueeze", [pos, b.const([0], dtype=np.int64)])
    near = b.op("LessOrEqual", [b.op("Abs", [b.op("Sub", [rows, cols])]), b.const(window, dtype=np.int64)])
    keys = b.op("Unsqueeze", [b.op("Cast", [mask], to=BOOL), b.const([1, 2], dtype=np.int64)])  # [batch, 1, 1, seq]
    return b.op("Where", [b.op("And", [near, keys]), b.const(0.0), b.const(_F32_MIN)], f"window_bias.{window}")


def _rotary_tables(b: GraphBuilder, ids: str, theta: float, head_dim: int, positions: int) -> tuple[str, str]:
    """cos and sin ``[seq, 1, head_dim / 2]`` of the default rotary embeddings for positions ``0 .. seq - 1``, as
    transformers computes them: frequencies ``1 / theta ** (2k / head_dim)`` and angles ``position x frequency`` in
    float32; cos and sin of those angles rounded from float64 (within an ulp of torch's float32 ones)."""
    exponent = (np.arange(0, head_dim, 2, dtype=np.float32) / np.float32(head_dim)).astype(np.float64)
    inv_freq = np.float32(1.0) / np.power(np.float64(theta), exponent).astype(np.float32)
    angles = (np.arange(positions, dtype=np.float32)[:, None] * inv_freq[None, :]).astype(np.float64)
    seq = b.op("Shape", [ids], start=1, end=2)
    out = []
    for name, table in (("cos", np.cos(angles)), ("sin", np.sin(angles))):
        t = b.const(table[:, None, :].astype(np.float32), f"rotary.{name}.{theta:g}")
        out.append(b.op("Slice", [t, b.const([0], dtype=np.int64), seq, b.const([0], dtype=np.int64)]))
    return out[0], out[1]


def _rotate(b: GraphBuilder, x: str, rope: tuple[str, str], half: int) -> str:
    """``x`` [batch, seq, heads, head_dim] rotated as transformers' ``x cos + rotate_half(x) sin``: with halves
    ``x1, x2``, ``[x1 cos - x2 sin, x2 cos + x1 sin]`` (the same products and sums, so the same rounding)."""
    cos, sin = rope
    axis = b.const([3], dtype=np.int64)
    x1 = b.op("Slice", [x, b.const([0], dtype=np.int64), b.const([half], dtype=np.int64), axis])
    x2 = b.op("Slice", [x, b.const([half], dtype=np.int64), b.const([2 * half], dtype=np.int64), axis])
    first = b.op("Sub", [b.op("Mul", [x1, cos]), b.op("Mul", [x2, sin])])
    second = b.op("Add", [b.op("Mul", [x2, cos]), b.op("Mul", [x1, sin])])
    return b.op("Concat", [first, second], axis=3)


def _attention(b: GraphBuilder, x: str, L: LayerWeights, p: str, heads: _Heads, rope: tuple[str, str] | None) -> str:
    """Multi-head attention of ``x`` up to the merged heads (before the output projection); ``rope``: the rotary
    tables, applied to q and k."""
    split_heads, merge_heads, scale, bias, hd = heads
    q = b.op("Reshape", [b.linear(x, L.q, f"{p}.q"), split_heads])
    if rope is not None:
        q = _rotate(b, q, rope, hd // 2)
    q = b.op("Transpose", [q], perm=[0, 2, 1, 3])
    k = b.op("Reshape", [b.linear(x, L.k, f"{p}.k"), split_heads])
    if rope is not None:
        k = _rotate(b, k, rope, hd // 2)
    k = b.op("Transpose", [k], perm=[0, 2, 3, 1])
    v = b.op("Transpose", [b.op("Reshape", [b.linear(x, L.v, f"{p}.v"), split_heads])], perm=[0, 2, 1, 3])
    scores = b.op("Add", [b.op("Mul", [b.op("MatMul", [q, k]), scale]), bias])
    ctx = b.op("MatMul", [b.op("Softmax", [scores], axis=-1), v])
    return b.op("Reshape", [b.op("Transpose", [ctx], perm=[0, 2, 1, 3]), merge_heads])


def _mlp(b: GraphBuilder, x: str, L: LayerWeights, p: str, act: Callable[[GraphBuilder, str], str], gated: bool) -> str:
    """The MLP up to its output projection: ``act(x W_in)``, or gated (GeGLU) ``act(input) * gate`` with the
    input the first half of ``x W_in`` and the gate the second."""
    h = b.linear(x, L.ffn_in, f"{p}.ffn_in")
    if not gated:
        return act(b, h)
    width = int(L.ffn_in[0].shape[0]) // 2
    axis = b.const([2], dtype=np.int64)
    first = b.op("Slice", [h, b.const([0], dtype=np.int64), b.const([width], dtype=np.int64), axis])
    gate = b.op("Slice", [h, b.const([width], dtype=np.int64), b.const([2 * width], dtype=np.int64), axis])
    return b.op("Mul", [act(b, first), gate])


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
    b = GraphBuilder()
    ids, mask = "input_ids", "attention_mask"
    H, nh = spec.hidden, spec.num_heads
    hd = H // nh
    act = _activation(spec.activation)
    head_act = _activation(spec.head_activation or spec.activation)
    if fused_attention and (spec.pre_norm or spec.position is None):
        raise ModelError(
            f"fused_attention=True is not supported for {spec.family}: onnxruntime's contrib Attention op has no "
            "rotary positions or local attention; build the graph with standard ops (fused_attention=False)"
        )

    x = b.layer_norm(_embeddings(b, spec, ids), spec.emb_ln, spec.eps, "emb_ln")

    maskf = b.op("Cast", [mask], to=FLOAT)
    bias = b.op("Mul", [b.op("Sub", [b.const(1.0), maskf]), b.const(_F32_MIN)])
    biases: dict[int | None, str] = {None: b.op("Unsqueeze", [bias, b.const([1, 2], dtype=np.int64)], "attn_bias")}
    rotary: dict[float, tuple[str, str]] = {}
    split_heads = b.const([0, 0, nh, hd], dtype=np.int64)
    merge_heads = b.const([0, 0, H], dtype=np.int64)
    scale = b.const(1.0 / math.sqrt(hd))

    mask_i32 = b.op("Cast", [mask], to=INT32) if fused_attention else ""
    for i, L in enumerate(spec.layers):
        p = f"layer{i}"
        if fused_attention:  # onnxruntime's contrib Attention: QKV in one GEMM, masked softmax, heads merged
            qkv_w = b.const(np.concatenate([L.q[0].T, L.k[0].T, L.v[0].T], axis=1), f"{p}.qkv.weight")
            qkv_b = b.const(np.concatenate([_bias(L.q), _bias(L.k), _bias(L.v)]), f"{p}.qkv.bias")
            ctx = b.op("Attention", [x, qkv_w, qkv_b, mask_i32], f"{p}.attention", domain="com.microsoft", num_heads=nh)
            x = _norm(b, b.op("Add", [b.linear(ctx, L.attn_out, f"{p}.attn_out"), x]), L.ln1, spec.eps, f"{p}.ln1")
            h = act(b, b.linear(x, L.ffn_in, f"{p}.ffn_in"))
            x = _norm(b, b.op("Add", [b.linear(h, L.ffn_out, f"{p}.ffn_out"), x]), L.ln2, spec.eps, f"{p}.ln2")
            continue
        if L.window not in biases and L.window is not None:
            biases[L.window] = _window_bias(b, mask, L.window)
        if L.rope_theta is not None and L.rope_theta not in rotary:
            rotary[L.rope_theta] = _rotary_tables(b, ids, L.rope_theta, hd, spec.rope_positions)
        rope = rotary.get(L.rope_theta) if L.rope_theta is not None else None
        heads = _Heads(split_heads, merge_heads, scale, biases[L.window], hd)
        if spec.pre_norm:  # x + attention(ln1(x)), then x + mlp(ln2(x))
            ctx = _attention(b, _norm(b, x, L.ln1, spec.eps, f"{p}.ln1"), L, p, heads, rope)
            x = b.op("Add", [x, b.linear(ctx, L.attn_out, f"{p}.attn_out")])
            h = _mlp(b, _norm(b, x, L.ln2, spec.eps, f"{p}.ln2"), L, p, act, spec.gated_mlp)
            x = b.op("Add", [x, b.linear(h, L.ffn_out, f"{p}.ffn_out")])
            continue
        ctx = _attention(b, x, L, p, heads, rope)
        x = _norm(b, b.op("Add", [b.linear(ctx, L.attn_out, f"{p}.attn_out"), x]), L.ln1, spec.eps, f"{p}.ln1")
        h = _mlp(b, x, L, p, act, spec.gated_mlp)
        x = _norm(b, b.op("Add", [b.linear(h, L.ffn_out, f"{p}.ffn_out"), x]), L.ln2, spec.eps, f"{p}.ln2")
    x = _norm(b, x, spec.final_ln, spec.eps, "final_ln")

    h = b.layer_norm(head_act(b, b.linear(x, spec.head_dense, "head.dense")), spec.head_ln, spec.eps, "head.ln")
    if pooled:
        n = chunks or vocab_chunks(spec.vocab)
        add_fused_pooling(
            b, h, mask, spec.decoder, spec.decoder_bias, "sparse", chunks=n, pooling=pooling, activation=activation
        )
        output = value("sparse", FLOAT, ["batch", spec.vocab])
    else:
        logits = b.linear(h, (spec.decoder, spec.decoder_bias), "decoder")
        b.node("Identity", [logits], "logits")
        output = value("logits", FLOAT, ["batch", "seq", spec.vocab])

    inputs = [value(ids, INT64, ["batch", "seq"]), value(mask, INT64, ["batch", "seq"])]
    return b.model(f"splade_{spec.family}", inputs, [output], contrib=fused_attention)


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
    b = GraphBuilder(start=APPEND_START)  # keep clear of the host graph's names
    add_pooling(b, logits, "attention_mask", "sparse", opset=_opset(model), pooling=pooling, activation=activation)
    g.node.extend(b.nodes)
    g.initializer.extend(b.inits)
    del g.output[:]
    g.output.append(value("sparse", FLOAT, ["batch", vocab]))
    return model


def convert_checkpoint(
    folder: Path, weights: Path, *, pooling: str = "max", activation: str = "relu", chunks: int | None = None
) -> tuple[onnx.ModelProto, list[str]]:
    """Load a checkpoint (safetensors or pytorch_model.bin), build its SPLADE graph; also return notes for the log."""
    spec = load_spec(folder, weights)
    notes = [
        f"{spec.family}: {len(spec.layers)} layers, hidden {spec.hidden}, vocab {spec.vocab}, {spec.activation}",
        *spec.notes,
    ]
    return build_graph(spec, pooling=pooling, activation=activation, chunks=chunks), notes
