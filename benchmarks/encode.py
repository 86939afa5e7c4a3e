"""Encoding speed, memory and parity: splade-onnx (fp32, int8) against FastEmbed 0.9.1 and sentence-transformers'
SparseEncoder (torch, ONNX, ONNX int8, OpenVINO), side by side.

One command runs every workload; each (workload, system) runs in a fresh child process so
that its peak RSS is its own, and the systems alternate run by run on identical inputs.
sentence-transformers runs in venvs of its own (benchmarks/st_systems.py says which).

    make bench            # prepares the models (torch, once) and the venvs, then runs this in .venv-bench
    .venv-bench/bin/python benchmarks/encode.py [--runs 3] [--quick] [--systems fp32,int8,st6-torch,...]
        [--models splade-tiny] [--out DIR]

Writes encode.json, encode.md and encode.png (encode-quick.* with --quick) to benchmarks/results or --out.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
from bounds import Bounds, Shape, measure
from encode_child import QUERY_SYSTEMS, load
from encode_report import markdown, plot
from st_systems import ST_SYSTEMS, SYSTEMS, prepare, quantization_config, run_documents
from workloads import DATA, MODELS, QUERY16_TOKENS, RESULTS, ROOT, WORK, model_dir, queries, texts_for

CHILD = Path(__file__).with_name("encode_child.py")
OURS = {
    "fp32": "splade-onnx fp32",
    "int8": "splade-onnx int8",
    "int8-dense": "splade-onnx int8 dense",
    "fastembed": "fastembed",
}
ALL_SYSTEMS = (*OURS.values(), *ST_SYSTEMS)


def run_child(spec: dict[str, Any], mem_limit_gb: float) -> dict[str, Any]:
    label = spec["label"]
    print(f"... {label}", flush=True)
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "true"}
    cmd = [sys.executable, str(CHILD), "--child", json.dumps(spec)]
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
        print(f"    {name}: p50 {r['p50_ms']:.2f} ms, peak RSS {r['peak_rss_mb']:.0f} MB")
    for name, why in res.get("errors", {}).items():
        print(f"    {name}: failed: {why}")
    return res


def expand_queries(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per system of each query-latency run (they were measured together)."""
    out = []
    for r in results:
        for name, v in r.get("systems", {}).items():
            out.append(
                {"label": f"{r['label']} {name}", "system": name, "model": r["model"], "workload": r["workload"], **v}
            )
        for name, why in r.get("errors", {}).items():
            out.append(
                {"label": f"{r['label']} {name}", "system": name, "model": r["model"], "workload": r["workload"]}
                | {"error": why}
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


def pick(arg: str | None, names: dict[str, str], allowed: tuple[str, ...], what: str) -> set[str]:
    """The names a comma-separated ``--systems``/``--models`` value selects (all when it is None)."""
    if arg is None:
        return set(allowed)
    picked = {names.get(n.strip(), n.strip()) for n in arg.split(",") if n.strip()}
    unknown = picked - set(allowed)
    if unknown:
        raise SystemExit(f"unknown {what} {sorted(unknown)}: choose from {', '.join([*names, *allowed])}")
    return picked


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="small subsets, for checking the script")
    ap.add_argument(
        "--systems", help="comma-separated: fp32,int8,int8-dense,fastembed," + ",".join(ST_SYSTEMS) + " (all)"
    )
    ap.add_argument("--models", help="comma-separated: " + ",".join(MODELS) + " (both)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="folder the results are written to")
    ap.add_argument("--generator", type=int, default=100_000, help="texts in the streaming-memory run")
    ap.add_argument("--mem-limit-gb", type=float, default=20.0)
    args = ap.parse_args()
    systems = pick(args.systems, OURS, ALL_SYSTEMS, "systems")
    models = pick(args.models, {}, MODELS, "models")
    runs, quick = args.runs, args.quick
    fe_runs = max(1, runs - 1)
    specs: list[dict[str, Any]] = []

    def add(label: str, system: str, model: str, workload: str, **kw: Any) -> None:
        if model not in models or (system != "all" and system not in systems):
            return
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

    # sentence-transformers' exports (ONNX, int8, OpenVINO), once, before anything is timed.
    not_ready: dict[tuple[str, str], str] = {}
    for st in (st for st in ST_SYSTEMS if st in systems):
        for m in sorted(models):
            if why := prepare(st, m, args.mem_limit_gb):
                not_ready[(st, m)] = why
    # splade-onnx's graphs (conversion, fit, calibration, int8), once per system and model, before anything is
    # timed: every timed process then loads them from the cache, as a deployed service does, and its peak RSS
    # is that of loading and encoding, not of converting.
    for ours in (s for s in OURS.values() if s in systems and s.startswith("splade-onnx")):
        for m in sorted(models):
            warm = {"label": f"converting {m} for {ours} (not timed)", "system": ours, "model": m}
            if "error" in run_child({**warm, "workload": "warm", "quick": True, "runs": 1}, args.mem_limit_gb):
                print("    (the timed runs will convert it)")
    # 0. One 16-token query at a time.
    for model in MODELS:
        chosen = [s for s in (*QUERY_SYSTEMS, *ST_SYSTEMS) if s in systems and (s, model) not in not_ready]
        repeats = 400 if model == "splade-tiny" else 160
        if chosen:
            add(f"query {model}", "all", model, "query-latency", repeats=repeats, systems=chosen)
    # 1. splade-tiny on the Cranfield abstracts, max_length 512.
    add("tiny fp32", "splade-onnx fp32", "splade-tiny", "tiny-cranfield", save="tiny-fp32")
    add("tiny int8", "splade-onnx int8", "splade-tiny", "tiny-cranfield", save="tiny-int8")
    add("tiny int8 dense head", "splade-onnx int8 dense", "splade-tiny", "tiny-cranfield", save="tiny-int8-dense")
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
    add("base int8", "splade-onnx int8", "bert-base-shape", "base-mixed", save="base-int8")
    add("base int8 dense head", "splade-onnx int8 dense", "bert-base-shape", "base-mixed", save="base-int8-dense")
    add(
        "base FastEmbed bs=4",
        "fastembed",
        "bert-base-shape",
        "base-mixed",
        batch_size=4,
        runs=fe_runs,
        save="base-fastembed",
    )
    # 4. sentence-transformers' SparseEncoder on the same documents, its default batch size (32), as many runs
    #    as FastEmbed's (its [32, seq, 30522] logits make it the slowest rows).
    for prefix, model, workload in (("tiny", "splade-tiny", "tiny-cranfield"), ("base", MODELS[1], "base-mixed")):
        for st in ST_SYSTEMS:
            kw = {"error": not_ready[(st, model)]} if (st, model) in not_ready else {}
            add(f"{prefix} {st} bs=32", st, model, workload, batch_size=32, runs=fe_runs, save=f"{prefix}-{st}", **kw)
    # 5. A generator of many texts: RSS stays flat.
    add("generator int8", "splade-onnx int8", "splade-tiny", "generator", n=args.generator // (10 if quick else 1))

    print("... this machine's bounds (onnxruntime MatMul, 2 threads)", flush=True)
    limits = {m: measure(model_shape(m), query_tokens=QUERY16_TOKENS) for m in sorted(models)}
    partial = WORK / "partial-results.jsonl"  # each result is kept as soon as it exists
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.unlink(missing_ok=True)
    results = []
    for s in specs:
        if s["system"] in ST_SYSTEMS:
            results.append(run_documents(s, texts_for(s["workload"], quick), args.mem_limit_gb))
        else:
            results.append(run_child(s, args.mem_limit_gb))
        with partial.open("a") as f:
            f.write(json.dumps(results[-1]) + "\n")
    for r in results:  # a system whose export failed has its row in the latency table too
        if r["workload"] == "query-latency":
            r["errors"].update({s: why for (s, m), why in not_ready.items() if m == r["model"]})
    by = {r["label"]: r for r in results}
    results = expand_queries(results)
    add_bounds(results, limits)
    summary: dict[str, Any] = {
        "machine": machine(),
        "runs": runs,
        "quick": quick,
        "bounds": {m: b.as_dict() for m, b in limits.items()},
        "sentence_transformers": st_summary(results),
    }
    for prefix in ("tiny", "base"):
        pairs = [(f"{prefix}_fp32_vs_fastembed", f"{prefix} FastEmbed bs=4")]
        pairs += [(f"{prefix}_fp32_vs_{s}", f"{prefix} {s} bs=32") for s in ST_SYSTEMS if "int8" not in s]
        for key, other in pairs:
            if all("vectors" in by.get(k, {}) for k in (f"{prefix} fp32", other)):
                summary[f"parity_{key}"] = parity(by[f"{prefix} fp32"]["vectors"], by[other]["vectors"])
        # int8 with the head auto picks (the pruned head where it pays) against fp32 and against the int8 dense head
        speed = {k: by.get(f"{prefix} {k}", {}).get("docs_per_s_median") for k in ("fp32", "int8", "int8 dense head")}
        if speed["int8"] and speed["fp32"]:
            summary[f"{prefix}_int8_over_fp32"] = speed["int8"] / speed["fp32"]
        if speed["int8"] and speed["int8 dense head"]:
            summary[f"{prefix}_int8_over_int8_dense_head"] = speed["int8"] / speed["int8 dense head"]
        if all("vectors" in by.get(f"{prefix} {k}", {}) for k in ("int8", "int8 dense head")):
            summary[f"parity_{prefix}_int8_vs_int8_dense_head"] = parity(
                by[f"{prefix} int8"]["vectors"], by[f"{prefix} int8 dense head"]["vectors"]
            )
    if not quick:
        for label, system in (("tiny fp32", "splade-onnx fp32"), ("tiny int8", "splade-onnx int8")):
            if "vectors" in by.get(label, {}):
                summary[f"cranfield_{label.replace(' ', '_')}"] = ndcg(by[label]["vectors"], system, "splade-tiny")
    args.out.mkdir(parents=True, exist_ok=True)
    name = "encode-quick" if quick else "encode"
    (args.out / f"{name}.json").write_text(json.dumps({"summary": summary, "results": results}, indent=1))
    table = markdown(results, summary)
    (args.out / f"{name}.md").write_text(table)
    plot(results, args.out / f"{name}.png")
    print(table)


def st_summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Each sentence-transformers system's venv, backend, loaded file and the exact versions it ran."""
    out: dict[str, Any] = {}
    for r in results:
        s = SYSTEMS.get(r["system"])
        if s and r["system"] not in out and "versions" in r:
            out[s.name] = {"venv": s.venv, "backend": s.backend, "file_name": s.file_name, "versions": r["versions"]}
    if "st5-onnx-int8" in out:
        out["st5-onnx-int8"]["quantization_config"] = quantization_config()
    return out


def model_shape(model: str) -> Shape:
    return Shape.from_config(model_dir(model) / "config.json")


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


if __name__ == "__main__":
    main()
