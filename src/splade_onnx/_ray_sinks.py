"""Ray Data sinks that upsert SPLADE vectors into Qdrant and Milvus (public through :mod:`splade_onnx.ray`).

Both are :class:`ray.data.Datasink` subclasses, so Ray schedules, retries and reports the writes;
nothing here schedules anything.  Each ``write`` task opens its own client, upserts its rows in
batches and closes the client.  Writes are idempotent: a point's id is derived from the row's
document id, so a task that Ray runs again (its worker died mid-write) writes the same points again
and never duplicates one.  Transient errors (connection lost, timeouts, rate limits, 5xx) are
retried with exponential backoff, a bounded number of times, each retry logged.

A local store (Qdrant local mode ``path=``, a Milvus Lite ``.db`` file) has one writer process at a
time: the sink then writes from the driver's node only (``supports_distributed_writes`` is
``False``) and its write tasks take turns through a lock file beside the store
(``<path>.splade-writer.lock``), so ``write_datasink(sink)`` is safe with any ``concurrency``;
``concurrency=1`` avoids tasks waiting on each other.  Close your own client of a local store before
writing to it (the store allows one open client).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ._errors import ArgumentError, ArgumentTypeError, missing_extra
from ._options import keyword_options

try:
    import pyarrow as pa  # type: ignore[import-untyped]
    from ray.data import Datasink
    from ray.data.block import BlockAccessor
except ImportError as e:  # pragma: no cover - the missing extra is tested in splade_onnx.ray
    raise missing_extra("splade_onnx.ray", "splade-onnx", "ray", e) from e

if TYPE_CHECKING:
    from ray.data.datasource.datasink import WriteResult

logger = logging.getLogger(__name__)

__all__ = ["MILVUS_EMPTY_VECTOR", "MilvusDatasink", "QdrantDatasink", "qdrant_point_id"]

_T = TypeVar("_T")

#: The namespace of Qdrant point ids made from string document ids (``uuid5(namespace, id)``).
QDRANT_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://pypi.org/project/splade-onnx/#document-id")
#: What an empty vector is written as in Milvus, which rejects empty sparse vectors: one term, id 0
#: ([PAD] in BERT vocabularies, in no document), with a weight too small to change any ranking.
#: The same placeholder as the LangChain and LlamaIndex Milvus adapters.
MILVUS_EMPTY_VECTOR = {0: 1e-30}
_MAX_DELAY = 30.0


def qdrant_point_id(doc_id: object) -> int | str:
    """The Qdrant point id of a document id: a non-negative int as is, anything else ``uuid5`` of its ``str``.

    >>> qdrant_point_id(7), qdrant_point_id("7") == qdrant_point_id("7"), qdrant_point_id("7") == qdrant_point_id(7)
    (7, True, False)
    """
    if isinstance(doc_id, int) and not isinstance(doc_id, bool) and doc_id >= 0:
        return doc_id
    return str(uuid.uuid5(QDRANT_ID_NAMESPACE, str(doc_id)))


def retrying(
    call: Callable[[], _T],
    *,
    what: str,
    attempts: int,
    backoff: float,
    transient: Callable[[Exception], bool],
    sleep: Callable[[float], None] = time.sleep,
) -> _T:
    """``call()``, run again after ``backoff``, ``2 * backoff``, ... seconds (at most 30) while it raises a
    ``transient`` error, at most ``attempts`` times in all; any other error, or the last one, is raised."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as e:
            if attempt >= attempts or not transient(e):
                raise
            delay = min(backoff * 2 ** (attempt - 1), _MAX_DELAY)
            logger.warning("%s failed (attempt %d of %d, %s: %s); retrying in %.2fs",
                           what, attempt, attempts, type(e).__name__, e, delay)  # fmt: skip
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def _grpc_transient(e: Exception) -> bool:
    try:
        import grpc  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - both clients depend on grpcio
        return False
    if not isinstance(e, grpc.RpcError) or not hasattr(e, "code"):
        return False
    transient_codes = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                       grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.ABORTED)  # fmt: skip
    return bool(e.code() in transient_codes)


