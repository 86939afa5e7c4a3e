"""sentence-transformers' SparseEncoder, measured in its own venv for benchmarks/encode.py (no splade_onnx here).

Run with the python of .venv-st (sentence-transformers 6.x, torch) or .venv-st5 (5.x beside optimum and
OpenVINO); one JSON line comes back on stdout.

    st_child.py prepare '{"backend": "onnx", "src": DIR, "dest": DIR, "quantize": "avx2"}'
        exports the model once (ONNX through optimum, then ST's own dynamic int8 quantization, or
        OpenVINO) into DEST, the folder the measured runs load; not timed.
    st_child.py documents < SPEC
        SPEC: {"backend", "folder", "file_name", "threads", "texts", "batch_size", "runs", "save"}:
        docs/s of ``encode_document`` over ``texts`` per run, peak RSS, mean active terms.
    st_child.py serve SPEC
        the query server of encode.py's latency rounds: reads ``ready``/``round``/``profile`` lines on stdin,
        answers each with one JSON line (``round``: the timed ``encode_query`` calls of one round, in ms).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from query_protocol import answer

PACKAGES = ("sentence-transformers", "torch", "transformers", "optimum", "optimum-onnx", "optimum-intel", "openvino")
PACKAGES_ORT = ("onnxruntime",)


def versions() -> dict[str, str]:
    """The exact versions this venv runs (a package that is not installed is left out)."""
    out = {}
    for name in PACKAGES + PACKAGES_ORT:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load(spec: dict[str, Any]) -> Any:
    """``SparseEncoder(folder, backend=...)`` on ``threads`` threads: torch's, and the ONNX/OpenVINO session's."""
    import torch
    from sentence_transformers import SparseEncoder

    threads = int(spec["threads"])
    torch.set_num_threads(threads)  # SpladePooling runs in torch whatever the backend
    backend = spec["backend"]
    kwargs: dict[str, Any] = {}
    if backend == "onnx":
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        kwargs = {"file_name": spec["file_name"], "provider": "CPUExecutionProvider", "session_options": opts}
    elif backend == "openvino":
        kwargs = {"file_name": spec["file_name"], "ov_config": {"INFERENCE_NUM_THREADS": str(threads)}}
    return SparseEncoder(spec["folder"], device="cpu", backend=backend, model_kwargs=kwargs or None)


def prepare(spec: dict[str, Any]) -> dict[str, Any]:
    """Export ``src`` for the ONNX or OpenVINO backend into ``dest`` with ST's own calls (``save_pretrained``)."""
    from sentence_transformers import SparseEncoder

    src, dest, backend = spec["src"], Path(spec["dest"]), spec["backend"]
    t = time.perf_counter()
    model = SparseEncoder(src, device="cpu", backend=backend)  # exports when src has no onnx/openvino file
    if Path(src).resolve() != dest.resolve():
        model.save_pretrained(str(dest))
    out: dict[str, Any] = {"files": []}
    if spec.get("quantize"):
        from sentence_transformers import export_dynamic_quantized_onnx_model

        export_dynamic_quantized_onnx_model(model, spec["quantize"], str(dest))
    out["files"] = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*.onnx")) + sorted(
        p.relative_to(dest).as_posix() for p in dest.rglob("*.xml")
    )
    out["export_s"] = time.perf_counter() - t
    return out


def rows_of(emb: Any) -> list[tuple[list[int], list[float]]]:
    """A sparse [n, vocab] tensor as (indices ascending, values) per row."""
    emb = emb.coalesce()
    idx, val = emb.indices().tolist(), emb.values().tolist()
    rows: list[tuple[list[int], list[float]]] = [([], []) for _ in range(emb.shape[0])]
    for r, c, v in zip(idx[0], idx[1], val):
        rows[r][0].append(c)
        rows[r][1].append(v)
    for i, (cols, vals) in enumerate(rows):
        order = sorted(range(len(cols)), key=cols.__getitem__)
        rows[i] = ([cols[j] for j in order], [vals[j] for j in order])
    return rows


def documents(spec: dict[str, Any]) -> dict[str, Any]:
    """Time ``encode_document`` over the texts (its own output: one sparse tensor), ``runs`` times."""
    t0 = time.perf_counter()
    model = load(spec)
    out: dict[str, Any] = {"load_s": time.perf_counter() - t0}
    texts, bs = spec["texts"], spec["batch_size"]
    model.encode_document(texts[:8], batch_size=bs, show_progress_bar=False)  # warm-up
    speeds, emb = [], None
    for _ in range(spec["runs"]):
        t = time.perf_counter()
        emb = model.encode_document(texts, batch_size=bs, show_progress_bar=False)
        speeds.append(len(texts) / (time.perf_counter() - t))
    rows = rows_of(emb)
    out.update(
        docs_per_s=speeds,
        n_texts=len(texts),
        peak_rss_mb=peak_rss_mb(),
        mean_terms=sum(len(r[0]) for r in rows) / len(rows),
        versions=versions(),
    )
    if spec.get("save"):
        path = Path(spec["save"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps([list(r) for r in rows]))
    return out


def serve(spec: dict[str, Any]) -> None:
    """Answer encode.py's latency coordinator (:func:`query_protocol.answer`)."""
    model = load(spec)
    query = spec["query"]

    def profile() -> dict[str, Any]:
        tokens = len(model.tokenizer(query)["input_ids"])
        return {"tokens": tokens, "peak_rss_mb": peak_rss_mb(), "versions": versions()}

    answer(lambda: model.encode_query(query), profile, calls=spec["round"], warmup=spec["warmup"])


def main() -> None:
    mode = sys.argv[1]
    if mode == "serve":
        serve(json.loads(sys.argv[2]))
        return
    result = prepare(json.loads(sys.argv[2])) if mode == "prepare" else documents(json.load(sys.stdin))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
