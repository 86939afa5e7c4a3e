"""Inference-free query latency: one 16-token query, no network, side by side with sentence-transformers.

The model is the seeded inference-free fixture ``tests/fixtures/families/st_inference_free`` (the
sentence-transformers Router layout of the OpenSearch doc-v2/v3 models: a ``SparseStaticEmbedding``
query side), its weights written from their seeds into a temporary copy as the tests do
(``tests/checkpoints.py:family_fixtures``, sha256-checked).  Queries are Cranfield queries cut to their
first 16 tokens.  Each query is encoded alone, ``--runs`` passes over all of them; the report gives
medians (p50) and p90 per call.

Rows:
* ``splade-onnx encode_queries``: the public call, one query per call.
* ``tokenizers Tokenizer.encode``: the Rust tokenizer alone on the same text, the cost a
  tokenize-then-weigh implementation cannot go below (splade-onnx caches word ids instead).
* ``sentence-transformers encode_query`` (with ``--st-python``, the oracle venv's python):
  ``SparseEncoder(folder).encode_query(q)``, in that interpreter, same queries, same protocol.

    .venv/bin/python benchmarks/static_query.py [--st-python /path/to/oracle-venv/bin/python]

Writes benchmarks/results/static_query.json and static_query.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
FOLDER = ROOT / "tests" / "fixtures" / "families" / "st_inference_free"  # its tokenizer; weights in main()
TOKENS = 16

ST_CHILD = """
import json, statistics, sys, time
import torch
from sentence_transformers.sparse_encoder import SparseEncoder
torch.set_num_threads(2)
folder, queries, runs = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
model = SparseEncoder(folder, device="cpu")
for q in queries[:20]:
    model.encode_query(q)
times = []
for _ in range(runs):
    for q in queries:
        t = time.perf_counter(); model.encode_query(q); times.append(time.perf_counter() - t)
print(json.dumps(times))
"""


def queries_of(n_tokens: int) -> list[str]:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(FOLDER / "query_0_SparseStaticEmbedding" / "tokenizer.json"))
    out = []
    for line in (ROOT / "data" / "cranfield" / "queries.jsonl").open():
        enc = tok.encode(json.loads(line)["text"], add_special_tokens=False)
        if len(enc.ids) >= n_tokens:
            out.append(json.loads(line)["text"][: enc.offsets[n_tokens - 1][1]])
    return out


def timed(f: Callable[[str], object], queries: list[str], runs: int) -> list[float]:
    for q in queries[:20]:
        f(q)
    times = []
    for _ in range(runs):
        for q in queries:
            t = time.perf_counter()
            f(q)
            times.append(time.perf_counter() - t)
    return times


def summary(times: list[float]) -> dict[str, float]:
    q = statistics.quantiles(times, n=10)
    return {"p50_us": statistics.median(times) * 1e6, "p90_us": q[8] * 1e6, "calls": len(times)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--st-python", default=None, help="a python with sentence-transformers 6.x and torch")
    args = ap.parse_args()
    from tokenizers import Tokenizer

    from splade_onnx import SpladeEncoder

    sys.path.insert(0, str(ROOT / "tests"))
    from checkpoints import family_fixtures

    tmp = tempfile.TemporaryDirectory()  # removed when main() returns
    folder = family_fixtures(ROOT, dst=Path(tmp.name) / "families") / FOLDER.name
    queries = queries_of(TOKENS)
    enc = SpladeEncoder.from_pretrained(folder)
    assert enc.query_mode == "static"
    assert all(len(enc.loaded.query.tokenizer.encode([q])[0]) == TOKENS for q in queries)
    raw = Tokenizer.from_file(str(FOLDER / "query_0_SparseStaticEmbedding" / "tokenizer.json"))
    rows = {
        "splade-onnx encode_queries": summary(timed(lambda q: enc.encode_queries([q]), queries, args.runs)),
        "tokenizers Tokenizer.encode": summary(
            timed(lambda q: raw.encode(q, add_special_tokens=False), queries, args.runs)
        ),
    }
    if args.st_python:
        proc = subprocess.run(
            [args.st_python, "-c", ST_CHILD, str(folder), json.dumps(queries), str(args.runs)],
            capture_output=True,
            text=True,
            check=True,
        )
        rows["sentence-transformers encode_query"] = summary(json.loads(proc.stdout.strip().splitlines()[-1]))
    ours = rows["splade-onnx encode_queries"]["p50_us"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "static_query.json").write_text(
        json.dumps({"queries": len(queries), "tokens": TOKENS, "runs": args.runs, "rows": rows}, indent=1) + "\n"
    )
    lines = ["| implementation | p50 (µs) | p90 (µs) | p50 vs splade-onnx |", "|---|---|---|---|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['p50_us']:.1f} | {r['p90_us']:.1f} | {r['p50_us'] / ours:.2f}x |")
    (RESULTS / "static_query.md").write_text("\n".join(lines) + "\n")
    sys.stdout.write(f"{len(queries)} queries of {TOKENS} tokens, {args.runs} runs\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
