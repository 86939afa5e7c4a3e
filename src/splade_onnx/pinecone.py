"""SPLADE as pinecone-text's ``BaseSparseEncoder``, for Pinecone's hybrid search (extra ``[pinecone]``).

::

    from splade_onnx.pinecone import SpladePineconeEncoder

    splade = SpladePineconeEncoder()                     # was: pinecone_text.sparse.SpladeEncoder()
    splade.encode_documents("a document")                # {"indices": [...], "values": [...]}
    splade.encode_queries(["a query", "another query"])  # a list of such dicts

:class:`SpladePineconeEncoder` keeps the contract of pinecone-text's ``SpladeEncoder``: a ``str``
gives one dict, a list gives a list of dicts, each ``{"indices": [int, ...], "values": [float,
...]}`` with ascending vocabulary ids and positive weights, in fresh lists the caller may change;
texts are cut at ``max_seq_length`` tokens (default 256, special tokens included).  On the same
checkpoint it gives pinecone-text's vectors (tested against pinecone-text itself).

With pinecone-text installed (``pip install 'splade-onnx[pinecone]'``, which needs no torch) the
class is a subclass of its ``BaseSparseEncoder``, chosen when this module is imported
(:data:`FROM_PINECONE_TEXT`); without it, the same class stands alone, and its dicts still go to
Pinecone's client as they are.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, overload

from ._encoder import SpladeEncoder
from ._errors import ArgumentError, ArgumentTypeError
from ._options import EncodeOptions
from ._registry import DEFAULT_MODEL
from ._types import SparseEmbedding

__all__ = ["DEFAULT_MAX_SEQ_LENGTH", "FROM_PINECONE_TEXT", "SparseVector", "SpladePineconeEncoder"]

#: pinecone-text's ``SparseVector``: ``{"indices": [int, ...], "values": [float, ...]}``.
SparseVector = dict[str, list[int] | list[float]]

#: pinecone-text's default truncation length.
DEFAULT_MAX_SEQ_LENGTH = 256

if TYPE_CHECKING:  # pinecone-text ships no type information: type checkers see a plain class
    _Base = object
else:
    try:
        from pinecone_text.sparse.base_sparse_encoder import BaseSparseEncoder as _Base
    except ImportError:
        _Base = object

#: Whether :class:`SpladePineconeEncoder` is a ``pinecone_text.sparse.base_sparse_encoder.BaseSparseEncoder``.
FROM_PINECONE_TEXT: bool = _Base is not object


def as_sparse_vector(embedding: SparseEmbedding) -> SparseVector:
    """``embedding`` as pinecone-text's dict, in new Python lists of ``int`` and ``float``."""
    return {"indices": embedding.indices.tolist(), "values": embedding.values.tolist()}


