"""``SpladeSparseDocumentEmbedder``: Documents -> copies with their SPLADE ``sparse_embedding`` set."""

from __future__ import annotations

import asyncio
import dataclasses

from haystack import Document, component

from splade_onnx import DEFAULT_MODEL, ArgumentTypeError
from splade_onnx.integration import check_bool, keyword_options, not_single

from .backend import SpladeEmbedder

__all__ = ["SpladeSparseDocumentEmbedder"]

#: The document side's encoding options (splade_onnx.EncodeOptions); the other arguments load the model or are ours.
ENCODING = ("batch_size", "max_length", "top_k", "min_weight", "long_documents", "stride")


@component
class SpladeSparseDocumentEmbedder(SpladeEmbedder):
    """Embeds Documents with splade-onnx, for a ``QdrantDocumentStore(use_sparse_embeddings=True)``.

    Each Document's text is its ``meta_fields_to_embed`` values (those present and not ``None``)
    and its ``content``, joined by ``embedding_separator``.  The Documents are encoded in one call
    (``SpladeEncoder.encode_documents``, batched under a token budget) and returned as copies with
    ``sparse_embedding`` set; the input Documents are not modified.

    ```python
    from haystack import Document
    from haystack_integrations.components.embedders.splade import SpladeSparseDocumentEmbedder

    embedder = SpladeSparseDocumentEmbedder("rasyosef/splade-tiny", meta_fields_to_embed=["title"])
    docs = embedder.run([Document(content="wing flutter", meta={"title": "Aeroelasticity"})])["documents"]
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
        batch_size: int | None = None,
        max_length: int | None = None,
        top_k: int | None = None,
        min_weight: float | None = None,
        long_documents: str = "truncate",
        stride: int | None = None,
        progress_bar: bool = True,
        meta_fields_to_embed: list[str] | None = None,
        embedding_separator: str = "\n",
    ) -> None:
        """Create the component; the options are checked now, the model is loaded by :meth:`warm_up`.

        :param model: a registry name, Hugging Face repo id or local folder (default: splade-tiny).
        :param query_model: the query checkpoint of a two-tower pair (loaded with the model, so that
            this embedder and a ``SpladeSparseTextEmbedder`` with the same options share one encoder).
        :param revision: a Hub revision (branch, tag or commit).
        :param cache_dir: where converted graphs are kept (default: splade-onnx's cache).
        :param local_files_only: never download: local folders and caches only.
        :param threads: onnxruntime threads (default: the cores this process may use).
        :param providers: onnxruntime execution providers.
        :param quantize: ``None`` or ``"int8"``.
        :param projection: ``"auto"``, ``"dense"`` or ``"pruned"`` (the same vectors).
        :param batch_size: at most this many texts per batch (default 256, under a token budget).
        :param max_length: truncate documents at this many tokens (default: the model's limit).
        :param top_k: keep each document's ``top_k`` heaviest terms.
        :param min_weight: drop document weights below this.
        :param long_documents: ``"truncate"`` or ``"windows"`` (every token, in overlapping windows merged by max).
        :param stride: tokens shared by consecutive windows (with ``long_documents="windows"``).
        :param progress_bar: show a tqdm progress bar while encoding.
        :param meta_fields_to_embed: meta fields embedded with the content, before it.
        :param embedding_separator: what joins the meta values and the content.
        """
        self.bind("document", locals(), ENCODING)  # the arguments, by name
        check_bool("progress_bar", progress_bar)
        if meta_fields_to_embed is not None:
            not_single(meta_fields_to_embed, "meta_fields_to_embed", expected="a list of str")
            bad = [f for f in meta_fields_to_embed if not isinstance(f, str)]
            if bad:
                raise ArgumentTypeError(f"meta_fields_to_embed must be a list of str, got {bad[0]!r} in it")
        if not isinstance(embedding_separator, str):
            raise ArgumentTypeError(f"embedding_separator must be a str, got {type(embedding_separator).__name__}")
        self.progress_bar = progress_bar
        self.meta_fields_to_embed = list(meta_fields_to_embed or [])
        self.embedding_separator = embedding_separator

    def text_to_embed(self, document: Document) -> str:
        """The meta values to embed (present, not ``None``) and the content, joined by the separator."""
        meta = [str(document.meta[k]) for k in self.meta_fields_to_embed if document.meta.get(k) is not None]
        return self.embedding_separator.join([*meta, document.content or ""])

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict[str, list[Document]]:
        """Embed ``documents`` with the document side.

        :param documents: the Documents to embed.
        :returns: ``{"documents": [...]}``: copies of the Documents, in order, with ``sparse_embedding`` set.
        :raises TypeError: if ``documents`` is not a list of Documents (``splade_onnx.ArgumentTypeError``).
        """
        if not isinstance(documents, list):
            raise ArgumentTypeError(
                f"SpladeSparseDocumentEmbedder.run takes a list of Documents, got {type(documents).__name__}; "
                "to embed a query string use SpladeSparseTextEmbedder"
            )
        for i, d in enumerate(documents):
            if not isinstance(d, Document):
                raise ArgumentTypeError(
                    f"SpladeSparseDocumentEmbedder.run takes a list of Documents, got {type(d).__name__} at "
                    f"position {i}; to embed a query string use SpladeSparseTextEmbedder"
                )
        texts = [self.text_to_embed(d) for d in documents]
        vectors = self.side.encode(texts, show_progress=self.progress_bar)
        return {"documents": [dataclasses.replace(d, sparse_embedding=v) for d, v in zip(documents, vectors)]}

    @component.output_types(documents=list[Document])
    async def run_async(self, documents: list[Document]) -> dict[str, list[Document]]:
        """:meth:`run` in a worker thread (onnxruntime releases the GIL), so the event loop stays free."""
        return await asyncio.to_thread(self.run, documents)
