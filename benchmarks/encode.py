"""Encoding speed, memory and parity: splade-onnx (fp32, int8) against FastEmbed 0.9.1, side by side.

One command runs every workload; each (workload, system) runs in a fresh child process so
that its peak RSS is its own, and the systems alternate run by run on identical inputs.

    make bench            # prepares the models (torch, once), then runs this in .venv-bench
    .venv-bench/bin/python benchmarks/encode.py [--runs 3] [--quick]

Writes benchmarks/results/encode.json, encode.md and encode.png.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from bounds import Bounds, Shape, measure

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / ".work"
RESULTS = ROOT / "benchmarks" / "results"
DATA = Path(os.environ.get("SPLADE_DATA", ROOT / "data"))
TINY = "rasyosef/splade-tiny"
QUERY16 = "the effect of the shock wave on the boundary layer of a swept wing"
QUERY16_TOKENS = 16  # [CLS] + 14 words + [SEP] in BERT's uncased vocabulary (the child checks it)


def corpus(name: str) -> list[str]:
    return [json.loads(line)["text"] for line in (DATA / name / "corpus.jsonl").open()]


def queries(name: str) -> tuple[list[str], list[str]]:
    rows = [json.loads(line) for line in (DATA / name / "queries.jsonl").open()]
    return [r["_id"] for r in rows], [r["text"] for r in rows]


def texts_for(workload: str, quick: bool) -> list[str]:
    if workload == "tiny-cranfield":
        docs = corpus("cranfield")
        return docs[:200] if quick else docs
    if workload == "base-mixed":
        # Mixed lengths: Cranfield and CISI abstracts, every other one cut to its first 12 words.
        docs = [d for pair in zip(corpus("cranfield"), corpus("cisi")) for d in pair][:160]
        docs = [d if i % 2 else " ".join(d.split()[:12]) for i, d in enumerate(docs)]
        return docs[:40] if quick else docs
    if workload == "short-texts":
        qs = queries("cranfield")[1] * 8
        return qs[:400] if quick else qs
    raise ValueError(workload)


# ----------------------------------------------------------------------------- child side


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def load(system: str, model: str) -> Any:
    cache = str(WORK / "cache")
    if system.startswith("fastembed"):
        from fastembed import SparseTextEmbedding

        folder = WORK / f"fastembed-{model}"
        return SparseTextEmbedding("prithivida/Splade_PP_en_v1", specific_model_path=str(folder), cache_dir=cache)
    from splade_onnx import SpladeEncoder

    src = TINY if model == "splade-tiny" else str(WORK / model)
    return SpladeEncoder.from_pretrained(src, cache_dir=cache, quantize="int8" if "int8" in system else None)


def encode(system: str, enc: Any, texts: list[str], batch_size: int | None, parallel: int | None) -> list[Any]:
    if system.startswith("fastembed"):
        return list(enc.embed(texts, batch_size=batch_size or 256, parallel=parallel))
    return list(enc.embed(texts, batch_size=batch_size, parallel=parallel))


QUERY_SYSTEMS = ("splade-onnx fp32", "splade-onnx int8", "fastembed")
ROUND, ROUND_WARMUP = 100, 20  # calls per round of one system, and how many of them are not counted


def query_latency(model: str, repeats: int) -> dict[str, Any]:
    """One query at a time on every system, each in its own process, in alternating rounds of ROUND calls.

    The machine's speed drifts over seconds; rounds that alternate put each system through the
    same drift, so the medians and their ratios compare like with like.  Each system keeps its own
    process (sharing one, FastEmbed's float64 pooling slowed the next system's calls by 60 %), and
    the first ROUND_WARMUP calls of a round are not counted: a switch leaves the caches holding the other
    system's weights, which a server answering queries all day does not see.
    """

    def start(system: str) -> subprocess.Popen[str]:
        spec = json.dumps({"system": system, "model": model})
        cmd = [sys.executable, __file__, "--query-server", spec]
        return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    servers = {s: start(s) for s in QUERY_SYSTEMS}

    def ask(s: str, cmd: str) -> Any:
        proc = servers[s]
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(cmd + "\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {s} query server died (see its stderr)")
        return json.loads(line)

    try:
        for s in QUERY_SYSTEMS:
            ask(s, "ready")
        lat: dict[str, list[float]] = {s: [] for s in QUERY_SYSTEMS}
        for _ in range(max(1, repeats // (ROUND - ROUND_WARMUP))):
            for s in QUERY_SYSTEMS:
                lat[s] += ask(s, "round")
        out = {}
        for s in QUERY_SYSTEMS:
            out[s] = {"p50_ms": statistics.median(lat[s]), "p90_ms": float(np.percentile(lat[s], 90))}
            out[s].update(ask(s, "profile"))
    finally:
        for proc in servers.values():
            proc.kill()
            proc.wait()
    return {"systems": out}


def query_server(spec: dict[str, Any]) -> None:
    """Answer the coordinator on stdin/stdout: ``ready``, ``round`` (timed calls), ``profile``."""
    system = spec["system"]
    enc = load(system, spec["model"])
    for _ in range(10):
        encode(system, enc, [QUERY16], 1, None)
    for line in sys.stdin:
        cmd = line.strip()
        reply: Any = None
        if cmd == "round":
            reply = []
            for i in range(ROUND):
                t = time.perf_counter()
                encode(system, enc, [QUERY16], 1, None)
                if i >= ROUND_WARMUP:
                    reply.append((time.perf_counter() - t) * 1000)
        elif cmd == "profile":
            reply = {} if system.startswith("fastembed") else query_profile(enc, QUERY16, 300)
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


def child(spec: dict[str, Any]) -> dict[str, Any]:
    system, model, workload = spec["system"], spec["model"], spec["workload"]
    if workload == "query-latency":
        return query_latency(model, spec["repeats"])
    t0 = time.perf_counter()
    enc = load(system, model)
    out: dict[str, Any] = {"load_s": time.perf_counter() - t0}
    if workload == "generator":
        n = spec["n"]
        base = queries("cranfield")[1]
        gen = (f"{base[i % len(base)]} #{i}" for i in range(n))
        marks = []
        t = time.perf_counter()
        for i, _ in enumerate(enc.embed(gen)):
            if i % (n // 10) == 0:
                marks.append({"texts": i, "rss_mb": round(current_rss_mb(), 1)})
        marks.append({"texts": n, "rss_mb": round(current_rss_mb(), 1)})
        out.update(rss_marks=marks, docs_per_s=n / (time.perf_counter() - t), peak_rss_mb=rss_mb())
        return out
    texts = texts_for(workload, spec["quick"])
    encode(system, enc, texts[:8], spec.get("batch_size"), None)  # warm-up
    speeds = []
    vectors: list[Any] = []
    for _ in range(spec["runs"]):
        t = time.perf_counter()
        vectors = encode(system, enc, texts, spec.get("batch_size"), spec.get("parallel"))
        speeds.append(len(texts) / (time.perf_counter() - t))
    out.update(
        docs_per_s=speeds,
        n_texts=len(texts),
        peak_rss_mb=rss_mb(),
        mean_terms=float(np.mean([len(v.indices) for v in vectors])),
    )
    if not system.startswith("fastembed"):  # what the bound is computed from: tokens per text, as encoded
        out["token_counts"] = [len(x) for x in enc.loaded.document.tokenizer.encode(texts)]
    if spec.get("save"):
        path = WORK / "vectors" / f"{spec['save']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps([[v.indices.tolist(), v.values.astype(float).tolist()] for v in vectors]))
        out["vectors"] = path.relative_to(ROOT).as_posix()  # repo-relative: results hold no machine paths
    return out


def query_profile(enc: Any, text: str, repeats: int) -> dict[str, Any]:
    """Where one query's time goes: the session alone, Python around it, and onnxruntime's profile by op type."""
    import onnxruntime as ort

    from splade_onnx._tokenize import pad_batch

    engine = enc.loaded.query
    ids = engine.tokenizer.encode([text])
    if len(ids[0]) != QUERY16_TOKENS:
        raise SystemExit(f"the benchmark query has {len(ids[0])} tokens, not {QUERY16_TOKENS}")
    feed = pad_batch(ids, engine.tokenizer.pad_id)
    fast = engine.fast is not None and feed["input_ids"].size <= engine.fast_tokens
    backend = engine.fast.get() if fast else engine.backend
    inner: list[float] = []
    real_run = backend.run

    def timed_run(f: Any) -> Any:
        t = time.perf_counter()
        try:
            return real_run(f)
        finally:
            inner.append(time.perf_counter() - t)

    python, runs = [], []
    backend.run = timed_run
    try:
        for _ in range(repeats):  # Python = the rest of the same call, so drift cannot make it negative
            t = time.perf_counter()
            enc.encode_queries([text])
            python.append((time.perf_counter() - t - inner[-1]) * 1000)
            runs.append(inner[-1] * 1000)
    finally:
        del backend.run
    recipe = enc.loaded.recipes["query" if "query" in enc.loaded.recipes else "document"]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = backend.threads  # the session profiled below (the pruned head has two of its own)
    opts.enable_profiling = True
    opts.profile_file_prefix = str(WORK / "ort-profile")
    sess = ort.InferenceSession(
        str(recipe.fast_graph() if fast else recipe.graph), opts, providers=["CPUExecutionProvider"]
    )
    for _ in range(repeats):
        sess.run(["sparse"], feed)
    trace = Path(sess.end_profiling())
    by_op: dict[str, float] = {}
    for ev in json.loads(trace.read_text()):
        if ev.get("cat") == "Node" and ev["name"].endswith("_kernel_time"):
            op = ev.get("args", {}).get("op_name", "?")
            by_op[op] = by_op.get(op, 0.0) + ev["dur"] / repeats / 1000
    trace.unlink()
    return {
        "tokens": len(ids[0]),
        "graph": "latency (1 slice)" if fast else "main",
        "session_run_ms": statistics.median(runs),
        "python_ms": statistics.median(python),
        "profile_ms_by_op": dict(sorted(by_op.items(), key=lambda kv: -kv[1])),
    }


# ----------------------------------------------------------------------------- parent side


def run_child(spec: dict[str, Any], mem_limit_gb: float) -> dict[str, Any]:
    label = spec["label"]
    print(f"... {label}", flush=True)
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "true"}
    cmd = [sys.executable, __file__, "--child", json.dumps(spec)]
    limit = int(mem_limit_gb * 2**30)

    def cap() -> None:  # keep an out-of-memory competitor from taking the machine down
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, preexec_fn=cap, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        print(f"    failed: {tail}")
        return {**spec, "error": tail[:300]}
    res = {**spec, **json.loads(proc.stdout.strip().splitlines()[-1])}
    if "docs_per_s" in res and isinstance(res["docs_per_s"], list):
        res["docs_per_s_median"] = statistics.median(res["docs_per_s"])
        print(f"    {res['docs_per_s_median']:.1f} texts/s, peak RSS {res['peak_rss_mb']:.0f} MB")
    for name, r in res.get("systems", {}).items():
        print(f"    {name}: p50 {r['p50_ms']:.2f} ms")
    return res


def expand_queries(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per system of each query-latency run (they were measured together)."""
    out = []
    for r in results:
        for name, v in r.get("systems", {}).items():
            out.append(
                {"label": f"{r['label']} {name}", "system": name, "model": r["model"], "workload": r["workload"], **v}
            )
        if "systems" not in r:
            out.append(r)
    return out


