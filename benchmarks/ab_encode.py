"""Encoding speed of two revisions of splade-onnx, back to back on this machine (a benchmark, not a test).

Each revision is checked out into a temporary git worktree.  Every measurement runs in a fresh process that
imports that worktree's ``src`` (``PYTHONPATH``) with the revision's own model cache, in rounds that alternate
the revisions and the models.  Only the public API is used (``SpladeEncoder.from_pretrained``,
``encode_documents``, ``encode_queries``), so any revision since the first release runs; each process first
loads its model once, untimed, so that conversion and fitting are not measured.  The workloads are
``encode.py``'s: the 1,400 Cranfield documents on splade-tiny, the 160 mixed-length texts on the BERT-base shape,
and the 16-token query on both, at fp32 and int8, at the library's defaults (2 threads on 2 cores).

    make bench-prepare      # the BERT-base-shape checkpoint (benchmarks/.work/bert-base-shape)
    .venv/bin/python benchmarks/ab_encode.py --base 246e5b0 [--head HEAD] [--rounds 5]

Writes benchmarks/results/ab_encode.json and .md (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _results import write_results
from index_scale_child import peak_rss_mb
from workloads import QUERY16, ROUND_WARMUP, TINY, WORK, texts_for

ROOT = Path(__file__).resolve().parents[1]
#: (model, workload): what each model encodes.
CASES = (("splade-tiny", "tiny-cranfield"), ("bert-base-shape", "base-mixed"))
PRECISIONS = ("fp32", "int8")
#: Calls of the 16-token query per process (the first ``ROUND_WARMUP`` not counted): a millisecond-scale p50
#: on a machine whose speed drifts needs several hundred.
QUERY_CALLS = 500

log = logging.getLogger("ab_encode")


def child(task: dict[str, Any]) -> dict[str, Any]:
    """One revision's measurement of one model at one precision (run in a fresh process)."""
    import splade_onnx
    from splade_onnx import SpladeEncoder

    quantize = "int8" if task["precision"] == "int8" else None
    model = TINY if task["model"] == "splade-tiny" else str(WORK / task["model"])
    enc = SpladeEncoder.from_pretrained(model, quantize=quantize, cache_dir=task["cache"])
    texts = texts_for(task["workload"], False)
    enc.encode_documents(texts[:8])
    t = time.perf_counter()
    vectors = enc.encode_documents(texts)
    docs_s = time.perf_counter() - t
    times = []
    for i in range(QUERY_CALLS):
        t = time.perf_counter()
        enc.encode_queries([QUERY16])
        if i >= ROUND_WARMUP:
            times.append((time.perf_counter() - t) * 1000)
    return {
        "source": str(Path(splade_onnx.__file__).resolve().parents[1]),
        "docs_per_s": len(texts) / docs_s,
        "query_p50_ms": statistics.median(times),
        "terms_per_doc": sum(len(v) for v in vectors) / len(vectors),
        "peak_rss_mb": peak_rss_mb(),
    }


