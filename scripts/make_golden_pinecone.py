"""Write tests/golden/pinecone_text.json: what pinecone-text's own ``SpladeEncoder`` returns, on splade-tiny.

The oracle for ``splade_onnx.pinecone``: pinecone-text 0.11.0 itself, with torch and transformers
(it never imports splade_onnx).  pinecone-text's encoder always loads
``naver/splade-cocondenser-ensembledistil`` from the Hub; here its two loaders are pointed at
splade-tiny's local folder instead (same architecture, reachable offline, and the model the tests
load), so every other line of its encoder runs as shipped: tokenization, truncation at
``max_seq_length``, the pooling, the output dicts and their types, its argument checks.

    .venv-ref/bin/pip install pinecone-text==0.11.0      # beside torch 2.13 and transformers (make golden-pinecone)
    .venv-ref/bin/python scripts/make_golden_pinecone.py --model-dir PATH/TO/splade-tiny
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
from pathlib import Path
from typing import Any

import torch
import transformers
from pinecone_text.sparse import splade_encoder
from pinecone_text.sparse.splade_encoder import SpladeEncoder

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import texts  # noqa: E402

#: The checkpoint pinecone-text's SpladeEncoder names (and downloads) whatever its arguments.
PINECONE_MODEL = "naver/splade-cocondenser-ensembledistil"


class LocalLoader:
    """A stand-in for ``AutoTokenizer`` / ``AutoModelForMaskedLM`` in pinecone-text's module: the same
    ``from_pretrained``, reading ``folder`` when pinecone-text asks for its fixed checkpoint."""

    def __init__(self, auto: Any, folder: Path) -> None:
        self.auto, self.folder = auto, folder

    def from_pretrained(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if name != PINECONE_MODEL:
            raise SystemExit(f"pinecone-text asked for {name!r}, not {PINECONE_MODEL!r}: update this script")
        return self.auto.from_pretrained(str(self.folder), *args, **kwargs)


def outcome(call: Any) -> dict[str, Any]:
    """What ``call()`` gave: its output (vectors, with the Python types of their items), or the error it raised."""
    try:
        out = call()
    except Exception as e:  # noqa: BLE001 - recording what the reference raises is the point
        return {"error": type(e).__name__, "message": str(e)}
    if not isinstance(out, (dict, list)):
        return {"output": out}
    vectors = [out] if isinstance(out, dict) else out
    return {
        "output": out,
        "shape": "dict" if isinstance(out, dict) else type(out).__name__,
        "types": sorted({f"{k}:{type(x).__name__}" for v in vectors for k in v for x in v[k]}),
    }


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", type=Path, required=True, help="splade-tiny's files")
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "golden" / "pinecone_text.json")
    args = parser.parse_args()
    splade_encoder.AutoTokenizer = LocalLoader(transformers.AutoTokenizer, args.model_dir)
    splade_encoder.AutoModelForMaskedLM = LocalLoader(transformers.AutoModelForMaskedLM, args.model_dir)

    default = SpladeEncoder(device="cpu")
    short = SpladeEncoder(max_seq_length=8, device="cpu")
    full = SpladeEncoder(max_seq_length=512, device="cpu")
    documents = texts.PARITY_TEXTS
    cases = {
        # Each text alone (no padding), then the whole list as one batch, as pinecone-text encodes a list: padded.
        "documents_one_by_one": outcome(lambda: [default.encode_documents(t) for t in documents]),
        "documents": outcome(lambda: default.encode_documents(documents)),
        "queries_one_by_one": outcome(lambda: [default.encode_queries(t) for t in texts.DEMO_QUERIES]),
        "queries": outcome(lambda: default.encode_queries(texts.DEMO_QUERIES)),
        "one_document": outcome(lambda: default.encode_documents(texts.SEED_DOCUMENTS[0])),
        "one_query": outcome(lambda: default.encode_queries("lunar rover")),
        "empty_string": outcome(lambda: default.encode_queries("")),
        "short": outcome(lambda: short.encode_documents(texts.SEED_DOCUMENTS[:3])),
        "long_512": outcome(lambda: full.encode_documents([texts.LONG_TEXT])),
        "empty_list": outcome(lambda: default.encode_documents([])),
    }
    # pinecone-text's own checks of max_seq_length, made when its encoder is built.
    checks = {
        str(n): outcome(lambda n=n: SpladeEncoder(max_seq_length=n, device="cpu").max_seq_length) for n in (0, 1, 513)
    }
    # 1 passes its check, but leaves no room for [CLS] and [SEP]: what it then encodes.
    cases["max_seq_length_1"] = outcome(lambda: SpladeEncoder(max_seq_length=1, device="cpu").encode_documents("moon"))
    golden = {
        "producer": {
            "script": "scripts/make_golden_pinecone.py",
            "pinecone-text": importlib.metadata.version("pinecone-text"),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "model": "rasyosef/splade-tiny, loaded where pinecone-text names " + PINECONE_MODEL,
        },
        "max_seq_length_default": default.max_seq_length,
        "inputs": {"documents": documents, "queries": texts.DEMO_QUERIES},
        # Tokens of each text in the batch, special tokens included, after truncation at 256: padding is the rest.
        "tokens": {
            name: [len(ids) for ids in default.tokenizer(batch, truncation=True, max_length=256)["input_ids"]]
            for name, batch in (("documents", documents), ("queries", texts.DEMO_QUERIES))
        },
        "cases": cases,
        "max_seq_length_checks": checks,
    }
    args.out.write_text(json.dumps(golden, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
