"""Fixtures for the LlamaIndex adapter: the real splade-tiny, loaded once."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from llama_index.sparse_embeddings.splade import SpladeSparseEmbedding

sys.path.insert(0, str(Path(__file__).resolve().parent))
REPO = Path(__file__).resolve().parents[3]
CACHE = Path(os.environ.get("SPLADE_ONNX_TEST_CACHE", REPO / ".cache" / "test"))

SEED = [
    "Chandrayaan-3 is India's third lunar mission",
    "It aimed to land a rover on the Moon's surface - joining the US, China and Russia",
    "The estimated cost of the mission is around $35 million",
    "The mission used GSLV Mk III rocket for its launch",
    "Chandrayaan-3 was launched from the Satish Dhawan Space Centre in Sriharikota",
    "Chandrayaan-3 landed on the Moon's surface on 23rd August 2023",
]


@pytest.fixture(scope="session")
def embedding() -> SpladeSparseEmbedding:
    return SpladeSparseEmbedding(cache_dir=str(CACHE))
