"""One measurement of benchmarks/index_scale.py in a fresh process: build, open or time one system.

    python benchmarks/index_scale_child.py TASK.json

The task names the mode, the system and the files; the result goes to the JSON file the task names
(arrays of top-10 ids and scores to its ``arrays`` file), never to stdout, which Seismic's builder
prints its progress to.  A ``MemoryError`` is written as a result ("did not fit") and exits with 3.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

DOC_CHUNK = 50_000  # documents per add() call when building


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM).  Not ``ru_maxrss``: Linux carries the parent's peak over fork and exec
    into it, so a child of a parent that held a corpus would report the parent's."""
    status = Path("/proc/self/status").read_text()
    return int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("VmHWM:"))) / 1024


def csr(data: Any, prefix: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        np.asarray(data[f"{prefix}indptr"], np.int64),
        np.asarray(data[f"{prefix}indices"]),
        np.asarray(data[f"{prefix}values"], np.float32),
    )


def rows(indptr: np.ndarray, indices: np.ndarray, values: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    idx = indices.astype(np.int64, copy=False)
    return [(idx[indptr[i] : indptr[i + 1]], values[indptr[i] : indptr[i + 1]]) for i in range(indptr.size - 1)]


class Ours:
    """splade_onnx.SparseIndex with one engine."""

    def __init__(self, spec: dict[str, Any]) -> None:
        from splade_onnx import Seismic, SparseEmbedding, SparseIndex

        self.SparseIndex, self.Emb = SparseIndex, SparseEmbedding
        eng = spec["engine"]
        self.engine = eng if isinstance(eng, str) else Seismic(**eng, num_threads=1)
        self.index: Any = None

    def queries(self, qs: list[tuple[np.ndarray, np.ndarray]]) -> list[Any]:
        return [self.Emb(values=v, indices=i) for i, v in qs]

    def add(self, indptr: np.ndarray, indices: np.ndarray, values: np.ndarray) -> dict[str, float]:
        self.index = self.SparseIndex(engine=self.engine)
        prep = add = 0.0
        for lo in range(0, indptr.size - 1, DOC_CHUNK):  # chunks keep the int64 copies of the input small
            t = time.perf_counter()
            hi = min(lo + DOC_CHUNK, indptr.size - 1)
            idx = indices[indptr[lo] : indptr[hi]].astype(np.int64)
            base = indptr[lo]
            embs = [
                self.Emb(values=values[indptr[d] : indptr[d + 1]], indices=idx[indptr[d] - base : indptr[d + 1] - base])
                for d in range(lo, hi)
            ]
            t2 = time.perf_counter()
            self.index.add(embs)
            add += time.perf_counter() - t2
            prep += t2 - t
        return {"add_s": add, "prep_s": prep}

    def first(self, q0: Any) -> None:
        self.index.search(q0, 10)

    def save(self, path: str) -> str:
        self.index.save(path)
        return path

    def open(self, path: str, verify: bool) -> None:
        self.index = self.SparseIndex.load(path, engine=self.engine, verify=verify)

    def search(self, q: Any, k: int) -> tuple[list[int], list[float]]:
        hits = self.index.search(q, k)
        return [int(i) for i, _ in hits], [s for _, s in hits]

    def search_batch(self, qs: list[Any], k: int) -> list[tuple[list[int], list[float]]]:
        return [([int(i) for i, _ in h], [s for _, s in h]) for h in self.index.search_batch(qs, k)]


class SeismicDirect:
    """pyseismic-lsr's SeismicIndex, called directly (queries converted to its strings beforehand)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        import seismic

        self.lib, self.p = seismic, spec["params"]
        self.strings = seismic.get_seismic_string()
        self.index: Any = None

    def queries(self, qs: list[tuple[np.ndarray, np.ndarray]]) -> list[Any]:
        return [(str(n), np.array([str(t) for t in i.tolist()], dtype=self.strings), v) for n, (i, v) in enumerate(qs)]

    def add(self, indptr: np.ndarray, indices: np.ndarray, values: np.ndarray) -> dict[str, float]:
        p = self.p
        t = time.perf_counter()
        ids = [str(d) for d in range(indptr.size - 1)]
        comps = indices.astype(np.int64)
        prep = time.perf_counter() - t
        t = time.perf_counter()
        ds = self.lib.SeismicDataset()
        ds.add_documents_by_id(ids, comps, values, indptr)
        del comps, ids
        self.index = self.lib.SeismicIndex.build_from_dataset(
            ds,
            n_postings=p["n_postings"],
            centroid_fraction=p["centroid_fraction"],
            summary_energy=p["summary_energy"],
            doc_cut=p["doc_cut"],
            num_threads=1,
        )
        return {"add_s": time.perf_counter() - t, "prep_s": prep}

    def first(self, q0: Any) -> None:
        self.search(q0, 10)

    def save(self, path: str) -> str:
        self.index.save(path)
        return path + ".index.seismic"

    def open(self, path: str, verify: bool) -> None:
        self.index = self.lib.SeismicIndex.load(path + ".index.seismic")

    def search(self, q: Any, k: int) -> tuple[list[int], list[float]]:
        hits = self.index.search(*q, k=k, query_cut=self.p["query_cut"], heap_factor=self.p["heap_factor"])
        return [int(d) for _, _, d in hits], [float(s) for _, s, _ in hits]

    def search_batch(self, qs: list[Any], k: int) -> list[tuple[list[int], list[float]]]:
        names = np.array([q[0] for q in qs], dtype=self.strings)
        comps, vals = [q[1] for q in qs], [q[2] for q in qs]
        p = self.p
        found = self.index.batch_search(
            names, comps, vals, k=k, query_cut=p["query_cut"], heap_factor=p["heap_factor"], num_threads=1
        )
        return [([int(d) for _, _, d in h], [float(s) for _, s, _ in h]) for h in found]


class Bmp:
    """Block-Max Pruning (the ``bmp`` package): u8 document weights, queries as {term: weight}."""

    def __init__(self, spec: dict[str, Any]) -> None:
        import bmp

        self.lib, self.p = bmp, spec["params"]
        self.searcher: Any = None
        self.indexer: Any = None
        self.path = ""

    def queries(self, qs: list[tuple[np.ndarray, np.ndarray]]) -> list[Any]:
        return [dict(zip(map(str, i.tolist()), v.tolist())) for i, v in qs]

    def add(self, indptr: np.ndarray, indices: np.ndarray, values: np.ndarray) -> dict[str, float]:
        # bmp keeps document weights as u8 (larger ints wrap): scale the corpus' largest weight to 255.
        scale = 255.0 / float(values.max())
        quant = np.maximum(1, np.rint(values * scale)).astype(np.int64)
        names = [str(t) for t in range(int(indices.max()) + 1)]
        indexer = self.lib.Indexer(self.path, self.p["bsize"], False)
        prep = add = 0.0
        for d in range(indptr.size - 1):
            t = time.perf_counter()
            lo, hi = indptr[d], indptr[d + 1]
            vec = dict(zip(map(names.__getitem__, indices[lo:hi].tolist()), quant[lo:hi].tolist()))
            t2 = time.perf_counter()
            indexer.add_document(str(d), vec)
            add += time.perf_counter() - t2
            prep += t2 - t
        self.indexer = indexer
        return {"add_s": add, "prep_s": prep, "u8_scale": scale}

    def first(self, q0: Any) -> None:  # finish() writes the file; the Searcher reads it
        self.indexer.finish()
        self.searcher = self.lib.Searcher(self.path)
        self.search(q0, 10)

    def save(self, path: str) -> str:
        return self.path  # written by finish()

    def open(self, path: str, verify: bool) -> None:
        self.searcher = self.lib.Searcher(path)

    def search(self, q: Any, k: int) -> tuple[list[int], list[float]]:
        docs, scores = self.searcher.search(q, k, self.p["alpha"], self.p["beta"])
        return [int(d) for d in docs], [float(s) for s in scores]

    search_batch = None  # no batched call over a loaded Searcher


KINDS = {"ours": Ours, "seismic-direct": SeismicDirect, "bmp": Bmp}


def topk_arrays(found: list[tuple[list[int], list[float]]], k: int) -> tuple[np.ndarray, np.ndarray]:
    ids = np.full((len(found), k), -1, np.int64)
    scores = np.full((len(found), k), np.nan, np.float64)
    for r, (d, s) in enumerate(found):
        ids[r, : len(d)] = d[:k]
        scores[r, : len(s)] = s[:k]
    return ids, scores


def run_build(task: dict[str, Any], system: Any, qs: list[Any]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    with np.load(task["corpus"]) as data:
        indptr, indices, values = csr(data, "")
    if isinstance(system, Bmp):
        system.path = task["index_path"]
    res: dict[str, Any] = dict(system.add(indptr, indices, values))
    del indptr, indices, values  # the input's memory is not the index's
    t = time.perf_counter()
    system.first(qs[0])
    res["first_search_s"] = time.perf_counter() - t
    res["build_s"] = res["add_s"] + res["first_search_s"]
    res["build_peak_rss_mb"] = peak_rss_mb()
    path = task["index_path"]
    if task["save"]:
        t = time.perf_counter()
        path = system.save(path)
        res["save_s"] = time.perf_counter() - t
    elif isinstance(system, SeismicDirect):
        path += ".index.seismic"
    res["index_file"] = path
    res["bytes"] = os.path.getsize(path) if os.path.exists(path) else None
    kept = [f.stat().st_size for f in (Path(os.environ["SPLADE_ONNX_CACHE"]) / "seismic").glob("*.index.seismic")]
    if kept and isinstance(system, Ours):  # our Seismic engine's structure, kept in the cache by save (this run's)
        res["cache_bytes"] = sum(kept)
    arrays: dict[str, np.ndarray] = {}
    if task.get("answers") and system.search_batch is not None:
        arrays["real_ids"], arrays["real_scores"] = topk_arrays(system.search_batch(qs, 10), 10)
        if task.get("random"):
            with np.load(task["random"]) as data:
                rq = system.queries(rows(*csr(data, "")))
            t = time.perf_counter()
            arrays["random_ids"], arrays["random_scores"] = topk_arrays(system.search_batch(rq, 10), 10)
            res["random_queries"], res["random_batch_s"] = len(rq), time.perf_counter() - t
    return res, arrays


def run_open(task: dict[str, Any], system: Any, qs: list[Any]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    base = peak_rss_mb()
    t = time.perf_counter()
    system.open(task["index_path"], task["verify"])
    open_s = time.perf_counter() - t
    return {"open_s": open_s, "open_rss_mb": peak_rss_mb(), "base_rss_mb": base}, {}


def timed(system: Any, qs: list[Any]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Latencies of every query at k=10 and k=100 after a warm-up pass, and one batch; the top 10s found."""
    res: dict[str, Any] = {}
    for q in qs:  # warm-up pass: page in what the queries touch
        system.search(q, 10)
    found = []
    for k in (10, 100):
        ms = []
        for q in qs:
            t = time.perf_counter()
            hits = system.search(q, k)
            ms.append((time.perf_counter() - t) * 1000)
            if k == 10:
                found.append(hits)
        res[f"top{k}_ms"] = [round(x, 5) for x in ms]
    if system.search_batch is not None:
        t = time.perf_counter()
        system.search_batch(qs, 10)
        res["batch_ms_per_query"] = (time.perf_counter() - t) * 1000 / len(qs)
    ids, scores = topk_arrays(found, 10)
    return res, {"real_ids": ids, "real_scores": scores}


def run_latency(task: dict[str, Any], system: Any, qs: list[Any]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    t = time.perf_counter()
    system.open(task["index_path"], False)
    system.search(qs[0], 10)
    opened = time.perf_counter() - t
    if not task.get("variants"):
        res, arrays = timed(system, qs)
        return {"open_first_s": opened, **res}, arrays
    # Several Seismic search settings over one Seismic structure (--share-seismic-build): the build settings
    # are the same, so only the engine's search settings are swapped, in the order given.
    out: dict[str, Any] = {"open_first_s": opened, "variants": {}}
    arrays = {}
    for v in task["variants"]:
        system.index.tune(query_cut=v["query_cut"], heap_factor=v["heap_factor"])
        res, found = timed(system, qs)
        out["variants"][v["name"]] = {"open_first_s": opened, **res}
        arrays.update({f"{v['name']}__{k}": a for k, a in found.items()})
    return out, arrays


def main() -> None:
    task = json.loads(Path(sys.argv[1]).read_text())
    out = Path(task["out"])

    def write(res: dict[str, Any]) -> None:
        res["peak_rss_mb"] = peak_rss_mb()
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(res))
        tmp.replace(out)

    try:
        system = KINDS[task["system"]["kind"]](task["system"])
        with np.load(task["vectors"]) as data:
            qs = system.queries(rows(*csr(data, "q_")))
        mode = {"build": run_build, "open": run_open, "latency": run_latency}[task["mode"]]
        res, arrays = mode(task, system, qs)
    except MemoryError:
        write({"error": "did not fit (MemoryError)", "did_not_fit": True})
        sys.exit(3)
    except Exception as exc:
        write({"error": f"{type(exc).__name__}: {exc}"[:500]})
        raise
    if arrays:
        np.savez(task["arrays"], **arrays)
    res["ru_maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # see peak_rss_mb
    write(res)


if __name__ == "__main__":
    main()
