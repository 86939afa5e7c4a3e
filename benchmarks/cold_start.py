"""Cold start: what a fresh process pays before its first vector, with the model already cached.

Each round starts new Python processes (nothing warm but the OS file cache) and times, inside them:

- ``import``: ``import splade_onnx``;
- ``first query``: ``import splade_onnx`` + ``SpladeEncoder.from_pretrained(model)`` (cached graphs) +
  ``encode_queries([one query])``, and whether ``onnx`` (the converter's dependency) was imported.

The interpreter's own start-up (``python -c pass``) is timed in the same rounds as the floor.  The
model is converted once before the rounds, so every round reads the cache.

    make bench-cold-start     # or: .venv/bin/python benchmarks/cold_start.py [--rounds 7]

Writes benchmarks/results/cold_start.json and cold_start.md.
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

from _results import write_results

PROBES = {
    "python": "pass",
    "import": "import splade_onnx",
    "first query": (
        "from splade_onnx import SpladeEncoder\n"
        "enc = SpladeEncoder.from_pretrained(MODEL, cache_dir=CACHE)\n"
        "enc.encode_queries(['what is the boundary layer in a hypersonic flow'])\n"
    ),
}

_RUNNER = """
import json, sys, time
t0 = time.perf_counter()
MODEL, CACHE = sys.argv[1], sys.argv[2]
exec(compile(sys.argv[3], "probe", "exec"))
dt = time.perf_counter() - t0
print(json.dumps({"seconds": dt, "onnx": any(m == "onnx" or m.startswith("onnx.") for m in sys.modules)}))
"""


def run_probe(code: str, model: str, cache: str) -> dict[str, float | bool]:
    """Wall time of the whole process (start to exit) and the in-process time of ``code``."""
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", _RUNNER, model, cache, code], check=True, capture_output=True, text=True
    ).stdout
    wall = time.perf_counter() - t0
    res: dict[str, float | bool] = json.loads(out.strip().splitlines()[-1])
    res["process"] = wall
    return res


def cpu() -> str:
    """The CPU's model name and its vector extensions that matter to onnxruntime's kernels."""
    try:
        info = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return "unknown CPU"
    name = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")), "?")
    flags = next((ln.split(":", 1)[1].split() for ln in info.splitlines() if ln.startswith("flags")), [])
    wanted = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni") if f in flags]
    return f"{name} ({', '.join(wanted) or 'no AVX2'}), {os.cpu_count()} cores"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="rasyosef/splade-tiny")
    ap.add_argument("--cache-dir", default=os.environ.get("SPLADE_ONNX_CACHE") or None)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cache = args.cache_dir or tempfile.mkdtemp(prefix="splade-cold-")
    warm = run_probe(PROBES["first query"], args.model, cache)  # converts and caches the graphs
    logging.info("cache ready (%.1f s, converting included)", warm["seconds"])
    times: dict[str, list[float]] = {k: [] for k in PROBES}
    process: dict[str, list[float]] = {k: [] for k in PROBES}
    onnx_seen = False
    for _ in range(args.rounds):
        for name, code in PROBES.items():  # alternating, so drift hits every probe alike
            r = run_probe(code, args.model, cache)
            times[name].append(float(r["seconds"]))
            process[name].append(float(r["process"]))
            onnx_seen |= name == "first query" and bool(r["onnx"])
    med = {k: statistics.median(v) for k, v in times.items()}
    targets = {"import": 0.3, "first query": 0.8}
    table = [
        f"Cold start of `{args.model}` from its cache, {args.rounds} alternating rounds of fresh processes (medians), "
        f"on {cpu()}.",
        "",
        "| step | in-process time | whole process | target | met |",
        "|---|---|---|---|---|",
    ]
    for name in PROBES:
        target = targets.get(name)
        met = "" if target is None else ("yes" if med[name] <= target else "NO")
        table.append(
            f"| {name} | {med[name] * 1000:.0f} ms | {statistics.median(process[name]) * 1000:.0f} ms | "
            f"{'' if target is None else f'<= {target * 1000:.0f} ms'} | {met} |"
        )
    table += ["", f"`onnx` imported by the first-query process: {'yes' if onnx_seen else 'no'}."]
    data = {
        "model": args.model,
        "rounds": args.rounds,
        "seconds": times,
        "process_seconds": process,
        "median": med,
        "onnx_imported": onnx_seen,
        "cpu": cpu(),
    }
    write_results("cold_start", data, table)


if __name__ == "__main__":
    main()
