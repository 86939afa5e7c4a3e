"""Build the competitor's inputs for benchmarks/encode.py (needs torch: run it in .venv-ref).

FastEmbed runs ONNX models that output the full ``logits`` [batch, seq, vocab],
exported from PyTorch with ``torch.onnx.export``, as optimum does for Qdrant's models.  This script makes
such exports of the two benchmark models, so that FastEmbed and splade-onnx run
the *same weights*:

- ``splade-tiny``: the real rasyosef/splade-tiny (``--tiny-dir``, its downloaded files);
- ``bert-base-shape``: random weights of BERT-base shape (12 x 768, vocab 30522),
  written with numpy (tests/checkpoints.py), with the MLM bias shifted so that a
  document gets about 200 active terms, as real SPLADE models give.

    make bench-prepare      # or: .venv-ref/bin/python benchmarks/prepare.py --tiny-dir DIR --out benchmarks/.work
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForMaskedLM, AutoTokenizer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import checkpoints  # noqa: E402

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "config.json")
TARGET_TERMS = 200


def export_logits_onnx(src: Path, dest: Path) -> None:
    """A FastEmbed-style folder: model.onnx (input_ids, attention_mask, token_type_ids -> logits) + tokenizer."""
    if (dest / "model.onnx").is_file():
        print(f"{dest / 'model.onnx'} exists")
        return
    dest.mkdir(parents=True, exist_ok=True)
    model = AutoModelForMaskedLM.from_pretrained(str(src)).eval()
    ids = torch.ones((2, 16), dtype=torch.long)
    args = (ids, torch.ones_like(ids), torch.zeros_like(ids))
    axes = {0: "batch_size", 1: "sequence_length"}
    torch.onnx.export(
        model,
        args,
        str(dest / "model.onnx"),
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["logits"],
        dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes, "logits": axes},
        opset_version=14,
        do_constant_folding=True,
        dynamo=False,
    )
    for f in TOKENIZER_FILES:
        shutil.copy(src / f, dest / f)
    tok_cfg = json.loads((dest / "tokenizer_config.json").read_text())
    special = {
        k: tok_cfg[k] for k in ("cls_token", "sep_token", "pad_token", "unk_token", "mask_token") if k in tok_cfg
    }
    (dest / "special_tokens_map.json").write_text(json.dumps(special))
    print(f"exported {dest / 'model.onnx'}")


@torch.no_grad()
def calibrate_bias(folder: Path, texts: list[str]) -> float:
    """Shift the MLM bias so the average document has about TARGET_TERMS positive pooled logits."""
    model = AutoModelForMaskedLM.from_pretrained(str(folder)).eval()
    tok = AutoTokenizer.from_pretrained(str(folder))
    maxima = []
    for t in texts:
        enc = tok([t], truncation=True, max_length=512, return_tensors="pt")
        maxima.append(model(**enc).logits[0].max(dim=0).values.numpy())
    m = np.stack(maxima)
    shift = checkpoints.shift_mlm_bias(folder, m, TARGET_TERMS)
    counts = (m > shift).sum(axis=1)
    print(f"bias shifted by {shift:.3f}: {counts.mean():.0f} active terms per document (min {counts.min()})")
    return shift


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny-dir", type=Path, required=True, help="folder with splade-tiny's files")
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "cranfield")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / ".work")
    args = ap.parse_args()
    export_logits_onnx(args.tiny_dir, args.out / "fastembed-splade-tiny")

    base = args.out / "bert-base-shape"
    if not (base / "model.safetensors").is_file():
        checkpoints.write_checkpoint("bert-base-shape", base, seed=1)
        for f in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(args.tiny_dir / f, base / f)
        docs = [json.loads(line) for line in (args.data / "corpus.jsonl").open()][:24]
        calibrate_bias(base, [d["text"] for d in docs])
    export_logits_onnx(base, args.out / "fastembed-bert-base-shape")


if __name__ == "__main__":
    main()
