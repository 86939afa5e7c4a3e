"""Two choices inside the pruned head, measured: how the max over tokens is taken, and how the threads share
the batches.

* **The max over tokens** of one vocabulary tile's products, [512 ids, 212 tokens] (Cranfield's mean length),
  one onnxruntime ``ReduceMax`` on one thread: float32 along the rows (what the head does: the products are
  written as float32 by ``MatMulIntegerToFloat``), int32 along the rows (``MatMulInteger``'s output), and
  int32 across the rows (the [tokens, ids] layout).  Median of 9 repeats of 300 calls.
* **Threads.** The same pruned graphs of splade-tiny on Cranfield's batches: ``PrunedBackend.run`` one batch
  at a time (the batch cut in two parts of about the same number of tokens, one per thread) against
  ``PrunedBackend.run_all`` (whole batches side by side, one per thread).  2 threads, alternating rounds.

    .venv/bin/python benchmarks/pruned_kernels.py    # writes results/pruned_kernels.{json,md}
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from _results import write_results
from onnx import TensorProto, helper

from splade_onnx import SpladeEncoder
from splade_onnx._batching import plan_batches
from splade_onnx._beir import load_beir
from splade_onnx._graph_pruned import BOUND_TILE
from splade_onnx._session import PrunedBackend
from splade_onnx._tokenize import pad_batch

ROOT = Path(__file__).resolve().parents[1]
TOKENS = 212


def reduce_max_us(dtype: int, axis: int, shape: list[int]) -> float:
    """Median microseconds of one single-threaded ``ReduceMax`` over ``axis`` of a ``shape`` tensor."""
    node = helper.make_node("ReduceMax", ["x"], ["y"], axes=[axis], keepdims=0)
    graph = helper.make_graph(
        [node],
        "max",
        [helper.make_tensor_value_info("x", dtype, shape)],
        [helper.make_tensor_value_info("y", dtype, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    np_type = np.float32 if dtype == TensorProto.FLOAT else np.int32
    x = np.random.default_rng(0).integers(-(2**20), 2**20, size=shape).astype(np_type)
    for _ in range(30):
        session.run(None, {"x": x})
    repeats = []
    for _ in range(9):
        t0 = time.perf_counter()
        for _ in range(300):
            session.run(None, {"x": x})
        repeats.append((time.perf_counter() - t0) / 300 * 1e6)
    return statistics.median(repeats)


def threads(rounds: int) -> tuple[int, dict[str, list[float]]]:
    """Documents, and seconds per pass over Cranfield's batches: ``run`` batch by batch, and ``run_all``."""
    enc = SpladeEncoder.from_pretrained("rasyosef/splade-tiny", projection="pruned", threads=2)
    backend = enc.loaded.document.backend
    assert isinstance(backend, PrunedBackend)
    tok = enc.loaded.document.tokenizer
    ids, _ = tok.encode_counted(load_beir(ROOT / "data" / "cranfield").doc_texts, enc.max_length)
    batches = plan_batches([len(x) for x in ids], token_budget=enc.token_budget, max_batch=256)
    feeds = [pad_batch([ids[i] for i in b], tok.pad_id) for b in batches]
    ways: dict[str, Any] = {
        "one batch at a time": lambda: [backend.run(f) for f in feeds],
        "whole batches side by side": lambda: list(backend.run_all(feeds)),
    }
    for way in ways.values():
        way()  # warm
    out: dict[str, list[float]] = {k: [] for k in ways}
    for _ in range(rounds):
        for name, way in ways.items():
            t0 = time.perf_counter()
            way()
            out[name].append(time.perf_counter() - t0)
    return len(ids), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("splade_onnx").setLevel(logging.ERROR)
    rows, cols = BOUND_TILE, TOKENS
    maxima = {
        "float32, along rows (the head)": reduce_max_us(TensorProto.FLOAT, 1, [rows, cols]),
        "int32, along rows": reduce_max_us(TensorProto.INT32, 1, [rows, cols]),
        "int32, across rows ([tokens, ids])": reduce_max_us(TensorProto.INT32, 0, [cols, rows]),
    }
    docs, seconds = threads(args.rounds)
    rates = {k: docs / statistics.median(v) for k, v in seconds.items()}
    data = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "tile": [rows, cols],
        "reduce_max_us": maxima,
        "thread_seconds": seconds,
        "docs_per_s": rates,
    }
    base = maxima["float32, along rows (the head)"]
    table = [
        f"| max over tokens of one [{rows}, {cols}] tile, 1 thread | us (median) | vs the head's |",
        "|---|---|---|",
        *[f"| {k} | {v:.1f} | {v / base:.2f}x |" for k, v in maxima.items()],
        "",
        f"| pruned graphs, {docs:,} Cranfield documents, 2 threads, median of {args.rounds} rounds | docs/s |",
        "|---|---|",
        *[f"| {k} | {v:.1f} |" for k, v in rates.items()],
    ]
    write_results("pruned_kernels", data, table)


if __name__ == "__main__":
    main()
