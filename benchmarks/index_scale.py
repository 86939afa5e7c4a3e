"""SparseIndex at scale: 100k, 300k and 1M documents made of real splade-tiny vectors (a benchmark, not a test).

The Cranfield and CISI documents (title + text) and all their queries are encoded once with splade-tiny and
cached. A synthetic document is the union of two real document vectors drawn at random (seeded; the larger
weight where both hold a term), so document frequencies, lengths and weights follow the real ones. The real
collections (2,860 documents) are measured too. Each system is built, opened and timed in fresh processes,
single-threaded (but for ``load(verify=True)``, which checks a file on every core), in rounds that alternate
the systems: SparseIndex's exact, exhaustive and Seismic engines, pyseismic-lsr called directly, and Block-Max
Pruning (``bmp``), safe and approximate. The exact engine's top 10 must equal the exhaustive engine's to the
bit, for the real queries and for random ones.

    make bench-index-scale       # or: .venv/bin/python benchmarks/index_scale.py [--sizes 100000 300000 1000000]
    .venv/bin/python benchmarks/index_scale.py --quick --out benchmarks/.cache/quick   # 20,000 documents, 2 rounds

Writes index_scale.json, .md and .png (index_scale-quick.* with --quick) to benchmarks/results or --out;
vectors, corpora and exact answers are cached in benchmarks/.cache/index_scale.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import index_scale_report as report
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
CHILD = Path(__file__).with_name("index_scale_child.py")
COLLECTIONS = ("cranfield", "cisi")
THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "RAYON_NUM_THREADS": "1"}
CHUNK = 50_000  # synthetic documents made per vectorised step
#: Seismic's build settings (SparseIndex's defaults), the same for our engine and the direct calls.
SEISMIC_BUILD = {"n_postings": 3500, "centroid_fraction": 0.1, "summary_energy": 0.4, "doc_cut": 15}
#: Search settings (query_cut, heap_factor) of the three Seismic rows; the direct row uses "b".
SEISMIC_SEARCH = {"a": (10, 0.9), "b": (20, 0.8), "c": (40, 0.7)}
BMP: dict[str, Any] = {"bsize": 32, "safe": (1.0, 1.0), "approx": (0.8, 1.0)}  # block size; (alpha, beta)


def systems(share_seismic: bool = False) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"name": "exact", "kind": "ours", "engine": "exact", "index": "exact.spx"},
        {"name": "exhaustive", "kind": "ours", "engine": "exhaustive", "index": "rows.spx"},
    ]
    for tag, (qc, hf) in SEISMIC_SEARCH.items():
        engine = {"query_cut": qc, "heap_factor": hf, **SEISMIC_BUILD}
        out.append({"name": f"seismic-ours-{tag}", "kind": "ours", "engine": engine, "index": "rows.spx"})
        if share_seismic and tag != "a":  # one Seismic structure, timed with each setting in one process
            out[-1].update(shares_build="seismic-ours-a", shares_process=True)
    qc, hf = SEISMIC_SEARCH["b"]
    params = {"query_cut": qc, "heap_factor": hf, **SEISMIC_BUILD}
    out.append({"name": "seismic-direct", "kind": "seismic-direct", "params": params, "index": "seismic"})
    for tag in ("safe", "approx"):
        alpha, beta = BMP[tag]
        params = {"bsize": BMP["bsize"], "alpha": alpha, "beta": beta}
        out.append({"name": f"bmp-{tag}", "kind": "bmp", "params": params, "index": "index.bmp"})
    out[-1]["shares_build"] = "bmp-safe"  # the same file; only the search settings differ
    return out


# ---------------------------------------------------------------------------------------------- inputs


def pack(embs: list[Any], prefix: str) -> dict[str, np.ndarray]:
    lens = np.array([len(e) for e in embs], np.int64)
    return {
        f"{prefix}indptr": np.concatenate([[0], np.cumsum(lens)]).astype(np.int64),
        f"{prefix}indices": np.concatenate([e.indices for e in embs]).astype(np.int32),
        f"{prefix}values": np.concatenate([e.values for e in embs]).astype(np.float32),
    }


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as f:
        np.savez(f, **arrays)
    tmp.replace(path)


def real_vectors(cache: Path) -> Path:
    """splade-tiny vectors of every Cranfield and CISI document and query, encoded once."""
    path = cache / "vectors.npz"
    if path.exists():
        return path
    from splade_onnx import SpladeEncoder

    local = ROOT / ".cache" / "splade-onnx"
    cache_dir = os.environ.get("SPLADE_ONNX_CACHE") or (str(local) if local.is_dir() else None)
    enc = SpladeEncoder.from_pretrained(cache_dir=cache_dir)
    docs = [json.loads(ln) for c in COLLECTIONS for ln in (DATA / c / "corpus.jsonl").open()]
    queries = [json.loads(ln) for c in COLLECTIONS for ln in (DATA / c / "queries.jsonl").open()]
    t = time.perf_counter()
    dv = enc.encode_documents([f"{d.get('title') or ''} {d['text']}".strip() for d in docs])
    qv = enc.encode_queries([q["text"] for q in queries])
    print(f"encoded {len(dv)} documents and {len(qv)} queries in {time.perf_counter() - t:.0f} s", flush=True)
    save_npz(path, **pack(dv, ""), **pack(qv, "q_"), model=np.array(enc.identity.name))
    return path


def gather(indptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the entries of ``rows`` (CSR), row after row, and each row's length."""
    lens = indptr[rows + 1] - indptr[rows]
    shift = np.repeat(indptr[rows] - (np.cumsum(lens) - lens), lens)
    return np.arange(int(lens.sum()), dtype=np.int64) + shift, lens


