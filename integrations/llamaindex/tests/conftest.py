"""Fixtures for the LlamaIndex adapter: the real splade-tiny, loaded once."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from llama_index.sparse_embeddings.splade import SpladeSparseEmbedding

from splade_onnx import SpladeEncoder

sys.path.insert(0, str(Path(__file__).resolve().parent))
REPO = Path(__file__).resolve().parents[3]
CACHE = Path(os.environ.get("SPLADE_ONNX_TEST_CACHE", REPO / ".cache" / "test"))

sys.path.insert(0, str(REPO / "examples"))
from demo import DOCUMENTS  # noqa: E402  (FastEmbed's 12 example documents)

#: Six of the seed documents: 0 mission, 1 rover, 2 cost, 3 rocket, 4 launch site, 5 landing date.
SEED = [DOCUMENTS[i] for i in (0, 1, 4, 9, 10, 6)]
T = TypeVar("T")


def run_while_encoding_waits_for_the_loop(
    encoder: SpladeEncoder, method: str, make_coros: Callable[[], list[Coroutine[Any, Any, T]]], timeout: float = 60.0
) -> list[T]:
    """Run ``make_coros()`` concurrently; prove the event loop stayed free while the encoder worked.

    ``encoder.<method>`` is made to schedule a callback on the event loop and wait, inside the
    call, until that callback has run.  Only a free loop can run it: an ``async def`` that ran
    the encoder on the loop's own thread would block the loop, the wait would time out after
    ``timeout`` seconds and the test fails (it never hangs).  No clock is read on success.
    """
    real = getattr(encoder, method)
    released, failed = threading.Event(), threading.Event()
    lock = threading.Lock()
    inside = 0
    seen: dict[str, Any] = {"inside_at_callback": None, "callback_thread": None, "worker_threads": set()}
    loop_box: list[asyncio.AbstractEventLoop] = []

    def callback() -> None:  # runs on the event loop
        with lock:
            if seen["inside_at_callback"] is None:
                seen["inside_at_callback"] = inside
        seen["callback_thread"] = threading.get_ident()
        released.set()

    def waiting(*args: Any, **kwargs: Any) -> Any:
        nonlocal inside
        with lock:
            inside += 1
            seen["worker_threads"].add(threading.get_ident())
        try:
            loop_box[0].call_soon_threadsafe(callback)
            if failed.is_set() or not released.wait(timeout):
                failed.set()
                raise AssertionError(
                    f"{method} waited {timeout}s for a callback on the event loop: the loop was blocked"
                )
            return real(*args, **kwargs)
        finally:
            with lock:
                inside -= 1

    async def main() -> tuple[list[T], int]:
        loop_box.append(asyncio.get_running_loop())
        return list(await asyncio.gather(*make_coros())), threading.get_ident()

    setattr(encoder, method, waiting)  # an instance attribute shadows the method; removed below
    try:
        results, loop_thread = asyncio.run(main())
    finally:
        delattr(encoder, method)
    assert seen["inside_at_callback"] >= 1, seen  # the loop ran the callback while a worker was inside encoding
    assert seen["callback_thread"] == loop_thread and loop_thread not in seen["worker_threads"], seen
    return results


@pytest.fixture(scope="session")
def embedding() -> SpladeSparseEmbedding:
    return SpladeSparseEmbedding(cache_dir=str(CACHE))
