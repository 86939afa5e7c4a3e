"""Corpus encoding on Ray Data, from a laptop to a cluster (``pip install 'splade-onnx[ray]'``).

::

    import ray
    from splade_onnx.ray import QdrantDatasink, encode_dataset

    ds = ray.data.read_json("corpus.jsonl", lines=True)           # or read_parquet, from_items, ...
    encoded = encode_dataset(ds, model="rasyosef/splade-tiny", title_column="title", concurrency=4)
    encoded.write_datasink(QdrantDatasink("corpus", url="http://qdrant:6333", id_column="_id"))

:func:`encode_dataset` is ``ds.map_batches(SpladeBatchEncoder, ...)`` on an actor pool: each actor
builds the model once and adds two columns to every batch, ``indices`` (``list<int32>``, ascending
vocabulary ids) and ``values`` (``list<float32>``), which Arrow and Parquet store natively.  Rows
keep all their other columns.  The vectors are those of :meth:`SpladeEncoder.encode_documents
<splade_onnx.SpladeEncoder.encode_documents>` (or ``encode_queries`` with ``task="query"``): actors
encode through the same engine and settings as the encoder does in-process.

The model is resolved (downloaded, converted, quantized) once, on the driver, by
:func:`prepare_model`; actors only read the converted files.  With ``ship="disk"`` (the default)
they read them where the driver put them, which works on one machine and on a cluster whose nodes
share the cache folder (``cache_dir=`` on NFS, or the same image).  With ``ship="object_store"``
the driver puts the graph and tokenizer files into Ray's object store and each actor writes them to
a private temporary folder, so a cluster needs no shared disk and no Hub access.

Each actor runs onnxruntime on the CPUs Ray gives it (``num_cpus``, default 1), not on every core
of the node.  The Qdrant and Milvus sinks are :class:`QdrantDatasink` and :class:`MilvusDatasink`.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._cores import default_threads
from ._encoder import SpladeEncoder
from ._engine import Engine, NetworkEngine, StaticEngine, settings_for
from ._errors import ArgumentError, ArgumentTypeError, missing_extra
from ._options import EncodeOptions, keyword_options, positive_int
from ._registry import DEFAULT_MODEL
from ._types import SparseEmbedding

try:
    import numpy as np
    import pyarrow as pa  # type: ignore[import-untyped]
    import ray
    import ray.data
except ImportError as e:
    raise missing_extra("splade_onnx.ray", "splade-onnx", "ray", e) from e

from ._ray_milvus import MilvusDatasink
from ._ray_prepare import PreparedModel, check_quantize, prepare_model, unbundle
from ._ray_qdrant import QdrantDatasink, qdrant_point_id
from .integration import MILVUS_EMPTY_VECTOR

logger = logging.getLogger(__name__)

__all__ = [
    "MILVUS_EMPTY_VECTOR",
    "MilvusDatasink",
    "PreparedModel",
    "QdrantDatasink",
    "SpladeBatchEncoder",
    "encode_dataset",
    "prepare_model",
    "qdrant_point_id",
    "to_embeddings",
]

_TASKS = ("document", "query")
_OUTPUT = ("indices", "values")


def _assigned_threads() -> int:
    """The CPUs Ray assigned to this actor or task; outside Ray, the cores this process may use."""
    if ray.is_initialized():
        try:
            cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")  # type: ignore[no-untyped-call]
        except (AssertionError, RuntimeError):  # the driver, not a worker
            cpus = None
        if cpus:
            return max(1, int(cpus))
    return default_threads()


def _check_actor_options(task: object, text_column: object, title_column: object, threads: object) -> None:
    if task not in _TASKS:
        raise ArgumentError(f"task must be one of {', '.join(map(repr, _TASKS))}, got {task!r}")
    for name, col in (("text_column", text_column), ("title_column", title_column)):
        if not (isinstance(col, str) and col) and not (col is None and name == "title_column"):
            raise ArgumentTypeError(f"{name} must be a column name (a non-empty str), got {col!r}")
    positive_int("threads", threads)  # None: the CPUs Ray assigned


class SpladeBatchEncoder:
    """A callable class for ``Dataset.map_batches``: adds ``indices`` and ``values`` columns to each batch.

    ::

        ds.map_batches(SpladeBatchEncoder, fn_constructor_kwargs={"model": prepare_model("rasyosef/splade-tiny")},
                       compute=ray.data.ActorPoolStrategy(size=4), num_cpus=1, batch_size=256, batch_format="pyarrow")

    ``model`` is a :class:`PreparedModel` (resolved once on the driver: use this on a cluster) or
    anything :meth:`SpladeEncoder.from_pretrained` takes (then each actor loads it, from the cache
    when it is there).  The text of a row is ``text_column``; with ``title_column`` it is
    ``f"{title} {text}".strip()``, as BEIR and :func:`splade_onnx.evaluate` join them (a null title
    counts as empty).  ``task`` picks the side (``"document"`` or ``"query"``); ``max_length``,
    ``top_k``, ``min_weight``, ``long_documents``, ``stride`` and ``batch_size`` (rows per
    onnxruntime batch) are :meth:`SpladeEncoder.encode`'s, checked the same way.  ``threads``
    defaults to the CPUs Ray assigned to the actor.  Batches may be pyarrow tables, pandas
    frames or dicts of numpy arrays; the result has the same form.
    """

    @keyword_options
    def __init__(
        self,
        model: str | os.PathLike[str] | PreparedModel = DEFAULT_MODEL,
        *,
        task: str = "document",
        text_column: str = "text",
        title_column: str | None = None,
        quantize: str | None = None,
        threads: int | None = None,
        max_length: int | None = None,
        top_k: int | None = None,
        min_weight: float | None = None,
        long_documents: str = "truncate",
        stride: int | None = None,
        batch_size: int | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
    ) -> None:
        _check_actor_options(task, text_column, title_column, threads)
        self.task = task
        self.text_column = text_column
        self.title_column = title_column
        self.threads = threads or _assigned_threads()
        self._tmp: Path | None = None
        if isinstance(model, PreparedModel):
            check_quantize(quantize, model)
            self.engine = self._build(model)
            name, budget, dims = model.name, model.token_budget, model.max_active_dims
        else:  # this actor loads the model itself (from the cache when it is there)
            enc = SpladeEncoder.from_pretrained(
                model,
                quantize=quantize,
                cache_dir=cache_dir,
                revision=revision,
                local_files_only=local_files_only,
                threads=self.threads,
            )
            self.engine = enc.loaded.document if task == "document" else enc.loaded.query
            name, budget, dims = enc.name, enc.token_budget, enc.max_active_dims
        options = EncodeOptions(
            batch_size=batch_size,
            max_length=max_length,
            top_k=top_k,
            min_weight=min_weight,
            long_documents=long_documents,
            stride=stride,
        )
        self.settings = settings_for(self.engine, options, token_budget=budget, default_top_k=dims)
        self._warned = False
        logger.info(
            "SpladeBatchEncoder: %s, %s side, %d thread(s), files from %s",
            name,
            task,
            self.threads,
            "the object store" if self._tmp else "the cache",
        )

    def _build(self, prepared: PreparedModel) -> Engine:
        side = "query" if self.task == "query" and prepared.query != prepared.document else "document"
        recipe = prepared.document if side == "document" else prepared.query
        if isinstance(recipe, StaticEngine):
            return recipe
        if prepared.ship == "object_store":
            self._tmp = Path(tempfile.mkdtemp(prefix="splade-onnx-ray-"))
            weakref.finalize(self, shutil.rmtree, self._tmp, True)
            recipe = unbundle(prepared, side, self._tmp)
        return recipe.build(threads=self.threads)

    def __call__(self, batch: Any) -> Any:
        table, form = _as_table(batch)
        clash = [c for c in _OUTPUT if c in table.column_names]
        if clash:
            raise ArgumentError(
                f"SpladeBatchEncoder adds the columns {', '.join(map(repr, _OUTPUT))}, but the batch already has "
                f"{', '.join(map(repr, clash))}; drop or rename them first (Dataset.drop_columns / rename_columns)"
            )
        texts = self._texts(table)
        out = self.engine.encode(texts, self.settings)
        if out.cut and not self._warned:
            self._warned = True
            logger.warning(
                "a text of this actor's batches was longer than %d tokens and was cut (logged once per "
                "actor); pass long_documents='windows' to encode every token",
                self.settings.max_length or self.engine.max_length,
            )
        indices, values = vector_columns(out.vectors)
        table = table.append_column("indices", indices).append_column("values", values)
        return _from_table(table, form)

    def _texts(self, table: Any) -> list[str]:
        names = table.column_names
        for option, col in (("text_column", self.text_column), ("title_column", self.title_column)):
            if col is not None and col not in names:
                raise ArgumentError(
                    f"{option}={col!r} is not a column of the batch; its columns are {', '.join(map(repr, names))}"
                )
        texts = table.column(self.text_column).to_pylist()
        for j, t in enumerate(texts):
            if not isinstance(t, str):
                raise ArgumentTypeError(
                    f"column {self.text_column!r} must hold strings, got {type(t).__name__} {t!r:.60} in row {j} of a "
                    "batch; fill or drop such rows first (Dataset.filter)"
                )
        if self.title_column is None:
            return texts  # type: ignore[no-any-return]
        titles = table.column(self.title_column).to_pylist()
        return [f"{title or ''} {t}".strip() if isinstance(title or "", str) else t for title, t in zip(titles, texts)]


def vector_columns(vectors: Sequence[SparseEmbedding]) -> tuple[Any, Any]:
    """``indices`` (``list<int32>``) and ``values`` (``list<float32>``) Arrow arrays, one list per vector.

    >>> i, v = vector_columns([SparseEmbedding.from_dict({3: 0.5, 7: 2.0}), SparseEmbedding.empty()])
    >>> i.to_pylist(), v.to_pylist(), str(i.type), str(v.type)
    ([[3, 7], []], [[0.5, 2.0], []], 'list<item: int32>', 'list<item: float>')
    """
    lengths = np.fromiter((len(v) for v in vectors), dtype=np.int64, count=len(vectors))
    offsets = np.zeros(len(vectors) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    if vectors:
        flat_i = np.concatenate([v.indices for v in vectors]).astype(np.int32)
        flat_v = np.concatenate([v.values for v in vectors]).astype(np.float32, copy=False)
    else:
        flat_i, flat_v = np.zeros(0, np.int32), np.zeros(0, np.float32)
    off = pa.array(offsets, type=pa.int32())
    return (
        pa.ListArray.from_arrays(off, pa.array(flat_i, type=pa.int32())),
        pa.ListArray.from_arrays(off, pa.array(flat_v, type=pa.float32())),
    )


def to_embeddings(indices: Any, values: Any) -> list[SparseEmbedding]:
    """The :class:`SparseEmbedding` of each row of ``indices`` and ``values`` columns (Arrow or Python lists)."""
    idx = indices.to_pylist() if hasattr(indices, "to_pylist") else list(indices)
    val = values.to_pylist() if hasattr(values, "to_pylist") else list(values)
    return [
        SparseEmbedding(
            values=np.asarray([] if v is None else v, np.float32), indices=np.asarray([] if i is None else i, np.int64)
        )
        for i, v in zip(idx, val)
    ]


def _as_table(batch: Any) -> tuple[Any, str]:
    if isinstance(batch, pa.Table):
        return batch, "pyarrow"
    if isinstance(batch, dict):
        return pa.table(
            {k: pa.array(list(v)) if getattr(v, "dtype", np.dtype(float)).kind == "O" else v for k, v in batch.items()}
        ), "numpy"
    try:
        import pandas as pd  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - Ray Data depends on pandas
        pd = None
    if pd is not None and isinstance(batch, pd.DataFrame):
        return pa.Table.from_pandas(batch, preserve_index=False), "pandas"
    raise ArgumentTypeError(
        f"SpladeBatchEncoder takes pyarrow, pandas or numpy batches, got {type(batch).__name__}; "
        "pass batch_format='pyarrow' to map_batches"
    )


def _from_table(table: Any, form: str) -> Any:
    if form == "pyarrow":
        return table
    if form == "pandas":
        return table.to_pandas()
    return {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}


@keyword_options
def encode_dataset(
    ds: Any,
    *,
    model: str | os.PathLike[str] | SpladeEncoder | PreparedModel = DEFAULT_MODEL,
    task: str = "document",
    text_column: str = "text",
    title_column: str | None = None,
    concurrency: int | tuple[int, int] = 1,
    num_cpus: float = 1,
    threads: int | None = None,
    batch_size: int = 256,
    quantize: str | None = None,
    max_length: int | None = None,
    top_k: int | None = None,
    min_weight: float | None = None,
    long_documents: str = "truncate",
    stride: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    revision: str | None = None,
    local_files_only: bool = False,
    ship: str | None = None,
    ray_remote_args: dict[str, Any] | None = None,
) -> Any:
    """``ds`` with ``indices`` and ``values`` columns: SPLADE vectors of ``text_column``, by a pool of actors.

    The model is prepared here, once (see :func:`prepare_model`, ``ship`` and the loading options),
    and the call options are checked here, before any actor starts.  ``concurrency`` is the number
    of actors (or ``(min, max)`` for an autoscaling pool), each with ``num_cpus`` CPUs and as many
    onnxruntime threads unless ``threads`` says otherwise; ``batch_size`` rows go to an actor at a
    time.  ``ray_remote_args`` go to ``map_batches`` (``runtime_env``, ``memory``, ``max_restarts``...).
    Lazy, like every Dataset transform: nothing runs until the dataset is consumed or written.
    """
    if not isinstance(ds, ray.data.Dataset):
        raise ArgumentTypeError(f"encode_dataset takes a ray.data.Dataset, got {type(ds).__name__}")
    if isinstance(concurrency, int) and not isinstance(concurrency, bool) and concurrency >= 1:
        compute = ray.data.ActorPoolStrategy(size=concurrency)
    elif (
        isinstance(concurrency, tuple)
        and len(concurrency) == 2
        and all(isinstance(c, int) and not isinstance(c, bool) for c in concurrency)
        and 1 <= concurrency[0] <= concurrency[1]
    ):
        compute = ray.data.ActorPoolStrategy(min_size=concurrency[0], max_size=concurrency[1])
    else:
        raise ArgumentError(f"concurrency must be a positive int or a (min, max) pair of them, got {concurrency!r}")
    if isinstance(num_cpus, bool) or not isinstance(num_cpus, (int, float)) or not num_cpus > 0:
        raise ArgumentError(f"num_cpus must be a positive number, got {num_cpus!r}")
    positive_int("batch_size", batch_size, allow_none=False)
    if isinstance(model, PreparedModel):
        if ship is not None and ship != model.ship:
            raise ArgumentError(
                f"ship={ship!r} disagrees with the prepared model ({model.ship!r}); pass it to prepare_model"
            )
        check_quantize(quantize, model)
        prepared = model
    else:
        prepared = prepare_model(
            model,
            quantize=quantize,
            cache_dir=cache_dir,
            revision=revision,
            local_files_only=local_files_only,
            ship=ship or "disk",
        )
    kwargs: dict[str, Any] = {
        "model": prepared,
        "task": task,
        "text_column": text_column,
        "title_column": title_column,
        "threads": threads or max(1, int(num_cpus)),
        "max_length": max_length,
        "top_k": top_k,
        "min_weight": min_weight,
        "long_documents": long_documents,
        "stride": stride,
    }
    _check_here(prepared, kwargs)
    schema = ds.schema(fetch_if_missing=False)
    if schema is not None:
        names = list(schema.names)
        for option, col in (("text_column", text_column), ("title_column", title_column)):
            if col is not None and col not in names:
                raise ArgumentError(
                    f"{option}={col!r} is not a column of the dataset; its columns are {', '.join(map(repr, names))}"
                )
    return ds.map_batches(
        SpladeBatchEncoder,
        fn_constructor_kwargs=kwargs,
        compute=compute,
        num_cpus=num_cpus,
        batch_size=batch_size,
        batch_format="pyarrow",
        **(ray_remote_args or {}),
    )


def _check_here(prepared: PreparedModel, kwargs: dict[str, Any]) -> None:
    """Check the actors' options on the driver, with the tokenizer only (no session), so a bad one fails now."""
    _check_actor_options(kwargs["task"], kwargs["text_column"], kwargs["title_column"], kwargs["threads"])
    side = prepared.document if kwargs["task"] == "document" else prepared.query
    engine: Engine = side if isinstance(side, StaticEngine) else NetworkEngine(None, side.tokenizer())  # type: ignore[arg-type]
    names = ("max_length", "top_k", "min_weight", "long_documents", "stride")
    options = EncodeOptions.of({k: kwargs[k] for k in names})
    settings_for(engine, options, token_budget=prepared.token_budget, default_top_k=prepared.max_active_dims)
