"""SparseIndex search speed on 10,000 real SPLADE passages: both exact engines, built in memory and opened
from their saved files (a benchmark, not a test).

Passages are splade-tiny vectors of the Cranfield and CISI abstracts, cut into windows of 40 words to reach
10,000; queries are both collections' queries.  Four systems, in alternating rounds in one process:
``exact`` and ``exhaustive``, each as built by ``add`` and as opened by ``SparseIndex.load`` (memory-mapped,
``verify=True``) from the file its index saved.  Every system's top k is checked against the in-memory
exhaustive engine's, ids and scores.

    make bench-search     # or: .venv/bin/python benchmarks/search.py [--docs N] [-k K] [--rounds R]

Writes benchmarks/results/search.json and search.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _results import write_results
from index_scale import machine

from splade_onnx import SparseEmbedding, SparseIndex, SpladeEncoder

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
ENGINES = ("exact", "exhaustive")


def passages(n: int) -> list[str]:
    out: list[str] = []
    for name in ("cranfield", "cisi"):
        for line in (DATA / name / "corpus.jsonl").open():
            words = json.loads(line)["text"].split()
            out += [" ".join(words[i : i + 40]) for i in range(0, max(len(words), 1), 40)]
    while len(out) < n:  # repeat with a marker if the collections are too small
        out += [f"{p} ({len(out)})" for p in out[: n - len(out)]]
    return out[:n]


def build(engine: str, vectors: list[SparseEmbedding], q0: SparseEmbedding, k: int, work: Path) -> dict[str, Any]:
    """The engine's index built (``add`` and the first search, which builds its postings), saved and opened."""
    index = SparseIndex(engine=engine)
    t = time.perf_counter()
    index.add(vectors)
    index.search(q0, k=k)
    build_s = time.perf_counter() - t
    path = work / f"{engine}.npz"
    index.save(path)
    t = time.perf_counter()
    opened = SparseIndex.load(path, engine=engine)
    open_s = time.perf_counter() - t
    opened.search(q0, k=k)  # the exhaustive engine builds its postings on the first search after a load
    return {"built": index, "opened": opened, "build_s": build_s, "open_s": open_s, "bytes": os.path.getsize(path)}


def one_round(index: SparseIndex, qv: list[SparseEmbedding], k: int) -> tuple[list[float], float, list[Any]]:
    """Every query searched once (ms each), then all of them in one ``search_batch`` (queries/s), and its hits."""
    lat = []
    for q in qv:
        t = time.perf_counter()
        index.search(q, k=k)
        lat.append((time.perf_counter() - t) * 1000)
    t = time.perf_counter()
    hits = index.search_batch(qv, k=k)
    return lat, len(qv) / (time.perf_counter() - t), hits


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=10_000)
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    enc = SpladeEncoder.from_pretrained("rasyosef/splade-tiny", quantize="int8")
    texts = passages(args.docs)
    vectors = enc.encode_documents(texts)
    queries = [
        json.loads(line)["text"] for name in ("cranfield", "cisi") for line in (DATA / name / "queries.jsonl").open()
    ]
    qv = enc.encode_queries(queries, max_length=64)
    with tempfile.TemporaryDirectory() as tmp:
        made = {e: build(e, vectors, qv[0], args.k, Path(tmp)) for e in ENGINES}
        systems = {f"{e} {how}": made[e][how] for e in ENGINES for how in ("built", "opened")}
        lat: dict[str, list[float]] = {s: [] for s in systems}
        qps: dict[str, list[float]] = {s: [] for s in systems}
        differing: dict[str, int] = dict.fromkeys(systems, 0)
        for _ in range(args.rounds):
            want = None
            for name in sorted(systems, key=lambda s: s != "exhaustive built"):  # the reference first
                ms, rate, hits = one_round(systems[name], qv, args.k)
                want = hits if want is None else want
                lat[name] += ms
                qps[name].append(rate)
                differing[name] += sum(h != w for h, w in zip(hits, want))
    nnz = sum(len(v) for v in vectors)
    res: dict[str, Any] = {
        "machine": machine(),
        "docs": len(vectors),
        "queries": len(qv),
        "k": args.k,
        "rounds": args.rounds,
        "mean_terms_per_doc": nnz / len(vectors),
        "mean_terms_per_query": float(np.mean([len(q) for q in qv])),
        "systems": {
            name: {
                "search_p50_ms": statistics.median(lat[name]),
                "search_p90_ms": float(np.percentile(lat[name], 90)),
                "search_batch_qps_median": statistics.median(qps[name]),
                "queries_differing_from_exhaustive": differing[name],
            }
            for name in systems
        },
        "engines": {e: {k: v for k, v in made[e].items() if k not in ("built", "opened")} for e in ENGINES},
    }
    write_results("search", res, table(res))


def table(res: dict[str, Any]) -> list[str]:
    m, sy = res["machine"], res["systems"]
    lines = [
        f"On {m['cpu']} ({m['cores']} cores), numpy {m['versions']['numpy']}: {res['docs']:,} passages of 40 words "
        f"of Cranfield and CISI ({res['mean_terms_per_doc']:.0f} terms each on average), their {res['queries']} "
        f"queries ({res['mean_terms_per_query']:.0f} terms), splade-tiny int8, k={res['k']}; {res['rounds']} "
        "alternating rounds in one process, every query's latency pooled over them. *built*: the index `add` made; "
        "*opened*: `SparseIndex.load` of its saved file (memory-mapped, `verify=True`).",
        "",
        "| engine | index | `search` p50 / p90 ms | `search_batch` queries/s | top-k differing from exhaustive |",
        "|---|---|---|---|---|",
    ]
    for name, r in sy.items():
        engine, how = name.split()
        lines.append(
            f"| {engine} | {how} | {r['search_p50_ms']:.3f} / {r['search_p90_ms']:.3f} | "
            f"{r['search_batch_qps_median']:,.0f} | {r['queries_differing_from_exhaustive']} |"
        )
    lines += ["", "| engine | build s (`add` + first search) | file bytes | bytes per document | open s |"]
    lines.append("|---|---|---|---|---|")
    for e, r in res["engines"].items():
        lines.append(
            f"| {e} | {r['build_s']:.2f} | {r['bytes']:,} | {r['bytes'] / res['docs']:,.0f} | {r['open_s']:.3f} |"
        )
    ratio = sy["exact opened"]["search_p50_ms"] / sy["exhaustive opened"]["search_p50_ms"]
    lines += ["", f"exact / exhaustive, `search` p50, both opened from their files: {ratio:.2f}."]
    return lines


if __name__ == "__main__":
    main()
