"""Data-parallel encoding: worker processes that each build the engine once.

The parent reads windows of texts, keeps a bounded number in flight and yields results in
submission order; workers return only sparse vectors.  Workers encode with the engine module
and the caller's :class:`~splade_onnx._engine.Settings`, as the encoder does in-process.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from ._batching import windows
from ._cores import default_threads
from ._engine import Encoded, NetworkEngine, NetworkRecipe, Settings

__all__ = ["parallel_embed"]

_WORKER_WINDOW = 256
_worker: NetworkEngine | None = None


def _init(recipe: NetworkRecipe, threads: int, started: Any) -> None:
    """Build this worker's engine; ``started`` counts the workers started so far, which numbers this one."""
    global _worker
    with started.get_lock():
        index = started.value
        started.value += 1
    _worker = recipe.for_worker(index).build(threads=threads)


def _run(chunk: list[str], settings: Settings, start: int) -> Encoded:
    assert _worker is not None, "worker not initialised"
    return _worker.encode(chunk, settings, start=start)


def parallel_embed(
    recipe: NetworkRecipe, texts: Iterable[str], *, workers: int, settings: Settings
) -> Iterator[tuple[int, Encoded]]:
    """``(start, encoded)`` for consecutive windows of ``texts``, in order, computed by ``workers`` processes."""
    threads = max(1, default_threads() // workers)
    ctx = multiprocessing.get_context("spawn")
    started = ctx.Value("i", 0)
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_init, initargs=(recipe, threads, started)
    ) as pool:
        pending: deque[tuple[int, Future[Encoded]]] = deque()
        for start, chunk in windows(texts, _WORKER_WINDOW):
            pending.append((start, pool.submit(_run, chunk, settings, start)))
            if len(pending) >= 2 * workers:
                s, fut = pending.popleft()
                yield s, fut.result()
        while pending:
            s, fut = pending.popleft()
            yield s, fut.result()
