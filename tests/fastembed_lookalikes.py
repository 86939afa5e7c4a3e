"""Look-alikes of the Hub repositories FastEmbed 0.9.1 downloads for its SPLADE models, in the HF cache's layout.

The real repositories are out of reach, so each look-alike holds the files FastEmbed fetches from it
(``fastembed/common/model_management.py``: config.json, tokenizer.json, tokenizer_config.json,
special_tokens_map.json, the model file and the additional files), built from the seeded family BERT of
``tests/fixtures/families/opensearch_idf`` (its weights written by ``tests/checkpoints.py``):

* ``model.onnx``: that BertForMaskedLM as an ONNX graph with a ``logits`` output (inputs ``input_ids`` and
  ``attention_mask``), written by the project's converter with ``build_graph(..., pooled=False)``, the
  converter being checked against transformers in ``tests/test_parity.py``.  FastEmbed and splade-onnx
  both run this very file, as both run Qdrant's real export.
* ``Qdrant/opensearch-neural-sparse-encoding-doc-v3-gte``: a GTE-style ``config.json`` (``model_type``
  ``new``, as GTE's custom code has), a ``tokenizer_config.json`` whose ``max_length`` (24) is below its
  ``model_max_length``, and an ``idf.json`` edited so that FastEmbed's reading of it differs from
  sentence-transformers': an entry of 0, a token removed, a token the vocabulary lacks.

``scripts/make_golden_fastembed.py`` (FastEmbed itself) and ``tests/test_fastembed_models.py`` build them
with :func:`write_repo`, byte for byte the same; the golden file records each file's sha256.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

#: The snapshot every look-alike is stored under (``refs/main`` points at it).
COMMIT = "f0" * 20
#: The family fixture the look-alikes are built from.
SOURCE = "opensearch_idf"

_SPECIAL_TOKENS_MAP = {
    "cls_token": "[CLS]",
    "mask_token": "[MASK]",
    "pad_token": "[PAD]",
    "sep_token": "[SEP]",
    "unk_token": "[UNK]",
}
_TOKENIZER_CONFIG: dict[str, Any] = {
    "cls_token": "[CLS]",
    "do_lower_case": True,
    "mask_token": "[MASK]",
    "pad_token": "[PAD]",
    "sep_token": "[SEP]",
    "strip_accents": None,
    "tokenize_chinese_chars": True,
    "tokenizer_class": "BertTokenizer",
    "unk_token": "[UNK]",
}
#: name -> {file: JSON content}, beside the shared tokenizer.json and model.onnx.
_REPOS: dict[str, dict[str, Any]] = {
    "Qdrant/Splade_PP_en_v1": {
        "tokenizer_config.json": {**_TOKENIZER_CONFIG, "model_max_length": 40},
    },
    "Qdrant/opensearch-neural-sparse-encoding-doc-v3-gte": {
        "tokenizer_config.json": {**_TOKENIZER_CONFIG, "model_max_length": 512, "max_length": 24},
        "config.json": {
            "architectures": ["NewForMaskedLM"],
            "auto_map": {
                "AutoConfig": "Alibaba-NLP/new-impl--configuration.NewConfig",
                "AutoModelForMaskedLM": "Alibaba-NLP/new-impl--modeling.NewForMaskedLM",
            },
            "model_type": "new",
            "vocab_size": 6961,
            "hidden_size": 16,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 40,
            "position_embedding_type": "rope",
            "type_vocab_size": 2,
            "pad_token_id": 0,
        },
    },
}
REPOS = tuple(_REPOS)
#: idf.json edits: an entry of 0 (FastEmbed keeps it), a token removed, a token the vocabulary lacks.
IDF_ZERO, IDF_REMOVED, IDF_FOREIGN = "moon", "mission", "not-in-the-vocabulary"


def _dump(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_repo(repo_id: str, hf_root: Path, families: Path) -> dict[str, str]:
    """Write ``repo_id``'s look-alike as huggingface_hub caches it under ``hf_root`` (``models--.../snapshots``) from
    the family fixtures at ``families`` (with their weights); return ``{file: sha256}``."""
    import onnx

    from splade_onnx._graph_dense import build_graph
    from splade_onnx._spec import load_spec

    src = families / SOURCE
    repo = hf_root / f"models--{repo_id.replace('/', '--')}"
    snap = repo / "snapshots" / COMMIT
    if snap.exists():
        shutil.rmtree(snap)
    snap.mkdir(parents=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)
    files = _REPOS[repo_id]
    shutil.copy(src / "tokenizer.json", snap / "tokenizer.json")
    if "config.json" in files:
        _dump(snap / "config.json", files["config.json"])
    else:
        shutil.copy(src / "config.json", snap / "config.json")
    _dump(snap / "tokenizer_config.json", files["tokenizer_config.json"])
    _dump(snap / "special_tokens_map.json", _SPECIAL_TOKENS_MAP)
    graph = build_graph(load_spec(src, src / "model.safetensors"), pooled=False)
    onnx.save_model(graph, str(snap / "model.onnx"))
    if repo_id.endswith("-gte"):
        idf = json.loads((src / "idf.json").read_text(encoding="utf-8"))
        assert IDF_ZERO in idf and IDF_REMOVED in idf and IDF_FOREIGN not in idf
        idf[IDF_ZERO] = 0.0
        del idf[IDF_REMOVED]
        idf[IDF_FOREIGN] = 9.0
        (snap / "idf.json").write_text(json.dumps(idf), encoding="utf-8")
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(snap.iterdir())}
