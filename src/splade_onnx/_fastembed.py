"""A drop-in for ``fastembed.SparseTextEmbedding``: change the import, keep the code."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from . import _registry
from ._batching import check_texts
from ._encoder import SpladeEncoder
from ._loading import LoadOptions, load
from ._not_splade import check_splade
from ._options import EncodeOptions, reject_options
from ._registry import DEFAULT_MODEL, FASTEMBED_FILES, HubSource
from ._session import Provider
from ._types import SparseEmbedding

__all__ = ["SparseTextEmbedding"]

_INIT_OPTIONS = (
    "cuda",
    "device_ids",
    "device_id",
    "lazy_load",
    "specific_model_path",
    "local_files_only",
    "max_length",
)


def _later(encode: Callable[[], list[SparseEmbedding]]) -> Iterator[SparseEmbedding]:
    """The vectors of ``encode()``, computed when first asked for."""
    yield from encode()


class SparseTextEmbedding:
    """FastEmbed's sparse-embedding class, backed by :class:`SpladeEncoder`.

    ``embed`` / ``passage_embed`` / ``query_embed`` yield :class:`SparseEmbedding`
    objects with numpy ``values`` and ``indices``, as FastEmbed does.  FastEmbed's SPLADE models
    load under their FastEmbed names, from the repositories FastEmbed downloads, encoded by its
    rules; its BM25, BM42 and miniCOIL are refused by name when the object is made.
    """

    def __init__(
        self,
        model_name: str = DEFAULT_MODEL,
        cache_dir: str | os.PathLike[str] | None = None,
        threads: int | None = None,
        providers: Sequence[Provider] | None = None,
        **kwargs: Any,
    ) -> None:
        reject_options(
            "SparseTextEmbedding()",
            set(kwargs) - set(_INIT_OPTIONS),
            ("model_name", "cache_dir", "threads", "providers", *_INIT_OPTIONS),
        )
        check_splade(model_name)  # lazy_load or not: FastEmbed refuses an unknown name when the object is made
        device_ids = kwargs.get("device_ids")
        if not device_ids and kwargs.get("device_id") is not None:
            device_ids = [kwargs["device_id"]]
        if kwargs.get("cuda") and providers is None:
            dev = int(device_ids[0]) if device_ids else 0
            providers = [("CUDAExecutionProvider", {"device_id": dev})]
        self.model_name = model_name
        self._load_args: dict[str, Any] = {
            "cache_dir": cache_dir,
            "threads": threads,
            "providers": providers,
            "local_files_only": bool(kwargs.get("local_files_only", False)),
            "max_length": kwargs.get("max_length"),
        }
        self._path = kwargs.get("specific_model_path")
        self._encoder: SpladeEncoder | None = None
        if not kwargs.get("lazy_load", False):
            self._load()

    def _load(self) -> SpladeEncoder:
        if self._encoder is None:
            if self._path:  # FastEmbed encodes the folder by the rules of the model it is named for
                opts = LoadOptions(**self._load_args, entry=self.model_name)
                self._encoder = SpladeEncoder(load(self._path, options=opts))
            else:
                self._encoder = SpladeEncoder.from_pretrained(self.model_name, **self._load_args)
        return self._encoder

    @property
    def encoder(self) -> SpladeEncoder:
        """The underlying :class:`SpladeEncoder` (loaded on first use with ``lazy_load=True``)."""
        return self._load()

    def embed(
        self,
        documents: str | Iterable[str],
        batch_size: int = 256,
        parallel: int | None = None,
        **kwargs: Any,
    ) -> Iterator[SparseEmbedding]:
        """Document vectors, lazily and in order.  A single string is one document.

        Every argument is checked when called, not when the result is iterated.
        """
        return self._embed("embed()", documents, batch_size, parallel, kwargs)

    def passage_embed(self, texts: Iterable[str], **kwargs: Any) -> Iterator[SparseEmbedding]:
        """Same as :meth:`embed`."""
        return self._embed(
            "passage_embed()", texts, kwargs.pop("batch_size", 256), kwargs.pop("parallel", None), kwargs
        )

    def _embed(
        self, where: str, documents: Any, batch_size: Any, parallel: Any, kwargs: dict[str, Any]
    ) -> Iterator[SparseEmbedding]:
        reject_options(where, set(kwargs) - {"show_progress"}, ("batch_size", "parallel", "show_progress"))
        docs = [documents] if isinstance(documents, str) else documents
        return self._load().embed(
            docs,
            batch_size=batch_size,
            parallel=parallel,
            show_progress=kwargs.get("show_progress", False),
        )

    def query_embed(self, query: str | Iterable[str], **kwargs: Any) -> Iterator[SparseEmbedding]:
        """Query vectors, through the model's query side; arguments are checked when called."""
        reject_options("query_embed()", set(kwargs) - {"batch_size"}, ("batch_size",))
        enc = self._load()
        queries = [query] if isinstance(query, str) else query
        check_texts(queries)
        options = EncodeOptions(batch_size=kwargs.get("batch_size"))
        enc.check_options(options, task="query")
        return _later(lambda: enc.encode_queries(queries, options=options))

    def token_count(self, texts: str | Iterable[str], batch_size: int = 1024) -> int:
        """Tokens the model sees for ``texts`` (after truncation, special tokens included)."""
        enc = self._load()
        docs = [texts] if isinstance(texts, str) else texts
        check_texts(docs)
        EncodeOptions(batch_size=batch_size)  # batch_size is checked, then unused
        return enc.token_count(docs)

    @classmethod
    def list_supported_models(cls) -> list[dict[str, Any]]:
        """FastEmbed-style descriptions (``model``, ``sources``, ``license``, ``size_in_GB``, ...)."""
        out = []
        for m in _registry.list_models():
            hub = next((s for s in m.sources if isinstance(s, HubSource)), None)
            d = m.as_dict()
            model_file = "model.onnx" if hub and hub.format == "onnx" else "model.safetensors"
            d.update(
                model=m.name,
                sources={"hf": hub.repo_id if hub else None, "all": d["sources"]},
                model_file=model_file,
                size_in_GB=None if m.size_mb is None else round(m.size_mb / 1024, 3),
                requires_idf=None,
                additional_files=[f for f in (hub.files if hub else ()) if f not in (*FASTEMBED_FILES, model_file)],
            )
            out.append(d)
        return out
