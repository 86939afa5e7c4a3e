"""The child side of benchmarks/encode.py: one (workload, system) measured in a fresh process, and the
one-query-at-a-time latency rounds, whose systems (splade-onnx, FastEmbed, sentence-transformers) each
answer from a process of their own.

    encode_child.py --child SPEC         # one JSON line: texts/s per run, peak RSS, ...
    encode_child.py --query-server SPEC  # a latency server of splade-onnx or FastEmbed (st_child.py serves ST)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from query_protocol import answer
from st_systems import ST_SYSTEMS, missing_venv, server_command, server_env
from workloads import QUERY16, QUERY16_TOKENS, ROOT, ROUND, ROUND_WARMUP, TINY, WORK, queries, texts_for


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
    projection = "dense" if system.endswith(" dense") else "auto"  # "auto": the head the calibration picks
    return SpladeEncoder.from_pretrained(
        src, cache_dir=cache, quantize="int8" if "int8" in system else None, projection=projection
    )


def encode(system: str, enc: Any, texts: list[str], batch_size: int | None, parallel: int | None) -> list[Any]:
    if system.startswith("fastembed"):
        return list(enc.embed(texts, batch_size=batch_size or 256, parallel=parallel))
    return list(enc.embed(texts, batch_size=batch_size, parallel=parallel))


QUERY_SYSTEMS = ("splade-onnx fp32", "splade-onnx int8", "fastembed")


class Server:
    """One system's latency server: a process that answers one JSON line per command."""

    def __init__(self, system: str, model: str) -> None:
        self.system = system
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115 (its stderr, for the reason it died; closed in close)
        if system in ST_SYSTEMS:
            cmd, env = server_command(system, model), server_env()
        else:
            spec = json.dumps({"system": system, "model": model})
            cmd, env = [sys.executable, __file__, "--query-server", spec], dict(os.environ)
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, env=env
        )

    def ask(self, cmd: str) -> Any:
        """The reply to ``cmd``; RuntimeError with the last line of its stderr when the server died."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(cmd + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except BrokenPipeError:
            line = ""
        if not line:
            self.log.seek(0)
            tail = (self.log.read().strip().splitlines() or ["?"])[-1]
            raise RuntimeError(f"the {self.system} query server died: {tail[:300]}")
        return json.loads(line)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.log.close()


def query_latency(model: str, repeats: int, systems: list[str]) -> dict[str, Any]:
    """One query at a time on every system, each in its own process, in alternating rounds of ROUND calls.

    The machine's speed drifts over seconds; rounds that alternate put each system through the
    same drift, so the medians and their ratios compare like with like.  Each system keeps its own
    process (sharing one, FastEmbed's float64 pooling slowed the next system's calls by 60 %), and
    the first ROUND_WARMUP calls of a round are not counted: a switch leaves the caches holding the other
    system's weights, which a server answering queries all day does not see.  A system whose server
    does not start (or dies) is left out of the rounds with its reason in ``errors``.
    """
    errors: dict[str, str] = {}
    servers: dict[str, Server] = {}
    for s in systems:
        why = missing_venv(s) if s in ST_SYSTEMS else None
        if why:
            errors[s] = why
            continue
        servers[s] = Server(s, model)

    def ask_all(cmd: str) -> dict[str, Any]:
        replies = {}
        for s, server in list(servers.items()):
            try:
                replies[s] = server.ask(cmd)
            except RuntimeError as e:
                errors[s] = str(e)
                servers.pop(s).close()
        return replies

    try:
        ask_all("ready")
        lat: dict[str, list[float]] = {s: [] for s in servers}
        for _ in range(max(1, repeats // (ROUND - ROUND_WARMUP))):
            for s, times in ask_all("round").items():
                lat[s] += times
        out = {}
        for s, profile in ask_all("profile").items():
            out[s] = {"p50_ms": statistics.median(lat[s]), "p90_ms": float(np.percentile(lat[s], 90)), **profile}
    finally:
        for server in servers.values():
            server.close()
    return {"systems": out, "errors": errors}


def query_server(spec: dict[str, Any]) -> None:
    """Answer the coordinator on stdin/stdout (:func:`query_protocol.answer`)."""
    system = spec["system"]
    enc = load(system, spec["model"])

    def profile() -> dict[str, Any]:
        peak = rss_mb()  # before the profile's own session
        reply = {} if system.startswith("fastembed") else query_profile(enc, QUERY16, 300)
        return {**reply, "peak_rss_mb": peak}

    answer(lambda: encode(system, enc, [QUERY16], 1, None), profile, calls=ROUND, warmup=ROUND_WARMUP)


def child(spec: dict[str, Any]) -> dict[str, Any]:
    system, model, workload = spec["system"], spec["model"], spec["workload"]
    if workload == "query-latency":
        return query_latency(model, spec["repeats"], spec["systems"])
    t0 = time.perf_counter()
    enc = load(system, model)
    out: dict[str, Any] = {"load_s": time.perf_counter() - t0}
    if workload == "warm":  # converts and caches every graph the timed runs open, so that no run pays for it
        encode(system, enc, [QUERY16], 1, None)
        encode(
            system, enc, texts_for("base-mixed" if model != "splade-tiny" else "tiny-cranfield", True)[:8], None, None
        )
        return out
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
        "graph": ("query (pruned head)" if recipe.fast_per_text else "latency (1 slice)") if fast else "main",
        "session_run_ms": statistics.median(runs),
        "python_ms": statistics.median(python),
        "profile_ms_by_op": dict(sorted(by_op.items(), key=lambda kv: -kv[1])),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child")
    ap.add_argument("--query-server")
    args = ap.parse_args()
    if args.query_server:
        query_server(json.loads(args.query_server))
    elif args.child:
        print(json.dumps(child(json.loads(args.child))))


if __name__ == "__main__":
    main()
