"""Shared fixtures: the real splade-tiny model, loaded once per session, and the checkpoint-family fixtures."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Models and converted graphs persist here between runs (CI: inside the fresh clone).
CACHE = Path(os.environ.get("SPLADE_ONNX_TEST_CACHE", ROOT / ".cache" / "test"))
GOLDEN = ROOT / "tests" / "golden"
TINY = "rasyosef/splade-tiny"
#: The committed family fixture folders, without their weight files: read them through the ``families`` fixture.
FAMILIES_REL = Path("tests") / "fixtures" / "families"


def golden(name: str) -> dict:  # type: ignore[type-arg]
    return json.loads((GOLDEN / name).read_text())


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    return CACHE


@pytest.fixture(scope="session")
def tiny(cache_dir: Path):  # type: ignore[no-untyped-def]
    """The real splade-tiny through the public loader (Hub unreachable -> package source)."""
    from splade_onnx import SpladeEncoder

    return SpladeEncoder.from_pretrained(TINY, cache_dir=cache_dir)


@pytest.fixture(scope="session")
def tiny_dir(tiny, cache_dir: Path) -> Path:  # type: ignore[no-untyped-def]
    """The folder holding splade-tiny's files (as fetched by the loader)."""
    from splade_onnx._hub import resolve

    return resolve(TINY, cache_dir=cache_dir).path


@pytest.fixture(scope="session")
def families(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The checkpoint-family fixtures with their weights: the committed folders copied to a temp folder, every
    model.safetensors written there from its seed (numpy only) and checked against the oracle's sha256."""
    from checkpoints import family_fixtures

    return family_fixtures(ROOT, dst=tmp_path_factory.mktemp("families") / "families")


def family_folder(families: Path, folder: str) -> Path:
    """A fixture folder as families.json names it (``tests/fixtures/families/...``), in the ``families`` copy."""
    return families / Path(folder).relative_to(FAMILIES_REL)


#: Modules whose tests form the longest chains of shared fixtures (a Ray cluster and whole encoded corpora,
#: whole-corpus parity, the reference runs): collected first, so that with ``-n 2 --dist loadfile`` each starts
#: early on a worker while the many short modules fill the other one.
LONG_MODULES = ("test_ray.py", "test_pruned.py", "test_eval.py", "test_engine.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONG_MODULES.index(name) if name in LONG_MODULES else len(LONG_MODULES)

    items.sort(key=rank)  # stable: the order within a module, and of the other modules, is unchanged
