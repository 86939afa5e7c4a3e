"""Fixtures for the LangChain adapter: the real splade-tiny, loaded once."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from langchain_splade import SpladeSparseEmbeddings

T = TypeVar("T")
sys.path.insert(0, str(Path(__file__).resolve().parent))
REPO = Path(__file__).resolve().parents[3]
CACHE = Path(os.environ.get("SPLADE_ONNX_TEST_CACHE", REPO / ".cache" / "test"))
CRANFIELD = REPO / "data" / "cranfield"

sys.path.insert(0, str(REPO / "examples"))
from demo import DOCUMENTS  # noqa: E402  (FastEmbed's 12 example documents)

#: Six of the seed documents: 0 mission, 1 rover, 2 cost, 3 rocket, 4 launch site, 5 landing date.
SEED = [DOCUMENTS[i] for i in (0, 1, 4, 9, 10, 6)]


@pytest.fixture(scope="session")
def embeddings() -> SpladeSparseEmbeddings:
    return SpladeSparseEmbeddings("rasyosef/splade-tiny", cache_dir=CACHE)


def gather_with_heartbeat(coros: list[Coroutine[Any, Any, T]], tick: float = 0.005) -> tuple[list[T], float, int]:
    """Run ``coros`` concurrently while a heartbeat task measures the event loop.

    Returns the results, the longest gap between heartbeats (seconds) and the beat count:
    a blocking ``async def`` shows up as one long gap and few beats.
    """

    async def main() -> tuple[list[T], float, int]:
        ticks, worst = 0, 0.0

        async def heartbeat() -> None:
            nonlocal ticks, worst
            last = time.perf_counter()
            while True:
                await asyncio.sleep(tick)
                now = time.perf_counter()
                worst, last = max(worst, now - last), now
                ticks += 1

        hb = asyncio.create_task(heartbeat())
        results = await asyncio.gather(*coros)
        hb.cancel()
        return list(results), worst, ticks

    return asyncio.run(main())
