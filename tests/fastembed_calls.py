"""Calls that FastEmbed 0.9.1's users and wrappers make on ``SparseTextEmbedding``, with only the import changed.

``tests/test_fastembed_contract.py`` runs ``mypy --strict`` on this file against the package, and runs the
functions on a real model.  Nothing here runs on import.
"""

from __future__ import annotations

from typing import Any

# from fastembed import SparseTextEmbedding, SparseEmbedding
from splade_onnx import SparseEmbedding, SparseTextEmbedding


def construct(cache_dir: str, model_name: str = "rasyosef/splade-tiny") -> SparseTextEmbedding:
    """The constructor with every argument FastEmbed's SPLADE classes take, by keyword."""
    return SparseTextEmbedding(
        model_name=model_name,
        cache_dir=cache_dir,
        threads=1,
        providers=None,
        cuda=False,
        device_ids=None,
        lazy_load=True,
        device_id=None,
        specific_model_path=None,
        local_files_only=False,
        enable_cpu_mem_arena=False,
    )


def keyword_calls(model: SparseTextEmbedding) -> list[Any]:
    """The calls of FastEmbed's type stub on a sparse embedder, and the ways its wrappers read the results."""
    out: list[Any] = [
        model.list_supported_models(),
        model.embed(documents=[""], batch_size=1, parallel=1),
        model.embed(documents="", batch_size=1, parallel=None),
        model.query_embed(query=[""], batch_size=1, parallel=1),
        model.query_embed(query="", batch_size=1, parallel=None),
        model.passage_embed(texts=[""], batch_size=1, parallel=1),
        model.passage_embed(texts=[""], batch_size=1, parallel=None),
    ]
    first: SparseEmbedding = next(model.query_embed("lunar mission"))  # langchain-qdrant's embed_query
    as_object = first.as_object()
    out.append({"indices": as_object["indices"].tolist(), "values": as_object["values"].tolist()})
    out.append({int(i): float(v) for i, v in zip(first.indices, first.values)})  # llama-index's conversion
    out.append(SparseEmbedding.from_dict(first.as_dict()))
    out.append(model.token_count(["lunar mission", "moon"], batch_size=8))
    return out


def model_attributes(model: SparseTextEmbedding) -> list[Any]:
    """What code reads from ``model.model`` (FastEmbed's loaded text model) and the model descriptions."""
    description = SparseTextEmbedding._list_supported_models()[0]
    arena: bool = model.model.model.get_session_options().enable_cpu_mem_arena
    hf: str | None = description.sources.hf
    size: float | None = description.size_in_GB
    return [description.model, description.model_file, hf, size, description.vocab_size, arena, model.model_name]
