"""Which int8 pays on this CPU: onnxruntime's quantization variants of splade-tiny, side by side.

Every variant quantizes the MatMuls of both graphs splade-onnx runs (the main graph with its
vocabulary slices, and the one-slice latency graph of short queries) and is measured in one run:

- query p50: one 16-token query at a time (the latency graph), 5 rounds of 100 calls (the first
  20 of each not counted) that alternate between the variants, so that drift hits all alike;
- docs/s: the Cranfield abstracts, default batching (the main graph), runs alternating likewise;
- quality: Cranfield nDCG@10 with the variant on both sides; the gate is fp32's minus 0.005.

Variants: dynamic (weights int8 ahead of time, activations quantized per call) per tensor or per
output channel, s8 or u8 weights, every MatMul or only the vocabulary projection or only the
encoder; and static QDQ with activation ranges calibrated on CISI (not the evaluated collection).

    .venv/bin/python benchmarks/int8_variants.py      # needs the [eval] extra (ir-measures)

Writes benchmarks/results/int8_variants.json and int8_variants.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import onnx
from _results import write_results

from splade_onnx import SpladeEncoder, evaluate
from splade_onnx._engine import NetworkEngine
from splade_onnx._session import LazyBackend, OrtBackend
from splade_onnx._tokenize import pad_batch

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / ".work" / "int8-variants"
DATA = ROOT / "data"
QUERY16 = "the effect of the shock wave on the boundary layer of a swept wing"
GATE = 0.005

log = logging.getLogger("int8_variants")

#: name -> quantize_dynamic / quantize_static options (``part``: which MatMuls)
VARIANTS: dict[str, dict[str, Any]] = {
    "dynamic s8 per-tensor, all MatMuls (the default before)": {"per_channel": False},
    "dynamic s8 per-channel, all MatMuls": {"per_channel": True},
    "dynamic u8 per-tensor, all MatMuls": {"per_channel": False, "u8": True},
    "dynamic s8 per-channel, projection only": {"per_channel": True, "part": "projection"},
    "dynamic s8 per-channel, encoder only": {"per_channel": True, "part": "encoder"},
    "static QDQ s8 per-channel, all MatMuls (CISI calibration)": {"per_channel": True, "static": True},
}


def matmuls(path: Path, part: str) -> list[str]:
    """Names of the MatMul nodes of ``part``: the vocabulary projection, the encoder, or all."""
    graph = onnx.load(str(path), load_external_data=False).graph
    out = []
    for n in graph.node:
        if n.op_type != "MatMul":
            continue
        proj = n.input[1].startswith("decoder.weight")
        if part == "all" or (part == "projection") == proj:
            out.append(n.name)
    return out


class Calibration:
    """CISI abstracts, one at a time, as the calibration reader of quantize_static wants them."""

    def __init__(self, enc: SpladeEncoder, n: int = 64) -> None:
        docs = [json.loads(line)["text"] for line in (DATA / "cisi" / "corpus.jsonl").open()][:n]
        self._feeds: Iterator[dict[str, Any]] = iter(
            pad_batch([ids], enc.loaded.document.tokenizer.pad_id) for ids in enc.loaded.document.tokenizer.encode(docs)
        )

    def get_next(self) -> dict[str, Any] | None:
        return next(self._feeds, None)

    def rewind(self) -> None:  # the protocol's optional method
        raise NotImplementedError


def quantize(src: Path, dest: Path, opts: dict[str, Any], enc: SpladeEncoder) -> Path:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    nodes = matmuls(src, opts.get("part", "all"))
    wt = QuantType.QUInt8 if opts.get("u8") else QuantType.QInt8
    if opts.get("static"):
        quantize_static(
            src,
            dest,
            Calibration(enc),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=["MatMul"],
            nodes_to_quantize=nodes,
            per_channel=opts["per_channel"],
            weight_type=wt,
            activation_type=QuantType.QUInt8,
        )
    else:
        quantize_dynamic(
            src,
            dest,
            weight_type=wt,
            op_types_to_quantize=["MatMul"],
            nodes_to_quantize=nodes,
            per_channel=opts["per_channel"],
        )
    return dest


def with_graphs(enc: SpladeEncoder, main: Path, fast: Path) -> SpladeEncoder:
    """``enc`` running ``main`` and ``fast`` instead of its fp32 graphs (same tokenizer and settings)."""
    doc = enc.loaded.document
    eng = NetworkEngine(
        OrtBackend(main, threads=2),
        doc.tokenizer,
        prompt=doc.prompt,
        pooling=doc.pooling,
        fast=LazyBackend(lambda: OrtBackend(fast, threads=2, spinning=False)),
    )
    return SpladeEncoder(dataclasses.replace(enc.loaded, document=eng, query=eng))


def measure(encs: dict[str, SpladeEncoder], docs: list[str], runs: int) -> dict[str, dict[str, Any]]:
    """Query p50 and docs/s of every variant, in alternating rounds (drift hits all alike), and nDCG@10."""
    lat: dict[str, list[float]] = {k: [] for k in encs}
    speeds: dict[str, list[float]] = {k: [] for k in encs}
    for enc in encs.values():
        for _ in range(20):
            enc.encode_queries([QUERY16])
        enc.encode_documents(docs[:16])
    for _ in range(5):
        for name, enc in encs.items():
            for i in range(100):  # rounds of 100, the first 20 not counted: a switch evicts the caches
                t = time.perf_counter()
                enc.encode_queries([QUERY16])
                if i >= 20:
                    lat[name].append((time.perf_counter() - t) * 1000)
    for _ in range(runs):
        for name, enc in encs.items():
            t = time.perf_counter()
            enc.encode_documents(docs)
            speeds[name].append(len(docs) / (time.perf_counter() - t))
    return {
        name: {
            "query_p50_ms": statistics.median(lat[name]),
            "docs_per_s": statistics.median(speeds[name]),
            "ndcg10": evaluate(DATA / "cranfield", enc)["splade"]["nDCG@10"],
        }
        for name, enc in encs.items()
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--docs", type=int, default=600, help="Cranfield abstracts in the docs/s run")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cache = ROOT / "benchmarks" / ".work" / "cache"
    docs = [json.loads(line)["text"] for line in (DATA / "cranfield" / "corpus.jsonl").open()][: args.docs]

    fp32 = SpladeEncoder.from_pretrained("rasyosef/splade-tiny", cache_dir=cache)
    recipe = fp32.loaded.recipes.get("document")
    assert recipe is not None and recipe.fast_graph is not None
    main_fp32, fast_fp32 = recipe.graph, recipe.fast_graph()
    encs: dict[str, SpladeEncoder] = {"fp32": fp32}
    for name, opts in VARIANTS.items():
        slug = "".join(c if c.isalnum() else "-" for c in name.split(" (")[0])
        enc = SpladeEncoder.from_pretrained("rasyosef/splade-tiny", cache_dir=cache)
        main = quantize(main_fp32, WORK / slug / "main.onnx", opts, enc)
        fast = quantize(fast_fp32, WORK / slug / "fast.onnx", opts, enc)
        encs[name] = with_graphs(enc, main, fast)
    rows = [{"variant": name, **m} for name, m in measure(encs, docs, args.runs).items()]
    base = rows[0]
    for r in rows:
        r["ndcg_vs_fp32"] = r["ndcg10"] - base["ndcg10"]
        r["passes_gate"] = r["ndcg_vs_fp32"] >= -GATE
    lines = [
        "| variant | 16-token query p50 ms | Cranfield docs/s | nDCG@10 | vs fp32 | gate (-0.005) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['variant']} | {r['query_p50_ms']:.2f} | {r['docs_per_s']:.1f} | {r['ndcg10']:.4f} | "
            f"{r['ndcg_vs_fp32']:+.4f} | {'pass' if r['passes_gate'] else 'FAIL'} |"
        )
    write_results("int8_variants", rows, lines)


if __name__ == "__main__":
    main()
