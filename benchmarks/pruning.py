"""What pruning costs: nDCG@10, R@100, terms per document and index bytes at several settings.

Cranfield and CISI (``data/``) with splade-tiny.  Each collection is encoded once unpruned; every
setting then applies the encoder's own pruning (``top_k`` / ``min_weight``, the function
``encode_documents(..., top_k=, min_weight=)`` calls) to those vectors, and one setting per
collection is re-encoded through the public API to check that both give the same vectors.
Index bytes are the size of the saved :class:`SparseIndex` file (int32 ids + float32 weights per
term, plus document ids); a Qdrant or Milvus sparse vector stores the same 8 bytes per term.

    .venv/bin/python benchmarks/pruning.py          # needs the [eval] extra (ir-measures)

Writes benchmarks/results/pruning.json and pruning.md (the table in the README).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from splade_onnx import SparseIndex, SpladeEncoder
from splade_onnx._batching import prune
from splade_onnx._beir import load_beir
from splade_onnx._eval import score_run

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

#: (label, document top_k, document min_weight, query top_k)
SETTINGS: list[tuple[str, int | None, float | None, int | None]] = [
    ("no pruning", None, None, None),
    ("top_k=128", 128, None, None),
    ("top_k=64", 64, None, None),
    ("top_k=32", 32, None, None),
    ("top_k=16", 16, None, None),
    ("min_weight=0.3", None, 0.3, None),
    ("min_weight=0.6", None, 0.6, None),
    ("min_weight=1.0", None, 1.0, None),
    ("top_k=64, query top_k=16", 64, None, 16),
]


def run_collection(enc: SpladeEncoder, name: str) -> list[dict[str, Any]]:
    data = load_beir(ROOT / "data" / name)
    docs = enc.encode_documents(data.doc_texts)
    queries = enc.encode_queries(data.query_texts)
    check = enc.encode_documents(data.doc_texts[:200], top_k=32, min_weight=0.3)
    assert all(a == prune(b, top_k=32, min_weight=0.3) for a, b in zip(check, docs)), "pruning paths differ"
    rows = []
    for label, top_k, min_weight, q_top_k in SETTINGS:
        pruned = [prune(d, top_k=top_k, min_weight=min_weight) for d in docs]
        qs = [prune(q, top_k=q_top_k) for q in queries]
        index = SparseIndex()
        index.add(pruned, ids=data.doc_ids)
        run = dict(zip(data.query_ids, index.search_batch(qs, k=100)))
        scores = score_run(run, data.qrels)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "index.npz"
            index.save(path)
            size = path.stat().st_size
        rows.append(
            {
                "collection": name,
                "setting": label,
                "nDCG@10": scores["nDCG@10"],
                "R@100": scores["R@100"],
                "terms_per_doc": float(np.mean([len(d) for d in pruned])),
                "terms_per_query": float(np.mean([len(q) for q in qs])),
                "index_bytes": size,
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="rasyosef/splade-tiny")
    args = ap.parse_args()
    enc = SpladeEncoder.from_pretrained(args.model)
    rows = [r for name in ("cranfield", "cisi") for r in run_collection(enc, name)]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "pruning.json").write_text(json.dumps({"model": enc.name, "rows": rows}, indent=1) + "\n")
    lines = [
        "| collection | documents | nDCG@10 | R@100 | terms / doc | terms / query | index bytes |",
        "|---|---|---|---|---|---|---|",
    ]
    base: dict[str, dict[str, Any]] = {}
    for r in rows:
        b = base.setdefault(r["collection"], r)
        lines.append(
            f"| {r['collection']} | {r['setting']} | {r['nDCG@10']:.4f} | {r['R@100']:.4f} | "
            f"{r['terms_per_doc']:.1f} | {r['terms_per_query']:.1f} | {r['index_bytes']:,} "
            f"({r['index_bytes'] / b['index_bytes']:.0%}) |"
        )
    (RESULTS / "pruning.md").write_text("\n".join(lines) + "\n")
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
