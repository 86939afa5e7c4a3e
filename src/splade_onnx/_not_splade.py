"""Model names that are not SPLADE models, refused by name: FastEmbed 0.9.1's BM25, BM42 and miniCOIL.

FastEmbed's ``SparseTextEmbedding`` serves them beside its SPLADE models
(``fastembed/sparse/bm25.py``, ``bm42.py``, ``minicoil.py``), so code migrating from FastEmbed may name
them.  They are not an MLM with SPLADE pooling, so they are refused with what to use instead rather than
looked up on the Hub.  Names are compared case-insensitively, as registry names are.
"""

from __future__ import annotations

from ._errors import ArgumentError

__all__ = ["NOT_SPLADE", "check_splade"]

_INSTEAD = (
    "use FastEmbed itself for it (fastembed.SparseTextEmbedding({name!r})); for a SPLADE model here, pick one "
    "from splade_onnx.list_supported_models() (FastEmbed's own SPLADE models are there under their FastEmbed names)"
)

#: FastEmbed's name (lower case) -> what it is.
NOT_SPLADE: dict[str, str] = {
    "qdrant/bm25": "FastEmbed's BM25 (term statistics of a tokenizer and a stemmer, no neural network)",
    "qdrant/bm42-all-minilm-l6-v2-attentions": "FastEmbed's BM42 (all-MiniLM-L6-v2 attention weights times IDF)",
    "qdrant/minicoil-v1": "FastEmbed's miniCOIL (per-word meaning vectors on a BM25 vocabulary)",
}


def check_splade(name: str) -> None:
    """Raise :class:`~splade_onnx.ArgumentError` (a ``ValueError``) if ``name`` is one of :data:`NOT_SPLADE`."""
    what = NOT_SPLADE.get(name.lower())
    if what is None:
        return
    extra = ""
    if name.lower() == "qdrant/bm25":
        extra = (
            "; for BM25 without FastEmbed use bm25s (pip install bm25s, or splade-onnx's [eval] extra: "
            "splade_onnx.evaluate(..., bm25=True, hybrid=True) runs it beside SPLADE), and combine its ranking with "
            "SPLADE's by splade_onnx.fuse"
        )
    raise ArgumentError(
        f"{name!r} is {what}, not a SPLADE model: splade-onnx does not load it. " + _INSTEAD.format(name=name) + extra
    )
