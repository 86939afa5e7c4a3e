"""One embedder's side of a shared encoder: its load options, its encoding options, Haystack's vector type.

Both embedders take the same load options; equal ones share one loaded encoder
(``splade_onnx.integration.EncoderSpec.shared``).  Each keeps its own side's options
(``splade_onnx.EncodeOptions``).  Both kinds of option are checked by the core when the component is
built; what depends on the model's files (a ``max_length`` above its limit, windows that do not fit)
is checked at ``warm_up``, before any text is encoded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from haystack.dataclasses import SparseEmbedding

from splade_onnx import EncodeOptions, SpladeEncoder
from splade_onnx.integration import EncoderSpec

__all__ = ["SpladeSide"]


class SpladeSide:
    """``task``'s side (``"query"`` or ``"document"``) of the encoder loaded for ``model`` and ``load``."""

    def __init__(self, task: str, model: str, load: dict[str, Any], encode: dict[str, Any]) -> None:
        load = dict(load)
        self.task = task
        self.spec = EncoderSpec(model=model, query=load.pop("query_model"), **load)
        self.options = EncodeOptions(**encode)
        self.encoder: SpladeEncoder | None = None

    def warm_up(self) -> SpladeEncoder:
        """The shared encoder, loaded on the first call, with this side's options checked against it."""
        if self.encoder is None:
            encoder = self.spec.shared()
            encoder.check_options(self.options, task=self.task)
            self.encoder = encoder
        return self.encoder

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> list[SparseEmbedding]:
        """Haystack vectors (Python ``int`` indices, ascending, and ``float`` values) from the core's."""
        encoder = self.warm_up()
        verb = encoder.encode_queries if self.task == "query" else encoder.encode_documents
        return [
            SparseEmbedding(indices=v.indices.tolist(), values=v.values.tolist())
            for v in verb(texts, options=self.options, show_progress=show_progress)
        ]
