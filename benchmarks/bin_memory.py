"""Peak memory of reading a PyTorch checkpoint without torch, against the size of the tensors read.

splade-tiny's ``pytorch_model.bin`` as transformers and torch wrote it (rebuilt byte for byte from the test
fixtures: zip float32, legacy float32, zip float16) is read in fresh processes, twice over:

- ``read_checkpoint``: the reader alone (``splade_onnx._torch_bin``), tensors in their stored dtype;
- ``load_tensors``: what the converter calls, every tensor as float32 (float16 is widened).

Each row is the peak RSS above the process's RSS before the read (``VmHWM`` after resetting it through
``/proc/self/clear_refs``), divided by the total size of the arrays returned (a buffer shared by tied weights
counted once); median of ``--runs``.  The target is at most 1.5x.  ``model.safetensors`` read by
safetensors' numpy loader is the same measure for comparison.

    make bench-bin-memory      # or: .venv/bin/python benchmarks/bin_memory.py [--runs 5]

Writes benchmarks/results/bin_memory.json and bin_memory.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _results import write_results
from cold_start import cpu

ROOT = Path(__file__).resolve().parents[1]
TARGET = 1.5

CHILD = """
import json, re, sys
from pathlib import Path
sys.path.insert(0, sys.argv[3])
import numpy as np
import safetensors.numpy
from splade_onnx._tensors import load_tensors
from splade_onnx._torch_bin import read_checkpoint

def status(key):
    return int(re.search(key + r":\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1)) * 1024

path, how = Path(sys.argv[1]), sys.argv[2]
read = {"read_checkpoint": read_checkpoint, "load_tensors": load_tensors,
        "safetensors": lambda p: safetensors.numpy.load_file(str(p))}[how]
Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
before = status("VmRSS")
tensors = read(path)
peak = status("VmHWM") - before
seen, total = set(), 0
for a in tensors.values():  # the memory the arrays hold: each buffer once (tied weights share one)
    root = a
    while isinstance(root.base, np.ndarray):
        root = root.base
    if id(root) not in seen:
        seen.add(id(root))
        total += root.nbytes
print(json.dumps({"peak": peak, "tensors": total, "dtypes": sorted({str(a.dtype) for a in tensors.values()})}))
"""


def measure(path: Path, how: str, runs: int) -> dict[str, object]:
    out = []
    for _ in range(runs):
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(path), how, str(ROOT / "src")], capture_output=True, text=True, check=True
        )
        out.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    peak = statistics.median(float(r["peak"]) for r in out)
    tensors = float(out[0]["tensors"])
    return {
        "peak_bytes": peak,
        "tensor_bytes": tensors,
        "ratio": peak / tensors,
        "dtypes": out[0]["dtypes"],
        "runs": out,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.path.insert(0, str(ROOT / "tests"))
    sys.path.insert(0, str(ROOT / "src"))
    from splade_onnx._hub import resolve

    from torch_bin_files import tiny_torch_folder

    tiny = resolve("rasyosef/splade-tiny").path
    rows: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for variant in ("zip_fp32", "legacy_fp32", "zip_fp16"):
            path = tiny_torch_folder(variant, tiny, Path(tmp) / variant) / "pytorch_model.bin"
            for how in ("read_checkpoint", "load_tensors"):
                rows[f"{variant} {how}"] = {"file_bytes": path.stat().st_size, **measure(path, how, args.runs)}
        safetensors = tiny / "model.safetensors"
        rows["model.safetensors safetensors.numpy"] = {
            "file_bytes": safetensors.stat().st_size,
            **measure(safetensors, "safetensors", args.runs),
        }
    table = [
        f"Peak RSS of reading splade-tiny's checkpoint, above the RSS before the read, against the arrays read "
        f"(median of {args.runs} fresh processes, on {cpu()}). Target: at most {TARGET}x.",
        "",
        "| file | read by | arrays | file | arrays' size | peak RSS | ratio | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        file, how = name.split(" ", 1)
        mb = {k: float(str(r[k])) / 1e6 for k in ("file_bytes", "tensor_bytes", "peak_bytes")}
        ratio = float(str(r["ratio"]))
        met = "(for comparison)" if how == "safetensors.numpy" else "yes" if ratio <= TARGET else "NO"
        table.append(
            f"| {file} | `{how}` | {', '.join(map(str, r['dtypes']))} | {mb['file_bytes']:.2f} MB | "
            f"{mb['tensor_bytes']:.2f} MB | {mb['peak_bytes']:.2f} MB | {ratio:.2f}x | {met} |"
        )
    table += [
        "",
        "MB are 10^6 bytes. A ratio a little under 1x means some arrays were placed in heap pages the process "
        "already had resident before the read; the `safetensors.numpy` row is the same measure of safetensors' "
        "own numpy loader, for comparison.",
    ]
    write_results("bin_memory", {"cpu": cpu(), "runs": args.runs, "target_ratio": TARGET, "rows": rows}, table)


if __name__ == "__main__":
    main()
