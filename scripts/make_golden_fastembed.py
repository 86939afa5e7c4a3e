"""Write tests/golden/fastembed.json and tests/fixtures/fastembed_sparse_models.json with FastEmbed 0.9.1 itself.

FastEmbed is the oracle here.  Its model list (``SparseTextEmbedding.list_supported_models()``, each
model tagged with the class of ``SparseTextEmbedding.EMBEDDINGS_REGISTRY`` that serves it) is written
to ``tests/fixtures/fastembed_sparse_models.json``.  Then, for every model it serves with a SPLADE class
(``SpladePP``, ``IfSplade``), FastEmbed loads the look-alike of the repository it downloads
(``tests/fastembed_lookalikes.py``, in an HF cache under a temporary folder, with ``local_files_only``)
and encodes the same texts as documents (``embed``) and as queries (``query_embed``); those vectors,
the texts and the sha256 of every look-alike file go to ``tests/golden/fastembed.json``.

splade-onnx's encoder is never run here: its converter only writes the look-alikes' ``model.onnx`` from
the seeded family weights (see ``tests/fastembed_lookalikes.py``), the one file both libraries run.

Run it with FastEmbed 0.9.1 (``make golden-fastembed``, in ``.venv-bench``; no network needed)::

    HF_HUB_OFFLINE=1 PYTHONPATH=src:tests .venv-bench/bin/python scripts/make_golden_fastembed.py
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import fastembed
import numpy as np
from fastembed import SparseTextEmbedding

import checkpoints
import fastembed_lookalikes

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "fastembed.json"
MODEL_LIST = ROOT / "tests" / "fixtures" / "fastembed_sparse_models.json"
SPLADE_CLASSES = ("SpladePP", "IfSplade")
BATCH_SIZE = 3  # several batches, each padded to its longest text

TEXTS = [
    "",
    "the moon landing: lunar mission, lunar rover and the moon",
    "paris is the [MASK] of france and so is [CLS]",
    "Café NAÏVE Résumé ÉCOLE über Ünïcödé",
    "東京 and 北京 🚀 emoji",
    "What's the weather in NY now?! (Really...) -- 42% & #1",
    "what is the cost of the mission",
    "the capital of france is paris, and the river of paris is the seine; the city has many old houses, "
    "a great library, small and large parks, new music every night and the best book shops of the world",
]


def model_list() -> list[dict[str, Any]]:
    """FastEmbed's sparse models, as ``list_supported_models()`` gives them, each with the class serving it."""
    owner = {
        d.model: cls.__name__ for cls in SparseTextEmbedding.EMBEDDINGS_REGISTRY for d in cls._list_supported_models()
    }
    rows = []
    for m in SparseTextEmbedding.list_supported_models():
        rows.append(
            {
                "model": m["model"],
                "class": owner[m["model"]],
                "hf": m["sources"]["hf"],
                "model_file": m["model_file"],
                "additional_files": list(m["additional_files"]),
                "vocab_size": m["vocab_size"],
                "license": m["license"],
                "size_in_GB": m["size_in_GB"],
            }
        )
    return rows


def vectors(embeddings: Any) -> list[dict[str, list[Any]]]:
    out = []
    for e in embeddings:
        order = np.argsort(e.indices, kind="stable")  # FastEmbed's indices are ascending already; made sure
        out.append(
            {
                "indices": [int(i) for i in np.asarray(e.indices)[order]],
                "values": [float(v) for v in np.asarray(e.values)[order]],
            }
        )
    return out


def main() -> None:
    assert fastembed.__version__ == "0.9.1", f"FastEmbed 0.9.1 is the oracle, found {fastembed.__version__}"
    rows = model_list()
    MODEL_LIST.write_text(
        json.dumps(
            {
                "generated_by": "scripts/make_golden_fastembed.py from SparseTextEmbedding.list_supported_models()",
                "fastembed_version": fastembed.__version__,
                "models": rows,
            },
            indent=1,
        )
        + "\n"
    )
    splade = [r for r in rows if r["class"] in SPLADE_CLASSES]
    with tempfile.TemporaryDirectory() as tmp:
        families = checkpoints.family_fixtures(ROOT, dst=Path(tmp) / "families")
        hf = Path(tmp) / "hf"
        repos = {
            repo: fastembed_lookalikes.write_repo(repo, hf, families) for repo in sorted({r["hf"] for r in splade})
        }
        models = {}
        for r in splade:
            model = SparseTextEmbedding(r["model"], cache_dir=str(hf), local_files_only=True, threads=1)
            models[r["model"]] = {
                "class": r["class"],
                "repo": r["hf"],
                "documents": vectors(model.embed(TEXTS, batch_size=BATCH_SIZE)),
                "queries": vectors(model.query_embed(TEXTS)),
            }
            print(f"{r['model']} ({r['class']}, {r['hf']}): {len(TEXTS)} documents and queries")
    GOLDEN.write_text(
        json.dumps(
            {
                "generated_by": "scripts/make_golden_fastembed.py: FastEmbed's embed() and query_embed() on the "
                "look-alikes of tests/fastembed_lookalikes.py",
                "fastembed_version": fastembed.__version__,
                "batch_size": BATCH_SIZE,
                "texts": TEXTS,
                "repos": repos,
                "models": models,
            },
            indent=1,
            ensure_ascii=False,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"wrote {GOLDEN.relative_to(ROOT)} and {MODEL_LIST.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
