"""The tables and the chart of benchmarks/encode.py's results (encode.md, encode.png); the BERT-base shape, what
people deploy, comes first.

    python benchmarks/encode_report.py benchmarks/results/encode.json   # writes encode.md and encode.png again
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from st_systems import BATCH_SIZE, ST_SYSTEMS, THREADS
from workloads import QUERY16_TOKENS

OURS = ("splade-onnx fp32", "splade-onnx int8")


def headline_first(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``results`` with the BERT-base shape's rows first, each model's rows in their own order."""
    return sorted(results, key=lambda r: r["model"] != "bert-base-shape")


def markdown(results: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    results = headline_first(results)
    by = {r["label"]: r for r in results}

    def speed(label: str) -> float | None:
        return by.get(label, {}).get("docs_per_s_median")

    lines = [
        "| workload | system | texts/s (median) | vs FastEmbed | bound texts/s | % of bound | peak RSS MB |",
        "|---|---|---|---|---|---|---|",
    ]
    groups = [("tiny", "tiny FastEmbed bs=4"), ("short", None), ("base", "base FastEmbed bs=4")]
    for r in results:
        if ("docs_per_s_median" not in r and "error" not in r) or r["workload"] in ("query-latency", "generator"):
            continue
        ref = next((speed(fe) for g, fe in groups if fe and r["label"].startswith(g)), None)
        s = r.get("docs_per_s_median")
        ratio = f"{s / ref:.1f}x" if s and ref else ""
        shown = f"{s:.1f}" if s else f"failed: {r.get('error', '')[:60]}"
        rss = f"{r['peak_rss_mb']:.0f}" if "peak_rss_mb" in r else ""
        bound = f"{r['bound_docs_per_s']:.0f} | {r['pct_of_bound']:.0f} %" if "bound_docs_per_s" in r else " | "
        lines.append(
            f"| {r['workload']} ({r.get('n_texts', '')}) | {r['label']} | {shown} | {ratio} | {bound} | {rss} |"
        )
    lines += [
        "",
        f"| one {QUERY16_TOKENS}-token query | p50 ms | p90 ms | vs FastEmbed | bound ms (what bounds it) "
        "| % of bound | of which session.run ms | Python ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if r["workload"] == "query-latency" and "p50_ms" in r:
            fe = by.get(f"query {r['model']} fastembed", {}).get("p50_ms")
            ratio = f"{r['p50_ms'] / fe:.2f}x" if fe and "fastembed" not in r["system"] else ""
            run = f"{r['session_run_ms']:.2f} | {r['python_ms']:.2f}" if "session_run_ms" in r else " | "
            lines.append(
                f"| {r['model']} {r['system']} | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} | {ratio} | "
                f"{r['bound_ms']:.2f} ({r['bound_by']}) | {r['pct_of_bound']:.0f} % | {run} |"
            )
    profiled = [r for r in results if r.get("profile_ms_by_op")]
    if profiled:
        lines += ["", "onnxruntime's profile of one query by op type (ms per query, kernel time):", ""]
        for r in profiled:
            top = ", ".join(f"{op} {ms:.3f}" for op, ms in list(r["profile_ms_by_op"].items())[:6])
            lines.append(f"- {r['model']} {r['system']}, {r['tokens']} tokens on the {r['graph']} graph: {top}")
    gen = next((r for r in results if r["workload"] == "generator" and "rss_marks" in r), None)
    if gen:
        m = gen["rss_marks"]
        lines += [
            "",
            f"Generator of {m[-1]['texts']:,} texts: RSS {m[0]['rss_mb']:.0f} MB at the start, "
            f"{max(x['rss_mb'] for x in m):.0f} MB at most, {m[-1]['rss_mb']:.0f} MB at the end "
            f"({gen['docs_per_s']:.0f} texts/s).",
        ]
    lines += st_table(results)
    lines += ["", "```json", json.dumps(summary, indent=1), "```", ""]
    return "\n".join(lines)


def plot(results: list[dict[str, Any]], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    rows = [
        r
        for r in headline_first(results)
        if r.get("docs_per_s_median") and r["workload"] in ("tiny-cranfield", "base-mixed")
    ]
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(rows) + 1))
    ax.barh(
        [r["label"] for r in rows],
        [r["docs_per_s_median"] for r in rows],
        color=["#d62728" if "FastEmbed" in r["label"] else "#1f77b4" for r in rows],
    )
    ax.set_xscale("log")
    ax.set_xlabel("documents per second (median, log scale)")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def ours_row(results: list[dict[str, Any]], system: str, like: dict[str, Any]) -> dict[str, Any]:
    """splade-onnx's row of ``system`` on ``like``'s model and workload, at its defaults (no batch size, 1 process)."""
    return next(
        (
            r
            for r in results
            if r["system"] == system
            and r["model"] == like["model"]
            and r["workload"] == like["workload"]
            and not {"batch_size", "parallel", "error"} & r.keys()
        ),
        {},
    )


def st_table(results: list[dict[str, Any]]) -> list[str]:
    """sentence-transformers' rows beside splade-onnx's: how many times faster splade-onnx fp32 and int8 are."""
    rows = [r for r in results if r["system"] in ST_SYSTEMS]
    if not rows:
        return []
    rows.sort(key=lambda r: (r["model"] != "bert-base-shape", r["workload"] == "query-latency"))
    lines = [
        "",
        f"sentence-transformers' SparseEncoder ({THREADS} threads; documents in batches of {BATCH_SIZE}) beside "
        "splade-onnx at its defaults: *fp32 / int8 ×* is how many times faster splade-onnx is (texts/s, or "
        f"one {QUERY16_TOKENS}-token query's p50).",
        "",
        "| model | workload | system | texts/s or p50 ms | peak RSS MB | splade-onnx fp32 × | splade-onnx int8 × |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        query = r["workload"] == "query-latency"
        key = "p50_ms" if query else "docs_per_s_median"
        value = r.get(key)
        ratios = []
        for system in OURS:
            ours = ours_row(results, system, r).get(key)
            ratios.append("" if not (value and ours) else f"{(value / ours if query else ours / value):.1f}x")
        if value is None:
            shown = f"failed: {r.get('error', '?')[:120]}"
        else:
            shown = f"{value:.2f} ms" if query else f"{value:.1f}"
        rss = f"{r['peak_rss_mb']:.0f}" if "peak_rss_mb" in r else ""
        workload = "one query" if query else r["workload"] + (f" ({r['n_texts']})" if "n_texts" in r else "")
        lines.append(f"| {r['model']} | {workload} | {r['system']} | {shown} | {rss} | {ratios[0]} | {ratios[1]} |")
    return lines


def main() -> None:
    """Write encode.md and encode.png again beside the results file named on the command line."""
    path = Path(sys.argv[1])
    data = json.loads(path.read_text())
    path.with_suffix(".md").write_text(markdown(data["results"], data["summary"]))
    plot(data["results"], path.with_suffix(".png"))


if __name__ == "__main__":
    main()
