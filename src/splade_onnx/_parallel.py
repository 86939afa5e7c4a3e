"""Data-parallel encoding: worker processes that each load the model once.

The parent reads windows of texts, keeps a bounded number in flight and yields
results in submission order; workers return only sparse vectors.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TYPE_CHECKING

from ._batching import windows
from ._session import default_threads
from ._types import SparseEmbedding

if TYPE_CHECKING:
    from ._encoder import SpladeEncoder, _Files

__all__ = ["parallel_embed"]

_WORKER_WINDOW = 256
_worker: SpladeEncoder | None = None


def _init(files: _Files, threads: int) -> None:
    global _worker
    from ._encoder import SpladeEncoder

    _worker = SpladeEncoder._from_files(files, threads=threads, name="worker", source=str(files.folder))


def _run(chunk: list[str], max_batch: int, max_length: int | None) -> list[SparseEmbedding]:
    assert _worker is not None, "worker not initialised"
    return _worker._encode_window(chunk, max_batch, max_length)


def parallel_embed(
    files: _Files, texts: Iterable[str], *, workers: int, max_batch: int, max_length: int | None = None
) -> Iterator[list[SparseEmbedding]]:
    """Encoded windows of ``texts``, in order, computed by ``workers`` processes."""
    threads = max(1, default_threads() // workers)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init,
                             initargs=(files, threads)) as pool:  # fmt: skip
        pending: deque[Future[list[SparseEmbedding]]] = deque()
        for _, chunk in windows(texts, _WORKER_WINDOW):
            pending.append(pool.submit(_run, chunk, max_batch, max_length))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
