"""Writing ONNX graphs: :class:`GraphBuilder` and the blocks that the dense and the pruned graphs share.

The builder names every node and initializer uniquely (``hint_N``) and wraps a finished node list into a model
with this project's IR version and opsets.  The shared blocks are the SPLADE activation (``log1p(relu(x))``,
with an exact ``log1p``) and the token mask of a right-padded batch.  ``onnx`` is imported only inside the
builder's methods: importing this module costs nothing, so loading a converted model never imports ``onnx``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ._errors import ModelError

if TYPE_CHECKING:
    import onnx

__all__ = [
    "APPEND_START",
    "BOOL",
    "CONVERTER_VERSION",
    "FLOAT",
    "INT8",
    "INT32",
    "INT64",
    "IR_VERSION",
    "OPSET",
    "UINT8",
    "GraphBuilder",
    "padding_as_first",
    "splade_activation",
    "token_mask",
    "value",
]

#: Bump whenever an emitted graph changes; cached graphs are keyed by it.
CONVERTER_VERSION = "2"
#: The default-domain opset of every emitted graph.
OPSET = 17
#: ``onnx.helper.make_model`` stamps the newest IR version of the installed ``onnx``, which an older
#: onnxruntime refuses to load; IR 8 is the version of opset 17 (onnx 1.12+), read by every onnxruntime this
#: project supports (>= 1.17).
IR_VERSION = 8
#: First name number of a builder whose nodes are appended to another graph (``GraphBuilder(start=...)``): far
#: above any number a builder of a whole model reaches, so the two sets of names never meet.
APPEND_START = 10_000_000

# ONNX ``TensorProto.DataType`` values (fixed by the ONNX specification), without importing ``onnx``.
FLOAT = 1
UINT8 = 2
INT8 = 3
INT32 = 6
INT64 = 7
BOOL = 9

Array = NDArray[np.float32]


class GraphBuilder:
    """Collects nodes and initializers with unique names, then makes a model of them.

    ``start`` is the number after which names are counted: leave it at 0 for a graph of its own, and give
    :data:`APPEND_START` when the nodes are appended to an existing graph, whose names they must not reuse.
    """

    def __init__(self, start: int = 0) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._count = start

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, value: Any, hint: str = "c", dtype: Any = np.float32) -> str:
        from onnx import numpy_helper

        n = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), n))
        return n

    def node(
        self,
        op_type: str,
        inputs: list[str],
        output: str,
        *,
        name: str | None = None,
        domain: str | None = None,
        **attrs: Any,
    ) -> str:
        """A node whose output is named ``output`` (graph outputs keep their public names); the node's own name is
        ``name``, by default ``output``."""
        from onnx import helper

        self.nodes.append(helper.make_node(op_type, inputs, [output], name=name or output, domain=domain, **attrs))
        return output

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, **attrs: Any) -> str:
        return self.node(op_type, inputs, self.name(hint or op_type.lower()), **attrs)

    def linear(self, x: str, wb: tuple[Array, Array | None], hint: str) -> str:
        """``x @ W.T + b`` for a ``(weight [out, in], bias)`` pair; a layer without bias (``None``) is the MatMul."""
        w = self.const(wb[0].T.copy(), f"{hint}.weight")
        if wb[1] is None:
            return self.op("MatMul", [x, w], hint)
        b = self.const(wb[1], f"{hint}.bias")
        return self.op("Add", [self.op("MatMul", [x, w]), b], hint)

    def layer_norm(self, x: str, gb: tuple[Array, Array | None], eps: float, hint: str) -> str:
        """LayerNorm over the last axis with ``(weight, bias)``; a norm without bias (``None``) omits the input."""
        inputs = [x, self.const(gb[0], f"{hint}.weight")]
        if gb[1] is not None:
            inputs.append(self.const(gb[1], f"{hint}.bias"))
        return self.op("LayerNormalization", inputs, hint, axis=-1, epsilon=eps)

    def model(
        self,
        name: str,
        inputs: list[onnx.ValueInfoProto],
        outputs: list[onnx.ValueInfoProto],
        *,
        contrib: bool = False,
    ) -> onnx.ModelProto:
        """The model of the collected nodes; ``contrib`` imports onnxruntime's ``com.microsoft`` domain."""
        from onnx import helper

        graph = helper.make_graph(self.nodes, name, inputs=inputs, outputs=outputs, initializer=self.inits)
        opsets = [helper.make_opsetid("", OPSET)] + ([helper.make_opsetid("com.microsoft", 1)] if contrib else [])
        model = helper.make_model(graph, opset_imports=opsets, producer_name="splade-onnx")
        model.ir_version = IR_VERSION
        return model


def value(name: str, dtype: int, shape: Sequence[str | int] | None) -> onnx.ValueInfoProto:
    """A graph input or output: ``dtype`` one of this module's type constants, ``shape`` ``None`` when unknown."""
    from onnx import helper

    return helper.make_tensor_value_info(name, dtype, shape)


def token_mask(b: GraphBuilder, mask: str) -> str:
    """``[batch, seq, 1]`` bool, True at the text's tokens."""
    return b.op("Unsqueeze", [b.op("Cast", [mask], to=BOOL), b.const([2], dtype=np.int64)])


def padding_as_first(b: GraphBuilder, h: str, keep: str) -> str:
    """``h`` [batch, seq, hidden] with padding positions replaced by position 0's state (always a real token
    with right padding): they then repeat its values and cannot change a max over tokens."""
    first = b.op("Slice", [h, b.const([0], dtype=np.int64), b.const([1], dtype=np.int64), b.const([1], dtype=np.int64)])
    return b.op("Where", [keep, h, first], "hidden_masked")


def _log1p(b: GraphBuilder, x: str, out: str | None = None) -> str:
    """An exact ``log1p`` of ``x >= 0``: ``log(u) * x / (u - 1)`` with ``u = 1 + x``, and ``x`` where ``u == 1``,
    so tiny positive weights are not rounded to zero."""
    u = b.op("Add", [x, b.const(1.0)])
    d = b.op("Sub", [u, b.const(1.0)])
    exact = b.op("Div", [b.op("Mul", [b.op("Log", [u]), x]), d])
    tiny = b.op("Equal", [d, b.const(0.0)])
    return b.node("Where", [tiny, x, exact], out or b.name("log1p"))


def splade_activation(b: GraphBuilder, x: str, activation: str, out: str | None = None) -> str:
    """``log1p(relu(x))``, and for ``"log1p_relu"`` ``log1p`` of that again (sentence-transformers' names)."""
    if activation not in ("relu", "log1p_relu"):
        raise ModelError(f"SPLADE activation {activation!r} is not supported; supported: relu, log1p_relu")
    y = b.op("Relu", [x])
    if activation == "log1p_relu":
        y = _log1p(b, y)
    return _log1p(b, y, out)
