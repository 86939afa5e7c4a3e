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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ._batching import keyword_options
from ._encoder import SpladeEncoder
from ._engine import Engine, NetworkEngine, NetworkRecipe, Settings, StaticEngine
from ._errors import ArgumentError, ArgumentTypeError, missing_extra
from ._registry import DEFAULT_MODEL
from ._session import default_threads
from ._types import SparseEmbedding

try:
    import numpy as np
    import pyarrow as pa  # type: ignore[import-untyped]
    import ray
    import ray.data
except ImportError as e:
    raise missing_extra("splade_onnx.ray", "splade-onnx", "ray", e) from e

from ._ray_milvus import MilvusDatasink
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

_SHIP = ("disk", "object_store")
_TASKS = ("document", "query")
#: What a network side reads from its model folder besides the graph (tokenizer and position limit).
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "config.json")
_OUTPUT = ("indices", "values")


@dataclass(frozen=True)
class _FixedGraph:
    """A latency graph already on disk (the recipe's ``fast_graph`` callable, made on the driver)."""

    path: Path

    def __call__(self) -> Path:
        return self.path


@dataclass(frozen=True)
class PreparedModel:
    """A model resolved and converted on the driver: all an actor needs to build its engine.

    Made by :func:`prepare_model`; picklable and small (paths, options and, with
    ``ship="object_store"``, a reference to the files in Ray's object store).
    """

    name: str
    quantize: str | None
    vocab_size: int
    max_active_dims: int | None
    token_budget: int
    document: NetworkRecipe
    #: The query side: a network recipe, or the static table of an inference-free model.
    query: NetworkRecipe | StaticEngine
    ship: str = "disk"
    #: ``ray.ObjectRef`` of ``{relative path: bytes}`` with ``ship="object_store"``.
    files: Any = None


@keyword_options
def prepare_model(
    model: str | os.PathLike[str] | SpladeEncoder = DEFAULT_MODEL,
    *,
    quantize: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    revision: str | None = None,
    local_files_only: bool = False,
    ship: str = "disk",
) -> PreparedModel:
    """Resolve, convert and cache ``model`` here (the driver), once, for actors that only read the files.

    ``model`` is what :meth:`SpladeEncoder.from_pretrained` takes, or an encoder it built.
    ``ship="disk"``: actors read the cache at the same paths (one machine, or a shared cache
    folder).  ``ship="object_store"``: the files travel through Ray's object store (needs
    ``ray.init()`` first); actors write them to a temporary folder of their own.
    """
    if ship not in _SHIP:
        raise ArgumentError(f"ship must be one of {', '.join(map(repr, _SHIP))}, got {ship!r}")
    if isinstance(model, SpladeEncoder):
        if quantize is not None or cache_dir is not None or revision is not None or local_files_only:
            raise ArgumentError("pass loading options (quantize, cache_dir, ...) with a model name, not an encoder")
        enc = model
        quantize = _quantize_of(enc)
    else:
        enc = SpladeEncoder.from_pretrained(model, quantize=quantize, cache_dir=cache_dir, revision=revision,
                                            local_files_only=local_files_only, threads=1)  # fmt: skip
    recipe = enc._recipes.get("document")
    if recipe is None:
        raise ArgumentError(
            "prepare_model needs an encoder built by SpladeEncoder.from_pretrained (actors reload its files)"
        )
    doc = _fixed(recipe)
    query: NetworkRecipe | StaticEngine
    if isinstance(enc._query, StaticEngine):
        query = enc._query
    else:
        q = enc._recipes.get("query")
        query = doc if q is None else _fixed(q)
    files = ray.put(_bundle(doc, query)) if ship == "object_store" else None
    return PreparedModel(name=enc.name, quantize=quantize, vocab_size=enc.vocab_size,
                         max_active_dims=enc.max_active_dims, token_budget=enc.token_budget, document=doc,
                         query=query, ship=ship, files=files)  # fmt: skip


def _quantize_of(enc: SpladeEncoder) -> str | None:
    recipe = enc._recipes.get("document")
    if recipe is None:
        return None
    return "int8" if " int8 " in _variant(recipe.graph) else None


def _variant(graph: Path) -> str:
    import json

    try:
        return str(json.loads((graph.parent / "meta.json").read_text()).get("variant", ""))
    except (OSError, ValueError):
        return ""


