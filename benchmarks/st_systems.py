"""sentence-transformers' SparseEncoder as systems of benchmarks/encode.py: which venv and files each runs on.

Each system runs benchmarks/st_child.py with the python of its own venv (``make .venv-st/.installed``,
``make .venv-st5/.installed``); nothing here imports sentence-transformers or torch.

- ``st6-torch``: sentence-transformers 6.x, ``backend="torch"``, on the model's own folder.
- ``st5-onnx``: 5.x beside optimum, ``backend="onnx"``: the folder ST's own export wrote (``onnx/model.onnx``).
- ``st5-onnx-int8``: the same export quantized by ``export_dynamic_quantized_onnx_model`` with the
  configuration that matches this CPU (``avx512_vnni`` where its flags have it, else ``avx2``).
- ``st5-openvino``: 5.x beside optimum-intel, ``backend="openvino"`` (``openvino/openvino_model.xml``).

A system that cannot run (no venv, a failed export, a crash) gives a row with its reason, not a failed run.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workloads import QUERY16, ROOT, ROUND, ROUND_WARMUP, WORK, model_dir

CHILD = Path(__file__).with_name("st_child.py")
THREADS = 2
BATCH_SIZE = 32  # sentence-transformers' own default batch size


@dataclass(frozen=True)
class StSystem:
    """One way of running SparseEncoder: its venv, backend, and the exported file it loads."""

    name: str
    venv: str
    backend: str
    export: str | None  # the folder under benchmarks/.work the export goes to (None: the model's own folder)
    file_name: str | None

    def python(self) -> Path:
        return ROOT / self.venv / "bin" / "python"


def quantization_config() -> str:
    """ST's dynamic-quantization preset for this CPU: ``arm64``, ``avx512_vnni`` when the CPU has it, else ``avx2``."""
    if platform.machine() in ("aarch64", "arm64"):
        return "arm64"
    flags = next((ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("flags")), "")
    return "avx512_vnni" if " avx512_vnni" in flags else "avx2"


def quantized_name() -> str:
    """The suffix ST's export gives the quantized file: its weights' type (optimum's preset: uint8 for avx2), preset."""
    preset = quantization_config()
    return f"{'quint8' if preset == 'avx2' else 'qint8'}_{preset}"


SYSTEMS = {
    s.name: s
    for s in (
        StSystem("st6-torch", ".venv-st", "torch", None, None),
        StSystem("st5-onnx", ".venv-st5", "onnx", "st5-onnx", "onnx/model.onnx"),
        StSystem("st5-onnx-int8", ".venv-st5", "onnx", "st5-onnx", f"onnx/model_{quantized_name()}.onnx"),
        StSystem("st5-openvino", ".venv-st5", "openvino", "st5-openvino", "openvino/openvino_model.xml"),
    )
}
ST_SYSTEMS = tuple(SYSTEMS)


def folder(system: str, model: str) -> Path:
    s = SYSTEMS[system]
    return model_dir(model) if s.export is None else WORK / f"{s.export}-{model}"


def load_spec(system: str, model: str) -> dict[str, Any]:
    """What st_child.py loads: ``SparseEncoder(folder, backend=..., model_kwargs={"file_name": ...})``."""
    s = SYSTEMS[system]
    return {"backend": s.backend, "folder": str(folder(system, model)), "file_name": s.file_name, "threads": THREADS}


def last_line(text: str) -> str:
    return (text.strip().splitlines() or ["?"])[-1][:300]


def _run(system: str, args: list[str], stdin: str | None, mem_limit_gb: float) -> dict[str, Any]:
    """st_child.py in the system's venv; its JSON line, or ``{"error": why}``."""
    python = SYSTEMS[system].python()
    if not python.is_file():
        return {"error": f"no {SYSTEMS[system].venv} (make {SYSTEMS[system].venv}/.installed)"}
    limit = int(mem_limit_gb * 2**30)

    def cap() -> None:  # keep an out-of-memory competitor from taking the machine down
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "true"}
    proc = subprocess.run(
        [str(python), str(CHILD), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        preexec_fn=cap,
        check=False,
    )
    if proc.returncode != 0:
        return {"error": last_line(proc.stderr) if proc.stderr.strip() else f"exit status {proc.returncode}"}
    try:
        return dict(json.loads((proc.stdout.strip().splitlines() or [""])[-1]))
    except json.JSONDecodeError:
        return {"error": f"no JSON line on stdout: {last_line(proc.stdout)!r}"}


def prepare(system: str, model: str, mem_limit_gb: float) -> str | None:
    """Export once what ``system`` loads for ``model`` (skipped when the file exists); the reason it failed, or None."""
    s = SYSTEMS[system]
    if s.export is None or s.file_name is None:
        return None
    dest = folder(system, model)
    if (dest / s.file_name).is_file():
        return None
    print(f"... exporting {model} for {system} (not timed)", flush=True)
    spec = {"backend": s.backend, "src": str(model_dir(model)), "dest": str(dest)}
    if "int8" in system:
        spec["quantize"] = quantization_config()
        if (dest / "onnx" / "model.onnx").is_file():  # quantize the fp32 export already there
            spec["src"] = str(dest)
    out = _run(system, ["prepare", json.dumps(spec)], None, mem_limit_gb)
    if "error" in out:
        print(f"    failed: {out['error']}")
        return f"export: {out['error']}"
    if not (dest / s.file_name).is_file():
        return f"export wrote {out.get('files')}, not {s.file_name}"
    print(f"    {', '.join(out['files'])} in {out['export_s']:.0f} s")
    return None


def run_documents(spec: dict[str, Any], texts: list[str], mem_limit_gb: float) -> dict[str, Any]:
    """One documents row: ``encode_document`` over ``texts`` in the system's own process."""
    print(f"... {spec['label']}", flush=True)
    system, model = spec["system"], spec["model"]
    if spec.get("error"):
        print(f"    skipped: {spec['error']}")
        return spec
    child = {**load_spec(system, model), "texts": texts, "batch_size": spec["batch_size"], "runs": spec["runs"]}
    if spec.get("save"):
        path = WORK / "vectors" / f"{spec['save']}.json"
        child["save"] = str(path)
    out = _run(system, ["documents"], json.dumps(child), mem_limit_gb)
    if "error" in out:
        print(f"    failed: {out['error']}")
        return {**spec, "error": out["error"]}
    res = {**spec, **out, "docs_per_s_median": statistics.median(out["docs_per_s"])}
    if spec.get("save"):
        res["vectors"] = (WORK / "vectors" / f"{spec['save']}.json").relative_to(ROOT).as_posix()
    print(f"    {res['docs_per_s_median']:.1f} texts/s, peak RSS {res['peak_rss_mb']:.0f} MB")
    return res


def server_command(system: str, model: str) -> list[str]:
    """The command of ``system``'s query server (st_child.py serve) for encode.py's latency rounds."""
    spec = {**load_spec(system, model), "query": QUERY16, "round": ROUND, "warmup": ROUND_WARMUP}
    return [str(SYSTEMS[system].python()), str(CHILD), "serve", json.dumps(spec)]


def server_env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def missing_venv(system: str) -> str | None:
    s = SYSTEMS[system]
    return None if s.python().is_file() else f"no {s.venv} (make {s.venv}/.installed)"
