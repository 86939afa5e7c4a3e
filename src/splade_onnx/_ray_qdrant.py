"""The Ray Data sink that upserts SPLADE vectors into a Qdrant collection (public through :mod:`splade_onnx.ray`).

Point ids come from the rows' document ids (:func:`qdrant_point_id`), so a write Ray runs again writes
the same points; the write loop, retries and local-mode lock are :mod:`._ray_write`'s.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Sequence
from typing import Any

from ._errors import ArgumentError, missing_extra
from ._options import keyword_options
from ._ray_write import SparseSink, grpc_transient

logger = logging.getLogger(__name__)

__all__ = ["QDRANT_ID_NAMESPACE", "QdrantDatasink", "qdrant_point_id"]

#: The namespace of Qdrant point ids made from string document ids (``uuid5(namespace, id)``).
QDRANT_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://pypi.org/project/splade-onnx/#document-id")


def qdrant_point_id(doc_id: object) -> int | str:
    """The Qdrant point id of a document id: a non-negative int as is, anything else ``uuid5`` of its ``str``.

    >>> qdrant_point_id(7), qdrant_point_id("7") == qdrant_point_id("7"), qdrant_point_id("7") == qdrant_point_id(7)
    (7, True, False)
    """
    if isinstance(doc_id, int) and not isinstance(doc_id, bool) and doc_id >= 0:
        return doc_id
    return str(uuid.uuid5(QDRANT_ID_NAMESPACE, str(doc_id)))


class QdrantDatasink(SparseSink):
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
        super().__init__(
            collection,
            local=None if path is None else os.fspath(path),
            id_column=id_column,
            vector_name=vector_name,
            payload_columns=payload_columns,
            batch_size=batch_size,
            retries=retries,
            backoff=backoff,
            create=create,
        )
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
        self._call(
            lambda: client.create_collection(
                self.collection,
                vectors_config={},
                sparse_vectors_config={self.vector_name: models.SparseVectorParams(index=models.SparseIndexParams())},
            ),
            f"creation of collection {self.collection!r}",
        )
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
        return isinstance(e, (ResponseHandlingException, ConnectionError, TimeoutError)) or grpc_transient(e)
