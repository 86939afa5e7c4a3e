"""The tables, the extrapolation and the chart of benchmarks/index_scale.py's results.

    python benchmarks/index_scale_report.py benchmarks/results/index_scale.json   # writes .md and .png again

Needs only the standard library (and matplotlib for the chart): where the interpreter that ran the benchmark
has no matplotlib, the chart is drawn by .venv-bench's, if it has one.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MSMARCO = 8_841_823  # MS MARCO v1 passages


def fmt(x: Any, spec: str = ".2f") -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def mb(x: Any) -> str:
    return "—" if x is None else f"{x / 2**20:,.0f} MB" if x >= 2**20 else f"{x / 1024:,.0f} kB"


def open_cell(s: dict[str, Any], key: str) -> str:
    if f"open_s_{key}" not in s:
        return s.get(f"open_error_{key}", "—")
    return f"{s[f'open_s_{key}']:.3f} s / {s[f'open_rss_mb_{key}']:,.0f} MB"


def pair(s: dict[str, Any], k: int) -> str:
    if f"top{k}_p50_ms" not in s:
        return "—"
    return f"{s[f'top{k}_p50_ms']:.2f} / {s[f'top{k}_p90_ms']:.2f}"


def size_table(rec: dict[str, Any]) -> list[str]:
    lines = [
        f"### {rec['label']} documents ({rec['entries']:,} entries, {rec['entries_per_doc']:.0f} per document; "
        f"{rec['rounds']} round{'s' if rec['rounds'] != 1 else ''})",
        "",
        "| system | build s | bytes on disk | open s / peak RSS (verify off) | open s / peak RSS (verify on) "
        "| load + first search s | peak RSS searching | top-10 p50 / p90 ms | top-100 p50 / p90 ms | batched ms/query "
        "| recall@10 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, sysrec in rec["systems"].items():
        s = sysrec["summary"]
        if "error" in s and "top10_p50_ms" not in s:
            lines.append(f"| {name} | {s['error']} |" + "  |" * 9)
            continue
        shared = sysrec["build"].get("shared")
        build = fmt(s.get("build_s"), ".1f") + (f" (that of {shared})" if shared else "")
        rss = f"{s['search_rss_mb']:,.0f} MB" if "search_rss_mb" in s else "—"
        kept = f" + {mb(s['cache_bytes'])} in the cache" if s.get("cache_bytes") else ""
        lines.append(
            f"| {name} | {build} | {mb(s.get('bytes'))}{kept} | {open_cell(s, 'off')} | {open_cell(s, 'on')} "
            f"| {fmt(s.get('open_first_s'), '.3f')} | {rss} | {pair(s, 10)} | {pair(s, 100)} "
            f"| {fmt(s.get('batch_ms_per_query'))} | {fmt(s.get('recall_at_10'), '.3f')} |"
        )
    ex = rec["exactness"]
    lines += [
        "",
        f"Exact engine against exhaustive, top 10 ids and scores bit for bit: {ex['real_queries']} real queries, "
        f"`search_batch` {fmt(ex['real_search_batch_mismatches'], 'd')} and `search` "
        f"{fmt(ex['real_search_mismatches'], 'd')} differing"
        + (
            f"; {ex['random_queries']:,} random queries, {fmt(ex['random_search_batch_mismatches'], 'd')} differing."
            if ex.get("random_queries")
            else "."
        )
        + " Median over the queries of the exact 10th-best score / best score: "
        + f"{fmt(ex.get('median_10th_over_1st'), '.3f')}.",
    ]
    a, b = rec["systems"].get("exact", {}).get("summary", {}), rec["systems"].get("exhaustive", {}).get("summary", {})
    ratios = [
        f"{what} {a[k] / b[k]:.2f}"
        for what, k in (
            ("top-10 p50", "top10_p50_ms"),
            ("top-100 p50", "top100_p50_ms"),
            ("batched", "batch_ms_per_query"),
            ("build", "build_s"),
            ("bytes", "bytes"),
        )
        if a.get(k) and b.get(k)
    ]
    if ratios:
        lines += ["", "exact / exhaustive: " + ", ".join(ratios) + "."]
    return [*lines, ""]


def extrapolation(data: dict[str, Any]) -> list[str]:
    sizes = [
        r
        for r in data["sizes"]
        if r["label"] != "real" and any("top10_p50_ms" in s["summary"] for s in r["systems"].values())
    ]
    if not sizes:
        return []
    big = max(sizes, key=lambda r: r["docs"])
    real = next((r for r in data["sizes"] if r["label"] == "real"), big)
    n, e_syn, e_real = big["docs"], big["entries_per_doc"], real["entries_per_doc"]
    lines = [
        f"## Extrapolation to MS MARCO ({MSMARCO:,} passages)",
        "",
        f"From the largest size measured ({n:,} documents). Bytes: bytes on disk / entries = bytes per entry, "
        f"× entries per document × {MSMARCO:,}, for documents as long as the synthetic ones ({e_syn:.0f} entries) and "
        f"as the real abstracts ({e_real:.0f}; MS MARCO passages are shorter than either, so these are upper "
        f"estimates). Latency: assumed linear in the postings a query reads, i.e. in the number of documents "
        f"(× {MSMARCO / n:.1f}); the exact engine's skipping and Seismic's fixed `n_postings` grow slower than "
        "that, so for them it is pessimistic. Seismic's own file is mostly block summaries, whose number "
        "`n_postings` caps: its bytes per entry fall with size, and its line overestimates. Our Seismic rows count "
        "the structure kept in the cache with the file.",
        "",
        f"| system | bytes per entry | on disk at {e_syn:.0f} / {e_real:.0f} entries per doc | top-10 p50 ms "
        f"at {n:,} | top-10 p50 ms at 8.8M (× {MSMARCO / n:.1f}) |",
        "|---|---|---|---|---|",
    ]
    for name, sysrec in big["systems"].items():
        s = sysrec["summary"]
        if not s.get("bytes") and "top10_p50_ms" not in s:
            continue
        per = (s["bytes"] + (s.get("cache_bytes") or 0)) / big["entries"] if s.get("bytes") else None
        disk = (
            f"{per:.2f} × {e_syn:.0f} × {MSMARCO:,} = {per * e_syn * MSMARCO / 2**30:.1f} GiB / "
            f"{per * e_real * MSMARCO / 2**30:.1f} GiB"
            if per
            else "—"
        )
        p50 = s.get("top10_p50_ms")
        ext = f"{p50:.2f} × {MSMARCO / n:.1f} = {p50 * MSMARCO / n:,.0f}" if p50 else "—"
        lines.append(f"| {name} | {fmt(per)} | {disk} | {fmt(p50)} | {ext} |")
    return [*lines, ""]


def markdown(data: dict[str, Any]) -> list[str]:
    m = data["machine"]
    args = data["args"]
    seis = ", ".join(f"{k}={v}" for k, v in data["seismic_build"].items())
    lines = [
        "# SparseIndex at scale",
        "",
        f"On {m['cpu']} ({m['cores']} cores, {m['mem_gb']} GB), Python {m['python']}, "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items())
        + f"; every search and build single-threaded in a fresh process (`load(verify=True)` checks the file on "
        "every core), systems alternating in rounds "
        f"({data.get('elapsed_s', 0) / 60:.0f} min in all).",
        "",
        "**Corpus.** The Cranfield (1,400) and CISI (1,460) documents, title + ' ' + text, and all 337 of their "
        "queries are encoded once with splade-tiny (`SpladeEncoder.from_pretrained()`, documents cut at 512 "
        "tokens). A synthetic document of size N is the union of two real document vectors drawn uniformly with "
        f"replacement (`numpy.random.default_rng([{args['seed']}, N])`), the larger weight where both hold a term: "
        "so its terms, their document frequencies and weights are real ones, and it is about 1.8 times as long "
        "as a real document. The queries are the real queries; the row *real* is the 2,860 real documents. "
        "Each real document is in 2N / 2,860 synthetic ones on average (70 at 100k, 700 at 1M), so a query's best "
        "documents are those holding its best real documents, with near-equal scores (the ratio of the 10th best "
        "exact score to the best is given per size): recall@10 of approximate and quantised systems is lower for it "
        "than on a real collection of that size would be, and their tables are best read against each other.",
        "",
        "**Measures.** *build*: `add` + the first search (which builds the structure) in one process; for "
        "pyseismic-lsr its dataset + `build_from_dataset` + a search; for bmp `add_document` calls + `finish` + "
        "opening the Searcher + a search (making its dicts not counted). *bytes on disk*: the saved file "
        "(SparseIndex: the exact engine's file holds its impact postings; the other engines' the rows only, and "
        "Seismic's structure is not in the file: `save` keeps it in the local cache, this run's folder, shown as "
        "*in the cache*, and the time to keep it is part of the save). *open*: `SparseIndex.load(path, "
        "verify=...)` (memory-mapped), `SeismicIndex.load`, `bmp.Searcher` in a fresh process, the file in the page "
        "cache (read through once by the parent just before: a cold open adds the disk's read of what it touches, "
        "all of the file with verify on); peak RSS "
        "(VmHWM, the interpreter, imports and queries included: `base_rss_mb` in the JSON; not `ru_maxrss`, which "
        "Linux carries over from the parent process) after it; *load + first search*: `load` (verify off) and one "
        "query, timed in the process that then measures the latencies (for our Seismic rows it includes reading "
        "the Seismic structure that `save` kept; without it, the load builds it again, as in the build column). "
        "Latencies: every real query one at a time after a warm-up pass, pooled over the "
        "rounds; *batched*: one `search_batch` (pyseismic-lsr: `batch_search`, 1 thread) of all queries, k=10. "
        "*recall@10*: share of the exact engine's top 10 returned. Seismic search settings (query_cut, "
        "heap_factor): "
        + ", ".join(f"{k}={tuple(v)}" for k, v in data.get("seismic_search", {}).items())
        + f"; build: "
        f"{seis}; seismic-direct uses setting b. bmp: block size {data['bmp']['bsize']}, document weights "
        "scaled to u8 (its limit: larger ints wrap), so even bmp-safe (alpha=beta=1) ranks by rounded weights; "
        f"bmp-approx alpha, beta = {tuple(data['bmp']['approx'])}; bmp has no batched call on a loaded Searcher. "
        "*peak RSS searching*: the peak of the process that loaded the index and ran the latencies"
        + (
            " (with --share-seismic-build, one process built our Seismic structure and timed settings a, b and c "
            "on it in turn, so their build and open columns are setting a's)."
            if args.get("share_seismic_build")
            else "."
        ),
        "",
    ]
    for rec in data["sizes"]:
        lines += size_table(rec)
    lines += extrapolation(data)
    if data.get("plot_note"):
        lines += [data["plot_note"], ""]
    return lines


def plot(data: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        return False
    panels = []
    for rec in data["sizes"]:
        pts = [
            (s["summary"]["top10_p50_ms"], s["summary"]["recall_at_10"], name)
            for name, s in rec["systems"].items()
            if "top10_p50_ms" in s["summary"] and "recall_at_10" in s["summary"]
        ]
        if pts:
            panels.append((rec["label"], pts))
    if not panels:
        return True
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4.5), sharey=True, squeeze=False)
    for ax, (label, pts) in zip(axes[0], panels):
        for x, y, name in pts:
            ax.scatter([x], [y], color="#1f77b4" if "ours" in name or "ex" in name else "#d62728")
            ax.annotate(name, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xscale("log")
        # Plain labels at the fastest and the slowest system and at the decades between (not 10^k, and none on
        # the minor ticks, which overprint each other over a narrow range).
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        lo, hi = min(x for x, _, _ in pts), max(x for x, _, _ in pts)
        ticks = [lo, hi]
        for d in range(math.ceil(math.log10(lo)), math.floor(math.log10(hi)) + 1):
            if min(abs(math.log10(10.0**d / t)) for t in ticks) > math.log10(1.6):
                ticks.append(10.0**d)
        ticks.sort()
        ax.set_xticks(ticks, [f"{t:.3g}" for t in ticks])
        ax.set_xlim(lo / 1.25, hi * 1.25)
        ax.set_title(f"{label} documents", fontsize=9)
        ax.set_xlabel("top-10 p50 ms (one query, one thread)", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("recall@10 against the exact engine")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def write(data: dict[str, Any], out: Path, name: str) -> None:
    """``name``.json, .md and .png in ``out``; the chart by .venv-bench's matplotlib if this one has none."""
    out.mkdir(parents=True, exist_ok=True)
    js, png = out / f"{name}.json", out / f"{name}.png"
    # Paths relative to the repository: results carry no machine's folders.
    js.write_text(json.dumps(data, indent=1).replace(f"{ROOT}/", "") + "\n")
    done = plot(data, png)
    if not done:
        bench = ROOT / ".venv-bench" / "bin" / "python"
        done = bench.exists() and subprocess.run([str(bench), __file__, str(js)], check=False).returncode == 0
    data["plot_note"] = (
        f"![top-10 latency against recall@10, every size]({png.name})"
        if done
        else "No chart: matplotlib is not installed (`pip install matplotlib`, or make .venv-bench)."
    )
    (out / f"{name}.md").write_text("\n".join(markdown(data)) + "\n")


def main() -> None:
    """Write the .md and .png beside the results file named on the command line."""
    js = Path(sys.argv[1])
    data = json.loads(js.read_text())
    if not plot(data, js.with_suffix(".png")):
        sys.exit("matplotlib is not installed")
    data["plot_note"] = f"![top-10 latency against recall@10, every size]({js.with_suffix('.png').name})"
    js.with_suffix(".md").write_text("\n".join(markdown(data)) + "\n")


if __name__ == "__main__":
    main()