def _fixed(recipe: NetworkRecipe) -> NetworkRecipe:
    """``recipe`` with its latency graph made now, so that no actor converts it on its first short batch."""
    if recipe.fast_graph is None or isinstance(recipe.fast_graph, _FixedGraph):
        return recipe
    return replace(recipe, fast_graph=_FixedGraph(recipe.fast_graph()))


def _sides(doc: NetworkRecipe, query: NetworkRecipe | StaticEngine) -> dict[str, NetworkRecipe]:
    sides = {"document": doc}
    if isinstance(query, NetworkRecipe) and query != doc:
        sides["query"] = query
    return sides


def _bundle(doc: NetworkRecipe, query: NetworkRecipe | StaticEngine) -> dict[str, bytes]:
    """``{side/part/file: bytes}``: the graphs (with any external data) and tokenizer files of each network side."""
    out: dict[str, bytes] = {}
    for side, r in _sides(doc, query).items():
        parts = {"graph": r.graph.parent}
        if isinstance(r.fast_graph, _FixedGraph):
            parts["fast"] = r.fast_graph.path.parent
        for part, folder in parts.items():
            for f in sorted(folder.iterdir()):
                if f.is_file() and f.name != "meta.json":
                    out[f"{side}/{part}/{f.name}"] = f.read_bytes()
        for name in _TOKENIZER_FILES:
            if (r.folder / name).is_file():
                out[f"{side}/tokenizer/{name}"] = (r.folder / name).read_bytes()
    return out


def _unbundle(prepared: PreparedModel, side: str, into: Path) -> NetworkRecipe:
    """The recipe of ``side`` pointing at its shipped files, written under ``into``."""
    recipe = prepared.document if side == "document" else prepared.query
    assert isinstance(recipe, NetworkRecipe)
    files: dict[str, bytes] = ray.get(prepared.files)
    for name, data in files.items():
        if name.startswith(side + "/"):
            dest = into / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
    fast = _FixedGraph(into / side / "fast" / recipe.fast_graph.path.name) if isinstance(
        recipe.fast_graph, _FixedGraph) else None  # fmt: skip
    head = into / side / "graph" / recipe.head.name if recipe.head is not None else None  # beside the graph
    return replace(recipe, graph=into / side / "graph" / recipe.graph.name, head=head, fast_graph=fast,
                   folder=into / side / "tokenizer")  # fmt: skip


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


def _settings(
    engine: Engine, token_budget: int, max_active_dims: int | None, task: str, options: dict[str, Any]
) -> Settings:
    """The encoder's own checks and :class:`Settings` for these call options (the in-process encoder's path)."""
    shell = SpladeEncoder.__new__(SpladeEncoder)
    shell._document = shell._query = engine  # type: ignore[assignment]
    shell.token_budget = token_budget
    shell.max_active_dims = max_active_dims
    return shell._check_call([], task=task, **options)[1]


def _check_actor_options(task: object, text_column: object, title_column: object, threads: object) -> None:
    if task not in _TASKS:
        raise ArgumentError(f"task must be one of {', '.join(map(repr, _TASKS))}, got {task!r}")
    for name, col in (("text_column", text_column), ("title_column", title_column)):
        if not (isinstance(col, str) and col) and not (col is None and name == "title_column"):
            raise ArgumentTypeError(f"{name} must be a column name (a non-empty str), got {col!r}")
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
        raise ArgumentError(f"threads must be a positive int or None (the CPUs Ray assigned), got {threads!r}")


