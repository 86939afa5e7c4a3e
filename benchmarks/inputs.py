"""Peak memory and time of encoding one 10 MB hostile text with splade-tiny: dots, CJK, base64, one word.

Each (case, run) is a fresh child process: it loads the model, notes its RSS, builds the text,
encodes it, and reports the peak RSS (``ru_maxrss``) minus the RSS after loading, so the figure
includes the 10 MB text itself.  Medians of ``--runs`` runs are printed as a table.

    .venv/bin/python benchmarks/inputs.py [--runs 3] [--reference] [--json out.json]

``--reference`` also tokenizes each whole text with a plain ``tokenizers.Tokenizer`` in its own
child (what the encoder did before the bounded pre-cut: gigabytes for some cases) and checks that
the ids are the same as the encoder's.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
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

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("SPLADE_ONNX_TEST_CACHE", ROOT / ".cache" / "test"))
TINY = "rasyosef/splade-tiny"
SIZE = 10_000_000
CASES = ("dots", "cjk", "base64", "base64-word", "spaces-then-text")


def make(case: str) -> str:
    """The 10 MB text of ``case`` (UTF-8 size; the CJK case is 3.3M characters)."""
    rng = np.random.default_rng(0)
    if case == "dots":
        return "." * SIZE
    if case == "cjk":
        return rng.integers(0x4E00, 0x9FA5, SIZE // 3, dtype=np.uint32).tobytes().decode("utf-32-le")
    b64 = base64.b64encode(rng.bytes(SIZE * 3 // 4)).decode()
    if case == "base64":
        return b64
    if case == "base64-word":  # one word: the alphabet without its separators + / =
        return b64.translate(str.maketrans("+/", "xy", "="))
    if case == "spaces-then-text":
        return " " * SIZE + "the lunar lander touched down"
    raise ValueError(case)


def rss_now() -> int:
    """Resident set size of this process, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def digest(ids: list[int]) -> str:
    return hashlib.sha256(json.dumps(ids).encode()).hexdigest()[:16]


def child(case: str, reference: bool) -> dict[str, Any]:
    """One measurement, in this (fresh) process: the encoder, or with ``reference`` the plain tokenizer."""
    from splade_onnx import SpladeEncoder

    enc = SpladeEncoder.from_pretrained(TINY, cache_dir=CACHE)
    if reference:
        from tokenizers import Tokenizer

        tok = Tokenizer.from_str(enc.loaded.document.tokenizer.to_str())  # truncating at 512, no padding
        del enc
    else:
        enc.encode_documents(["warm up"])
    base = rss_now()
    text = make(case)
    t0 = time.perf_counter()
    if reference:
        ids = list(tok.encode(text).ids)
    else:
        (_vector,) = enc.encode_documents([text])
    seconds = time.perf_counter() - t0
    over_model = peak_rss() - base
    if not reference:
        ids = enc.loaded.document.tokenizer.encode([text])[0]  # after the measurement, for the --reference comparison
    return {"seconds": seconds, "over_model": over_model, "ids": digest(ids), "n_tokens": len(ids)}


def run_child(case: str, reference: bool) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", case] + (["--reference"] if reference else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--reference", action="store_true", help="also tokenize each whole text (slow, gigabytes)")
    ap.add_argument("--cases", nargs="*", default=list(CASES), choices=CASES)
    ap.add_argument("--json", type=Path, help="write the medians here too")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.reference)))
        return
    rows = []
    print(
        f"{'case':<18} {'peak RSS over model':>20} {'time':>9} {'tokens':>7}"
        + ("  reference (RSS, time, same ids)" if args.reference else "")
    )
    for case in args.cases:
        runs = [run_child(case, False) for _ in range(args.runs)]
        row: dict[str, Any] = {
            "case": case,
            "over_model_mb": statistics.median(r["over_model"] for r in runs) / 2**20,
            "seconds": statistics.median(r["seconds"] for r in runs),
            "n_tokens": runs[0]["n_tokens"],
        }
        line = f"{case:<18} {row['over_model_mb']:>17.0f} MB {row['seconds']:>8.2f}s {row['n_tokens']:>7}"
        if args.reference:
            ref = run_child(case, True)
            row.update(
                reference_mb=ref["over_model"] / 2**20,
                reference_seconds=ref["seconds"],
                same_ids=ref["ids"] == runs[0]["ids"],
            )
            line += f"  {row['reference_mb']:>6.0f} MB {row['reference_seconds']:>6.1f}s {row['same_ids']}"
        print(line, flush=True)
        rows.append(row)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
