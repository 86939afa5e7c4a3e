"""``SpladeSparseTextEmbedder``: a query string -> its SPLADE ``SparseEmbedding``, from the model's query side."""

from __future__ import annotations

import asyncio

from haystack import component
from haystack.dataclasses import SparseEmbedding

from splade_onnx import DEFAULT_MODEL, ArgumentTypeError
from splade_onnx.integration import keyword_options

from .backend import SpladeEmbedder

__all__ = ["SpladeSparseTextEmbedder"]

#: The query side's encoding options (splade_onnx.EncodeOptions); the other arguments load the model.
ENCODING = ("max_length", "top_k", "min_weight")


@component
class SpladeSparseTextEmbedder(SpladeEmbedder):
    """Embeds a query with splade-onnx, for ``QdrantSparseEmbeddingRetriever`` or ``QdrantHybridRetriever``.

    The query goes through the model's query side (``SpladeEncoder.encode_queries``): the same
    network for standard SPLADE, the query tower of a two-tower pair (``query_model``), or the
    static weight table of an inference-free model (no forward pass).

    ```python
    from haystack_integrations.components.embedders.splade import SpladeSparseTextEmbedder

    embedder = SpladeSparseTextEmbedder("rasyosef/splade-tiny")
    sparse = embedder.run("flutter of wings")["sparse_embedding"]
    ```
    """

    @keyword_options
    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        query_model: str | None = None,
        revision: str | None = None,
        cache_dir: str | None = None,
        local_files_only: bool = False,
        threads: int | None = None,
        providers: list[str] | None = None,
        quantize: str | None = None,
        projection: str = "auto",
        max_length: int | None = None,
        top_k: int | None = None,
        min_weight: float | None = None,
    ) -> None:
        """Create the component; the options are checked now, the model is loaded by :meth:`warm_up`.

        :param model: a registry name, Hugging Face repo id or local folder (default: splade-tiny).
        :param query_model: the query checkpoint of a two-tower pair.
        :param revision: a Hub revision (branch, tag or commit).
        :param cache_dir: where converted graphs are kept (default: splade-onnx's cache).
        :param local_files_only: never download: local folders and caches only.
        :param threads: onnxruntime threads (default: the cores this process may use).
        :param providers: onnxruntime execution providers.
        :param quantize: ``None`` or ``"int8"``.
        :param projection: ``"auto"``, ``"dense"`` or ``"pruned"`` (the same vectors).
        :param max_length: truncate queries at this many tokens (default: the query side's limit).
        :param top_k: keep each query's ``top_k`` heaviest terms.
        :param min_weight: drop query weights below this.
        """
        self.bind("query", locals(), ENCODING)  # the arguments, by name

    @component.output_types(sparse_embedding=SparseEmbedding)
    def run(self, text: str) -> dict[str, SparseEmbedding]:
        """Embed ``text`` with the query side.

        :param text: the query.
        :returns: ``{"sparse_embedding": SparseEmbedding}`` (ascending ``int`` indices, ``float`` values).
        :raises TypeError: if ``text`` is not a ``str`` (``splade_onnx.ArgumentTypeError``).
        """
        if not isinstance(text, str):
            raise ArgumentTypeError(
                f"SpladeSparseTextEmbedder.run takes one str, got {type(text).__name__}; "
                "to embed Documents use SpladeSparseDocumentEmbedder"
            )
        (embedding,) = self.side.encode([text])
        return {"sparse_embedding": embedding}

    @component.output_types(sparse_embedding=SparseEmbedding)
    async def run_async(self, text: str) -> dict[str, SparseEmbedding]:
        """:meth:`run` in a worker thread (onnxruntime releases the GIL), so the event loop stays free."""
        return await asyncio.to_thread(self.run, text)