def run_child(src: Path, task: dict[str, Any]) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(src), "SPLADE_ONNX_CACHE": task["cache"]}
    out = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(task)], env=env, capture_output=True, text=True, check=False
    )
    if out.returncode:
        raise RuntimeError(f"child {task} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    if Path(result["source"]) != src:
        raise RuntimeError(f"the child imported splade_onnx from {result['source']}, not {src}")
    return result


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", help="the revision before (any git revision; required)")
    ap.add_argument("--head", default="HEAD", help="the revision after")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None, help="results folder (default benchmarks/results)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    if not args.base:
        ap.error("--base is required")
    if not (WORK / "bert-base-shape" / "model.safetensors").is_file():
        sys.exit("run `make bench-prepare` first: it writes the BERT-base-shape checkpoint")
    revs = {"before": args.base, "after": args.head}
    shas = {k: subprocess.check_output(["git", "rev-parse", v], cwd=ROOT, text=True).strip() for k, v in revs.items()}
    with tempfile.TemporaryDirectory(prefix="ab-encode-") as tmp:
        srcs = {}
        for name, sha in shas.items():
            tree = Path(tmp) / name
            subprocess.run(["git", "worktree", "add", "--detach", "-q", str(tree), sha], cwd=ROOT, check=True)
            srcs[name] = tree / "src"
        try:
            results = measure(srcs, Path(tmp), args.rounds)
        finally:
            for name in srcs:
                subprocess.run(["git", "worktree", "remove", "--force", str(Path(tmp) / name)], cwd=ROOT, check=False)
    data = {"revisions": {k: {"rev": revs[k], "sha": shas[k]} for k in revs}, "rounds": args.rounds, "rows": results}
    write_results("ab_encode", data, table(data), args.out)


def measure(srcs: dict[str, Path], tmp: Path, rounds: int) -> list[dict[str, Any]]:
    """Every (model, precision) of both revisions: loaded once untimed (conversion, fit), then ``rounds``
    alternating rounds; medians over the rounds."""

    def task(rev: str, model: str, workload: str, precision: str) -> dict[str, Any]:
        return {"model": model, "workload": workload, "precision": precision, "cache": str(tmp / f"cache-{rev}")}

    for m, w in CASES:
        for p in PRECISIONS:
            for rev in srcs:
                t = time.perf_counter()
                run_child(srcs[rev], task(rev, m, w, p))
                log.info("prepared %s %s %s in %.0f s", rev, m, p, time.perf_counter() - t)
    runs: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in range(rounds):
        order = list(srcs) if r % 2 == 0 else list(srcs)[::-1]
        for m, w in CASES:
            for p in PRECISIONS:
                for rev in order:
                    res = run_child(srcs[rev], task(rev, m, w, p))
                    runs.setdefault((rev, m, p), []).append(res)
                    log.info(
                        "round %d %s %s %s: %.1f docs/s, query %.2f ms",
                        r + 1,
                        rev,
                        m,
                        p,
                        res["docs_per_s"],
                        res["query_p50_ms"],
                    )
    rows = []
    for (rev, m, p), rs in runs.items():
        row: dict[str, Any] = {"revision": rev, "model": m, "precision": p}
        for key in ("docs_per_s", "query_p50_ms", "terms_per_doc", "peak_rss_mb"):
            row[key] = statistics.median(x[key] for x in rs)
            row[f"{key}_runs"] = [x[key] for x in rs]
        rows.append(row)
    return rows


def table(data: dict[str, Any]) -> list[str]:
    revs = data["revisions"]
    lines = [
        f"splade-onnx {revs['before']['rev']} ({revs['before']['sha'][:7]}) against {revs['after']['rev']} "
        f"({revs['after']['sha'][:7]}), back to back: {data['rounds']} rounds alternating the revisions, each "
        "measurement a fresh process at the library's defaults; medians (every run in the JSON).",
        "",
        "| model | precision | docs/s before | docs/s after | after / before | query p50 ms before | "
        "query p50 ms after | after / before | peak RSS MB before / after |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    by = {(r["revision"], r["model"], r["precision"]): r for r in data["rows"]}
    for m, _ in CASES:
        for p in PRECISIONS:
            b, a = by[("before", m, p)], by[("after", m, p)]
            lines.append(
                f"| {m} | {p} | {b['docs_per_s']:.1f} | {a['docs_per_s']:.1f} | "
                f"{a['docs_per_s'] / b['docs_per_s']:.2f}x | {b['query_p50_ms']:.2f} | {a['query_p50_ms']:.2f} | "
                f"{a['query_p50_ms'] / b['query_p50_ms']:.2f}x | {b['peak_rss_mb']:.0f} / {a['peak_rss_mb']:.0f} |"
            )
    return lines


if __name__ == "__main__":
    main()
