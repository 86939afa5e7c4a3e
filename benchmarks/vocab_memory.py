"""Peak memory of one full batch at a 250,002-token (XLM-R) vocabulary: the projection stays sliced.

The checkpoint is the seeded tiny XLM-R of the tests (``tests/checkpoints.py``: hidden 16, 2 layers,
vocabulary 250,002), so the vocabulary projection dominates.  One batch fills the token budget
(32 texts x 64 tokens = 2,048 tokens); a graph that materialised the logits would hold a
[2048, 250002] float32 tensor, 2.05 GB.  Each case runs in a fresh process and reports its peak
RSS above the loaded encoder (``ru_maxrss``), median of ``--runs``.

    .venv/bin/python benchmarks/vocab_memory.py

Writes benchmarks/results/vocab_memory.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

CHILD = """
import resource, sys, json
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from splade_onnx import SpladeEncoder
enc = SpladeEncoder.from_pretrained(Path(sys.argv[1]), cache_dir=Path(sys.argv[1]) / "cache")
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
text = " ".join(["the"] * 200)                       # cut at the model's 64 positions
vectors = enc.encode_documents([text + f" {i}" for i in range(32)], batch_size=32)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"loaded_mb": base / 1024, "peak_over_loaded_mb": (peak - base) / 1024,
                  "tokens": sum(1 for _ in vectors) * 64, "vocab": enc.vocab_size}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "tests"))
    from checkpoints import write_xlmr_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "xlmr"
        write_xlmr_checkpoint(folder)
        runs = []
        for _ in range(args.runs + 1):  # the first run converts and caches the graph
            out = subprocess.run(
                [sys.executable, "-c", CHILD, str(folder), str(ROOT / "src")],
                capture_output=True,
                text=True,
                check=True,
            )
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        runs = runs[1:]
    peak = statistics.median(r["peak_over_loaded_mb"] for r in runs)
    logits_mb = 2048 * 250_002 * 4 / 1e6
    result = {"runs": runs, "median_peak_over_loaded_mb": peak, "materialised_logits_mb": logits_mb}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "vocab_memory.json").write_text(json.dumps(result, indent=1) + "\n")
    sys.stdout.write(
        f"one 2,048-token batch at vocab 250,002: peak {peak:.0f} MB over the loaded encoder "
        f"(median of {len(runs)}); materialised logits would be {logits_mb:,.0f} MB\n"
    )


if __name__ == "__main__":
    main()
