"""Measuring the pruned head's kernels on this machine, so ``projection="auto"`` decides from this machine's costs.

Four kernels, each a small graph of the very ops the heads run, timed through onnxruntime on one thread (how
every pruned graph runs):

* **dense**: the dense head's projection, ``[1, tokens, hidden] x [hidden, ids]`` and the max over tokens
  (one vocabulary slice of :func:`~splade_onnx._graph_dense.add_fused_pooling`);
* **bound**: the int8 bound of :func:`~splade_onnx._graph_pruned.tile_maxima` over the same ids, at the
  smallest and the largest candidate rank (its cost is a fixed part per (token, id) pair plus a part per
  column);
* **exact**: :func:`~splade_onnx._graph_pruned.kept_maxima`, the kept ids' rows times the text's states;
* **int8 dense**: the dense kernel through onnxruntime's dynamic quantization (:mod:`splade_onnx._quantize`), what
  the pruned head is weighed against when the encoder is int8.

Each is reported per (token, id) pair relative to the dense kernel: :class:`~splade_onnx._pruned.KernelCosts`.
:func:`machine` describes what the figures depend on (CPU, its instruction set, onnxruntime, cores); the
projection caches one calibration per machine and model.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._cache import save_model
from ._cores import default_threads
from ._graph import FLOAT, INT8, INT64, GraphBuilder, value
from ._graph_pruned import BOUND_TILE, kept_maxima, tile_maxima
from ._pruned import KernelCosts
from ._quantize import quantize
from ._session import OrtBackend

if TYPE_CHECKING:
    import onnx

logger = logging.getLogger(__name__)

__all__ = ["CALIBRATION_VERSION", "Calibration", "machine", "machine_key", "measure_costs"]

#: Bump when the kernels or how they are timed change: cached calibrations are keyed by it.
CALIBRATION_VERSION = "2"
#: Vocabulary ids per kernel run (whole bound tiles), and kept ids of the exact kernel.
_IDS = 8 * BOUND_TILE
_KEPT = 1024
#: Seconds of timed rounds in all (after a warm-up round), and the fewest and most rounds.  A round times each
#: kernel once, so a burst of load from other processes slows all kernels alike instead of one of them.
_SECONDS = 1.0
_ROUNDS = (5, 200)


@dataclass(frozen=True)
class Calibration:
    """The measured costs, and the raw figures they come from (seconds per run, the kernels' shapes)."""

    costs: KernelCosts
    #: Nanoseconds per (token, id) pair of the dense kernel: the unit of ``costs``.
    dense_ns: float
    seconds: dict[str, float]
    shape: dict[str, int]


def _cpu() -> tuple[str, str]:
    """The CPU's model name and a digest of its feature flags (Linux ``/proc/cpuinfo``; elsewhere the platform's
    processor string and no flags)."""
    name = flags = ""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        key, _, val = (x.strip() for x in line.partition(":"))
        if key.lower() in ("model name", "hardware", "cpu model") and not name:
            name = val
        elif key.lower() in ("flags", "features") and not flags:
            flags = hashlib.sha256(" ".join(sorted(val.split())).encode()).hexdigest()[:16]
    return name or platform.processor() or platform.machine(), flags


@functools.lru_cache(maxsize=1)
def machine() -> dict[str, str | int]:
    """What the kernel costs depend on: the CPU and its instruction set, onnxruntime's version and the cores."""
    import onnxruntime as ort

    cpu, flags = _cpu()
    return {
        "cpu": cpu,
        "cpu_flags": flags,
        "arch": platform.machine(),
        "onnxruntime": str(ort.__version__),
        "cores": default_threads(),
    }


def machine_key() -> str:
    """A short digest of :func:`machine`: one calibration per value."""
    return hashlib.sha256(json.dumps(machine(), sort_keys=True).encode()).hexdigest()[:16]


def _dense_kernel(hidden: int, ids: int, rng: np.random.Generator) -> onnx.ModelProto:
    b = GraphBuilder()
    w = b.const(rng.standard_normal((hidden, ids)).astype(np.float32), "decoder.weight")
    b.node("ReduceMax", [b.op("MatMul", ["h", w], "logits")], "out", axes=[1], keepdims=0)
    return b.model("dense_kernel", [value("h", FLOAT, [1, "tokens", hidden])], [value("out", FLOAT, None)])


def _bound_kernel(rank: int, ids: int, rng: np.random.Generator) -> onnx.ModelProto:
    b = GraphBuilder()
    top = tile_maxima(b, rng.integers(0, 256, size=(ids, rank + 1), dtype=np.uint8), "codes")
    return b.model(
        "bound_kernel", [value("codes", INT8, ["tokens", rank + 1])], [value(top, FLOAT, None)], contrib=True
    )


def _exact_kernel(hidden: int, ids: int, rng: np.random.Generator) -> onnx.ModelProto:
    b = GraphBuilder()
    mx = kept_maxima(b, rng.standard_normal((ids, hidden)).astype(np.float32), "idx", "hidden")
    inputs = [value("hidden", FLOAT, ["tokens", hidden]), value("idx", INT64, ["kept"])]
    return b.model("exact_kernel", inputs, [value(mx, FLOAT, None)])


def _fastest(runs: list[tuple[str, Any, dict[str, Any]]]) -> dict[str, float]:
    """The fastest run of each ``(name, session, feed)``, timed in rounds (each kernel once per round)."""
    best = {name: float("inf") for name, _, _ in runs}
    for _, session, feed in runs:
        session.run(None, feed)  # warm-up
    rounds, t_end = 0, time.perf_counter() + _SECONDS
    while rounds < _ROUNDS[0] or (rounds < _ROUNDS[1] and time.perf_counter() < t_end):
        for name, session, feed in runs:
            t0 = time.perf_counter()
            session.run(None, feed)
            best[name] = min(best[name], time.perf_counter() - t0)
        rounds += 1
    return best


def measure_costs(*, hidden: int, vocab: int, tokens: int, ranks: tuple[int, int]) -> Calibration:
    """Time the four kernels for a model of this ``hidden`` size and ``vocab``, on texts of ``tokens`` tokens,
    the bound at the ranks ``ranks`` (smallest, largest candidate); a second or two on splade-tiny."""
    rng = np.random.default_rng(0)
    ids = min(_IDS, max(BOUND_TILE, vocab // BOUND_TILE * BOUND_TILE))
    kept = min(_KEPT, ids)
    tokens = max(1, tokens)
    t0 = time.perf_counter()
    h = rng.standard_normal((tokens, hidden)).astype(np.float32)
    kernels: dict[str, tuple[onnx.ModelProto, dict[str, Any]]] = {
        "dense": (_dense_kernel(hidden, ids, rng), {"h": h[None]})
    }
    for r in sorted(set(ranks)):
        codes = rng.integers(-64, 65, size=(tokens, r + 1), dtype=np.int8)
        kernels[f"bound rank {r}"] = (_bound_kernel(r, ids, rng), {"codes": codes})
    idx = np.sort(rng.choice(ids, size=kept, replace=False)).astype(np.int64)
    kernels["exact"] = (_exact_kernel(hidden, ids, rng), {"hidden": h, "idx": idx})
    with tempfile.TemporaryDirectory(prefix="splade-calibration-") as tmp:
        runs: list[tuple[str, Any, dict[str, Any]]] = []
        paths: dict[str, Path] = {}
        for name, (model, _) in kernels.items():
            paths[name] = Path(tmp) / f"{len(paths)}.onnx"
            save_model(model, paths[name])
        paths["int8 dense"] = Path(tmp) / "int8-dense.onnx"
        quantize(paths["dense"], paths["int8 dense"], encoder_only=False)
        feeds = {name: feed for name, (_, feed) in kernels.items()} | {"int8 dense": kernels["dense"][1]}
        for name, path in paths.items():
            # one onnxruntime thread, as every pruned graph runs
            runs.append((name, OrtBackend(path, threads=1, spinning=False).session, feeds[name]))
        seconds = _fastest(runs)
    pair = seconds["dense"] / (tokens * ids)
    lo, hi = min(ranks), max(ranks)
    b_lo, b_hi = seconds[f"bound rank {lo}"] / (tokens * ids), seconds[f"bound rank {hi}"] / (tokens * ids)
    per_column = max(0.0, (b_hi - b_lo) / (hi - lo)) if hi > lo else 0.0
    fixed = max(0.0, b_lo - per_column * (lo + 1))
    costs = KernelCosts(
        bound_fixed=fixed / pair,
        bound_cost=per_column * hidden / pair,
        final_cost=seconds["exact"] / (tokens * kept) / pair,
        int8_dense=seconds["int8 dense"] / seconds["dense"],
    )
    logger.debug("calibrated the pruned head's kernels in %.2fs: %s", time.perf_counter() - t0, costs)
    shape = {"hidden": hidden, "ids": ids, "kept": kept, "tokens": tokens, "rank_low": lo, "rank_high": hi}
    return Calibration(costs=costs, dense_ns=pair * 1e9, seconds=seconds, shape=shape)
