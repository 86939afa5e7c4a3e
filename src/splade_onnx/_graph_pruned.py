"""The pruned head's graphs (the math is :mod:`splade_onnx._pruned`), written from an
:class:`~splade_onnx._spec.EncoderSpec` and a fitted :class:`~splade_onnx._pruned.Bound`.

* :func:`hidden_graph`: the encoder up to the head's LayerNorm, what the bound's basis is fitted on;
* :func:`pruned_state_graph`: the same encoder, node for node as the dense graph, plus each text's bound inputs;
* :func:`pruned_head_graph`: one text's bound, per vocabulary tile, and the exact logits of the ids it keeps;
* :func:`pruned_query_graph`: both in one graph for one short text (a query), centred on a fixed state so that
  nothing in it passes over every decoder row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ._graph import (
    APPEND_START,
    FLOAT,
    INT8,
    INT64,
    GraphBuilder,
    padding_as_first,
    splade_activation,
    token_mask,
    value,
)
from ._graph_dense import build_graph
from ._pruned import HALF_STEP, Q_RANGE, Bound, shared_logits
from ._spec import Array, EncoderSpec

if TYPE_CHECKING:
    import onnx

__all__ = [
    "BOUND_TILE",
    "hidden_graph",
    "kept_maxima",
    "pruned_head_graph",
    "pruned_query_graph",
    "pruned_state_graph",
    "shifted_codes",
    "tile_maxima",
]


def _identity(source: str, output: str) -> onnx.NodeProto:
    """An ``Identity`` node named ``output``: a graph output under its public name."""
    from onnx import helper

    return helper.make_node("Identity", [source], [output], name=output)


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
    g.node.extend([*nodes, _identity(h, "hidden")])
    g.initializer.extend(inits)
    g.output.append(value("hidden", FLOAT, ["batch", "seq", spec.hidden]))
    return model


def pruned_state_graph(spec: EncoderSpec, bound: Bound, center: Array | None = None) -> onnx.ModelProto:
    """The encoder and the per-text inputs of the pruned head (:mod:`splade_onnx._pruned`), for a padded batch.

    Outputs ``hidden`` [batch, seq, hidden], the very tensor the dense head multiplies (this is
    :func:`build_graph` without the projection, node for node); ``codes`` [batch, seq, rank + 1] (int8), each
    text's ``q`` quantized with its own scale ``scale`` [batch, 1]; and ``lo`` [batch, vocab],
    the rest of the bound: the shared logit part ``c``, the int8 error terms and ``eps``.  The bound of an id
    is ``scale * w_v * max_t (codes_t . k_v) + lo_v``; :func:`pruned_head_graph` computes it per text.

    With ``center`` [hidden] every text is centred on it instead of on its own mean: the shared logit part
    ``c_v = b_v + center . e_v`` is then a constant (:func:`~splade_onnx._pruned.shared_logits`, rounded up), and
    ``lo`` adds only the per-text error terms to it.
    """
    model, nodes, inits, h = _head_prefix(spec)
    g = model.graph
    b = GraphBuilder(start=APPEND_START)  # the nodes join build_graph's
    i64 = np.int64
    H, r = spec.hidden, bound.rank
    k, table = bound.constants, bound.table

    def last_axis(x: str, lo: int, hi: int) -> str:
        return b.op("Slice", [x, b.const([lo], dtype=i64), b.const([hi], dtype=i64), b.const([2], dtype=i64)])

    def norms(x: str) -> str:  # [B, T, w] -> [B, T, 1]
        return b.op("Sqrt", [b.op("ReduceSum", [b.op("Mul", [x, x]), b.const([2], dtype=i64)], keepdims=1)])

    def over_tokens(x: str) -> str:  # [B, T, 1] -> [B, 1], padding already a copy of position 0
        return b.op("ReduceMax", [x], axes=[1], keepdims=0)

    keep = token_mask(b, "attention_mask")
    if center is None:
        maskf = b.op("Cast", [keep], to=FLOAT)
        mean = b.op(
            "Div",
            [
                b.op("ReduceSum", [b.op("Mul", [h, maskf]), b.const([1], dtype=i64)], keepdims=1),
                b.op("ReduceSum", [maskf, b.const([1], dtype=i64)], keepdims=1),
            ],
        )  # [B, 1, H]
    else:
        mean = b.const(center.reshape(1, 1, H), "center")
    hm = padding_as_first(b, h, keep)
    delta = b.op("Sub", [hm, mean])
    mean_norm = over_tokens(norms(mean)) if center is None else b.const([[np.linalg.norm(center.astype(np.float64))]])
    rot = b.op("MatMul", [delta, b.const(bound.A, "basis.A")])  # [B, T, H]
    q = b.op("Concat", [last_axis(rot, 0, r), norms(last_axis(rot, r, H))], axis=2)  # [B, T, r + 1]

    # int8 codes of q, one scale per text (padding rows copy row 0, so the max is the text's own).
    absq = b.op("Abs", [q])
    top = b.op("Max", [b.op("ReduceMax", [absq], axes=[1, 2], keepdims=1), b.const(1e-30)])  # [B, 1, 1]
    scale = b.op("Div", [top, b.const(Q_RANGE)])
    codes = b.op("Cast", [b.op("Round", [b.op("Div", [q, scale])])], to=INT8)
    scale2 = b.op("Squeeze", [scale, b.const([2], dtype=i64)])  # [B, 1]
    q_l1 = over_tokens(b.op("ReduceSum", [absq, b.const([2], dtype=i64)], keepdims=1))  # [B, 1]
    half = b.op("Mul", [scale2, b.const(HALF_STEP)])

    # eps per text: SAFETY x the worst-case float32 error of the dot products and sums involved (the GEMM below
    # sums H + 4 terms, each within these norms), plus the basis' own error (A B^T - I) and the rounding that
    # leaves delta not quite orthogonal to 1/gamma.
    off = over_tokens(b.op("Abs", [b.op("MatMul", [delta, b.const(bound.a_hat[:, None], "a_hat")])]))
    dot = b.op(
        "Add",
        [
            b.op("Mul", [over_tokens(norms(rot)), b.const(k.rot_norm)]),
            b.op("Mul", [b.op("Add", [over_tokens(norms(hm)), mean_norm]), b.const(k.row_norm)]),
        ],
    )
    errs = b.op("Add", [b.op("Mul", [half, b.const(k.l1)]), b.op("Mul", [q_l1, b.const(k.step)])])
    eps = b.op(
        "Add",
        [
            b.op("Mul", [b.op("Add", [b.op("Add", [dot, errs]), b.const(k.bias)]), b.const(k.rounding)]),
            b.op(
                "Add",
                [
                    b.op("Mul", [over_tokens(norms(delta)), b.const(k.basis_error)]),
                    b.op("Mul", [off, b.const(k.off_axis)]),
                ],
            ),
        ],
        "eps",
    )  # [B, 1]
    # lo = b_v + mu . e_v + s / 2 |g^_v|_1 + max|g_v - g^_v| |q|_1 + eps: one GEMM [B, H + 4] x [H + 4, V]; with a
    # fixed centre the constant c_v plus one GEMM [B, 3] x [3, V].
    errors = [table.l1[None], table.step[None], np.ones((1, spec.vocab), np.float32)]
    if center is None:
        ones = b.op("Expand", [b.const([[1.0]]), b.op("Shape", [eps])])
        terms = b.op("Concat", [b.op("Squeeze", [mean, b.const([1], dtype=i64)]), half, q_l1, eps, ones], axis=1)
        weights = np.concatenate([spec.decoder.T, *errors, spec.decoder_bias[None]]).astype(np.float32)
        b.node("MatMul", [terms, b.const(weights, "lo.weight")], "lo")
    else:
        terms = b.op("Concat", [half, q_l1, eps], axis=1)
        spread = b.op("MatMul", [terms, b.const(np.concatenate(errors).astype(np.float32), "lo.weight")])
        shared = shared_logits(spec.decoder, spec.decoder_bias, center)
        b.node("Add", [spread, b.const(shared[None], "lo.shared")], "lo")
    b.node("Identity", [codes], "codes")
    b.node("Identity", [scale2], "scale")
    b.node("Identity", [h], "hidden")
    del g.node[:], g.initializer[:], g.output[:]
    g.node.extend([*nodes, *b.nodes])
    g.initializer.extend([*inits, *b.inits])
    g.output.extend(
        [
            value("hidden", FLOAT, ["batch", "seq", H]),
            value("codes", INT8, ["batch", "seq", r + 1]),
            value("scale", FLOAT, ["batch", 1]),
            value("lo", FLOAT, ["batch", spec.vocab]),
        ]
    )
    return model


#: Vocabulary ids per tile of the per-text bound: a tile's [tile, tokens] products stay in cache.
BOUND_TILE = 512


def shifted_codes(codes: NDArray[np.int8]) -> NDArray[np.uint8]:
    """The int8 table as uint8 with zero point 128 (VNNI's u8 x s8 form)."""
    return (codes.astype(np.int16) + 128).astype(np.uint8)


def tile_maxima(b: GraphBuilder, table: NDArray[np.uint8], codes: str, tile: int = BOUND_TILE) -> str:
    """The bound's integer part of one text: per tile of ``tile`` ids, the products of ``table``
    [ids, rank + 1] (:func:`shifted_codes`) with ``codes`` [tokens, rank + 1] (int8), and their max over tokens;
    [ids] float32 (exact integers)."""
    zero = b.const(np.array(128, np.uint8), "table.zero_point", dtype=np.uint8)
    one = b.const(1.0)
    codes_t = b.op("Transpose", [codes], perm=[1, 0])  # [rank + 1, tokens]
    tops = []
    for j, lo in enumerate(range(0, len(table), tile)):
        w = b.const(table[lo : lo + tile], f"table.codes.{j}", dtype=np.uint8)
        products = b.node(
            "MatMulIntegerToFloat", [w, codes_t, one, one, zero], b.name("table.products"), domain="com.microsoft"
        )
        tops.append(b.op("ReduceMax", [products], axes=[1], keepdims=0))
    return tops[0] if len(tops) == 1 else b.op("Concat", tops, axis=0)


def kept_maxima(b: GraphBuilder, decoder: Array, idx: str, hidden: str) -> str:
    """The exact stage: the rows ``idx`` of ``decoder`` times ``hidden`` [tokens, hidden] (the dense head's own
    arithmetic), max over tokens; [kept] float32, without the bias."""
    rows = b.op("Gather", [b.const(decoder, "decoder.rows"), idx], axis=0)  # [n, H]
    return b.op(
        "ReduceMax", [b.op("MatMul", [rows, b.op("Transpose", [hidden], perm=[1, 0])], "logits")], axes=[1], keepdims=0
    )


def _exact_head(
    b: GraphBuilder,
    spec: EncoderSpec,
    bound: Bound,
    activation: str,
    io: tuple[str, str, str, str],
    tile: int,
    out: tuple[str, str],
) -> str:
    """The per-text head on the values named ``io`` (hidden, codes, scale, lo): the bound in tiles of ``tile`` ids,
    then the exact logits of the ids it keeps, written to ``out``: the active ids (int64, ascending) and their
    weights (all > 0); returns the name of the kept ids."""
    hidden, codes, scale, lo = io
    flat = b.const([-1], dtype=np.int64)
    table = bound.table
    top = tile_maxima(b, shifted_codes(table.codes), codes, tile)
    step = b.op("Mul", [scale, b.const(table.scale, "table.scale")])
    upper = b.op("Add", [b.op("Mul", [top, step]), lo])
    idx = b.op("Reshape", [b.op("NonZero", [b.op("Greater", [upper, b.const(0.0)])]), flat])
    mx = kept_maxima(b, spec.decoder, idx, hidden)
    bias = b.op("Gather", [b.const(spec.decoder_bias, "decoder.bias"), idx], axis=0)
    act = splade_activation(b, b.op("Add", [mx, bias]), activation)
    pos = b.op("Reshape", [b.op("NonZero", [b.op("Greater", [act, b.const(0.0)])]), flat])
    b.node("Gather", [idx, pos], out[0], axis=0)
    b.node("Gather", [act, pos], out[1], axis=0)
    return idx


def pruned_head_graph(spec: EncoderSpec, bound: Bound, *, activation: str = "relu") -> onnx.ModelProto:
    """One text's exact SPLADE max pooling from its ``hidden`` [tokens, hidden] (no padding rows) and the
    outputs of :func:`pruned_state_graph` for it (``codes`` [tokens, rank + 1], ``scale`` [1], ``lo`` [vocab]).

    The bound: per vocabulary tile one integer product of the table (uint8, zero point 128: VNNI's u8 x s8
    form) with the transposed codes, [tile, tokens], and its max along the rows (the contiguous axis); then
    ``scale * w_v * max + lo_v``.  The product is onnxruntime's ``MatMulIntegerToFloat`` (a contrib op of every
    CPU build) with unit scales: the exact int32 sums written as float32 (exact below 2^24; they are at most
    ``(rank + 1) * 127 * 64``), because a float32 max is faster than an int32 one (benchmarks/pruned_kernels.py).
    The ids whose bound is > 0 get the dense head's own arithmetic (the same decoder rows times the same
    ``hidden``, max over tokens, plus the bias).  Outputs ``indices`` (int64, ascending), ``values`` (float32,
    all > 0) and ``kept`` (int64 [1], how many ids the bound kept).
    """
    b = GraphBuilder()
    idx = _exact_head(b, spec, bound, activation, ("hidden", "codes", "scale", "lo"), BOUND_TILE, ("indices", "values"))
    b.node("Shape", [idx], "kept")
    return b.model(
        f"splade_pruned_head_{spec.family}",
        [
            value("hidden", FLOAT, ["tokens", spec.hidden]),
            value("codes", INT8, ["tokens", bound.rank + 1]),
            value("scale", FLOAT, [1]),
            value("lo", FLOAT, [spec.vocab]),
        ],
        [
            value("indices", INT64, ["active"]),
            value("values", FLOAT, ["active"]),
            value("kept", INT64, [1]),
        ],
        contrib=True,
    )


def pruned_query_graph(spec: EncoderSpec, bound: Bound, center: Array, *, activation: str = "relu") -> onnx.ModelProto:
    """:func:`pruned_state_graph` centred on ``center`` and :func:`pruned_head_graph` in one graph, for a batch
    of one text without padding (a short query): one run instead of two, nothing that passes over every decoder
    row, and the bound in a single tile (a short text's [vocab, tokens] products are no larger than the dense
    head's logits).  Same inputs and output as the dense graph: ``sparse`` [1, vocab]."""
    from onnx import helper, numpy_helper

    model = pruned_state_graph(spec, bound, center)
    g = model.graph
    b = GraphBuilder(start=2 * APPEND_START)  # clear of the state graph's own and appended names
    first = b.const([0], dtype=np.int64)
    io = (
        b.op("Squeeze", ["hidden", first]),
        b.op("Squeeze", ["codes", first]),
        b.op("Squeeze", ["scale", first]),
        b.op("Squeeze", ["lo", first]),
    )
    indices, values = b.name("active.ids"), b.name("active.weights")
    _exact_head(b, spec, bound, activation, io, len(bound.table.codes), (indices, values))
    zero = numpy_helper.from_array(np.zeros(1, np.float32))
    zeros = b.op("ConstantOfShape", [b.const([spec.vocab], dtype=np.int64)], value=zero)
    row = b.op("ScatterND", [zeros, b.op("Unsqueeze", [indices, b.const([1], dtype=np.int64)]), values])
    b.node("Unsqueeze", [row, first], "sparse")
    g.node.extend(b.nodes)
    g.initializer.extend(b.inits)
    del g.output[:]
    g.output.append(value("sparse", FLOAT, [1, spec.vocab]))
    if all(o.domain != "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return model
