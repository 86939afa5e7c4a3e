"""Write tests/golden/modernbert.json: transformers' ModernBertForMaskedLM on seeded checkpoints, SPLADE-pooled.

This is the independent oracle: it never imports splade_onnx.  The checkpoints are tiny
``ModernBertForMaskedLM`` models (tests/checkpoints.py, ``MODERNBERT_CASES``) with BERT's 30,522-token
vocabulary and splade-tiny's tokenizer; their weights are written with numpy from a seed, then the decoder
bias is shifted (a float32, recorded) so that about POSITIVE_LOGITS of the logits are positive.  The file
records, per case, the seed, the shift and the sha256 of the very bytes the references were computed from, so
the tests write the same file and check it before comparing.

The references are transformers' logits pooled as sentence-transformers' ``SpladePooling`` does (max or sum
over the text's tokens of ``log1p(relu)``, or of ``log1p(log1p(relu))``), computed four ways: with
``attn_implementation="eager"`` and with the default (sdpa), each text alone and all texts in one padded
batch.  The four must agree (identical index sets, values within SPREAD); the eager single-text vectors are
written, with the largest difference measured among the four.

    .venv-ref/bin/python scripts/make_golden_modernbert.py --model-dir PATH/TO/splade-tiny
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers
from transformers import AutoModelForMaskedLM, AutoTokenizer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import checkpoints  # noqa: E402
import texts  # noqa: E402

SEED = 2024
MAX_LENGTH = 128  # the cases' max_position_embeddings: splade-onnx truncates there
POSITIVE_LOGITS = 0.0004  # decoder bias shifted so ~0.04% of the logits (about 12 ids per token) are positive
SPREAD = 2e-5  # eager vs sdpa, single vs batched: the most the references may differ by
POOLINGS = (("max", "relu"), ("sum", "relu"), ("max", "log1p_relu"), ("sum", "log1p_relu"))


def corpus(tok: Any) -> tuple[list[str], list[str]]:
    """Queries, and documents: the parity texts, three joined (past both local windows), one that fills
    exactly MAX_LENGTH tokens and one far past it."""
    words = texts.LONG_TEXT.split()
    n = max(k for k in range(1, len(words)) if len(tok(" ".join(words[:k]))["input_ids"]) <= MAX_LENGTH)
    full = " ".join(words[:n])
    assert len(tok(full)["input_ids"]) == MAX_LENGTH, "the near-max text must fill the position table"
    docs = [*texts.PARITY_TEXTS, " ".join(texts.SEED_DOCUMENTS[6:9]), full]
    return list(texts.DEMO_QUERIES), docs


def pool(logits: torch.Tensor, mask: torch.Tensor, pooling: str, activation: str) -> np.ndarray:
    """sentence-transformers' SpladePooling on [batch, seq, vocab] logits."""
    w = torch.log1p(torch.relu(logits))
    if activation == "log1p_relu":
        w = torch.log1p(w)
    w = w * mask.unsqueeze(-1).to(w.dtype)
    return (w.max(dim=1).values if pooling == "max" else w.sum(dim=1)).numpy()


def load(folder: Path, impl: str) -> torch.nn.Module:
    model, info = AutoModelForMaskedLM.from_pretrained(
        str(folder), attn_implementation=impl, dtype=torch.float32, output_loading_info=True
    )
    bad = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    if bad:
        raise SystemExit(f"{folder}: transformers did not load every weight: {bad}")
    if type(model).__name__ != "ModernBertForMaskedLM" or model.config._attn_implementation != impl:
        raise SystemExit(f"{folder}: got {type(model).__name__} with {model.config._attn_implementation}")
    return model.eval()


