"""SparseIndex search speed on 10,000 real SPLADE passages (a benchmark, not a test).

Passages are splade-tiny vectors of the Cranfield and CISI abstracts, cut into
windows of 40 words to reach 10,000; queries are both collections' queries.

    make bench-search     # or: .venv/bin/python benchmarks/search.py

Writes benchmarks/results/search.json and search.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from splade_onnx import SparseIndex, SpladeEncoder

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
RESULTS = ROOT / "benchmarks" / "results"


def passages(n: int) -> list[str]:
    out: list[str] = []
    for name in ("cranfield", "cisi"):
        for line in (DATA / name / "corpus.jsonl").open():
            words = json.loads(line)["text"].split()
            out += [" ".join(words[i : i + 40]) for i in range(0, max(len(words), 1), 40)]
    while len(out) < n:  # repeat with a marker if the collections are too small
        out += [f"{p} ({len(out)})" for p in out[: n - len(out)]]
    return out[:n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=10_000)
    ap.add_argument("-k", type=int, default=10)
    args = ap.parse_args()
    enc = SpladeEncoder.from_pretrained("rasyosef/splade-tiny", quantize="int8")
    texts = passages(args.docs)
    t = time.perf_counter()
    vectors = enc.encode_documents(texts)
    encode_s = time.perf_counter() - t
    queries = [
        json.loads(line)["text"] for name in ("cranfield", "cisi") for line in (DATA / name / "queries.jsonl").open()
    ]
    qv = enc.encode_queries(queries, max_length=64)

    index = SparseIndex()
    t = time.perf_counter()
    index.add(vectors)
    index.search(qv[0], k=args.k)  # builds the postings
    build_s = time.perf_counter() - t
    lat = []
    for q in qv * 3:
        t = time.perf_counter()
        index.search(q, k=args.k)
        lat.append((time.perf_counter() - t) * 1000)
    batch_qps = []
    for _ in range(5):
        t = time.perf_counter()
        index.search_batch(qv, k=args.k)
        batch_qps.append(len(qv) / (time.perf_counter() - t))
    nnz = int(sum(len(v) for v in vectors))
    # CSR rows + postings: int32 id + float32/64 weight per entry, both directions, plus pointers.
    arrays = [a for a in vars(index).values() if isinstance(a, np.ndarray)]
    index_bytes = int(sum(a.nbytes for a in arrays))
    res = {
        "docs": len(index),
        "queries": len(qv),
        "mean_terms_per_doc": nnz / len(index),
        "mean_terms_per_query": float(np.mean([len(q) for q in qv])),
        "encode_docs_per_s": len(texts) / encode_s,
        "build_s": build_s,
        "search_p50_ms": statistics.median(lat),
        "search_p90_ms": float(np.percentile(lat, 90)),
        "search_batch_qps_median": statistics.median(batch_qps),
        "index_bytes": index_bytes,
        "bytes_per_doc": index_bytes / len(index),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "search.json").write_text(json.dumps(res, indent=1))
    md = "\n".join(
        [
            "| measure | value |",
            "|---|---|",
            f"| documents (40-word passages of Cranfield + CISI) | {res['docs']:,} |",
            "| terms per document / query (mean) | "
            f"{res['mean_terms_per_doc']:.0f} / {res['mean_terms_per_query']:.0f} |",
            f"| `search` p50 / p90, k={args.k} | {res['search_p50_ms']:.2f} ms / {res['search_p90_ms']:.2f} ms |",
            f"| `search_batch` throughput (median of 5) | {res['search_batch_qps_median']:,.0f} queries/s |",
            f"| index memory | {res['index_bytes'] / 2**20:.1f} MB, {res['bytes_per_doc']:,.0f} bytes per document |",
            f"| build (postings) | {res['build_s']:.2f} s |",
        ]
    )
    (RESULTS / "search.md").write_text(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
