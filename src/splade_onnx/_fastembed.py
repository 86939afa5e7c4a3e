"""A drop-in for ``fastembed.SparseTextEmbedding``: change the import, keep the code.

It keeps FastEmbed 0.9.1's contract for what a user or a wrapper calls: the constructor's arguments
(:mod:`splade_onnx._fastembed_options`), ``embed`` / ``passage_embed`` / ``query_embed`` / ``token_count`` with
FastEmbed's keywords, ``list_supported_models()`` and ``_list_supported_models()``
(:mod:`splade_onnx._fastembed_models`), and ``.model``, the loaded text model, whose ``.model`` is the onnxruntime
session once the network is loaded.  Unknown keywords are refused where FastEmbed drops them unread.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ._batching import check_texts
from ._encoder import SpladeEncoder
from ._engine import NetworkEngine
from ._fastembed_models import SparseModelDescription, describe, descriptions, listed
from ._fastembed_options import construction
from ._loading import load
from ._not_splade import check_splade
from ._options import EncodeOptions, int_option, reject_options
from ._registry import DEFAULT_MODEL
from ._session import Provider, main_session
from ._types import SparseEmbedding

__all__ = ["SparseTextEmbedding", "TextModel"]

#: The keywords of ``embed`` / ``passage_embed`` / ``query_embed`` besides the texts.
_EMBED_OPTIONS = ("batch_size", "parallel", "show_progress")
_MISSPELT = "prithvida/Splade_PP_en_v1"


class SparseTextEmbedding:
    """FastEmbed's sparse-embedding class, backed by :class:`SpladeEncoder`.

    ``embed`` / ``passage_embed`` / ``query_embed`` yield :class:`SparseEmbedding` objects with numpy ``values``
    and ``indices``, as FastEmbed does.  FastEmbed's SPLADE models load under their FastEmbed names (any case),
    from the repositories FastEmbed downloads, encoded by its rules; its BM25, BM42 and miniCOIL are refused by
    name when the object is made.

    The files are fetched and the tokenizers read when the object is made.  ``lazy_load=True`` leaves the
    network's graphs unmade (unconverted, no session) until documents are encoded: an inference-free model's
    queries never load it.  Sessions open on first use either way.
    """

    def __init__(
        self,
        model_name: str = DEFAULT_MODEL,
        cache_dir: str | os.PathLike[str] | None = None,
        threads: int | None = None,
        providers: Sequence[Provider] | None = None,
        cuda: bool | str = "auto",
        device_ids: list[int] | None = None,
        lazy_load: bool = False,
        **kwargs: Any,
    ) -> None:
        check_splade(model_name)  # lazy_load or not: FastEmbed refuses an unknown name when the object is made
        made = construction(
            model_name,
            cache_dir=cache_dir,
            threads=threads,
            providers=providers,
            cuda=cuda,
            device_ids=device_ids,
            lazy_load=lazy_load,
            kwargs=kwargs,
        )
        if model_name.lower() == _MISSPELT.lower():
            warnings.warn(
                f"{_MISSPELT!r} is FastEmbed's misspelling of 'prithivida/Splade_PP_en_v1'; it loads the same model, "
                "but use the right spelling",
                DeprecationWarning,
                stacklevel=2,
            )
        #: As FastEmbed: the name given, the cache folder given (or ``FASTEMBED_CACHE_PATH``), ``threads``.
        self.model_name = model_name
        self.cache_dir = None if made.options.cache_dir is None else str(made.options.cache_dir)
        self.threads = threads
        opts = made.options
        # with specific_model_path, the folder is encoded by the rules of the model named (opts.entry), as in FastEmbed
        self._encoder = SpladeEncoder(load(made.path if made.path is not None else model_name, options=opts))
        #: FastEmbed's loaded text model (its ``SpladePP`` / ``IfSplade``): see :class:`TextModel`.
        self.model = TextModel(self, lazy=opts.lazy, providers=opts.providers, device_ids=device_ids)

    @property
    def encoder(self) -> SpladeEncoder:
        """The underlying :class:`SpladeEncoder`: ``decode``, ``explain``, pruning, windows, the query cache."""
        return self._encoder

    def embed(
        self,
        documents: str | Iterable[str],
        batch_size: int = 256,
        parallel: int | None = None,
        **kwargs: Any,
    ) -> Iterator[SparseEmbedding]:
        """Document vectors, lazily and in order.  A single string is one document.

        ``parallel=None`` (or 1) encodes in this process; ``N`` in ``N`` worker processes, ``0`` one per core.
        As in FastEmbed, a ``str`` or a list shorter than ``batch_size`` is encoded in this process whatever
        ``parallel`` says.  ``show_progress=True`` shows a progress bar.  Every argument is checked when called.
        """
        return self._embed("embed()", documents, batch_size, parallel, kwargs)

    def passage_embed(
        self, texts: Iterable[str], *, batch_size: int = 256, parallel: int | None = None, **kwargs: Any
    ) -> Iterator[SparseEmbedding]:
        """Same as :meth:`embed`."""
        return self._embed("passage_embed()", texts, batch_size, parallel, kwargs)

    def query_embed(
        self, query: str | Iterable[str], *, batch_size: int = 256, parallel: int | None = None, **kwargs: Any
    ) -> Iterator[SparseEmbedding]:
        """Query vectors, through the model's query side, lazily and in order; arguments are checked when called.

        On a query side that is a network, ``batch_size`` and ``parallel`` work as in :meth:`embed`; an
        inference-free side (a weight table) takes them and needs neither, as in FastEmbed.
        """
        return self._embed("query_embed()", query, batch_size, parallel, kwargs, task="query")

    def _embed(
        self,
        where: str,
        texts: Any,
        batch_size: Any,
        parallel: Any,
        kwargs: dict[str, Any],
        task: str = "document",
    ) -> Iterator[SparseEmbedding]:
        reject_options(where, set(kwargs) - {"show_progress"}, _EMBED_OPTIONS)
        docs = [texts] if isinstance(texts, str) else texts
        check_texts(docs)
        options = EncodeOptions(batch_size=batch_size)
        int_option(
            "parallel", parallel, least=0, allowed="None, 0 (one worker per core) or a positive int", allow_none=True
        )
        if isinstance(texts, str) or (isinstance(docs, list) and len(docs) < batch_size):
            parallel = None  # FastEmbed encodes a str, or a short list, in this process
        return self._encoder.embed(
            docs, task=task, options=options, parallel=parallel, show_progress=kwargs.get("show_progress", False)
        )

    def token_count(self, texts: str | Iterable[str], batch_size: int = 1024, **kwargs: Any) -> int:
        """Tokens the model sees for ``texts`` (after truncation, special tokens included); loads no network."""
        reject_options("token_count()", set(kwargs), ("batch_size",))
        docs = [texts] if isinstance(texts, str) else texts
        check_texts(docs)
        EncodeOptions(batch_size=batch_size)  # batch_size is checked; the count does not depend on it
        return self._encoder.token_count(docs)

    @classmethod
    def list_supported_models(cls) -> list[dict[str, Any]]:
        """FastEmbed-style descriptions as dicts (``model``, ``sources``, ``model_file``, ``size_in_GB``, ...),
        each with the registry's own fields beside them."""
        return listed()

    @classmethod
    def _list_supported_models(cls) -> list[SparseModelDescription]:
        """FastEmbed's description objects (``.model``, ``.sources.hf``, ``.size_in_GB``, ...), default model first."""
        return descriptions()


