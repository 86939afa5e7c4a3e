"""int8 graphs: onnxruntime's dynamic quantization of a converted graph, cached beside its fp32 original.

Two recipes, both ``onnxruntime.quantization.quantize_dynamic`` with int8 weights, one scale per tensor:

* :func:`int8_graph`, every ``MatMul`` (the encoder and the vocabulary projection): the dense head's int8 graph;
* :func:`int8_encoder_graph`, only the ``MatMul`` nodes up to the MLM head's LayerNorm (the encoder and the head's
  dense layer): the graph feeding the exact pruned head, whose bound and logits stay fp32, so the head is exact
  with respect to the int8 encoder's hidden states.  Applied to the dense graph it gives that head's reference,
  the int8 encoder followed by the fp32 dense head.

The graphs' encoder nodes are found by name: :func:`~splade_onnx._graph_dense.build_graph` names the head's
LayerNorm ``head.ln*``, and every node before its last one belongs to the encoder.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ._cache import cached_graph
from ._errors import ModelError

if TYPE_CHECKING:
    import onnx

    from ._hub import ResolvedModel

__all__ = ["encoder_matmuls", "int8_encoder_graph", "int8_graph", "quantize"]

#: Name prefix of the MLM head's LayerNorm nodes in every converted graph.
_HEAD_LN = "head.ln"


def encoder_matmuls(model: onnx.ModelProto) -> list[str]:
    """The names of the ``MatMul`` nodes before the end of the head's LayerNorm: the encoder's and the head's dense
    layer's, never the vocabulary projection's nor the pruned head's bound."""
    nodes = list(model.graph.node)
    ends = [i for i, n in enumerate(nodes) if n.name.startswith(_HEAD_LN)]
    if not ends:
        raise ModelError(
            f"graph {model.graph.name!r} has no {_HEAD_LN!r} node: the int8 encoder is made only of graphs that "
            "splade-onnx converted from a checkpoint; use quantize='int8' with projection='dense'"
        )
    return [n.name for n in nodes[: ends[-1]] if n.op_type == "MatMul"]


def quantize(fp32: Path, dest: Path, *, encoder_only: bool) -> None:
    """Write the int8 form of the graph ``fp32`` to ``dest``: every MatMul, or only :func:`encoder_matmuls`."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    nodes: list[str] | None = None  # None: every MatMul
    if encoder_only:
        import onnx

        nodes = encoder_matmuls(onnx.load(str(fp32)))
    root = logging.getLogger()
    root.addFilter(_no_preprocessing_advice)
    try:
        quantize_dynamic(
            fp32, dest, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"], nodes_to_quantize=nodes
        )
    finally:
        root.removeFilter(_no_preprocessing_advice)


def _no_preprocessing_advice(record: logging.LogRecord) -> bool:
    """Drop onnxruntime's root-logger advice to pre-process image models before quantizing: converted graphs
    are already in the form its pre-processing would give, and the advice would reach every user's log."""
    return not str(record.msg).startswith("Please consider to run pre-processing before quantization")


def int8_graph(res: ResolvedModel, root: Path, fp32: Path) -> Path:
    """onnxruntime's dynamic quantization (int8 weights, per tensor) of every MatMul in ``fp32``."""
    return cached_graph(
        res,
        root,
        f"{fp32.parent.name} int8 dynamic QInt8 per-tensor MatMul",
        lambda dest: quantize(fp32, dest, encoder_only=False),
    )


def int8_encoder_graph(res: ResolvedModel, root: Path, fp32: Path, *, notes: Mapping[str, str] | None = None) -> Path:
    """The int8 encoder of ``fp32`` (:func:`encoder_matmuls` quantized, everything after them fp32), cached; the
    text files ``notes`` (``{name: text}``: the plan, the fit) are written into the same entry."""

    def build(dest: Path) -> None:
        quantize(fp32, dest, encoder_only=True)
        for name, text in (notes or {}).items():
            (dest.parent / name).write_text(text)

    return cached_graph(res, root, f"{fp32.parent.name} int8 encoder dynamic QInt8 per-tensor MatMul", build)
