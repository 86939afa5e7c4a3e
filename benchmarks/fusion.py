"""Do fused transformer ops pay for documents? splade-onnx's graph against onnxruntime's optimizer on it.

``onnxruntime.transformers.optimizer`` (model_type ``bert``) rewrites the converted graph with the
contrib ops it recognises: SkipLayerNormalization, BiasGelu, Attention.  This measures documents
per second of both graphs on batches of exactly 128, 256 and 512 tokens (Cranfield text, as many
rows as the token budget allows), alternating, and checks that they compute the same weights.

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

from splade_onnx import SpladeEncoder
from splade_onnx._convert import TOKEN_BUDGET
from splade_onnx._session import OrtBackend

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / ".work"
RESULTS = ROOT / "benchmarks" / "results"
log = logging.getLogger("fusion")


def fused_graph(src: Path, dest: Path, heads: int, hidden: int) -> dict[str, int]:
    from onnxruntime.transformers import optimizer

    opt = optimizer.optimize_model(str(src), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=0)
    opt.save_model_to_file(str(dest))
    return {k: v for k, v in opt.get_fused_operator_statistics().items() if v}


def feeds(enc: SpladeEncoder, length: int) -> dict[str, np.ndarray]:
    """A batch of ``TOKEN_BUDGET // length`` rows of exactly ``length`` tokens of Cranfield text."""
    tok = enc._tokenizer
    docs = [json.loads(line)["text"] for line in (ROOT / "data" / "cranfield" / "corpus.jsonl").open()][:200]
    body = [t for e in tok._tok.encode_batch(docs, add_special_tokens=False) for t in e.ids]
    rows = max(1, TOKEN_BUDGET // length)
    cls, sep = tok._tok.token_to_id("[CLS]"), tok._tok.token_to_id("[SEP]")
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
        recipe = enc._files
        assert recipe is not None
        cfg = json.loads((recipe.folder / "config.json").read_text())
        dest = WORK / "fusion" / f"{model}.onnx"
        dest.parent.mkdir(parents=True, exist_ok=True)
        fused_ops = fused_graph(recipe.graph, dest, cfg["num_attention_heads"], cfg["hidden_size"])
        plain, fused = OrtBackend(recipe.graph, threads=2), OrtBackend(dest, threads=2)
        for length in (128, 256, 512):
            feed = feeds(enc, length)
            a, b = plain.run(feed), fused.run(feed)
            same_sets = bool(np.array_equal(a > 0, b > 0))
            diff = float(np.abs(a - b).max())
            speeds: dict[str, list[float]] = {"plain": [], "fused": []}
            for _ in range(3):  # alternate, so that drift in the machine's speed hits both
                speeds["plain"].append(rate(plain, feed, args.min_time / 3))
                speeds["fused"].append(rate(fused, feed, args.min_time / 3))
            p, f = statistics.median(speeds["plain"]), statistics.median(speeds["fused"])
            rows.append({"model": model, "tokens": length, "rows": feed["input_ids"].shape[0], "plain_docs_s": p,
                         "fused_docs_s": f, "speedup": f / p, "identical_sets": same_sets, "max_abs_diff": diff,
                         "fused_ops": fused_ops})  # fmt: skip
            log.info("%s", rows[-1])
    lines = ["| model | tokens/doc | splade-onnx graph docs/s | + onnxruntime fusions docs/s | speedup | "
             "identical sets, max abs diff | fused ops |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        ops = ", ".join(f"{k} {v}" for k, v in r["fused_ops"].items())
        lines.append(f"| {r['model']} | {r['tokens']} | {r['plain_docs_s']:.1f} | {r['fused_docs_s']:.1f} | "
                     f"{r['speedup']:.2f}x | {r['identical_sets']}, {r['max_abs_diff']:.1e} | {ops} |")  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "fusion.json").write_text(json.dumps(rows, indent=1))
    (RESULTS / "fusion.md").write_text("\n".join(lines) + "\n")
    log.info("\n%s", "\n".join(lines))


if __name__ == "__main__":
    main()