def parity(a_path: str, b_path: str) -> dict[str, Any]:
    a, b = json.loads((ROOT / a_path).read_text()), json.loads((ROOT / b_path).read_text())
    same_sets = sum(x[0] == y[0] for x, y in zip(a, b))
    diffs = [float(np.abs(np.array(x[1]) - np.array(y[1])).max()) for x, y in zip(a, b) if x[0] == y[0] and x[0]]
    return {"docs": len(a), "identical_index_sets": same_sets, "max_abs_diff": max(diffs) if diffs else None}


def ndcg(vectors_path: str, system: str, model: str) -> dict[str, float]:
    """nDCG@10 / R@100 on Cranfield with exhaustive dot products (ir-measures)."""
    from splade_onnx._beir import load_beir
    from splade_onnx._eval import score_run

    docs = json.loads((ROOT / vectors_path).read_text())
    doc_ids = [json.loads(line)["_id"] for line in (DATA / "cranfield" / "corpus.jsonl").open()]
    qids, qtexts = queries("cranfield")
    enc = load(system, model)
    qv = list(enc.embed(qtexts))
    vocab = 30522
    dmat = np.zeros((len(docs), vocab), np.float32)
    for r, (idx, val) in enumerate(docs):
        dmat[r, idx] = val
    run = {}
    for qid, q in zip(qids, qv):
        scores = dmat[:, q.indices] @ q.values
        top = np.argsort(-scores, kind="stable")[:100]
        run[qid] = [(doc_ids[i], float(scores[i])) for i in top]
    return score_run(run, load_beir(DATA / "cranfield").qrels)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="small subsets, for checking the script")
    ap.add_argument("--generator", type=int, default=100_000, help="texts in the streaming-memory run")
    ap.add_argument("--mem-limit-gb", type=float, default=20.0)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--query-server", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.query_server:
        query_server(json.loads(args.query_server))
        return
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return

    runs, quick = args.runs, args.quick
    fe_runs = max(1, runs - 1)
    specs: list[dict[str, Any]] = []

    def add(label: str, system: str, model: str, workload: str, **kw: Any) -> None:
        specs.append(
            {
                "label": label,
                "system": system,
                "model": model,
                "workload": workload,
                "quick": quick,
                "runs": kw.pop("runs", runs),
                **kw,
            }
        )

    # 0. One 16-token query at a time.
    for model in ("splade-tiny", "bert-base-shape"):
        add(f"query {model}", "all", model, "query-latency", repeats=400 if model == "splade-tiny" else 160)
    # 1. splade-tiny on the Cranfield abstracts, max_length 512.
    add("tiny fp32", "splade-onnx fp32", "splade-tiny", "tiny-cranfield", save="tiny-fp32")
    add("tiny int8", "splade-onnx int8", "splade-tiny", "tiny-cranfield", save="tiny-int8")
    add(
        "tiny FastEmbed bs=4",
        "fastembed",
        "splade-tiny",
        "tiny-cranfield",
        batch_size=4,
        runs=fe_runs,
        save="tiny-fastembed",
    )
    add("tiny FastEmbed bs=256 (default)", "fastembed", "splade-tiny", "tiny-cranfield", batch_size=256, runs=1)
    for bs in (1, 32, 256):
        add(f"tiny fp32 batch_size={bs}", "splade-onnx fp32", "splade-tiny", "tiny-cranfield", batch_size=bs, runs=1)
    # 2. Data-parallel workers on many short texts, against one 2-thread session.
    add("short texts int8, 1 process", "splade-onnx int8", "splade-tiny", "short-texts")
    add("short texts int8, parallel=2", "splade-onnx int8", "splade-tiny", "short-texts", parallel=2)
    add("tiny int8, parallel=2", "splade-onnx int8", "splade-tiny", "tiny-cranfield", parallel=2)
    # 3. BERT-base shape, mixed-length documents.
    add("base fp32", "splade-onnx fp32", "bert-base-shape", "base-mixed", save="base-fp32")
    add("base int8", "splade-onnx int8", "bert-base-shape", "base-mixed")
    add(
        "base FastEmbed bs=4",
        "fastembed",
        "bert-base-shape",
        "base-mixed",
        batch_size=4,
        runs=fe_runs,
        save="base-fastembed",
    )
    # 5. A generator of many texts: RSS stays flat.
    add("generator int8", "splade-onnx int8", "splade-tiny", "generator", n=args.generator // (10 if quick else 1))

    print("... this machine's bounds (onnxruntime MatMul, 2 threads)", flush=True)
    limits = {m: measure(model_shape(m), query_tokens=QUERY16_TOKENS) for m in ("splade-tiny", "bert-base-shape")}
    partial = WORK / "partial-results.jsonl"  # each result is kept as soon as it exists
    partial.unlink(missing_ok=True)
    results = []
    for s in specs:
        results.append(run_child(s, args.mem_limit_gb))
        with partial.open("a") as f:
            f.write(json.dumps(results[-1]) + "\n")
    by = {r["label"]: r for r in results}
    results = expand_queries(results)
    add_bounds(results, limits)
    summary: dict[str, Any] = {
        "machine": machine(),
        "runs": runs,
        "quick": quick,
        "bounds": {m: b.as_dict() for m, b in limits.items()},
    }
    if all("vectors" in by.get(k, {}) for k in ("tiny fp32", "tiny FastEmbed bs=4")):
        summary["parity_tiny_fp32_vs_fastembed"] = parity(
            by["tiny fp32"]["vectors"], by["tiny FastEmbed bs=4"]["vectors"]
        )
    if all("vectors" in by.get(k, {}) for k in ("base fp32", "base FastEmbed bs=4")):
        summary["parity_base_fp32_vs_fastembed"] = parity(
            by["base fp32"]["vectors"], by["base FastEmbed bs=4"]["vectors"]
        )
    if not quick:
        for label, system in (("tiny fp32", "splade-onnx fp32"), ("tiny int8", "splade-onnx int8")):
            if "vectors" in by.get(label, {}):
                summary[f"cranfield_{label.replace(' ', '_')}"] = ndcg(by[label]["vectors"], system, "splade-tiny")
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "encode-quick" if quick else "encode"
    (RESULTS / f"{name}.json").write_text(json.dumps({"summary": summary, "results": results}, indent=1))
    table = markdown(results, summary)
    (RESULTS / f"{name}.md").write_text(table)
    plot(results, RESULTS / f"{name}.png")
    print(table)


def model_shape(model: str) -> Shape:
    if model == "splade-tiny":
        from splade_onnx._hub import resolve

        return Shape.from_config(resolve(TINY, cache_dir=WORK / "cache").path / "config.json")
    return Shape.from_config(WORK / model / "config.json")


def add_bounds(results: list[dict[str, Any]], limits: dict[str, Bounds]) -> None:
    """Each row's bound on this machine (same run) and the share of it reached.

    Texts/s rows: the GEMM rate at the projection shape over the workload's multiply-adds (token
    counts as splade-onnx encodes them; FastEmbed rows are fp32). Query rows: see Bounds.query_ms.
    """
    tokens = {(r["model"], r["workload"]): r["token_counts"] for r in results if "token_counts" in r}
    for r in results:
        b = limits[r["model"]]
        precision = "int8" if "int8" in r["system"] else "fp32"
        if r.get("docs_per_s_median") and (r["model"], r["workload"]) in tokens:
            r["bound_docs_per_s"] = b.docs_per_s(precision, tokens[(r["model"], r["workload"])])
            r["pct_of_bound"] = 100 * r["docs_per_s_median"] / r["bound_docs_per_s"]
        elif "p50_ms" in r:
            r["bound_ms"], r["bound_by"] = b.query_ms(precision, QUERY16_TOKENS)
            r["pct_of_bound"] = 100 * r["bound_ms"] / r["p50_ms"]
        r.pop("token_counts", None)


def machine() -> dict[str, Any]:
    import onnxruntime

    info = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")), "?")
    flags = next((ln for ln in info if ln.startswith("flags")), "")
    simd = [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "amx_int8") if f" {f}" in flags]
    return {"cpu": cpu, "cores": os.cpu_count(), "simd": simd, "onnxruntime": onnxruntime.__version__}


def markdown(results: list[dict[str, Any]], summary: dict[str, Any]) -> str:
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
    lines += ["", "```json", json.dumps(summary, indent=1), "```", ""]
    return "\n".join(lines)


def plot(results: list[dict[str, Any]], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    rows = [r for r in results if r.get("docs_per_s_median") and r["workload"] in ("tiny-cranfield", "base-mixed")]
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


if __name__ == "__main__":
    main()