def synthesize(vectors: Path, n: int, seed: int) -> dict[str, np.ndarray]:
    """``n`` documents, each the union of two random real documents (the larger weight on shared terms)."""
    with np.load(vectors) as d:
        indptr, indices, values = d["indptr"], d["indices"].astype(np.int64), d["values"]
    assert indices.max() < 65536
    pairs = np.random.default_rng([seed, n]).integers(0, indptr.size - 1, size=(n, 2))
    parts_i, parts_v, counts = [], [], []
    for lo in range(0, n, CHUNK):
        a, b = pairs[lo : lo + CHUNK].T
        m = a.size
        pa, la = gather(indptr, a)
        pb, lb = gather(indptr, b)
        pos = np.concatenate([pa, pb])
        doc = np.concatenate([np.repeat(np.arange(m), la), np.repeat(np.arange(m), lb)])
        key = doc * 65536 + indices[pos]
        order = np.argsort(key, kind="stable")
        key, vals = key[order], values[pos][order]
        starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
        parts_v.append(np.maximum.reduceat(vals, starts))
        key = key[starts]
        parts_i.append((key % 65536).astype(np.int32))
        counts.append(np.bincount(key // 65536, minlength=m))
    lens = np.concatenate(counts)
    return {
        "indptr": np.concatenate([[0], np.cumsum(lens)]).astype(np.int64),
        "indices": np.concatenate(parts_i),
        "values": np.concatenate(parts_v),
        "pairs": pairs,
    }


def corpus(cache: Path, vectors: Path, n: int | None, seed: int) -> Path:
    """The cached corpus of ``n`` synthetic documents (``None``: the real documents)."""
    path = cache / ("corpus_real.npz" if n is None else f"corpus_{n}_seed{seed}.npz")
    if not path.exists():
        t = time.perf_counter()
        if n is None:
            with np.load(vectors) as d:
                arrays = {k: d[k] for k in ("indptr", "indices", "values")}
        else:
            arrays = synthesize(vectors, n, seed)
        save_npz(path, **arrays)
        print(f"corpus {path.name}: {time.perf_counter() - t:.1f} s", flush=True)
    return path


def random_queries(cache: Path, vectors: Path, n: int, seed: int) -> Path:
    """``n`` queries, each as long as a random real query, of entries (term, weight) drawn from all real queries."""
    path = cache / f"random_queries_{n}_seed{seed}.npz"
    if path.exists():
        return path
    with np.load(vectors) as d:
        qptr, qidx, qval = d["q_indptr"], d["q_indices"], d["q_values"]
    rng = np.random.default_rng([seed, n, 1])
    lens = np.diff(qptr)[rng.integers(0, qptr.size - 1, n)]
    rows_i, rows_v = [], []
    for m in lens.tolist():
        pick = rng.choice(qidx.size, size=m, replace=False)
        terms, first = np.unique(qidx[pick], return_index=True)  # a term drawn twice keeps its first weight
        rows_i.append(terms.astype(np.int32))
        rows_v.append(qval[pick][first])
    ptr = np.concatenate([[0], np.cumsum([r.size for r in rows_i])]).astype(np.int64)
    save_npz(path, indptr=ptr, indices=np.concatenate(rows_i), values=np.concatenate(rows_v).astype(np.float32))
    return path


# ---------------------------------------------------------------------------------------------- children


def run_child(task: dict[str, Any], tag: str, work: Path, args: argparse.Namespace) -> tuple[dict, dict]:
    """Run one task in a fresh process; a process killed (out of memory) or timed out is a row that says so."""
    tasks = work / "tasks"
    tasks.mkdir(parents=True, exist_ok=True)
    out, arrays, log = tasks / f"{tag}.json", tasks / f"{tag}.npz", tasks / f"{tag}.log"
    for p in (out, arrays):
        p.unlink(missing_ok=True)
    spec = tasks / f"{tag}.task.json"
    spec.write_text(json.dumps({**task, "out": str(out), "arrays": str(arrays)}))
    limit = int(args.mem_limit_gb * 2**30)

    def cap() -> None:  # anonymous memory only (RLIMIT_DATA): memory-mapped index files do not count
        if limit > 0:
            resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))

    # Seismic structures kept by our engine (built at save, read by a later load) go to this run's folder.
    env = {**os.environ, **THREAD_ENV, "SPLADE_ONNX_CACHE": str(work / "cache")}
    with log.open("w") as f:
        proc = subprocess.Popen(
            [sys.executable, str(CHILD), str(spec)], stdout=f, stderr=subprocess.STDOUT, env=env, preexec_fn=cap
        )
        try:
            rc = proc.wait(timeout=args.child_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return {"error": f"timed out after {args.child_timeout} s"}, {}
    res: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    tail = (log.read_text(errors="replace").strip().splitlines() or [""])[-1][:300]
    if rc < 0:
        name = signal.Signals(-rc).name
        fit = "did not fit" if -rc in (signal.SIGKILL, signal.SIGABRT) else "crashed"
        res = {"error": f"{fit} (killed by signal {-rc}, {name})", "log_tail": tail, "did_not_fit": fit != "crashed"}
    elif rc != 0 and "error" not in res:
        res = {"error": f"exit status {rc}: {tail}"}
    found: dict[str, np.ndarray] = {}
    if "error" not in res and arrays.exists():
        with np.load(arrays) as d:
            found = {k: d[k] for k in d.files}
    return res, found


def differing(a: dict[str, np.ndarray], b: dict[str, np.ndarray], key: str) -> int | None:
    """Queries whose top 10 differ between ``a`` and ``b`` (ids, or scores bit for bit)."""
    if f"{key}_ids" not in a or f"{key}_ids" not in b:
        return None
    ids = (a[f"{key}_ids"] != b[f"{key}_ids"]).any(axis=1)
    bits = (a[f"{key}_scores"].view(np.int64) != b[f"{key}_scores"].view(np.int64)).any(axis=1)
    return int((ids | bits).sum())


def recall_at_10(truth: np.ndarray, got: np.ndarray) -> float:
    shares = []
    for want, have in zip(truth, got):
        w = set(want[want >= 0].tolist())
        if w:
            shares.append(len(w & set(have[have >= 0].tolist())) / len(w))
    return float(np.mean(shares)) if shares else float("nan")


def summarize(entry: dict[str, Any]) -> dict[str, Any]:
    """Medians and percentiles over the rounds of one system's build, open and latency runs."""
    b = entry["build"]
    s: dict[str, Any] = {k: b.get(k) for k in ("build_s", "save_s", "bytes", "cache_bytes", "build_peak_rss_mb")}
    for key, runs in entry["open"].items():
        if runs and all("error" in r for r in runs):
            s[f"open_error_{key}"] = runs[0]["error"]
        runs = [r for r in runs if "error" not in r]
        for field in ("open_s", "open_rss_mb", "base_rss_mb"):
            if runs:
                s[f"{field}_{key}"] = float(np.median([r[field] for r in runs]))
    lats = [r for r in entry["latency"] if "error" not in r]
    for k in (10, 100):
        ms = np.concatenate([r[f"top{k}_ms"] for r in lats]) if lats else np.zeros(0)
        if ms.size:
            s[f"top{k}_p50_ms"], s[f"top{k}_p90_ms"] = float(np.median(ms)), float(np.percentile(ms, 90))
    if lats:
        s["open_first_s"] = float(np.median([r["open_first_s"] for r in lats]))
        s["search_rss_mb"] = float(np.median([r["peak_rss_mb"] for r in lats]))
    batch = [r["batch_ms_per_query"] for r in lats if "batch_ms_per_query" in r]
    if batch:
        s["batch_ms_per_query"] = float(np.median(batch))
    runs = [b, *entry["latency"], *entry["open"]["off"], *entry["open"]["on"]]
    errors = [r["error"] for r in runs if "error" in r]
    if errors:
        s["error"] = errors[0]
    return s


def warm(path: Path) -> None:
    """Read ``path`` (a file or a folder's files) through once, so that an open is timed from the page cache: the
    run's builds leave the machine's memory full, and a cold open measures the disk, not the reader."""
    buf = bytearray(1 << 24)
    for f in sorted(path.rglob("*")) if path.is_dir() else [path]:
        if f.is_file():
            with f.open("rb", buffering=0) as fh:
                while fh.readinto(buf):
                    pass


def run_rounds(
    rounds: int, ready: list[dict[str, Any]], todo: list[dict[str, Any]], entries: dict, work: Path, args: Any
) -> dict[str, dict[str, np.ndarray]]:
    """Open and latency processes of every ready system, round after round, the order rotated each round.

    A system with ``shares_process`` is timed in its build owner's latency process (its open runs are the
    owner's).  Returns the first round's top 10s by system.
    """
    vectors = args.cache / "vectors.npz"
    for s in todo:
        entries[s["name"]].update(open={"off": [], "on": []}, latency=[])
    first_round: dict[str, dict[str, np.ndarray]] = {}
    for r in range(rounds):
        for s in ready[r % max(len(ready), 1) :] + ready[: r % max(len(ready), 1)]:
            e = entries[s["name"]]
            base: dict[str, Any] = {"system": s, "vectors": str(vectors), "index_path": str(work / s["index"])}
            for key, verify in (("off", False), ("on", True)) if s["kind"] == "ours" else (("off", False),):
                warm(work / s["index"])
                res, _ = run_child({**base, "mode": "open", "verify": verify}, f"open-{s['name']}", work, args)
                e["open"][key].append(res)
            group = [s, *(o for o in todo if o.get("shares_build") == s["name"] and o.get("shares_process"))]
            if len(group) > 1:
                group = group[r % len(group) :] + group[: r % len(group)]
                base["variants"] = [{"name": g["name"], **g["engine"]} for g in group]
            res, found = run_child({**base, "mode": "latency"}, f"latency-{s['name']}", work, args)
            for g in group:
                one = res if len(group) == 1 or "error" in res else res["variants"][g["name"]]
                entries[g["name"]]["latency"].append({**one, "peak_rss_mb": res.get("peak_rss_mb")})
                if r == 0:
                    pre = f"{g['name']}__" if len(group) > 1 else ""
                    first_round[g["name"]] = {k[len(pre) :]: a for k, a in found.items() if k.startswith(pre)}
                p50 = np.median(one["top10_ms"]) if "top10_ms" in one else float("nan")
                print(f"  round {r + 1} {g['name']}: {one.get('error') or f'top-10 p50 {p50:.2f} ms'}", flush=True)
    for s in todo:  # a process shared: so are its open runs
        if s.get("shares_process"):
            entries[s["name"]]["open"] = entries[s["shares_build"]]["open"]
    return first_round


def measure_size(label: str, path: Path, random_path: Path | None, vectors: Path, args: argparse.Namespace) -> dict:
    work = args.cache / "runs" / label
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    with np.load(path) as d:
        indptr = d["indptr"]
    with np.load(vectors) as d:
        nq = int(d["q_indptr"].size - 1)
    rec: dict[str, Any] = {"label": label, "docs": int(indptr.size - 1), "entries": int(indptr[-1])}
    rec["entries_per_doc"] = rec["entries"] / rec["docs"]
    todo = [s for s in systems(args.share_seismic_build) if not args.systems or s["name"] in args.systems]
    for s in todo:  # what shares an owner left out does not
        if s.get("shares_build") not in {o["name"] for o in todo}:
            s.pop("shares_build", None), s.pop("shares_process", None)
    entries: dict[str, dict[str, Any]] = {}
    answers: dict[str, dict[str, np.ndarray]] = {}
    saved: set[str] = set()
    for s in todo:  # builds, one fresh process each
        if s.get("shares_build") in entries:
            entries[s["name"]] = {"build": {**entries[s["shares_build"]]["build"], "shared": s["shares_build"]}}
            continue
        exactness = s["name"] in ("exact", "exhaustive")
        task = {"mode": "build", "system": s, "corpus": str(path), "vectors": str(vectors), "answers": exactness}
        task.update(index_path=str(work / s["index"]), save=s["index"] not in saved, random=None)
        if exactness and random_path is not None:
            task["random"] = str(random_path)
        t = time.perf_counter()
        res, answers[s["name"]] = run_child(task, f"build-{s['name']}", work, args)
        entries[s["name"]] = {"build": res}
        if "error" not in res and task["save"]:
            saved.add(s["index"])
        print(f"  build {s['name']}: {res.get('error') or f'{time.perf_counter() - t:.1f} s'}", flush=True)
    ready = [s for s in todo if "error" not in entries[s["name"]]["build"] and s["index"] in saved]
    rounds = args.large_rounds if rec["docs"] >= 1_000_000 else args.rounds
    first_round = run_rounds(rounds, [s for s in ready if not s.get("shares_process")], todo, entries, work, args)
    exact, exh = answers.get("exact", {}), answers.get("exhaustive", {})
    rec["exactness"] = {
        "real_queries": nq,
        "real_search_batch_mismatches": differing(exact, exh, "real"),
        "real_search_mismatches": differing(first_round.get("exact", {}), first_round.get("exhaustive", {}), "real"),
        "random_queries": entries.get("exact", {}).get("build", {}).get("random_queries"),
        "random_search_batch_mismatches": differing(exact, exh, "random"),
    }
    truth = exact if "real_ids" in exact else exh
    if "real_scores" in truth:  # how close the 10th best is to the best: near-ties make recall@10 fragile
        full = truth["real_scores"][np.isfinite(truth["real_scores"][:, 9])]
        rec["exactness"]["median_10th_over_1st"] = float(np.median(full[:, 9] / full[:, 0])) if full.size else None
    if "real_ids" in truth:
        save_npz(args.cache / f"truth_{label}.npz", ids=truth["real_ids"], scores=truth["real_scores"])
    rec["systems"] = {}
    for s in todo:
        e = entries[s["name"]]
        e["summary"] = summarize(e)
        if "real_ids" in truth and "real_ids" in first_round.get(s["name"], {}):
            e["summary"]["recall_at_10"] = recall_at_10(truth["real_ids"], first_round[s["name"]]["real_ids"])
        rec["systems"][s["name"]] = {"spec": s, **e}
    rec["rounds"] = rounds
    if not args.keep_indexes:
        shutil.rmtree(work, ignore_errors=True)
    return rec


def machine() -> dict[str, Any]:
    info = Path("/proc/cpuinfo").read_text().splitlines()
    mem = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1]
    versions: dict[str, str | None] = {}
    for dist in ("numpy", "splade-onnx", "pyseismic-lsr", "bmp"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "cpu": next((ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")), "?"),
        "cores": os.cpu_count(),
        "mem_gb": round(int(mem) / 2**20, 1),
        "python": platform.python_version(),
        "versions": versions,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    ap.add_argument("--quick", action="store_true", help="20,000 documents, 2 rounds")
    ap.add_argument("--rounds", type=int, default=3, help="latency rounds below 1M documents")
    ap.add_argument("--large-rounds", type=int, default=1, help="latency rounds at 1M documents and more")
    ap.add_argument("--random-queries", type=int, default=10_000, help="random queries for the exactness check")
    ap.add_argument("--random-all-sizes", action="store_true", help="check random queries at every size")
    ap.add_argument("--systems", nargs="+", help="only these systems (names as in the results)")
    ap.add_argument(
        "--share-seismic-build",
        action="store_true",
        help="build our Seismic structure once per process and time the three search settings on it "
        "(Seismic's build is slow; without this each setting builds its own in every process)",
    )
    ap.add_argument("--seed", type=int, default=20240917)
    ap.add_argument("--out", type=Path, default=report.RESULTS)
    ap.add_argument("--cache", type=Path, default=ROOT / "benchmarks" / ".cache" / "index_scale")
    ap.add_argument("--keep-indexes", action="store_true", help="keep each size's index files in the cache")
    ap.add_argument("--child-timeout", type=float, default=4 * 3600)
    total_gb = int(Path("/proc/meminfo").read_text().split()[1]) / 2**20
    ap.add_argument("--mem-limit-gb", type=float, default=round(0.9 * total_gb, 1), help="per child; 0: none")
    args = ap.parse_args()
    if args.quick:
        args.sizes, args.rounds, args.large_rounds = [20_000], 2, 2
    args.cache.mkdir(parents=True, exist_ok=True)
    name = "index_scale-quick" if args.quick else "index_scale"
    t0 = time.perf_counter()
    vectors = real_vectors(args.cache)
    rq = random_queries(args.cache, vectors, args.random_queries, args.seed) if args.random_queries else None
    data: dict[str, Any] = {
        "machine": machine(),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "out"},
        "seismic_build": SEISMIC_BUILD,
        "seismic_search": SEISMIC_SEARCH,
        "bmp": BMP,
        "sizes": [],
    }
    plan: list[tuple[str, int | None]] = [("real", None), *((f"{n:,}", n) for n in sorted(args.sizes))]
    for i, (label, n) in enumerate(plan):
        path = corpus(args.cache, vectors, n, args.seed)
        use_random = rq if (i == 1 or (i > 1 and args.random_all_sizes)) else None
        print(f"{label} documents:", flush=True)
        data["sizes"].append(measure_size(label, path, use_random, vectors, args))
        data["elapsed_s"] = time.perf_counter() - t0
        report.write(data, args.out, name)  # after every size, so a long run keeps what it measured
    print("\n".join(report.markdown(data)))


if __name__ == "__main__":
    main()
