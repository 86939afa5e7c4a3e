"""What the framework adapters (LangChain, LlamaIndex, Haystack, the Ray sinks) share with the core.

Not for end users (none of it is in ``splade_onnx.__all__``); each name is defined once, here or in
the core module named, so every adapter behaves the same:

- :func:`not_single`: the check that a bare ``str`` was not passed where a list is expected;
- :func:`keyword_options` and :func:`check_bool`: a constructor whose unknown keyword is an error listing its
  options, and the "a bool, nothing else" check, as the core's own functions do it;
- :class:`PretrainedEncoder`: ``SpladeEncoder.from_pretrained``'s arguments as one value, checked when built, and
  :meth:`PretrainedEncoder.shared`, one loaded encoder for every component built with equal load options;
- :class:`PayloadFormat`: a versioned JSON payload saved inside a :class:`~splade_onnx.SparseIndex` file
  (``SparseIndex.save(..., payload_format=)`` / ``SparseIndex.load(..., payload_format=, legacy_payload=)``);
- :data:`EngineName`: the names ``SparseIndex(engine=)`` takes (beside a :class:`~splade_onnx.Seismic`), for an
  adapter's own ``engine`` option, which it passes on unchecked for the core to validate;
- :data:`MILVUS_EMPTY_VECTOR` and :func:`milvus_vector`: how a vector is written to Milvus, which
  rejects empty sparse vectors.
"""

from __future__ import annotations

from ._checks import not_single
from ._index_engines import EngineName
from ._options import check_bool, keyword_options
from ._payload import PayloadFormat
from ._shared import PretrainedEncoder
from ._types import SparseEmbedding

__all__ = [
    "MILVUS_EMPTY_VECTOR",
    "EngineName",
    "PayloadFormat",
    "PretrainedEncoder",
    "check_bool",
    "keyword_options",
    "milvus_vector",
    "not_single",
]

#: What an empty vector is written as in Milvus, which rejects empty sparse vectors (langchain-milvus#40):
#: one term, id 0 ([PAD] in BERT vocabularies, in no document), with a weight too small to change any
#: ranking; it matches no document with a positive score.  Copy it before changing it.
MILVUS_EMPTY_VECTOR: dict[int, float] = {0: 1e-30}


def milvus_vector(embedding: SparseEmbedding) -> dict[int, float]:
    """``embedding`` as Milvus takes a sparse vector: ``{id: weight}``, or :data:`MILVUS_EMPTY_VECTOR` if it is empty.

    >>> milvus_vector(SparseEmbedding.from_dict({3: 0.5})), milvus_vector(SparseEmbedding.empty())
    ({3: 0.5}, {0: 1e-30})
    """
    return embedding.as_dict() or dict(MILVUS_EMPTY_VECTOR)