class TextModel:
    """What FastEmbed's ``SparseTextEmbedding.model`` is (its ``SpladePP`` or ``IfSplade``), for the attributes
    code reaches for: ``model`` (the onnxruntime ``InferenceSession`` of the document network), ``tokenizer``,
    ``model_name``, ``model_description``, ``load_onnx_model()``, and the embedding methods.

    As in FastEmbed, ``model`` is absent (``hasattr`` is false) while ``lazy_load=True`` has left the network
    unloaded: until documents are encoded, a network query side is used, or :meth:`load_onnx_model` is called.
    Otherwise it opens the session if it is not open yet.  An inference-free model's queries never load it.
    """

    def __init__(
        self,
        owner: SparseTextEmbedding,
        *,
        lazy: bool,
        providers: Sequence[Provider] | None,
        device_ids: list[int] | None,
    ) -> None:
        self._owner = owner
        self._asked = False
        self.model_name = owner.model_name
        self.cache_dir = owner.cache_dir
        self.threads = owner.threads
        self.lazy_load = lazy
        self.providers = providers
        self.device_ids = device_ids
        self.model_description: SparseModelDescription | None = describe(owner.model_name)
        self._tokenizer: Any = None

    def _network(self) -> NetworkEngine:
        return self._owner.encoder.loaded.document

    def _loaded(self) -> bool:
        engine = self._network()
        return self._asked or engine.main.opened or (engine.fast is not None and engine.fast.opened)

    def __getattr__(self, name: str) -> Any:
        if name == "model" and "_owner" in self.__dict__:
            if self.lazy_load and not self._loaded():
                raise AttributeError(
                    "the model is not loaded yet ('model' is absent until it is, as in FastEmbed with lazy_load=True): "
                    "encode documents or call load_onnx_model() first"
                )
            return main_session(self._network().backend)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def load_onnx_model(self) -> None:
        """Load the document network now: make its graph (convert it on a cache miss) and open its session."""
        self._network().main.get()
        self._asked = True

    @property
    def _model_dir(self) -> Path | None:
        """The folder the model's files are in (FastEmbed's ``_model_dir``, which its tests delete in CI)."""
        return self._owner.encoder.loaded.path

    @property
    def tokenizer(self) -> Any:
        """A ``tokenizers.Tokenizer`` of the document side, truncating as it does (a copy: changing it changes
        nothing here)."""
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            self._tokenizer = Tokenizer.from_str(self._network().tokenizer.to_str())
        return self._tokenizer

    def embed(
        self, documents: str | Iterable[str], batch_size: int = 256, parallel: int | None = None, **kwargs: Any
    ) -> Iterator[SparseEmbedding]:
        """:meth:`SparseTextEmbedding.embed`."""
        return self._owner.embed(documents, batch_size, parallel, **kwargs)

    def passage_embed(self, texts: Iterable[str], **kwargs: Any) -> Iterator[SparseEmbedding]:
        """:meth:`SparseTextEmbedding.passage_embed`."""
        return self._owner.passage_embed(texts, **kwargs)

    def query_embed(self, query: str | Iterable[str], **kwargs: Any) -> Iterator[SparseEmbedding]:
        """:meth:`SparseTextEmbedding.query_embed`."""
        return self._owner.query_embed(query, **kwargs)

    def token_count(self, texts: str | Iterable[str], batch_size: int = 1024, **kwargs: Any) -> int:
        """:meth:`SparseTextEmbedding.token_count`."""
        return self._owner.token_count(texts, batch_size, **kwargs)