class SpladePineconeEncoder(_Base):
    """SPLADE for pinecone-text's hybrid search: ``encode_documents`` / ``encode_queries`` on a str or a list.

    ``model`` is a registry name, HF repo id, local folder or a loaded :class:`~splade_onnx.SpladeEncoder`
    (default :data:`~splade_onnx.DEFAULT_MODEL`); pinecone-text's own model is
    ``"naver/splade-cocondenser-ensembledistil"`` (CC BY-NC-SA: not for commercial use).  Other keywords
    (``cache_dir``, ``quantize``, ``threads``, ``providers``, ...) go to ``SpladeEncoder.from_pretrained``.

    ``max_seq_length`` (default 256, or the model's limit if lower) truncates the network sides,
    special tokens included; it must be an int from 2 to the model's position limit (pinecone-text
    takes 1 to 512, but a SPLADE vector needs room for ``[CLS]`` and ``[SEP]``).  ``device`` is
    pinecone-text's argument: ``None`` or ``"cpu"``; other devices go through onnxruntime's
    ``providers=``.  Queries use the model's query side (for inference-free models, a static table
    with no network and no truncation at ``max_seq_length``).
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | SpladeEncoder = DEFAULT_MODEL,
        *,
        max_seq_length: int | None = None,
        device: str | None = None,
        **options: Any,
    ) -> None:
        if isinstance(model, int) and not isinstance(model, bool):
            raise ArgumentTypeError(
                f"SpladePineconeEncoder takes the model first, got the int {model!r}; "
                f"pass max_seq_length={model} by keyword"
            )
        if max_seq_length is not None and (not isinstance(max_seq_length, int) or isinstance(max_seq_length, bool)):
            got = f"{type(max_seq_length).__name__} {max_seq_length!r}"
            raise ArgumentTypeError(f"max_seq_length must be an int or None, got {got}")
        if max_seq_length is not None and max_seq_length < 2:
            raise ArgumentError(
                f"max_seq_length must be at least 2 (room for [CLS] and [SEP]), got {max_seq_length}; "
                f"pinecone-text's default is {DEFAULT_MAX_SEQ_LENGTH}"
            )
        if device not in (None, "cpu"):
            raise ArgumentError(
                f"device={device!r}: this encoder runs on onnxruntime; pass device=None or 'cpu', or choose "
                "onnxruntime's execution providers with providers=[...]"
            )
        if "max_length" in options:
            raise ArgumentError("pass max_seq_length=, pinecone-text's name for the truncation length, not max_length=")
        if isinstance(model, SpladeEncoder):
            if options:
                raise ArgumentError(f"options {sorted(options)} apply when loading a model by name, not to an encoder")
            self.encoder = model
        else:
            self.encoder = SpladeEncoder.from_pretrained(model, **options)
        limit = self.encoder.loaded.document.tokenizer.limit  # the model's positions
        if max_seq_length is not None and max_seq_length > limit:
            raise ArgumentError(
                f"max_seq_length must be from 2 to {limit} for {self.encoder.name} (its position limit), "
                f"got {max_seq_length}"
            )
        #: Texts are cut at this many tokens, special tokens included (pinecone-text's attribute).
        self.max_seq_length: int = min(DEFAULT_MAX_SEQ_LENGTH, limit) if max_seq_length is None else max_seq_length
        self.device = "cpu"
        self._documents = EncodeOptions(max_length=self.max_seq_length)
        static = self.encoder.query_mode == "static"
        self._queries = EncodeOptions() if static else EncodeOptions(max_length=self.max_seq_length)
        self.encoder.check_options(self._queries, task="query")

    def __repr__(self) -> str:
        return f"SpladePineconeEncoder(model={self.encoder.name!r}, max_seq_length={self.max_seq_length})"

    @overload
    def encode_documents(self, texts: str) -> SparseVector: ...
    @overload
    def encode_documents(self, texts: list[str]) -> list[SparseVector]: ...
    def encode_documents(self, texts: str | list[str]) -> SparseVector | list[SparseVector]:
        """Document vectors: one dict for a ``str``, a list of dicts for a list (``[]`` for ``[]``)."""
        return self._encode(texts, "document", self._documents)

    @overload
    def encode_queries(self, texts: str) -> SparseVector: ...
    @overload
    def encode_queries(self, texts: list[str]) -> list[SparseVector]: ...
    def encode_queries(self, texts: str | list[str]) -> SparseVector | list[SparseVector]:
        """Query vectors, from the model's query side: one dict for a ``str``, a list of dicts for a list."""
        return self._encode(texts, "query", self._queries)

    def _encode(self, texts: object, task: str, options: EncodeOptions) -> SparseVector | list[SparseVector]:
        if isinstance(texts, str):
            (vector,) = self.encoder.encode([texts], task=task, options=options)
            return as_sparse_vector(vector)
        if texts is None or isinstance(texts, (bytes, bytearray, memoryview)) or not isinstance(texts, Iterable):
            raise ArgumentTypeError(f"texts must be a str or a list of str, got {type(texts).__name__}")
        return [as_sparse_vector(v) for v in self.encoder.encode(texts, task=task, options=options)]