@torch.no_grad()
def references(folder: Path, tok: Any, all_texts: list[str]) -> tuple[dict[tuple[str, str], np.ndarray], dict]:
    """The pooled references (eager, one text at a time) and the spread of the four ways of computing them."""
    runs: dict[str, dict[tuple[str, str], np.ndarray]] = {}
    for impl in ("eager", "sdpa"):
        model = load(folder, impl)
        single: dict[tuple[str, str], list[np.ndarray]] = {p: [] for p in POOLINGS}
        for text in all_texts:
            enc = tok([text], truncation=True, max_length=MAX_LENGTH, return_tensors="pt")
            logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
            for p in POOLINGS:
                single[p].append(pool(logits, enc["attention_mask"], *p)[0])
        runs[f"{impl} single"] = {p: np.stack(v) for p, v in single.items()}
        enc = tok(all_texts, padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="pt")
        logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
        runs[f"{impl} batched"] = {p: pool(logits, enc["attention_mask"], *p) for p in POOLINGS}
    ref = runs["eager single"]
    spread: dict[str, float] = {}
    for name, run in runs.items():
        if name == "eager single":
            continue
        for p, got in run.items():
            if not np.array_equal(got > 0, ref[p] > 0):
                raise SystemExit(f"{folder.name}: {name} {p} has other active ids than eager single")
        spread[name] = max(float(np.abs(got - ref[p]).max()) for p, got in run.items())
    if max(spread.values()) > SPREAD:
        raise SystemExit(f"{folder.name}: the references differ by {spread} > {SPREAD}")
    return ref, spread


@torch.no_grad()
def bias_shift(folder: Path, tok: Any, calib: list[str]) -> float:
    """The float32 to subtract from decoder.bias so that POSITIVE_LOGITS of the logits on ``calib`` are positive."""
    model = load(folder, "eager")
    enc = tok(calib, padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="pt")
    logits = model(**enc).logits[enc["attention_mask"].bool()].flatten()
    step = max(1, logits.numel() // 2_000_000)
    return float(np.float32(torch.quantile(logits[::step], 1.0 - POSITIVE_LOGITS).item()))


def f32(x: float) -> float:
    """A float32 value with the fewest digits that read back as it."""
    return float(f"{np.float32(x):.9g}")


def case(name: str, tmp: Path, tiny: Path, all_texts: list[str]) -> dict[str, Any]:
    folder = tmp / name
    checkpoints.write_modernbert(name, folder, seed=SEED, bias_shift=0.0, tokenizer_dir=tiny)
    tok = AutoTokenizer.from_pretrained(str(folder))
    shift = bias_shift(folder, tok, all_texts)
    digest = checkpoints.write_modernbert(name, folder, seed=SEED, bias_shift=shift, tokenizer_dir=tiny)
    if hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest() != digest:
        raise SystemExit("write_modernbert returned another sha256 than the file's")
    ref, spread = references(folder, tok, all_texts)
    vectors = []
    for r, text in enumerate(all_texts):
        idx = np.flatnonzero(ref[("max", "relu")][r] > 0)
        row: dict[str, Any] = {"n_tokens": len(tok(text, truncation=True, max_length=MAX_LENGTH)["input_ids"])}
        row["indices"] = idx.tolist()
        for p in POOLINGS:
            row["_".join(p)] = [f32(v) for v in ref[p][r][idx]]
        vectors.append(row)
    active = [len(v["indices"]) for v in vectors]
    print(f"{name}: shift {shift!r}, {min(active)}..{max(active)} active ids per text, spread {spread}")
    return {
        "seed": SEED,
        "bias_shift": shift.hex(),
        "sha256": digest,
        "reference_spread": spread,
        "vectors": vectors,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", type=Path, required=True, help="splade-tiny's folder (its tokenizer is used)")
    args = ap.parse_args()
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(str(args.model_dir))
    queries, docs = corpus(tok)
    all_texts = [*queries, *docs]
    with tempfile.TemporaryDirectory() as tmp:
        cases = {name: case(name, Path(tmp), args.model_dir, all_texts) for name in checkpoints.MODERNBERT_CASES}
    data = {
        "generated_by": f"scripts/make_golden_modernbert.py with torch {torch.__version__}, "
        f"transformers {transformers.__version__}",
        "weights": "tests/checkpoints.py write_modernbert(name, seed, float.fromhex(bias_shift)) with splade-tiny's "
        "tokenizer files; sha256 of model.safetensors",
        "max_length": MAX_LENGTH,
        "poolings": ["_".join(p) for p in POOLINGS],
        "queries": len(queries),
        "texts": all_texts,
        "cases": cases,
    }
    path = ROOT / "tests" / "golden" / "modernbert.json"
    path.write_text(json.dumps(data, indent=0, ensure_ascii=False) + "\n")
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
