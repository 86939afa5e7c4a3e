"""Fixtures for the LlamaIndex adapter: the real splade-tiny, loaded once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from llama_index.sparse_embeddings.splade import SpladeSparseEmbedding

# examples/ is on sys.path through the ``pythonpath`` option of this adapter's pyproject.toml, with this
# folder first (its conftest) and the core's tests/ last (harness.py, checkpoints.py).
from demo import DOCUMENTS  # FastEmbed's 12 example documents

REPO = Path(__file__).resolve().parents[3]
CACHE = Path(os.environ.get("SPLADE_ONNX_TEST_CACHE", REPO / ".cache" / "test"))

#: Six of the seed documents: 0 mission, 1 rover, 2 cost, 3 rocket, 4 launch site, 5 landing date.
SEED = [DOCUMENTS[i] for i in (0, 1, 4, 9, 10, 6)]


@pytest.fixture(scope="session")
def embedding() -> SpladeSparseEmbedding:
    return SpladeSparseEmbedding(cache_dir=str(CACHE))


@pytest.fixture(scope="session")
def families(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The core's checkpoint-family fixtures (tests/fixtures/families) in a temp folder, with every weight file
    written from its seed by tests/checkpoints.py and checked against the oracle's sha256."""
    from checkpoints import family_fixtures

    return family_fixtures(REPO, dst=tmp_path_factory.mktemp("families") / "families")
