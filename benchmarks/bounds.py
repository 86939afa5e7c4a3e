"""This machine's limits for SPLADE encoding, measured with onnxruntime in the benchmark's own run.

Three rates bound every workload of ``encode.py``:

- **GEMM rate** (fp32, and int8 as onnxruntime's dynamic quantization runs it) of a MatMul at the
  vocabulary projection's shape ``[m, hidden] x [hidden, vocab]``: ``m = 512`` for documents, the
  query's token count for queries.
- **Weight streaming**: a skinny MatMul ``[1, 768] x [768, n]`` whose weights (96 MB) do not fit in
  the last-level cache, in bytes of weights read per second.

A workload's bound is its multiply-adds at the GEMM rate, or, for a single short query whose
weights exceed the last-level cache, its weight bytes at the streaming rate, whichever takes
longer.  Nothing can beat that bound without computing less (see the pruned projection).

    python benchmarks/bounds.py            # prints the rates for splade-tiny's and BERT-base's shapes
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

STREAM_K, STREAM_BYTES = 768, 96 * 2**20


@dataclass(frozen=True)
class Shape:
    """What the bound needs to know of a BERT-like SPLADE model."""

    layers: int
    hidden: int
    intermediate: int
    vocab: int

    @classmethod
    def from_config(cls, path: Path) -> Shape:
        c = json.loads(path.read_text())
        return cls(c["num_hidden_layers"], c["hidden_size"], c["intermediate_size"], c["vocab_size"])

    def params(self) -> int:
        """Weights the MatMuls read (encoder layers, MLM head transform, vocabulary projection)."""
        h = self.hidden
        return self.layers * (4 * h * h + 2 * h * self.intermediate) + h * h + h * self.vocab

    def flops(self, tokens: int) -> float:
        """Floating-point operations (2 per multiply-add) of one sequence of ``tokens``, attention included."""
        return 2.0 * tokens * self.params() + 4.0 * self.layers * tokens * tokens * self.hidden


def _session(m: int | None, k: int, n: int, int8: bool, threads: int, work: Path) -> Any:
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(0).standard_normal((k, n), dtype=np.float32) * 0.05
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "w"], ["y"])],
        "gemm",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [m or "m", k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m or "m", n])],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = work / f"gemm-{k}x{n}.onnx"
    if not path.exists():
        onnx.save(model, str(path))
    if int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        q = work / f"gemm-{k}x{n}-int8.onnx"
        if not q.exists():
            quantize_dynamic(path, q, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])
        path = q
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _median_seconds(sess: Any, a: np.ndarray, min_time: float = 0.6) -> float:
    for _ in range(3):
        sess.run(None, {"a": a})
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < 7 or (time.perf_counter() - start < min_time and len(times) < 2000):
        t = time.perf_counter()
        sess.run(None, {"a": a})
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def gemm_rate(m: int, k: int, n: int, *, int8: bool, threads: int, work: Path) -> float:
    """Operations per second (2 per multiply-add) of ``[m, k] x [k, n]``."""
    sess = _session(None, k, n, int8, threads, work)
    a = np.random.default_rng(1).standard_normal((m, k), dtype=np.float32)
    return 2.0 * m * k * n / _median_seconds(sess, a)


def stream_rate(*, int8: bool, threads: int, work: Path) -> float:
    """Bytes of weights per second read by a one-row MatMul too big for the last-level cache."""
    n = STREAM_BYTES // (STREAM_K * (1 if int8 else 4))
    sess = _session(None, STREAM_K, n, int8, threads, work)
    a = np.random.default_rng(1).standard_normal((1, STREAM_K), dtype=np.float32)
    return STREAM_K * n * (1 if int8 else 4) / _median_seconds(sess, a)


def llc_bytes() -> int:
    """The last-level cache of this CPU (0 if unknown)."""
    best = 0
    for idx in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            size = (idx / "size").read_text().strip()
        except OSError:
            continue
        mult = {"K": 2**10, "M": 2**20}.get(size[-1:], 1)
        best = max(best, int(size.rstrip("KM")) * mult)
    return best


@dataclass(frozen=True)
class Bounds:
    """Measured rates: GEMM in FLOP/s per (precision, m) at one model's projection shape; streaming in B/s."""

    shape: Shape
    threads: int
    gemm: dict[str, float]
    stream: dict[str, float]
    llc: int

    def rate(self, precision: str, m: int) -> float:
        return self.gemm[f"{precision} m={m}"]

    def docs_per_s(self, precision: str, token_counts: list[int]) -> float:
        """The most texts per second the GEMM rate allows for texts of these token counts."""
        flops = sum(self.shape.flops(t) for t in token_counts)
        return len(token_counts) / (flops / self.rate(precision, 512))

    def query_ms(self, precision: str, tokens: int) -> tuple[float, str]:
        """The least time one query of ``tokens`` can take, and what bounds it."""
        compute = self.shape.flops(tokens) / self.rate(precision, tokens)
        weight_bytes = self.shape.params() * (1 if precision == "int8" else 4)
        if weight_bytes > self.llc:
            stream = weight_bytes / self.stream[precision]
            if stream > compute:
                return stream * 1000, f"weight stream ({weight_bytes / 2**20:.0f} MB)"
        return compute * 1000, "GEMM"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "shape": asdict(self.shape)}


def measure(shape: Shape, *, query_tokens: int, threads: int = 2) -> Bounds:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        gemm = {
            f"{p} m={m}": gemm_rate(m, shape.hidden, shape.vocab, int8=p == "int8", threads=threads, work=work)
            for p in ("fp32", "int8")
            for m in (512, query_tokens)
        }
        stream = {p: stream_rate(int8=p == "int8", threads=threads, work=work) for p in ("fp32", "int8")}
    return Bounds(shape, threads, gemm, stream, llc_bytes())


def main() -> None:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    log = logging.getLogger("bounds")
    for name, shape in (("splade-tiny", Shape(2, 128, 512, 30522)), ("BERT-base", Shape(12, 768, 3072, 30522))):
        b = measure(shape, query_tokens=16)
        log.info("%s: %s", name, ", ".join(f"{k} {v / 1e9:.0f} GFLOP/s" for k, v in b.gemm.items()))
        log.info(
            "  stream %s; LLC %d MB", ", ".join(f"{k} {v / 1e9:.1f} GB/s" for k, v in b.stream.items()), b.llc // 2**20
        )
        for p in ("fp32", "int8"):
            ms, why = b.query_ms(p, 16)
            log.info("  16-token query %s >= %.2f ms (%s)", p, ms, why)


if __name__ == "__main__":
    main()
