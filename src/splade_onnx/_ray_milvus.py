"""The Ray Data sink that upserts SPLADE vectors into a Milvus collection (public through :mod:`splade_onnx.ray`).

The primary key is the rows' document id, so a write Ray runs again replaces the same rows; the write
loop, retries and Milvus Lite lock are :mod:`._ray_write`'s.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._errors import ArgumentError, missing_extra
from ._options import keyword_options
from ._ray_write import SparseSink, check_name, grpc_transient
from .integration import MILVUS_EMPTY_VECTOR

logger = logging.getLogger(__name__)

__all__ = ["MilvusDatasink"]


def _is_integer(id_type: Any) -> bool:
    import pyarrow as pa  # type: ignore[import-untyped]

    return id_type is not None and bool(pa.types.is_integer(id_type))


class MilvusDatasink(SparseSink):
    """Upserts the rows of an encoded dataset into a Milvus collection with a ``SPARSE_FLOAT_VECTOR`` field.

    ``uri`` is a Milvus server (``http://milvus:19530``, Zilliz Cloud) or a Milvus Lite file ending in
    ``.db`` (one writer: see the module notes).  The primary key is the row's ``id_column`` value
    (``INT64`` for an integer column, else ``VARCHAR``), so ``upsert`` replaces a point written before.
    A missing collection is created (with ``create=True``) with the primary key, the sparse field
    ``vector_name`` under a ``SPARSE_INVERTED_INDEX`` with metric ``IP``, and dynamic fields for the
    ``payload_columns``.  Milvus rejects empty sparse vectors: an empty one is written as
    :data:`~splade_onnx.integration.MILVUS_EMPTY_VECTOR`.  ``client_options`` go to ``MilvusClient``
    unchanged (``token``, ``db_name``, ...).
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
        check_name("uri", uri)
        local = uri.endswith(".db")
        if local:
            uri = str(Path(uri).expanduser().absolute())  # every write task opens the same file
        super().__init__(
            collection,
            local=uri if local else None,
            id_column=id_column,
            vector_name=vector_name,
            payload_columns=payload_columns,
            batch_size=batch_size,
            retries=retries,
            backoff=backoff,
            create=create,
        )
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
        self._call(
            lambda: client.create_collection(self.collection, schema=schema, index_params=params),
            f"creation of collection {self.collection!r}",
        )
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
        return isinstance(e, (ConnectionError, TimeoutError)) or grpc_transient(e)
