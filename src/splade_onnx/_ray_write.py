"""What the Ray Data sinks of SPLADE vectors share: options, column checks, the write loop, retries, the lock.

The sinks (:mod:`._ray_qdrant`, :mod:`._ray_milvus`, public through :mod:`splade_onnx.ray`) are
:class:`ray.data.Datasink` subclasses, so Ray schedules, retries and reports the writes; nothing
here schedules anything.  Each ``write`` task opens its own client, upserts its rows in
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
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ._errors import ArgumentError, ArgumentTypeError, missing_extra
from ._options import int_option

try:
    from ray.data import Datasink
    from ray.data.block import BlockAccessor
except ImportError as e:  # pragma: no cover - the missing extra is tested in splade_onnx.ray
    raise missing_extra("splade_onnx.ray", "splade-onnx", "ray", e) from e

if TYPE_CHECKING:
    from ray.data.datasource.datasink import WriteResult

logger = logging.getLogger(__name__)

__all__ = ["SparseSink", "check_name", "grpc_transient", "retrying"]

_T = TypeVar("_T")

_MAX_DELAY = 30.0


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
    attempt = 1
    while True:
        try:
            return call()
        except Exception as e:
            if attempt >= attempts or not transient(e):
                raise
            delay = min(backoff * 2 ** (attempt - 1), _MAX_DELAY)
            logger.warning(
                "%s failed (attempt %d of %d, %s: %s); retrying in %.2fs",
                what,
                attempt,
                attempts,
                type(e).__name__,
                e,
                delay,
            )
            sleep(delay)
            attempt += 1


def grpc_transient(e: Exception) -> bool:
    try:
        import grpc  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - both clients depend on grpcio
        return False
    if not isinstance(e, grpc.RpcError) or not hasattr(e, "code"):
        return False
    transient_codes = (
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
    )
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


def check_name(name: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ArgumentTypeError(f"{name} must be a non-empty str, got {type(value).__name__} {value!r}")


def _check_columns(names: Sequence[str], required: Iterable[tuple[str, str]], sink: str) -> None:
    for option, column in required:
        if column not in names:
            raise ArgumentError(
                f"{sink}: {option}={column!r} is not a column of the dataset; its columns are "
                f"{', '.join(map(repr, names))}"
            )


class SparseSink(Datasink[int]):
    """The base of the sinks: options, column checks, the write loop, retries, the local-store lock.

    Its interface with a sink (subclass): the sink defines ``_open``, ``_close``, ``_ensure_collection``,
    ``_upsert``, ``_transient`` and optionally ``_begin``, and uses ``_call`` (a retried call) and ``_rows``.
    """

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
        check_name("collection", collection)
        check_name("id_column", id_column)
        check_name("vector_name", vector_name)
        if isinstance(payload_columns, str) or not all(isinstance(c, str) for c in payload_columns):
            raise ArgumentTypeError(f"payload_columns must be a sequence of column names, got {payload_columns!r}")
        for name, v, low in (("batch_size", batch_size, 1), ("retries", retries, 0)):
            int_option(name, v, least=low, allowed=f"an int >= {low}")
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
        logger.info(
            "%s: %d points written by %d tasks to %s",
            self.get_name(),
            sum(write_result.write_returns),
            len(write_result.write_returns),
            self._where(),
        )

    def on_write_failed(self, error: Exception) -> None:
        logger.error("%s: the write to %s failed: %s", self.get_name(), self._where(), error)

    # ------------------------------------------------------------------ helpers

    def _begin(self, client: Any) -> None:
        """Called once per write task, before its first upsert."""

    def _check_columns(self, names: Sequence[str]) -> None:
        required = [("id_column", self.id_column), ("the vector column", "indices"), ("the vector column", "values")]
        required += [("payload_columns", c) for c in self.payload_columns]
        _check_columns(names, required, type(self).__name__)

    def _where(self) -> str:
        return self.local or "the server"

    def _call(self, call: Callable[[], _T], what: str) -> _T:
        return retrying(
            call,
            what=f"{self.get_name()} {what}",
            attempts=self.retries + 1,
            backoff=self.backoff,
            transient=self._transient,
        )

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
