"""The backend seam (splade_onnx._session): the pruned head's thread pool is released by close(), by a with block,
and when the backend is garbage-collected; a closed backend runs again with the same results."""

from __future__ import annotations

import gc
import threading
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from splade_onnx import SpladeEncoder
from splade_onnx._session import POOL_THREADS, PrunedBackend
from splade_onnx._tokenize import TextTokenizer, pad_batch

from texts import SEED_DOCUMENTS


@pytest.fixture(scope="module")
def graphs(tiny: SpladeEncoder) -> tuple[Path, Path]:
    files = tiny.loaded.recipes.get("document")
    assert files is not None and files.head is not None  # splade-tiny takes the pruned head
    return files.graph, files.head


@pytest.fixture(scope="module")
def feed(tiny_dir: Path) -> dict[str, NDArray[np.int64]]:
    tok = TextTokenizer.from_folder(tiny_dir, max_length=None, model_limit=512)
    return pad_batch(tok.encode(SEED_DOCUMENTS), tok.pad_id)


def _pool_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith(POOL_THREADS)}


Feed = dict[str, NDArray[np.int64]]


def _run_on_new_threads(backend: PrunedBackend, feed: Feed) -> tuple[NDArray[np.float32], set[threading.Thread]]:
    """``backend.run(feed)`` and the pool threads it started (other encoders of the session have their own)."""
    before = _pool_threads()
    out = backend.run(feed)
    mine = _pool_threads() - before
    assert mine, "the batch was not split across the pool"
    return out, mine


def test_close_releases_the_pool_and_a_later_run_starts_another(
    graphs: tuple[Path, Path], feed: dict[str, NDArray[np.int64]]
) -> None:
    backend = PrunedBackend(*graphs, threads=2)
    first, mine = _run_on_new_threads(backend, feed)
    backend.close()
    assert not any(t.is_alive() for t in mine) and not mine & _pool_threads()
    backend.close()  # idempotent
    again, other = _run_on_new_threads(backend, feed)
    assert np.array_equal(first, again) and not other & mine
    backend.close()
    assert not any(t.is_alive() for t in other)


def test_a_with_block_releases_the_pool(graphs: tuple[Path, Path], feed: dict[str, NDArray[np.int64]]) -> None:
    with PrunedBackend(*graphs, threads=2) as backend:
        first, mine = _run_on_new_threads(backend, feed)
        assert all(t.is_alive() for t in mine)
        assert all(np.array_equal(first, out) for out in backend.run_all([feed, feed, feed]))
    assert not any(t.is_alive() for t in mine)


def test_dropping_the_backend_releases_the_pool(graphs: tuple[Path, Path], feed: dict[str, NDArray[np.int64]]) -> None:
    backend = PrunedBackend(*graphs, threads=2)
    _, mine = _run_on_new_threads(backend, feed)
    del backend
    gc.collect()
    assert not any(t.is_alive() for t in mine) and not mine & _pool_threads()
