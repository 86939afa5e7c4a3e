"""Fixtures for the Haystack adapter: the real splade-tiny, the core's seeded model families, Cranfield."""

from __future__ import annotations

import os

# Haystack's telemetry would try the network from every pipeline: off before haystack is imported.
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")

import json
from collections import defaultdict
from pathlib import Path

import pytest

from splade_onnx import SpladeEncoder

# examples/ is on sys.path through the ``pythonpath`` option of this adapter's pyproject.toml, with this
# folder first (its conftest) and the core's tests/ last (harness.py, checkpoints.py).
from demo import DOCUMENTS  # FastEmbed's 12 example documents

REPO = Path(__file__).resolve().parents[3]
CACHE = Path(os.environ.get("SPLADE_ONNX_TEST_CACHE", REPO / ".cache" / "test"))
TINY = "rasyosef/splade-tiny"
CRANFIELD = REPO / "data" / "cranfield"

#: Six of the seed documents: 0 mission, 1 rover, 2 cost, 3 rocket, 4 launch site, 5 landing date.
SEED = [DOCUMENTS[i] for i in (0, 1, 4, 9, 10, 6)]


@pytest.fixture(scope="session")
def tiny() -> SpladeEncoder:
    """splade-tiny loaded by the core itself, apart from the embedders' shared encoder: the reference."""
    return SpladeEncoder.from_pretrained(TINY, cache_dir=CACHE)


@pytest.fixture(scope="session")
def families(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The core's checkpoint-family fixtures (tests/fixtures/families) in a temp folder, with every weight file
    written from its seed by tests/checkpoints.py and checked against the oracle's sha256."""
    from checkpoints import family_fixtures

    return family_fixtures(REPO, dst=tmp_path_factory.mktemp("families") / "families")


def cranfield(n_docs: int) -> tuple[list[dict[str, str]], dict[str, str], dict[str, set[str]]]:
    """The first ``n_docs`` Cranfield abstracts, every query, and each query's relevant documents among them."""
    with (CRANFIELD / "corpus.jsonl").open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f][:n_docs]
    with (CRANFIELD / "queries.jsonl").open(encoding="utf-8") as f:
        queries = {q["_id"]: q["text"] for q in map(json.loads, f)}
    ids = {r["_id"] for r in rows}
    relevant: dict[str, set[str]] = defaultdict(set)
    with (CRANFIELD / "qrels" / "test.tsv").open(encoding="utf-8") as f:
        next(f)
        for line in f:
            q, doc, score = line.split("\t")
            if doc in ids and int(score) > 0:
                relevant[q].add(doc)
    return rows, queries, dict(relevant)
