"""FastEmbed 0.9.1's model descriptions, built from the registry: what the facade's model lists return.

FastEmbed describes each model with a frozen ``SparseModelDescription`` (``model``, ``sources``, ``model_file``,
``description``, ``license``, ``size_in_GB``, ``additional_files``, ``requires_idf``, ``vocab_size``) whose
``sources`` is a ``ModelSource`` (``hf``, ``url``); ``list_supported_models()`` is the same as dicts
(``fastembed/common/model_description.py``).  The classes here have those fields, so code written against
FastEmbed's descriptions reads ours unchanged.  Every registry entry is listed under its name, and a FastEmbed
model also under the other names FastEmbed lists it by (its ``prithvida/...`` misspelling).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from . import _registry
from ._model_info import FASTEMBED_FILES, HubSource, ModelInfo

__all__ = ["ModelSource", "SparseModelDescription", "describe", "descriptions", "listed"]


@dataclass(frozen=True)
class ModelSource:
    """Where a model is downloaded from: its Hugging Face repository (``hf``), or a ``url``."""

    hf: str | None = None
    url: str | None = None

    @property
    def deprecated_tar_struct(self) -> bool:
        """FastEmbed's flag for its old tar archives; no model here comes as one."""
        return False


@dataclass(frozen=True)
class SparseModelDescription:
    """One model, as FastEmbed describes it.

    ``model_file`` is the file the model is read from (``model.onnx`` for an ONNX export, ``model.safetensors``
    for a checkpoint, ``pytorch_model.bin`` for a repository that ships only that).  ``size_in_GB`` is ``None``
    where the registry does not know the size.
    """

    model: str
    sources: ModelSource
    model_file: str
    description: str
    license: str
    size_in_GB: float | None
    additional_files: list[str] = field(default_factory=list)
    requires_idf: bool | None = None
    vocab_size: int | None = None


def _description(info: ModelInfo, name: str) -> SparseModelDescription:
    hub = next((s for s in info.sources if isinstance(s, HubSource)), None)
    model_file = hub.weights() if hub is not None else "model.safetensors"
    additional = [f for f in (hub.files if hub else ()) if f not in (*FASTEMBED_FILES, model_file)]
    return SparseModelDescription(
        model=name,
        sources=ModelSource(hf=hub.repo_id) if hub is not None else ModelSource(url=info.sources[0].label()),
        model_file=model_file,
        description=info.description,
        license=info.license,
        size_in_GB=None if info.size_mb is None else round(info.size_mb / 1024, 3),
        additional_files=additional,
        vocab_size=info.vocab_size,
    )


def _names(info: ModelInfo) -> list[str]:
    """``info``'s name, then, for a FastEmbed model, the aliases FastEmbed lists as models of their own (not the
    repositories it downloads from)."""
    if info.fastembed is None:
        return [info.name]
    repos = {s.repo_id.lower() for s in info.sources if isinstance(s, HubSource)}
    return [info.name, *(a for a in info.aliases if a.lower() not in repos)]


def descriptions() -> list[SparseModelDescription]:
    """Every model the facade loads by name, default model first (FastEmbed's ``_list_supported_models()``)."""
    return [_description(info, name) for info in _registry.list_models() for name in _names(info)]


def describe(name: str) -> SparseModelDescription | None:
    """The description of the model named ``name`` (case-insensitive), else ``None``."""
    info = _registry.get(name)
    if info is None:
        return None
    listed_as = next((n for n in _names(info) if n.lower() == name.lower()), info.name)
    return _description(info, listed_as)


def listed() -> list[dict[str, Any]]:
    """:func:`descriptions` as dicts (FastEmbed's ``list_supported_models()``), each with the registry's own
    fields beside FastEmbed's (``name``, ``commercial_use``, ``query_mode``, ...)."""
    out = []
    for info in _registry.list_models():
        for name in _names(info):
            out.append({**info.as_dict(), **asdict(_description(info, name))})
    return out
