"""Write the golden reference files in tests/golden/ with HF transformers + torch.

This is the independent oracle: it never imports splade_onnx.  Run it once after
changing the texts or checkpoints; the outputs are committed, so neither CI nor
``make test`` needs torch.

    python -m venv .venv-ref && .venv-ref/bin/pip install torch==2.13.0 transformers safetensors numpy
    .venv-ref/bin/python scripts/make_golden.py --model-dir PATH/TO/splade-tiny

``--model-dir`` is the folder with splade-tiny's files (``make golden`` fetches it).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import AutoModelForMaskedLM, AutoTokenizer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import checkpoints  # noqa: E402
import texts  # noqa: E402


def splade(logits: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """The reference pooling, as in sentence-transformers' SpladePooling (max)."""
    w = torch.log1p(torch.relu(logits)) * mask.unsqueeze(-1)
    return w.max(dim=1).values.numpy()


def sparse(row: np.ndarray) -> dict[str, list[float] | list[int]]:
    idx = np.flatnonzero(row > 0)
    return {"indices": idx.tolist(), "values": row[idx].astype(float).tolist()}


def load(folder: Path) -> torch.nn.Module:
    model, info = AutoModelForMaskedLM.from_pretrained(str(folder), output_loading_info=True)
    bad = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    if bad:
        raise SystemExit(f"{folder}: transformers did not load every weight: {bad}")
    return model.eval()


@torch.no_grad()
def tiny(model_dir: Path) -> None:
    model = load(model_dir)
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    out = []
    for text in texts.PARITY_TEXTS:  # one by one: no padding in the reference
        enc = tok([text], truncation=True, max_length=512, return_tensors="pt")
        logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
        out.append({"n_tokens": int(enc["input_ids"].shape[1]), **sparse(splade(logits, enc["attention_mask"])[0])})
    write(
        "splade_tiny.json",
        {"model": "rasyosef/splade-tiny", "max_length": 512, "texts": texts.PARITY_TEXTS, "vectors": out},
    )


@torch.no_grad()
def random_checkpoints() -> None:
    cases = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in checkpoints.CASES:
            cfg = checkpoints.write_checkpoint(name, Path(tmp) / name)
            model = load(Path(tmp) / name)
            ids, mask = checkpoints.inputs(cfg["vocab_size"], cfg["pad_token_id"])
            logits = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).logits
            cases[name] = [sparse(r) for r in splade(logits, torch.from_numpy(mask))]
    write("random_checkpoints.json", {"cases": cases})


def write(name: str, data: dict[str, object]) -> None:
    data = {
        "generated_by": f"scripts/make_golden.py with torch {torch.__version__}, "
        f"transformers {transformers.__version__}",
        **data,
    }
    path = ROOT / "tests" / "golden" / name
    path.write_text(json.dumps(data, indent=0, ensure_ascii=False) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", type=Path, required=True)
    args = ap.parse_args()
    torch.manual_seed(0)
    tiny(args.model_dir)
    random_checkpoints()
