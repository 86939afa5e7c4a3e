"""Test machinery shared by the core's and both adapters' test suites (the ``pythonpath`` option of
each adapter's pytest config puts this folder on ``sys.path``): a deterministic proof that async
methods leave the event loop free, and a child process SIGKILLed in the middle of a save."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["STALL_IN_SAVE", "kill_when_stalled", "run_while_encoding_waits_for_the_loop"]


def run_while_encoding_waits_for_the_loop(
    encoder: Any, method: str, make_coros: Callable[[], list[Coroutine[Any, Any, T]]], timeout: float = 60.0
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


#: Prepended to a child's code: ``stall_in_save(stall_at)`` makes the next save stall, either with half
#: an archive written (``"np.savez"``) or right after its rename (anything else), and tell the parent
#: so by creating the file named in ``$SPLADE_TEST_STALLED``.
STALL_IN_SAVE = textwrap.dedent("""
    import os, sys, time
    import numpy as np

    def _stall():
        open(os.environ["SPLADE_TEST_STALLED"], "w").close()
        time.sleep(600)

    def _half_written(file, *args, **kwargs):
        file.write(b"PK\\x03\\x04 half an archive")
        file.flush()
        os.fsync(file.fileno())
        _stall()

    def _after_rename(src, dst, real=os.replace):
        real(src, dst)
        _stall()

    def stall_in_save(stall_at):
        if stall_at == "np.savez":  # the archive writer of splade_onnx's index files
            import splade_onnx._index_file as index_file
            index_file.write_npz = _half_written
        else:
            os.replace = _after_rename
""")


def kill_when_stalled(child_code: str, args: Sequence[str], guard: float = 600.0) -> None:
    """Run ``STALL_IN_SAVE + child_code`` with ``args``, SIGKILL it once it has stalled in its save.

    ``guard`` only stops a broken child from hanging the suite; it is not a timing assertion.
    """
    with tempfile.TemporaryDirectory() as tmp:
        marker, errors = Path(tmp) / "stalled", Path(tmp) / "stderr"
        env = {**os.environ, "SPLADE_TEST_STALLED": str(marker)}
        with errors.open("w") as err:
            proc = subprocess.Popen(
                [sys.executable, "-c", STALL_IN_SAVE + textwrap.dedent(child_code), *args],
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=env,
            )
        try:
            deadline = time.monotonic() + guard
            while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            if not marker.exists():
                raise AssertionError(f"the child did not stall in its save: {errors.read_text()[-2000:]}")
            proc.kill()  # SIGKILL
            assert proc.wait(timeout=60) == -9
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
