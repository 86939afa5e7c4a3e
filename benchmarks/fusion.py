"""Do fused transformer ops pay for documents? splade-onnx's graph against onnxruntime's optimizer on it.

Three graphs of the same checkpoint:

- ``plain``: the converter's graph (onnxruntime still applies its own session-level fusions to it);
- ``optimizer``: that graph rewritten by ``onnxruntime.transformers.optimizer`` (model_type
  ``bert``) with the contrib ops it recognises (SkipLayerNormalization, BiasGelu; it does not
  recognise the attention);
- ``attention``: the converter emitting onnxruntime's contrib ``Attention`` op itself (QKV in one
  GEMM, masked softmax, heads merged), ``build_graph(..., fused_attention=True)``.

Documents per second on batches of exactly 128, 256 and 512 tokens (Cranfield text, as many rows
as the token budget allows), the three alternating, and the weights each computes against plain.

    .venv/bin/python benchmarks/fusion.py     # after `make bench-prepare` (the BERT-base-shape model)

Writes benchmarks/results/fusion.json and fusion.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from _results import write_results
from tokenizers import Tokenizer

from splade_onnx import SpladeEncoder
from splade_onnx._batching import TOKEN_BUDGET
from splade_onnx._cache import save_model
from splade_onnx._graph_dense import build_graph
from splade_onnx._session import OrtBackend
from splade_onnx._spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / ".work"
log = logging.getLogger("fusion")


def fused_graph(src: Path, dest: Path, heads: int, hidden: int) -> dict[str, int]:
    from onnxruntime.transformers import optimizer

    opt = optimizer.optimize_model(str(src), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=0)
    opt.save_model_to_file(str(dest))
    return {k: v for k, v in opt.get_fused_operator_statistics().items() if v}


def feeds(enc: SpladeEncoder, length: int) -> dict[str, np.ndarray]:
    """A batch of ``TOKEN_BUDGET // length`` rows of exactly ``length`` tokens of Cranfield text."""
    tok = Tokenizer.from_str(enc.loaded.document.tokenizer.to_str())
    docs = [json.loads(line)["text"] for line in (ROOT / "data" / "cranfield" / "corpus.jsonl").open()][:200]
    body = [t for e in tok.encode_batch(docs, add_special_tokens=False) for t in e.ids]
    rows = max(1, TOKEN_BUDGET // length)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    ids = np.array([[cls, *body[r * (length - 2) : (r + 1) * (length - 2)], sep] for r in range(rows)], np.int64)
    return {"input_ids": ids, "attention_mask": np.ones_like(ids)}


def rate(backend: OrtBackend, feed: dict[str, np.ndarray], min_time: float) -> float:
    backend.run(feed)
    times = []
    start = time.perf_counter()
    while len(times) < 5 or time.perf_counter() - start < min_time:
        t = time.perf_counter()
        backend.run(feed)
        times.append(time.perf_counter() - t)
    return feed["input_ids"].shape[0] / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--min-time", type=float, default=3.0, help="seconds per measurement")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cache = WORK / "cache"
    rows: list[dict[str, Any]] = []
    for model, src in (("splade-tiny", "rasyosef/splade-tiny"), ("bert-base-shape", str(WORK / "bert-base-shape"))):
        enc = SpladeEncoder.from_pretrained(src, cache_dir=cache)
        recipe = enc.loaded.recipes.get("document")
        assert recipe is not None
        cfg = json.loads((recipe.folder / "config.json").read_text())
        dest = WORK / "fusion" / f"{model}.onnx"
        dest.parent.mkdir(parents=True, exist_ok=True)
        fused_ops = fused_graph(recipe.graph, dest, cfg["num_attention_heads"], cfg["hidden_size"])
        attn = WORK / "fusion" / f"{model}-attention.onnx"
        save_model(
            build_graph(load_spec(recipe.folder, recipe.folder / "model.safetensors"), fused_attention=True), attn
        )
        graphs = {
            "plain": OrtBackend(recipe.graph, threads=2),
            "optimizer": OrtBackend(dest, threads=2),
            "attention": OrtBackend(attn, threads=2),
        }
        for length in (128, 256, 512):
            feed = feeds(enc, length)
            ref = graphs["plain"].run(feed)
            row: dict[str, Any] = {
                "model": model,
                "tokens": length,
                "rows": feed["input_ids"].shape[0],
                "optimizer_ops": fused_ops,
            }
            for name in ("optimizer", "attention"):
                out = graphs[name].run(feed)
                row[f"{name}_identical_sets"] = bool(np.array_equal(ref > 0, out > 0))
                row[f"{name}_max_abs_diff"] = float(np.abs(ref - out).max())
            speeds: dict[str, list[float]] = {k: [] for k in graphs}
            for _ in range(3):  # alternate, so that drift in the machine's speed hits all alike
                for name, backend in graphs.items():
                    speeds[name].append(rate(backend, feed, args.min_time / 3))
            for name in graphs:
                row[f"{name}_docs_s"] = statistics.median(speeds[name])
            rows.append(row)
            log.info("%s", row)
    lines = [
        "| model | tokens/doc | plain docs/s | + optimizer (SkipLayerNorm, BiasGelu) | + contrib Attention | "
        "term sets and max abs diff vs plain |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        p = r["plain_docs_s"]
        par = "; ".join(
            f"{n}: {'identical' if r[f'{n}_identical_sets'] else 'DIFFERENT'}, {r[f'{n}_max_abs_diff']:.1e}"
            for n in ("optimizer", "attention")
        )
        o, a = r["optimizer_docs_s"], r["attention_docs_s"]
        lines.append(
            f"| {r['model']} | {r['tokens']} | {p:.1f} | {o:.1f} ({o / p:.2f}x) | {a:.1f} ({a / p:.2f}x) | {par} |"
        )
    write_results("fusion", rows, lines)


if __name__ == "__main__":
    main()
