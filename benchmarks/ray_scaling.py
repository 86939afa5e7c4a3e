"""Throughput of ``splade_onnx.ray.encode_dataset``: 2 actors x 1 thread against 1 actor x 1 thread.

The same Cranfield documents (title and text, as BEIR joins them) go through a local Ray cluster
of 3 logical CPUs (2 for the actors, 1 for Ray's own tasks) with splade-tiny.  Reported separately:

* Ray's startup: ``ray.init`` (cluster processes) and an actor pool's start (a one-row job: the
  actors start and load the model), both medians;
* each job end to end (read, actors' start, encoding, collecting the vectors), median of the repeats;
* steady throughput = documents / (job time - pool start), the figure that scales with a corpus;
* the in-process encoder at 1 thread on the same texts, for reference;
* the machine's own ceiling for two one-thread encoders: two plain processes (no Ray) encoding the
  same texts at once, against one.  2 actors cannot scale better than that on this machine.

    .venv/bin/python benchmarks/ray_scaling.py            # on a quiet machine: writes results/ray_scaling.{json,md}
    .venv/bin/python benchmarks/ray_scaling.py --quick    # a smoke run: results/ray_scaling-quick.{json,md}

The target of issue #13 is a speedup of at least 1.7x for 2 actors over 1.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray
from _results import write_results

from splade_onnx import SpladeEncoder
from splade_onnx._beir import load_beir
from splade_onnx.ray import PreparedModel, encode_dataset, prepare_model

ROOT = Path(__file__).resolve().parents[1]
logger = logging.getLogger("ray_scaling")


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def job(prepared: PreparedModel, texts: list[str], actors: int, blocks: int) -> int:
    ds = ray.data.from_items([{"text": t} for t in texts], override_num_blocks=blocks)
    out = encode_dataset(ds, model=prepared, concurrency=actors, num_cpus=1, threads=1, batch_size=64)
    return sum(len(b["indices"]) for b in out.iter_batches(batch_size=None, batch_format="pyarrow"))


_WORKER: dict[str, Any] = {}


def _load(model: str, quantize: str | None) -> None:
    _WORKER["encoder"] = SpladeEncoder.from_pretrained(model, quantize=quantize, threads=1)


def _encode(texts: list[str]) -> float:
    return timed(lambda: _WORKER["encoder"].encode_documents(texts))


def processes_ceiling(model: str, quantize: str | None, texts: list[str], repeats: int) -> float:
    """Throughput of two one-thread processes encoding ``texts`` each at the same time over one alone (no Ray)."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(2, initializer=_load, initargs=(model, quantize)) as pool:
        pool.map(_encode, [texts[:8]] * 2, chunksize=1)  # both workers loaded and warm
        ratios = []
        for _ in range(repeats):
            one = pool.apply(_encode, (texts,))
            two = max(pool.map(_encode, [texts, texts], chunksize=1))
            ratios.append(2 * one / two)
    return float(statistics.median(ratios))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="200 documents, 1 repeat (checks that the script runs)")
    ap.add_argument("--docs", type=int, default=1400, help="Cranfield documents (at most 1,400)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--model", default="rasyosef/splade-tiny")
    ap.add_argument("--quantize", choices=("int8",), default=None)
    ap.add_argument("--name", default="ray_scaling", help="results/<name>.{json,md}")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("ray", "splade_onnx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    n, repeats = (200, 1) if args.quick else (args.docs, args.repeats)
    texts = load_beir(ROOT / "data" / "cranfield").doc_texts[:n]

    encoder = SpladeEncoder.from_pretrained(args.model, quantize=args.quantize, threads=1)
    in_process = [timed(lambda: encoder.encode_documents(texts)) for _ in range(repeats)]
    ceiling = processes_ceiling(args.model, args.quantize, texts, repeats)
    logger.info("two plain processes over one: %.2fx", ceiling)

    init_s: list[float] = []
    results: dict[int, dict[str, list[float]]] = {}
    for r in range(repeats):
        init_s.append(
            timed(lambda: ray.init(num_cpus=3, include_dashboard=False, configure_logging=False, log_to_driver=False))
        )
        try:
            ray.data.DataContext.get_current().enable_progress_bars = False
            prepared = prepare_model(encoder)
            for actors in (1, 2):
                start = timed(
                    lambda a=actors, p=prepared: job(p, texts[:1], a, 1)
                )  # the pool's start, model load included
                # Blocks of about 50 documents: the last block of a job is short, so no actor waits long for
                # the other at the end (with 4 blocks per actor, one actor idled for a whole block).
                total = timed(lambda a=actors, p=prepared: job(p, texts, a, max(4 * a, len(texts) // 50)))
                res = results.setdefault(actors, {"start": [], "total": []})
                res["start"].append(start)
                res["total"].append(total)
                logger.info("repeat %d, %d actor(s): pool start %.2fs, job %.2fs", r + 1, actors, start, total)
        finally:
            t0 = time.perf_counter()
            ray.shutdown()
            logger.info("ray.shutdown %.2fs", time.perf_counter() - t0)

    def med(xs: list[float]) -> float:
        return float(statistics.median(xs))

    rows = {}
    for actors, res in results.items():
        start, total = med(res["start"]), med(res["total"])
        rows[actors] = {
            "pool_start_s": start,
            "job_s": total,
            "steady_docs_per_s": n / max(total - start, 1e-9),
            "end_to_end_docs_per_s": n / total,
        }

    def both(key: str) -> tuple[float, float]:
        return rows[1][key], rows[2][key]

    speedup = rows[2]["steady_docs_per_s"] / rows[1]["steady_docs_per_s"]
    data = {
        "model": args.model,
        "quantize": args.quantize,
        "documents": n,
        "repeats": repeats,
        "quick": args.quick,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "ray": ray.__version__},
        "ray_init_s": med(init_s),
        "in_process_1_thread_docs_per_s": n / med(in_process),
        "actors": {str(a): v for a, v in rows.items()},
        "speedup_2_over_1_steady": speedup,
        "two_processes_over_one_no_ray": ceiling,
        "speedup_2_over_1_end_to_end": rows[2]["end_to_end_docs_per_s"] / rows[1]["end_to_end_docs_per_s"],
    }
    table = [
        f"| {n:,} Cranfield documents, {Path(args.model).name}{' int8' if args.quantize else ''}, median of {repeats} "
        "| 1 actor x 1 thread | 2 actors x 1 thread |",
        "|---|---|---|",
        "| actor pool start (model load included) | {:.2f} s | {:.2f} s |".format(*both("pool_start_s")),
        "| job, end to end | {:.2f} s | {:.2f} s |".format(*both("job_s")),
        "| steady throughput | {:,.0f} docs/s | {:,.0f} docs/s |".format(*both("steady_docs_per_s")),
        f"| speedup (steady / end to end) | 1.00x | {speedup:.2f}x / {data['speedup_2_over_1_end_to_end']:.2f}x |",
        f"| `ray.init` (local cluster, 3 logical CPUs) | {data['ray_init_s']:.2f} s | |",
        f"| in-process encoder, 1 thread (no Ray) | {data['in_process_1_thread_docs_per_s']:,.0f} docs/s | |",
        f"| machine ceiling: 2 plain processes x 1 thread over 1 (no Ray) | 1.00x | {ceiling:.2f}x |",
        f"| 2 actors as a share of that ceiling | | {speedup / ceiling:.0%} |",
    ]
    write_results(f"{args.name}-quick" if args.quick else args.name, data, table)


if __name__ == "__main__":
    main()