@contextlib.contextmanager
def _writer_lock(store: str) -> Iterator[None]:
    """Exclusive use of a local store by this process, waiting for the write task that has it."""
    path = Path(store).expanduser().absolute()
    lock = path.with_name(path.name + ".splade-writer.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock (the OS releases it too if the process dies)


def _check_name(name: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ArgumentTypeError(f"{name} must be a non-empty str, got {type(value).__name__} {value!r}")


def _check_columns(names: Sequence[str], required: Iterable[tuple[str, str]], sink: str) -> None:
    for option, column in required:
        if column not in names:
            raise ArgumentError(
                f"{sink}: {option}={column!r} is not a column of the dataset; its columns are "
                f"{', '.join(map(repr, names))}"
            )


class _SparseSink(Datasink[int]):
    """What the two sinks share: options, column checks, the write loop, retries, the local-store lock."""

    _client_name = ""

    def __init__(
        self,
        collection: str,
        *,
        local: str | None,
        id_column: str,
        vector_name: str,
        payload_columns: Sequence[str],
        batch_size: int,
        retries: int,
        backoff: float,
        create: bool,
    ) -> None:
        _check_name("collection", collection)
        _check_name("id_column", id_column)
        _check_name("vector_name", vector_name)
        if isinstance(payload_columns, str) or not all(isinstance(c, str) for c in payload_columns):
            raise ArgumentTypeError(f"payload_columns must be a sequence of column names, got {payload_columns!r}")
        for name, v, low in (("batch_size", batch_size, 1), ("retries", retries, 0)):
            if not isinstance(v, int) or isinstance(v, bool) or v < low:
                raise ArgumentError(f"{name} must be an int >= {low}, got {v!r}")
        if not isinstance(backoff, (int, float)) or isinstance(backoff, bool) or not backoff >= 0:
            raise ArgumentError(f"backoff must be a number of seconds >= 0, got {backoff!r}")
        self.collection = collection
        self.local = local
        self.id_column = id_column
        self.vector_name = vector_name
        self.payload_columns = tuple(payload_columns)
        self.batch_size = batch_size
        self.retries = retries
        self.backoff = float(backoff)
        self.create = create

    # ------------------------------------------------------------------ what each store defines

    def _open(self) -> Any:
        raise NotImplementedError

    def _close(self, client: Any) -> None:
        raise NotImplementedError

    def _ensure_collection(self, client: Any, id_type: Any) -> None:
        raise NotImplementedError

    def _upsert(self, client: Any, table: Any) -> None:
        """Upsert the rows of one Arrow table of at most ``batch_size`` rows."""
        raise NotImplementedError

    def _transient(self, e: Exception) -> bool:
        raise NotImplementedError

    # ------------------------------------------------------------------ the Datasink API

    @property
    def supports_distributed_writes(self) -> bool:
        return self.local is None

    @property
    def min_rows_per_write(self) -> int | None:
        return None

    def get_name(self) -> str:
        return f"{type(self).__name__}({self.collection})"

    def on_write_start(self, schema: Any = None) -> None:
        """Check the columns (when Ray knows the schema) and create the collection if it is missing."""
        id_type = None
        if schema is not None:
            self._check_columns(list(schema.names))
            id_type = schema.field(self.id_column).type
        with self._connected() as client:
            self._ensure_collection(client, id_type)

    def write(self, blocks: Iterable[Any], ctx: Any) -> int:
        """Upsert every row of ``blocks``; returns the number of rows written."""
        written = 0
        with self._connected() as client:
            self._begin(client)
            for block in blocks:
                table = BlockAccessor.for_block(block).to_arrow()
                self._check_columns(table.column_names)
                for start in range(0, table.num_rows, self.batch_size):
                    part = table.slice(start, self.batch_size)
                    self._call(functools.partial(self._upsert, client, part), f"upsert of {part.num_rows} rows")
                    written += part.num_rows
        logger.info("%s: wrote %d points to %s", self.get_name(), written, self._where())
        return written

    def on_write_complete(self, write_result: WriteResult[int]) -> None:
        logger.info("%s: %d points written by %d tasks to %s", self.get_name(),
                    sum(write_result.write_returns), len(write_result.write_returns), self._where())  # fmt: skip

    def on_write_failed(self, error: Exception) -> None:
        logger.error("%s: the write to %s failed: %s", self.get_name(), self._where(), error)

    # ------------------------------------------------------------------ helpers

    def _begin(self, client: Any) -> None:
        """Called once per write task, before its first upsert."""

    def _check_columns(self, names: Sequence[str]) -> None:
        required = [("id_column", self.id_column), ("the vector column", "indices"),
                    ("the vector column", "values")]  # fmt: skip
        required += [("payload_columns", c) for c in self.payload_columns]
        _check_columns(names, required, type(self).__name__)

    def _where(self) -> str:
        return self.local or "the server"

    def _call(self, call: Callable[[], _T], what: str) -> _T:
        return retrying(call, what=f"{self.get_name()} {what}", attempts=self.retries + 1, backoff=self.backoff,
                        transient=self._transient)  # fmt: skip

    @contextlib.contextmanager
    def _connected(self) -> Iterator[Any]:
        lock = _writer_lock(self.local) if self.local is not None else contextlib.nullcontext()
        with lock:
            client = self._call(self._open, f"connection to {self._where()}")
            try:
                yield client
            finally:
                self._close(client)

    def _rows(self, table: Any) -> Iterator[tuple[Any, list[int], list[float], dict[str, Any]]]:
        """``(document id, indices, values, payload)`` per row of ``table``."""
        ids = table.column(self.id_column).to_pylist()
        indices = table.column("indices").to_pylist()
        values = table.column("values").to_pylist()
        payload = {c: table.column(c).to_pylist() for c in self.payload_columns}
        for j, doc_id in enumerate(ids):
            if doc_id is None:
                raise ArgumentError(f"{type(self).__name__}: a row has no document id (column {self.id_column!r})")
            yield doc_id, indices[j] or [], values[j] or [], {c: col[j] for c, col in payload.items()}


def _is_integer(id_type: Any) -> bool:
    return id_type is not None and bool(pa.types.is_integer(id_type))


class QdrantDatasink(_SparseSink):
    """Upserts the rows of an encoded dataset into a Qdrant collection as named sparse vectors.

    ``write_datasink(QdrantDatasink("corpus", url="http://qdrant:6333"))`` on a cluster, or
    ``QdrantDatasink("corpus", path="qdrant-data")`` for Qdrant's local mode (one writer: see the
    module notes).  Each row becomes a point whose id is :func:`qdrant_point_id` of its
    ``id_column`` value, whose vector ``vector_name`` is ``SparseVector(indices, values)``, and whose
    payload holds the document id under ``id_column`` plus the ``payload_columns``.  A missing
    collection is created (with ``create=True``) with that sparse vector (dot product); an existing
    one is used as it is.  ``client_options`` go to ``QdrantClient`` unchanged (``api_key``, ``timeout``,
    ``prefer_grpc``, ...).
    """

    @keyword_options
    def __init__(
        self,
        collection: str,
        *,
        url: str | None = None,
        path: str | os.PathLike[str] | None = None,
        id_column: str = "id",
        vector_name: str = "splade",
        payload_columns: Sequence[str] = (),
        batch_size: int = 256,
        retries: int = 5,
        backoff: float = 0.5,
        create: bool = True,
        client_options: dict[str, Any] | None = None,
    ) -> None:
        try:
            import qdrant_client  # noqa: F401
        except ImportError as e:
            raise missing_extra("QdrantDatasink", "splade-onnx", "qdrant", e) from e
        if (url is None) == (path is None):
            raise ArgumentError("QdrantDatasink needs exactly one of url= (a Qdrant server) or path= (local mode)")
        super().__init__(collection, local=None if path is None else os.fspath(path), id_column=id_column,
                         vector_name=vector_name, payload_columns=payload_columns, batch_size=batch_size,
                         retries=retries, backoff=backoff, create=create)  # fmt: skip
        self.url = url
        self.client_options = dict(client_options or {})

    def _open(self) -> Any:
        from qdrant_client import QdrantClient

        if self.local is not None:
            return QdrantClient(path=self.local, **self.client_options)
        return QdrantClient(url=self.url, **self.client_options)

    def _close(self, client: Any) -> None:
        client.close()

    def _ensure_collection(self, client: Any, id_type: Any) -> None:
        from qdrant_client import models

        if client.collection_exists(self.collection):
            info = client.get_collection(self.collection)
            sparse = info.config.params.sparse_vectors or {}
            if self.vector_name not in sparse:
                raise ArgumentError(
                    f"Qdrant collection {self.collection!r} exists without the sparse vector {self.vector_name!r} "
                    f"(its sparse vectors: {', '.join(map(repr, sparse)) or 'none'}); pass vector_name="
                )
            return
        if not self.create:
            raise ArgumentError(f"Qdrant collection {self.collection!r} does not exist (and create=False)")
        self._call(lambda: client.create_collection(
            self.collection, vectors_config={},
            sparse_vectors_config={self.vector_name: models.SparseVectorParams(index=models.SparseIndexParams())},
        ), f"creation of collection {self.collection!r}")  # fmt: skip
        logger.info("created Qdrant collection %r with the sparse vector %r", self.collection, self.vector_name)

    def _upsert(self, client: Any, table: Any) -> None:
        from qdrant_client import models

        points = [
            models.PointStruct(
                id=qdrant_point_id(doc_id),
                vector={self.vector_name: models.SparseVector(indices=idx, values=val)},
                payload={self.id_column: doc_id, **payload},
            )
            for doc_id, idx, val, payload in self._rows(table)
        ]
        client.upsert(self.collection, points=points, wait=True)

    def _transient(self, e: Exception) -> bool:
        from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

        if isinstance(e, UnexpectedResponse):
            return e.status_code in (408, 429, 500, 502, 503, 504)
        return isinstance(e, (ResponseHandlingException, ConnectionError, TimeoutError)) or _grpc_transient(e)


class MilvusDatasink(_SparseSink):
    """Upserts the rows of an encoded dataset into a Milvus collection with a ``SPARSE_FLOAT_VECTOR`` field.

    ``uri`` is a Milvus server (``http://milvus:19530``, Zilliz Cloud) or a Milvus Lite file ending in
    ``.db`` (one writer: see the module notes).  The primary key is the row's ``id_column`` value
    (``INT64`` for an integer column, else ``VARCHAR``), so ``upsert`` replaces a point written before.
    A missing collection is created (with ``create=True``) with the primary key, the sparse field
    ``vector_name`` under a ``SPARSE_INVERTED_INDEX`` with metric ``IP``, and dynamic fields for the
    ``payload_columns``.  Milvus rejects empty sparse vectors: an empty one is written as
    :data:`MILVUS_EMPTY_VECTOR`.  ``client_options`` go to ``MilvusClient`` unchanged (``token``, ``db_name``, ...).
    """

    @keyword_options
    def __init__(
        self,
        collection: str,
        *,
        uri: str | os.PathLike[str],
        id_column: str = "id",
        vector_name: str = "splade",
        payload_columns: Sequence[str] = (),
        batch_size: int = 256,
        retries: int = 5,
        backoff: float = 0.5,
        create: bool = True,
        max_id_length: int = 512,
        client_options: dict[str, Any] | None = None,
    ) -> None:
        try:
            import pymilvus  # type: ignore[import-untyped]  # noqa: F401
        except ImportError as e:
            raise missing_extra("MilvusDatasink", "splade-onnx", "milvus", e) from e
        uri = os.fspath(uri)
        _check_name("uri", uri)
        local = uri.endswith(".db")
        if local:
            uri = str(Path(uri).expanduser().absolute())  # every write task opens the same file
        super().__init__(collection, local=uri if local else None, id_column=id_column, vector_name=vector_name,
                         payload_columns=payload_columns, batch_size=batch_size, retries=retries, backoff=backoff,
                         create=create)  # fmt: skip
        if not isinstance(max_id_length, int) or isinstance(max_id_length, bool) or not 1 <= max_id_length <= 65535:
            raise ArgumentError(f"max_id_length must be an int in [1, 65535], got {max_id_length!r}")
        self.uri = uri
        self.max_id_length = max_id_length
        self.client_options = dict(client_options or {})
        self._int_ids = False

    def _begin(self, client: Any) -> None:
        from pymilvus import DataType

        fields = client.describe_collection(self.collection)["fields"]
        self._int_ids = any(f["name"] == self.id_column and f["type"] == DataType.INT64 for f in fields)

    def _open(self) -> Any:
        from pymilvus import MilvusClient

        return MilvusClient(self.uri, **self.client_options)

    def _close(self, client: Any) -> None:
        client.close()
        if self.local is not None:  # Milvus Lite serves the file from this process until released
            from milvus_lite.server_manager import server_manager_instance  # type: ignore[import-untyped]

            server_manager_instance.release_server(self.local)

    def _ensure_collection(self, client: Any, id_type: Any) -> None:
        from pymilvus import DataType

        if client.has_collection(self.collection):
            fields = {f["name"] for f in client.describe_collection(self.collection)["fields"]}
            if self.vector_name not in fields or self.id_column not in fields:
                raise ArgumentError(
                    f"Milvus collection {self.collection!r} exists without the fields {self.id_column!r} and "
                    f"{self.vector_name!r} (its fields: {', '.join(map(repr, sorted(fields)))}); pass id_column= "
                    "and vector_name="
                )
            return
        if not self.create:
            raise ArgumentError(f"Milvus collection {self.collection!r} does not exist (and create=False)")
        schema = client.create_schema(auto_id=False, enable_dynamic_field=True)
        if _is_integer(id_type):
            schema.add_field(self.id_column, DataType.INT64, is_primary=True)
        else:
            schema.add_field(self.id_column, DataType.VARCHAR, is_primary=True, max_length=self.max_id_length)
        schema.add_field(self.vector_name, DataType.SPARSE_FLOAT_VECTOR)
        params = client.prepare_index_params()
        params.add_index(self.vector_name, index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
        self._call(lambda: client.create_collection(self.collection, schema=schema, index_params=params),
                   f"creation of collection {self.collection!r}")  # fmt: skip
        logger.info("created Milvus collection %r with the sparse field %r", self.collection, self.vector_name)

    def _upsert(self, client: Any, table: Any) -> None:
        rows = [
            {
                **payload,
                self.id_column: int(doc_id) if self._int_ids else str(doc_id),
                self.vector_name: dict(zip(idx, val)) or dict(MILVUS_EMPTY_VECTOR),
            }
            for doc_id, idx, val, payload in self._rows(table)
        ]
        client.upsert(self.collection, rows)

    def _transient(self, e: Exception) -> bool:
        from pymilvus.exceptions import (  # type: ignore[import-untyped]
            ConnectError,
            ErrorCode,
            MilvusException,
            MilvusUnavailableException,
        )

        if isinstance(e, (MilvusUnavailableException, ConnectError)):
            return True
        if isinstance(e, MilvusException):
            return bool(e.retriable) or e.code == ErrorCode.RATE_LIMIT
        return isinstance(e, (ConnectionError, TimeoutError)) or _grpc_transient(e)
