"""The texts each workload of benchmarks/encode.py encodes, the benchmark query, and where the inputs live."""

from __future__ import annotations

import json
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / ".work"
RESULTS = ROOT / "benchmarks" / "results"
DATA = Path(os.environ.get("SPLADE_DATA", ROOT / "data"))
TINY = "rasyosef/splade-tiny"
MODELS = ("splade-tiny", "bert-base-shape")
QUERY16 = "the effect of the shock wave on the boundary layer of a swept wing"
QUERY16_TOKENS = 16  # [CLS] + 14 words + [SEP] in BERT's uncased vocabulary (the child checks it)
ROUND, ROUND_WARMUP = 100, 20  # calls per latency round of one system, and how many of them are not counted


def corpus(name: str) -> list[str]:
    return [json.loads(line)["text"] for line in (DATA / name / "corpus.jsonl").open()]


def queries(name: str) -> tuple[list[str], list[str]]:
    rows = [json.loads(line) for line in (DATA / name / "queries.jsonl").open()]
    return [r["_id"] for r in rows], [r["text"] for r in rows]


def texts_for(workload: str, quick: bool) -> list[str]:
    if workload == "tiny-cranfield":
        docs = corpus("cranfield")
        return docs[:200] if quick else docs
    if workload == "base-mixed":
        # Mixed lengths: Cranfield and CISI abstracts, every other one cut to its first 12 words.
        docs = [d for pair in zip(corpus("cranfield"), corpus("cisi")) for d in pair][:160]
        docs = [d if i % 2 else " ".join(d.split()[:12]) for i, d in enumerate(docs)]
        return docs[:40] if quick else docs
    if workload == "short-texts":
        qs = queries("cranfield")[1] * 8
        return qs[:400] if quick else qs
    raise ValueError(workload)


def model_dir(model: str) -> Path:
    """The folder of a benchmark model's files (splade-tiny: its downloaded files; the rest: make bench-prepare)."""
    if model == "splade-tiny":
        from splade_onnx._hub import resolve

        return resolve(TINY, cache_dir=WORK / "cache").path
    return WORK / model