def _check_quantize(quantize: str | None, prepared: PreparedModel) -> None:
    if quantize is not None and quantize != prepared.quantize:
        raise ArgumentError(
            f"quantize={quantize!r} disagrees with the prepared model ({prepared.quantize!r}); pass it to prepare_model"
        )


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
            _check_quantize(quantize, model)
            self.engine = self._build(model)
            name, budget, dims = model.name, model.token_budget, model.max_active_dims
        else:  # this actor loads the model itself (from the cache when it is there)
            enc = SpladeEncoder.from_pretrained(model, quantize=quantize, cache_dir=cache_dir, revision=revision,
                                                local_files_only=local_files_only, threads=self.threads)  # fmt: skip
            self.engine = enc._document if task == "document" else enc._query
            name, budget, dims = enc.name, enc.token_budget, enc.max_active_dims
        options = {"batch_size": batch_size, "max_length": max_length, "top_k": top_k, "min_weight": min_weight,
                   "long_documents": long_documents, "stride": stride}  # fmt: skip
        self.settings = _settings(self.engine, budget, dims, task, options)
        self._warned = False
        logger.info("SpladeBatchEncoder: %s, %s side, %d thread(s), files from %s", name, task, self.threads,
                    "the object store" if self._tmp else "the cache")  # fmt: skip

    def _build(self, prepared: PreparedModel) -> Engine:
        side = "query" if self.task == "query" and prepared.query != prepared.document else "document"
        recipe = prepared.document if side == "document" else prepared.query
        if isinstance(recipe, StaticEngine):
            return recipe
        if prepared.ship == "object_store":
            self._tmp = Path(tempfile.mkdtemp(prefix="splade-onnx-ray-"))
            weakref.finalize(self, shutil.rmtree, self._tmp, True)
            recipe = _unbundle(prepared, side, self._tmp)
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
            logger.warning("a text of this actor's batches was longer than %d tokens and was cut (logged once per "
                           "actor); pass long_documents='windows' to encode every token",
                           self.settings.max_length or self.engine.max_length)  # fmt: skip
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
    return (pa.ListArray.from_arrays(off, pa.array(flat_i, type=pa.int32())),
            pa.ListArray.from_arrays(off, pa.array(flat_v, type=pa.float32())))  # fmt: skip


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
        return pa.table({k: pa.array(list(v)) if getattr(v, "dtype", np.dtype(float)).kind == "O" else v
                         for k, v in batch.items()}), "numpy"  # fmt: skip
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
    elif (isinstance(concurrency, tuple) and len(concurrency) == 2
          and all(isinstance(c, int) and not isinstance(c, bool) for c in concurrency)
          and 1 <= concurrency[0] <= concurrency[1]):  # fmt: skip
        compute = ray.data.ActorPoolStrategy(min_size=concurrency[0], max_size=concurrency[1])
    else:
        raise ArgumentError(f"concurrency must be a positive int or a (min, max) pair of them, got {concurrency!r}")
    if isinstance(num_cpus, bool) or not isinstance(num_cpus, (int, float)) or not num_cpus > 0:
        raise ArgumentError(f"num_cpus must be a positive number, got {num_cpus!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ArgumentError(f"batch_size must be a positive int, got {batch_size!r}")
    if isinstance(model, PreparedModel):
        if ship is not None and ship != model.ship:
            raise ArgumentError(
                f"ship={ship!r} disagrees with the prepared model ({model.ship!r}); pass it to prepare_model"
            )
        _check_quantize(quantize, model)
        prepared = model
    else:
        prepared = prepare_model(model, quantize=quantize, cache_dir=cache_dir, revision=revision,
                                 local_files_only=local_files_only, ship=ship or "disk")  # fmt: skip
    kwargs: dict[str, Any] = {"model": prepared, "task": task, "text_column": text_column,
                              "title_column": title_column, "threads": threads or max(1, int(num_cpus)),
                              "max_length": max_length, "top_k": top_k, "min_weight": min_weight,
                              "long_documents": long_documents, "stride": stride}  # fmt: skip
    _check_here(prepared, kwargs)
    schema = ds.schema(fetch_if_missing=False)
    if schema is not None:
        names = list(schema.names)
        for option, col in (("text_column", text_column), ("title_column", title_column)):
            if col is not None and col not in names:
                raise ArgumentError(f"{option}={col!r} is not a column of the dataset; its columns are "
                                    f"{', '.join(map(repr, names))}")  # fmt: skip
    return ds.map_batches(SpladeBatchEncoder, fn_constructor_kwargs=kwargs, compute=compute, num_cpus=num_cpus,
                          batch_size=batch_size, batch_format="pyarrow", **(ray_remote_args or {}))  # fmt: skip


def _check_here(prepared: PreparedModel, kwargs: dict[str, Any]) -> None:
    """Check the actors' options on the driver, with the tokenizer only (no session), so a bad one fails now."""
    _check_actor_options(kwargs["task"], kwargs["text_column"], kwargs["title_column"], kwargs["threads"])
    side = prepared.document if kwargs["task"] == "document" else prepared.query
    engine: Engine = side if isinstance(side, StaticEngine) else NetworkEngine(None, side.tokenizer())  # type: ignore[arg-type]
    options = {k: kwargs[k] for k in ("max_length", "top_k", "min_weight", "long_documents", "stride")}
    _settings(engine, prepared.token_budget, prepared.max_active_dims, kwargs["task"], options)
