"""What both embedders share: their options split into the load and the encoding side, one encoder per
set of load options, Haystack's vector type, ``warm_up`` and Haystack's serialization.

Both embedders take the same load options; equal ones share one loaded encoder
(``splade_onnx.integration.PretrainedEncoder.shared``).  Each keeps its own side's options
(``splade_onnx.EncodeOptions``).  Both kinds are checked by the core when the component is built;
what depends on the model's files (``max_length`` within its limit, windows that fit) is checked at
``warm_up``, before any text is encoded.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from haystack import default_from_dict, default_to_dict
from haystack.dataclasses import SparseEmbedding

from splade_onnx import EncodeOptions, SpladeEncoder
from splade_onnx.integration import PretrainedEncoder

__all__ = ["LOAD_OPTIONS", "SpladeEmbedder", "SpladeSide"]

#: The load options both embedders take, besides ``model`` (``query_model`` is from_pretrained's ``query``).
LOAD_OPTIONS = (
    "query_model",
    "revision",
    "cache_dir",
    "local_files_only",
    "threads",
    "providers",
    "quantize",
    "projection",
)

_E = TypeVar("_E", bound="SpladeEmbedder")


class SpladeSide:
    """``task``'s side (``"query"`` or ``"document"``) of the encoder loaded for ``arguments``' load options,
    with the ``encoding`` options named."""

    def __init__(self, task: str, arguments: Mapping[str, Any], encoding: Sequence[str]) -> None:
        load = {name: arguments[name] for name in LOAD_OPTIONS}
        load["query"] = load.pop("query_model")
        self.task = task
        self.spec = PretrainedEncoder(model=arguments["model"], **load)
        self.options = EncodeOptions(**{name: arguments[name] for name in encoding})
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


class SpladeEmbedder:
    """The base of both components: ``warm_up``, ``encoder``, ``to_dict`` and ``from_dict``."""

    model: str
    init_parameters: dict[str, Any]
    side: SpladeSide

    def bind(self, task: str, arguments: Mapping[str, Any], encoding: Sequence[str]) -> None:
        """Keep the constructor's arguments, taken by name from ``arguments`` (its ``locals()``), for
        :meth:`to_dict`, and build ``task``'s side from them."""
        names = [name for name in inspect.signature(type(self).__init__).parameters if name != "self"]
        self.init_parameters = {name: arguments[name] for name in names}
        self.side = SpladeSide(task, self.init_parameters, encoding)
        spec = self.side.spec  # paths as str, so that the component serializes to YAML
        self.init_parameters.update(model=spec.model, query_model=spec.query, cache_dir=spec.cache_dir)
        self.model = str(spec.model)

    @property
    def encoder(self) -> SpladeEncoder | None:
        """The loaded encoder (shared with every embedder built with the same load options), or ``None``."""
        return self.side.encoder

    def warm_up(self) -> None:
        """Load the model (once per set of load options in this process) and check the options against it."""
        self.side.warm_up()

    def to_dict(self) -> dict[str, Any]:
        """The component as Haystack serializes it: its type and every constructor argument."""
        return default_to_dict(self, **self.init_parameters)

    @classmethod
    def from_dict(cls: type[_E], data: dict[str, Any]) -> _E:
        """The component :meth:`to_dict` describes (an unknown option is an error listing the valid ones)."""
        return default_from_dict(cls, data)
