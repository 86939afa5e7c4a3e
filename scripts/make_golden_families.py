"""Write the checkpoint-family fixtures (tests/fixtures/families/) and their golden outputs
(tests/golden/families.json) with sentence-transformers, transformers and torch.

This is an independent oracle: it never imports splade_onnx.  Every folder that has a
sentence-transformers layout is written by sentence-transformers itself (``save_pretrained``),
and every reference vector comes from ``SparseEncoder.encode_query`` / ``encode_document``
(one text at a time, so padding plays no role) or, for the plain Hugging Face folders, from
transformers' MLM logits with SpladePooling's math.  The outputs are committed: the tests read
them and never need torch.

The weight files are not committed.  Every ``model.safetensors`` of the fixtures is written by
``tests/checkpoints.py:write_family_weights`` with numpy alone (seeded ``default_rng``): the three
tiny MLMs (BERT seeds 1234 and 2345, DistilBERT seed 3456) and the SparseStaticEmbedding tables
(the seeded table and the table of ones).  An MLM's output bias is shifted so that ~0.3% of the
logits are positive; the shift comes from a forward pass here and is recorded (a float32, as
``float.hex``) beside the file's seed and sha256 in families.json under ``"weights"``.  Whatever
sentence-transformers saves is replaced by the numpy writer's file of the same tensors and the
model is reloaded from disk before any reference is computed, so the references come from exactly
the bytes the tests regenerate.  The fixtures are built in a temporary tree and published to
``tests/fixtures/families`` without their weights; the run ends by regenerating the weights from
the records next to the published folders and checking that this is the built tree, file for file.

What it builds (all seeded and deterministic; a reduced 6,961-token BERT-uncased WordPiece
vocabulary, tiny random MLMs with ``max_position_embeddings`` 40 so truncation and windows are
exercised):

* ``st_max_relu``, ``st_max_log1p_relu``, ``st_sum_relu``, ``st_sum_log1p_relu``: MLMTransformer +
  SpladePooling(pooling, activation);
* ``st_prompts``: Transformer(fill-mask, max_seq_length 16) + SpladePooling(max, relu) with the
  prompts ``query: `` / ``passage: ``;
* ``st_inference_free``: Router(query=[SparseStaticEmbedding], document=[MLMTransformer, SpladePooling]);
* ``st_inference_free_hub``: the same model in the layout of the OpenSearch Hub repos (ST 5.x
  class names, the document MLM at the root under router id ``""``, ``idf.json`` at the root);
* ``st_idf_json``: a SparseStaticEmbedding whose config points at an ``idf.json`` (``"path"``);
* ``opensearch_idf`` / ``opensearch_txt``: plain BertForMaskedLM folders plus ``idf.json`` /
  ``query_token_weights.txt`` (no sentence-transformers files);
* ``two_tower/{query,document}``: plain BertForMaskedLM / DistilBertForMaskedLM folders;
* ``st_two_tower``: an ST Router with an MLM on each side;
* ``tokens_query``: an ST Router whose query side is a weight-less SparseStaticEmbedding (all ones);
* ``xlmr`` (golden only): references for ``tests/checkpoints.py:write_xlmr_checkpoint``;
* ``splade_tiny_windows`` (golden only): a windowed reference of the real splade-tiny.

Run it with a Python that has torch, transformers and sentence-transformers 6.x (no network needed;
the Hub is never contacted)::

    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 path/to/oracle-venv/bin/python scripts/make_golden_families.py \\
        --tiny-dir PATH/TO/splade-tiny

``--tiny-dir`` is the folder with splade-tiny's files (config.json, model.safetensors,
tokenizer.json, tokenizer_config.json); its tokenizer.json is also the source of the reduced vocabulary.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import sentence_transformers
import tokenizers
import torch
import transformers
from safetensors.numpy import load_file
from sentence_transformers.sparse_encoder import SparseEncoder
from sentence_transformers.sparse_encoder.modules import (
    MLMTransformer,
    Router,
    SparseStaticEmbedding,
    SpladePooling,
    Transformer,
)
from tokenizers import Tokenizer
from transformers import (
    AutoModelForMaskedLM,
    AutoTokenizer,
    BertConfig,
    BertForMaskedLM,
    DistilBertConfig,
    DistilBertForMaskedLM,
    PreTrainedTokenizerFast,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import checkpoints  # noqa: E402

log = logging.getLogger("make_golden_families")
ST = "ST " + ".".join(sentence_transformers.__version__.split(".")[:2])  # "ST 6.3", as the notes name it

FAMILIES_REL = Path("tests") / "fixtures" / "families"  # the same below the repository and the staging tree
FAMILIES_DIR = ROOT / FAMILIES_REL
GOLDEN_PATH = ROOT / "tests" / "golden" / "families.json"

N_BASE_TOKENS = 6000  # ids 0..5999 of bert-base-uncased, then every "##x" continuation token
MLM = checkpoints.FAMILY_MLM  # hidden 16, 2 layers, 2 heads, intermediate 64: the numpy writer's shapes
MAX_POS = MLM["max_position_embeddings"]  # 40 for every tiny MLM: 40 tokens per forward pass
MODEL_MAX_LENGTH = 512  # tokenizer_config.json of the plain folders (capped to MAX_POS by the loaders)
PROMPT_MAX_SEQ_LENGTH = 16  # st_prompts' Transformer(max_seq_length=16)
STRIDE = 8  # window overlap for the families' "windows" references
POSITIVE_LOGITS = 0.003  # decoder bias shifted so ~0.3% of the logits are positive
SEED_BERT, SEED_QUERY_BERT, SEED_DOC_DISTILBERT, SEED_TABLES, SEED_TEXTS = 1234, 2345, 3456, 4567, 5678
TINY_MAX_LENGTH, TINY_STRIDE = 512, 128
XLMR_SEED, XLMR_MAX_LENGTH = 0, 64

#: class refs written by sentence-transformers 5.x (what the OpenSearch Hub repos carry)
LEGACY_TYPES = {
    "Router": "sentence_transformers.models.Router",
    "MLMTransformer": "sentence_transformers.sparse_encoder.models.MLMTransformer",
    "SpladePooling": "sentence_transformers.sparse_encoder.models.SpladePooling",
    "SparseStaticEmbedding": "sentence_transformers.sparse_encoder.models.SparseStaticEmbedding",
}


# ----------------------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------------------


def sparse(row: np.ndarray | torch.Tensor) -> dict[str, list[Any]]:
    """Every non-zero entry of a dense vector, float32 values as full-precision Python floats."""
    if isinstance(row, torch.Tensor):
        row = (row.to_dense() if row.is_sparse else row).detach().cpu().numpy()
    row = np.asarray(row, dtype=np.float32)
    idx = np.flatnonzero(row)
    return {"indices": [int(i) for i in idx], "values": [float(v) for v in row[idx]]}


def dense(vec: dict[str, list[Any]], dim: int) -> np.ndarray:
    out = np.zeros(dim, dtype=np.float64)
    out[np.asarray(vec["indices"], dtype=np.int64)] = vec["values"]
    return out


def compare(a: Sequence[dict[str, list[Any]]], b: Sequence[dict[str, list[Any]]], what: str, tol: float) -> float:
    """Assert two lists of sparse vectors have the same supports and values within ``tol``."""
    assert len(a) == len(b), what
    worst = 0.0
    for i, (x, y) in enumerate(zip(a, b)):
        if x["indices"] != y["indices"]:
            sx, sy = set(x["indices"]), set(y["indices"])
            raise AssertionError(
                f"{what}[{i}]: supports differ: only-a {sorted(sx - sy)[:10]} only-b {sorted(sy - sx)[:10]}"
            )
        if x["values"]:
            worst = max(worst, float(np.max(np.abs(np.subtract(x["values"], y["values"])))))
    if worst > tol:
        raise AssertionError(f"{what}: max |diff| {worst} > {tol}")
    return worst


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_json(path: Path, data: Any, indent: int | None = 2) -> None:
    path.write_text(json.dumps(data, indent=indent, ensure_ascii=False) + "\n", encoding="utf-8")


@contextlib.contextmanager
def chdir(path: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def strip_model_card(folder: Path) -> None:
    """ST writes a generated README.md model card; it is not an input of any loader."""
    for card in folder.rglob("README.md"):
        card.unlink()


# ----------------------------------------------------------------------------------------------
# vocabulary, texts, tiny MLMs
# ----------------------------------------------------------------------------------------------


def reduced_tokenizer_json(source: Path) -> dict[str, Any]:
    """bert-base-uncased's tokenizer.json restricted to ids 0..5999 plus every "##x" token, renumbered."""
    data = json.loads(source.read_text(encoding="utf-8"))
    vocab: dict[str, int] = data["model"]["vocab"]
    by_id = sorted(vocab.items(), key=lambda kv: kv[1])
    assert [i for _, i in by_id] == list(range(len(by_id))), "source vocabulary is not dense"
    keep = [t for t, i in by_id if i < N_BASE_TOKENS]
    keep += [t for t, i in by_id if i >= N_BASE_TOKENS and t.startswith("##") and len(t) == 3]
    new_vocab = {t: i for i, t in enumerate(keep)}
    for added in data["added_tokens"]:  # [PAD] 0, [UNK] 100, [CLS] 101, [SEP] 102, [MASK] 103 keep their ids
        assert new_vocab[added["content"]] == added["id"], added
    for spec in data["post_processor"]["special_tokens"].values():
        assert [new_vocab[t] for t in spec["tokens"]] == spec["ids"], spec
    data["model"]["vocab"] = new_vocab
    data["truncation"] = None
    data["padding"] = None
    return data


def make_tokenizer(data: dict[str, Any], *, distilbert: bool = False) -> PreTrainedTokenizerFast:
    tok = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(json.dumps(data)),
        unk_token="[UNK]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        mask_token="[MASK]",
        model_max_length=MODEL_MAX_LENGTH,
        do_lower_case=True,
        model_input_names=["input_ids", "attention_mask"]
        if distilbert
        else ["input_ids", "token_type_ids", "attention_mask"],
    )
    return tok


def plain_words(vocab: dict[str, int]) -> list[str]:
    """Whole lowercase ASCII words of the reduced vocabulary (one WordPiece token each)."""
    return [
        t
        for t, i in sorted(vocab.items(), key=lambda kv: kv[1])
        if 1996 <= i < N_BASE_TOKENS and t.isascii() and t.isalpha() and t.islower()
    ]


def word_text(words: list[str], n_tokens: int, seed: int) -> str:
    """``n_tokens`` one-token words (a full stop every 10-20 words, also one token), deterministic."""
    rng = np.random.default_rng(seed)
    out: list[str] = []
    count = 0
    next_stop = int(rng.integers(10, 21))
    while count < n_tokens:
        out.append(words[int(rng.integers(len(words)))])
        count += 1
        next_stop -= 1
        if next_stop == 0 and count < n_tokens:
            out[-1] += "."
            count += 1
            next_stop = int(rng.integers(10, 21))
    return " ".join(out)


def make_texts(words: list[str]) -> list[str]:
    sentence = "the quick brown fox jumps over the lazy dog near the river bank."
    used = set(sentence.rstrip(".").split())
    tail_words = [w for w in words if w not in used]
    rng = np.random.default_rng(SEED_TEXTS)
    tail = [tail_words[int(i)] for i in rng.choice(len(tail_words), size=60, replace=False)]
    long_text = " ".join([sentence] * 45 + tail)  # 45 * 13 = 585 tokens, then 60 new words: > 512
    return [
        "",
        "What's the weather in NY now?! (Really...) -- 42% & #1",
        "the the the cat",
        "Café NAÏVE Résumé ÉCOLE über Ünïcödé",
        "paris is the [MASK] of france",
        long_text,
        "東京 and 北京 🚀 emoji",
    ]


def load_mlm(folder: Path) -> torch.nn.Module:
    """The MLM of ``folder`` from its files, in eval mode; every weight of the file must be used, none missing."""
    model, info = AutoModelForMaskedLM.from_pretrained(str(folder), dtype=torch.float32, output_loading_info=True)
    bad = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    if bad:
        raise SystemExit(f"{folder}: transformers did not load every weight: {bad}")
    return model.eval()


def calibration_shift(model: torch.nn.Module, tok: PreTrainedTokenizerFast, calib: list[str]) -> float:
    """The float32 value to subtract from the output bias so that only POSITIVE_LOGITS of the logits on ``calib``
    are positive.

    ``tok`` is a throw-away copy: calling it with truncation/padding would leave those settings in the
    tokenizer.json it saves.
    """
    with torch.no_grad():
        enc = tok(calib, padding=True, truncation=True, max_length=MAX_POS, return_tensors="pt")
        logits = model(**enc).logits[enc["attention_mask"].bool()].flatten()
        step = max(1, logits.numel() // 2_000_000)
        thresh = torch.quantile(logits[::step], 1.0 - POSITIVE_LOGITS)
    return float(np.float32(thresh.item()))


def build_mlm(folder: Path, tok_data: dict[str, Any], *, kind: str, seed: int, calib: list[str]) -> dict[str, Any]:
    """A tiny BertForMaskedLM / DistilBertForMaskedLM folder with the numpy writer's weights.

    config.json and the tokenizer files are written by transformers; model.safetensors is
    ``tests/checkpoints.py:write_family_weights`` (seeded numpy), with the output bias shifted so that only
    POSITIVE_LOGITS of the logits on ``calib`` are positive: a forward pass of the unshifted weights gives the
    shift, which is recorded (float32, as float.hex) so the tests rewrite the very same bytes. Returns that record:
    kind, vocab_size, seed, bias_shift, sha256.
    """
    distil = kind == "distilbert"
    tok = make_tokenizer(tok_data, distilbert=distil)
    model: torch.nn.Module
    if distil:
        dconfig = DistilBertConfig(
            vocab_size=len(tok),
            dim=MLM["hidden"],
            n_layers=MLM["layers"],
            n_heads=MLM["heads"],
            hidden_dim=MLM["intermediate"],
            max_position_embeddings=MAX_POS,
            initializer_range=checkpoints.FAMILY_INIT_STD,
            pad_token_id=tok.pad_token_id,
        )
        dconfig.architectures = ["DistilBertForMaskedLM"]
        model = DistilBertForMaskedLM(dconfig)
    else:
        config = BertConfig(
            vocab_size=len(tok),
            hidden_size=MLM["hidden"],
            num_hidden_layers=MLM["layers"],
            num_attention_heads=MLM["heads"],
            intermediate_size=MLM["intermediate"],
            max_position_embeddings=MAX_POS,
            type_vocab_size=MLM["type_vocab_size"],
            initializer_range=checkpoints.FAMILY_INIT_STD,
            pad_token_id=tok.pad_token_id,
        )
        config.architectures = ["BertForMaskedLM"]
        model = BertForMaskedLM(config)
    model.save_pretrained(str(folder))  # config.json as transformers writes it; the weights are replaced below
    tok.save_pretrained(str(folder))
    weights = folder / "model.safetensors"
    spec: dict[str, Any] = {"kind": kind, "vocab_size": len(tok), "seed": seed, "bias_shift": (0.0).hex()}
    checkpoints.write_family_weights(weights, spec=spec)
    shift = calibration_shift(load_mlm(folder), make_tokenizer(tok_data, distilbert=distil), calib)
    spec["bias_shift"] = shift.hex()
    checkpoints.write_family_weights(weights, spec=spec)
    spec["sha256"] = sha256(weights)
    assert float.fromhex(spec["bias_shift"]) == shift == np.float32(shift)
    shifted = load_mlm(folder)
    with torch.no_grad():
        enc = make_tokenizer(tok_data, distilbert=distil)(
            calib, padding=True, truncation=True, max_length=MAX_POS, return_tensors="pt"
        )
        logits = shifted(**enc).logits[enc["attention_mask"].bool()]
    log.info(
        "%s (%s, seed %d): bias shift %r, %.3f%% of the calibration logits positive",
        folder.name,
        kind,
        seed,
        shift,
        100 * float((logits > 0).float().mean()),
    )
    return spec


def table_spec(kind: str, dim: int, seed: int | None, work: Path) -> dict[str, Any]:
    """The record of a SparseStaticEmbedding weight file (the seeded table or the table of ones), with its sha256."""
    spec: dict[str, Any] = {"kind": kind, "vocab_size": dim}
    if seed is not None:
        spec["seed"] = seed
    path = work / f"{kind}.safetensors"
    checkpoints.write_family_weights(path, spec=spec)
    spec["sha256"] = sha256(path)
    return spec


def same_tensors(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]) for k in a)


def idf_entries(vocab: dict[str, int], table: np.ndarray, seed: int) -> dict[str, float]:
    """{token: weight} for ~90% of the vocabulary (absent tokens weigh 0); special tokens always listed."""
    rng = np.random.default_rng(seed)
    drop = rng.random(len(vocab)) < 0.1
    by_id = sorted(vocab.items(), key=lambda kv: kv[1])
    return {t: float(table[i]) for t, i in by_id if not drop[i] or t.startswith("[")}


# ----------------------------------------------------------------------------------------------
# references
# ----------------------------------------------------------------------------------------------


def st_encode(model: SparseEncoder, texts: list[str]) -> dict[str, Any]:
    """encode_query / encode_document, one text per call, plus the number of tokens each side saw."""
    out: dict[str, Any] = {"queries": [], "documents": [], "query_n_tokens": [], "document_n_tokens": []}
    for text in texts:
        q = model.encode_query([text], batch_size=1, convert_to_tensor=True, convert_to_sparse_tensor=False)
        d = model.encode_document([text], batch_size=1, convert_to_tensor=True, convert_to_sparse_tensor=False)
        out["queries"].append(sparse(q[0]))
        out["documents"].append(sparse(d[0]))
        for side in ("query", "document"):
            prompt = model.prompts.get(side) or None
            feats = model.preprocess([text], task=side, prompt=prompt)
            out[f"{side}_n_tokens"].append(int(feats["attention_mask"].sum()))
    return out


class MLMSide:
    """One network side from its files on disk, with transformers only: logits -> SpladePooling math."""

    def __init__(self, folder: Path, max_length: int, pooling: str, activation: str, prompt: str = "") -> None:
        self.model = load_mlm(folder)
        self.tok = AutoTokenizer.from_pretrained(str(folder))
        self.max_length, self.pooling, self.activation, self.prompt = max_length, pooling, activation, prompt
        self.n_special = len(self.tok("", add_special_tokens=True)["input_ids"])
        probe = "the cat, the dog"
        plain = self.tok(probe, add_special_tokens=False)["input_ids"]
        assert self.n_special == 2 and self.tok(probe)["input_ids"] == self.wrap(plain), folder

    @torch.no_grad()
    def pool(self, ids: list[int]) -> np.ndarray:
        input_ids = torch.tensor([ids], dtype=torch.long)
        logits = self.model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids)).logits[0]
        x = torch.log1p(torch.relu(logits))
        if self.activation == "log1p_relu":
            x = torch.log1p(x)
        elif self.activation != "relu":
            raise ValueError(self.activation)
        pooled = x.max(dim=0).values if self.pooling == "max" else x.sum(dim=0)
        return pooled.numpy()

    def encode(self, text: str) -> np.ndarray:
        enc = self.tok(self.prompt + text, truncation=True, max_length=self.max_length)
        return self.pool(enc["input_ids"])

    def wrap(self, window: list[int]) -> list[int]:
        """One sequence with its special tokens, as the post-processor adds them (checked in __init__)."""
        return [self.tok.cls_token_id, *window, self.tok.sep_token_id]

    def windows(self, text: str, max_length: int, stride: int) -> dict[str, Any]:
        """The windowed reference: content split into overlapping windows, vectors merged by max."""
        content = self.tok(self.prompt + text, add_special_tokens=False)["input_ids"]
        inner = max_length - self.n_special
        step = inner - stride
        assert step > 0
        starts: list[int] = []
        i = 0
        while True:
            starts.append(i)
            if i + inner >= len(content):
                break
            i += step
        merged = np.max([self.pool(self.wrap(content[s : s + inner])) for s in starts], axis=0)
        return {
            "max_length": max_length,
            "stride": stride,
            "text": text,
            "prompt": self.prompt,
            "n_content_tokens": len(content),
            "n_windows": len(starts),
            "window_starts": starts,
            "vector": sparse(merged),
        }


# ----------------------------------------------------------------------------------------------
# the families
# ----------------------------------------------------------------------------------------------


class Builder:
    """Builds every family under ``stage`` (a tree shaped like the repository: stage/tests/fixtures/families).

    The weight files there are always the numpy writer's (``adopt_weights``); main() publishes every other file.
    """

    def __init__(self, tiny_dir: Path, work: Path, stage: Path) -> None:
        self.work = work
        self.stage = stage
        self.families = stage / FAMILIES_REL
        self.tok_data = reduced_tokenizer_json(tiny_dir / "tokenizer.json")
        self.vocab: dict[str, int] = self.tok_data["model"]["vocab"]
        self.dim = len(self.vocab)
        self.words = plain_words(self.vocab)
        self.texts = make_texts(self.words)
        self.window_text = word_text(self.words, 2000, SEED_TEXTS + 1)
        calib = [t for t in self.texts if t] + [self.window_text[:2000]]
        self.base = work / "base_bert"
        specs = {"base_bert": build_mlm(self.base, self.tok_data, kind="bert", seed=SEED_BERT, calib=calib)}
        self.table = checkpoints.family_static_table(vocab_size=self.dim, seed=SEED_TABLES)
        self.idf = idf_entries(self.vocab, self.table, SEED_TABLES + 1)
        self.golden: dict[str, Any] = {}
        # two-tower sources (also reused by st_two_tower)
        self.tt_query = work / "tt_query_bert"
        self.tt_doc = work / "tt_doc_distilbert"
        specs["tt_query_bert"] = build_mlm(self.tt_query, self.tok_data, kind="bert", seed=SEED_QUERY_BERT, calib=calib)
        specs["tt_doc_distilbert"] = build_mlm(
            self.tt_doc, self.tok_data, kind="distilbert", seed=SEED_DOC_DISTILBERT, calib=calib
        )
        specs["static_table"] = table_spec("static_table", self.dim, SEED_TABLES, work)
        specs["ones_table"] = table_spec("ones_table", self.dim, None, work)
        #: every weight file a fixture may hold: its record and its tensors
        self.sources = {name: (spec, checkpoints.family_tensors(spec=spec)) for name, spec in specs.items()}
        assert np.array_equal(self.sources["static_table"][1]["weight"], self.table)

    # -- plumbing ------------------------------------------------------------------------------

    def fresh(self, name: str) -> Path:
        path = self.families / name
        if path.exists():
            shutil.rmtree(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def rel(self, path: Path) -> str:
        return path.relative_to(self.stage).as_posix()

    def identify(self, path: Path) -> str:
        """The source (``self.sources``) whose tensors a weight file holds, exactly."""
        saved = load_file(str(path))
        names = [name for name, (_, tensors) in self.sources.items() if same_tensors(saved, tensors)]
        if len(names) != 1:
            raise AssertionError(f"{self.rel(path)}: its tensors match {names or 'no source'}")
        return names[0]

    def adopt_weights(self, path: Path, transient: tuple[str, ...] = ()) -> None:
        """Replace every weight file under ``path`` (as ST saved it, or a copy) by the numpy writer's file of the
        very same tensors, so every reference is computed from the bytes the tests regenerate.

        ``transient``: files (relative to ``path``) left as ST wrote them because the family removes them before
        any reference is computed (``weight_records`` refuses any such file still there at the end).
        """
        for f in sorted(path.rglob("*.safetensors")):
            assert f.name == "model.safetensors", f
            if f.relative_to(path).as_posix() in transient:
                continue
            name = self.identify(f)
            spec = self.sources[name][0]
            same_bytes = sha256(f) == spec["sha256"]
            checkpoints.write_family_weights(f, spec=spec)
            assert sha256(f) == spec["sha256"], f
            log.debug("%s: %s (%s)", self.rel(f), name, "same bytes" if same_bytes else "rewritten")

    def weight_records(self) -> dict[str, dict[str, Any]]:
        """{path below tests/fixtures/families: record} for every weight file of the fixtures."""
        out = {}
        for f in sorted(self.families.rglob("*.safetensors")):
            spec = self.sources[self.identify(f)][0]
            assert sha256(f) == spec["sha256"], f"{self.rel(f)} is not the numpy writer's file"
            out[f.relative_to(self.families).as_posix()] = dict(spec)
        return out

    def save_st(
        self,
        name: str,
        modules: Callable[[], list[torch.nn.Module]],
        *,
        transient: tuple[str, ...] = (),
        **kwargs: Any,
    ) -> tuple[Path, dict[str, Any]]:
        """Build the model with ST, save it, put the numpy writer's weight files in its place, reload it from disk,
        and encode with the reloaded copy."""
        path = self.fresh(name)
        torch.manual_seed(SEED_BERT)
        model = SparseEncoder(modules=modules(), similarity_fn_name="dot", **kwargs)
        model.save_pretrained(str(path))
        strip_model_card(path)
        self.adopt_weights(path, transient)
        in_memory = st_encode(model, self.texts)
        reloaded = SparseEncoder(str(path), local_files_only=True)
        res = st_encode(reloaded, self.texts)
        for side in ("queries", "documents"):
            compare(res[side], in_memory[side], f"{name} reloaded vs in-memory {side}", 1e-6)
        return path, res

    def record(
        self,
        name: str,
        folder: Any,
        res: dict[str, Any],
        *,
        query_side: str,
        query_max_length: int,
        document_max_length: int,
        pooling: str,
        activation: str,
        prompts: dict[str, str] | None = None,
        layout: str = "sentence-transformers",
        doc_side: MLMSide | None = None,
        query_mlm: MLMSide | None = None,
        notes: str = "",
    ) -> None:
        """Cross-check the document (and network query) side with transformers, then store the family."""
        prompts = prompts or {"query": "", "document": ""}
        if doc_side is not None:
            mine = [sparse(doc_side.encode(t)) for t in self.texts]
            err = compare(res["documents"], mine, f"{name} documents ST vs transformers", 1e-5)
            log.info("%s: documents match transformers (max |diff| %.2g)", name, err)
        if query_mlm is not None:
            mine = [sparse(query_mlm.encode(t)) for t in self.texts]
            err = compare(res["queries"], mine, f"{name} queries ST vs transformers", 1e-5)
            log.info("%s: queries match transformers (max |diff| %.2g)", name, err)
        entry: dict[str, Any] = {
            "folder": folder,
            "layout": layout,
            "query_side": query_side,
            "document_side": "mlm",
            "dim": self.dim,
            "query_max_length": query_max_length,
            "document_max_length": document_max_length,
            "pooling": pooling,
            "activation": activation,
            "prompts": prompts,
        }
        if notes:
            entry["notes"] = notes
        entry["texts"] = self.texts
        entry.update(res)
        if doc_side is not None:
            entry["windows"] = doc_side.windows(self.window_text, doc_side.max_length, STRIDE)
            # a text shorter than one window: the windowed vector is the plain document vector
            short = doc_side.windows(self.texts[2], doc_side.max_length, STRIDE)
            assert short["n_windows"] == 1
            compare([short["vector"]], [res["documents"][2]], f"{name} one-window vs encode_document", 1e-5)
        self.golden[name] = entry
        nnz_q = [len(v["indices"]) for v in res["queries"]]
        nnz_d = [len(v["indices"]) for v in res["documents"]]
        log.info(
            "%s: nnz queries %s documents %s windows %s",
            name,
            nnz_q,
            nnz_d,
            len(entry["windows"]["vector"]["indices"]) if "windows" in entry else "-",
        )

    def static_query(self, weight: np.ndarray | None) -> SparseStaticEmbedding:
        # Its own tokenizer (as in the Hub repos): model_max_length stays 512 for queries, while the
        # document MLMTransformer caps its own copy at max_position_embeddings.
        tok = AutoTokenizer.from_pretrained(str(self.base))
        w = None if weight is None else torch.from_numpy(weight.copy())
        return SparseStaticEmbedding(tokenizer=tok, weight=w, frozen=weight is not None)

    # -- 1-4: symmetric SPLADE ----------------------------------------------------------------

    def symmetric(self, name: str, pooling: str, activation: str) -> None:
        path, res = self.save_st(
            name,
            lambda: [
                MLMTransformer(str(self.base)),
                SpladePooling(pooling_strategy=pooling, activation_function=activation),
            ],
        )
        side = MLMSide(path, MAX_POS, pooling, activation)
        self.record(
            name,
            self.rel(path),
            res,
            query_side="mlm",
            query_max_length=MAX_POS,
            document_max_length=MAX_POS,
            pooling=pooling,
            activation=activation,
            doc_side=side,
            query_mlm=side,
        )

    # -- 5: prompts + max_seq_length 16 -------------------------------------------------------

    def prompts(self) -> None:
        name = "st_prompts"
        prompts = {"query": "query: ", "document": "passage: "}

        def modules() -> list[torch.nn.Module]:
            t = Transformer(str(self.base), transformer_task="fill-mask", max_seq_length=PROMPT_MAX_SEQ_LENGTH)
            return [t, SpladePooling(pooling_strategy="max", activation_function="relu")]

        path, res = self.save_st(name, modules, prompts=prompts)
        doc = MLMSide(path, PROMPT_MAX_SEQ_LENGTH, "max", "relu", prompt=prompts["document"])
        query = MLMSide(path, PROMPT_MAX_SEQ_LENGTH, "max", "relu", prompt=prompts["query"])
        self.record(
            name,
            self.rel(path),
            res,
            query_side="mlm",
            query_max_length=PROMPT_MAX_SEQ_LENGTH,
            document_max_length=PROMPT_MAX_SEQ_LENGTH,
            pooling="max",
            activation="relu",
            prompts=prompts,
            doc_side=doc,
            query_mlm=query,
        )

    # -- 6 / 7: inference-free (ST 6 naming, then the Hub layout) ------------------------------

    def inference_free(self) -> None:
        name = "st_inference_free"

        def modules() -> list[torch.nn.Module]:
            router = Router.for_query_document(
                query_modules=[self.static_query(self.table)],
                document_modules=[
                    MLMTransformer(str(self.base)),
                    SpladePooling(pooling_strategy="max", activation_function="relu"),
                ],
            )
            return [router]

        path, res = self.save_st(name, modules)
        doc = MLMSide(path / "document_0_MLMTransformer", MAX_POS, "max", "relu")
        self.record(
            name,
            self.rel(path),
            res,
            query_side="static",
            query_max_length=MODEL_MAX_LENGTH,
            document_max_length=MAX_POS,
            pooling="max",
            activation="relu",
            doc_side=doc,
        )
        self.hub_layout(path, res)

    def hub_layout(self, src: Path, ref: dict[str, Any]) -> None:
        """st_inference_free rewritten the way the OpenSearch Hub repos lay it out (ST 5.x naming)."""
        name = "st_inference_free_hub"
        dst = self.fresh(name)
        shutil.copytree(src, dst)
        # the document MLM moves to the root (router module id ""), without sentence_bert_config.json,
        # with the original tokenizer files (model_max_length 512, capped to 40 = max_position_embeddings)
        mlm = dst / "document_0_MLMTransformer"
        for f in mlm.iterdir():
            if f.name != "sentence_bert_config.json":
                shutil.move(str(f), dst / f.name)
        shutil.rmtree(mlm)
        for f in ("tokenizer.json", "tokenizer_config.json"):  # as the Hub repos: no 40-token truncation block
            shutil.copy(self.base / f, dst / f)
        write_json(dst / "modules.json", [{"idx": 0, "name": "0", "path": "", "type": LEGACY_TYPES["Router"]}])
        write_json(
            dst / "router_config.json",
            {
                "types": {
                    "query_0_SparseStaticEmbedding": LEGACY_TYPES["SparseStaticEmbedding"],
                    "": LEGACY_TYPES["MLMTransformer"],
                    "document_1_SpladePooling": LEGACY_TYPES["SpladePooling"],
                },
                "structure": {"query": ["query_0_SparseStaticEmbedding"], "document": ["", "document_1_SpladePooling"]},
                "parameters": {"default_route": "document", "allow_empty_key": True},
            },
            indent=4,
        )
        write_json(
            dst / "document_1_SpladePooling" / "config.json",
            {"pooling_strategy": "max", "activation_function": "relu", "word_embedding_dimension": None},
            indent=4,
        )
        q = dst / "query_0_SparseStaticEmbedding"
        assert json.loads((q / "config.json").read_text()) == {"frozen": True}
        weights = load_file(str(q / "model.safetensors"))
        assert list(weights) == ["weight"] and weights["weight"].dtype == np.float32
        assert np.array_equal(weights["weight"], self.table)
        write_json(
            dst / "idf.json",
            {t: float(self.table[i]) for t, i in sorted(self.vocab.items(), key=lambda kv: kv[1])},
            indent=None,
        )
        self.adopt_weights(dst)
        res = st_encode(SparseEncoder(str(dst), local_files_only=True), self.texts)
        for side in ("queries", "documents"):
            compare(res[side], ref[side], f"{name} vs st_inference_free {side}", 1e-6)
        log.info("%s: %s loads the Hub layout and matches st_inference_free", name, ST)
        doc = MLMSide(dst, MAX_POS, "max", "relu")
        self.record(
            name,
            self.rel(dst),
            res,
            query_side="static",
            query_max_length=MODEL_MAX_LENGTH,
            document_max_length=MAX_POS,
            pooling="max",
            activation="relu",
            doc_side=doc,
            notes="same weights and outputs as st_inference_free; the document MLM is at the root (router id "
            '""), with no sentence_bert_config.json and the tokenizer files of a plain BERT folder '
            "(model_max_length 512, no truncation block), so its length is min(512, max_position_embeddings 40); "
            "idf.json at the root equals the query_0_SparseStaticEmbedding weight table (ST ignores it)",
        )

    # -- 8: SparseStaticEmbedding config {"path": "idf.json"} ---------------------------------

    def idf_json(self) -> None:
        name = "st_idf_json"
        idf_src = self.work / "idf.json"
        write_json(idf_src, self.idf, indent=None)

        def modules() -> list[torch.nn.Module]:
            tok = AutoTokenizer.from_pretrained(str(self.base))
            q = SparseStaticEmbedding.from_json(str(idf_src), tokenizer=tok, frozen=True)
            router = Router.for_query_document(
                query_modules=[q],
                document_modules=[
                    MLMTransformer(str(self.base)),
                    SpladePooling(pooling_strategy="max", activation_function="log1p_relu"),
                ],
            )
            return [router]

        # the saved weight table is replaced by a config that points at idf.json
        path, res = self.save_st(name, modules, transient=("query_0_SparseStaticEmbedding/model.safetensors",))
        q = path / "query_0_SparseStaticEmbedding"
        (q / "model.safetensors").unlink()
        shutil.copy(idf_src, q / "idf.json")
        write_json(q / "config.json", {"frozen": True, "path": "idf.json"}, indent=4)
        # ST resolves "path" against the current directory (then tries it as a Hub repo id)
        with chdir(q):
            res_path = st_encode(SparseEncoder(str(path.resolve()), local_files_only=True), self.texts)
        for side in ("queries", "documents"):
            compare(res_path[side], res[side], f"{name} path-config vs saved table {side}", 1e-6)
        elsewhere = self.work / "elsewhere"
        elsewhere.mkdir()
        try:
            with chdir(elsewhere):
                SparseEncoder(str(path.resolve()), local_files_only=True)
            raise AssertionError(f"{name}: ST resolved 'path' without the working directory at the module")
        except ValueError as exc:
            log.info(
                "%s: as expected, %s cannot resolve 'path' from another working directory (%s)",
                name,
                ST,
                str(exc).splitlines()[0][:100],
            )
        doc = MLMSide(path / "document_0_MLMTransformer", MAX_POS, "max", "log1p_relu")
        self.record(
            name,
            self.rel(path),
            res_path,
            query_side="static",
            query_max_length=MODEL_MAX_LENGTH,
            document_max_length=MAX_POS,
            pooling="max",
            activation="log1p_relu",
            doc_side=doc,
            notes='query_0_SparseStaticEmbedding/config.json is {"frozen": true, "path": "idf.json"} and '
            f"has no model.safetensors; {ST} opens 'path' relative to the current working directory, "
            "so these references were made with the working directory set to that module folder; "
            "tokens absent from idf.json weigh 0",
        )

    # -- 9: plain HF folder + idf.json / query_token_weights.txt -----------------------------

    def opensearch(self) -> None:
        for name, weights_file in (("opensearch_idf", "idf.json"), ("opensearch_txt", "query_token_weights.txt")):
            path = self.fresh(name)
            path.mkdir()
            for f in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
                shutil.copy(self.base / f, path / f)
            self.adopt_weights(path)
            if weights_file == "idf.json":
                write_json(path / "idf.json", self.idf, indent=None)
                table_json = path / "idf.json"
            else:
                # every vocabulary token on its own line, "token<TAB>weight", tokens absent from idf.json
                # written with weight 0 (OpenSearch gives tokens missing from this file the weight 1.0)
                lines = [f"{t}\t{self.idf.get(t, 0.0)!r}" for t, _ in sorted(self.vocab.items(), key=lambda kv: kv[1])]
                assert all(t.count("\t") == 1 and "\n" not in t for t in lines)
                (path / weights_file).write_text("\n".join(lines) + "\n", encoding="utf-8")
                table_json = self.work / "from_txt.json"
                parsed = {}
                for line in (path / weights_file).read_text(encoding="utf-8").splitlines():
                    token, weight = line.split("\t")
                    parsed[token] = float(weight)
                write_json(table_json, parsed, indent=None)
            tok = AutoTokenizer.from_pretrained(str(path))
            q = SparseStaticEmbedding.from_json(str(table_json), tokenizer=tok, frozen=True)
            router = Router.for_query_document(
                query_modules=[q],
                document_modules=[
                    MLMTransformer(str(path)),
                    SpladePooling(pooling_strategy="max", activation_function="relu"),
                ],
            )
            res = st_encode(SparseEncoder(modules=[router], similarity_fn_name="dot"), self.texts)
            # ST's own reading of a plain MLM folder (no modules.json): Transformer(fill-mask) + SpladePooling(max)
            plain = st_encode(SparseEncoder(str(path), local_files_only=True), self.texts)
            compare(plain["documents"], res["documents"], f"{name} documents vs SparseEncoder(folder)", 1e-6)
            if name == "opensearch_txt":
                for side in ("queries", "documents"):
                    compare(res[side], self.golden["opensearch_idf"][side], f"{name} vs opensearch_idf {side}", 0.0)
            doc = MLMSide(path, MAX_POS, "max", "relu")
            self.record(
                name,
                self.rel(path),
                res,
                query_side="static",
                query_max_length=MODEL_MAX_LENGTH,
                document_max_length=MAX_POS,
                pooling="max",
                activation="relu",
                layout="hf",
                doc_side=doc,
                notes=f"no sentence-transformers files; query = {weights_file} looked up per token as "
                "SparseStaticEmbedding.from_json does (no special tokens added, each token once, "
                "truncation at tokenizer_config model_max_length, absent tokens 0); document = "
                "max over tokens of log(1 + relu(logits)), special-token dimensions not zeroed",
            )

    # -- 10 / 11: two towers ------------------------------------------------------------------

    def two_tower(self) -> None:
        name = "two_tower"
        path = self.fresh(name)
        shutil.copytree(self.tt_query, path / "query")
        shutil.copytree(self.tt_doc, path / "document")
        self.adopt_weights(path)
        qside = MLMSide(path / "query", MAX_POS, "max", "relu")
        dside = MLMSide(path / "document", MAX_POS, "max", "relu")
        res: dict[str, Any] = {"queries": [], "documents": [], "query_n_tokens": [], "document_n_tokens": []}
        for text in self.texts:
            res["queries"].append(sparse(qside.encode(text)))
            res["documents"].append(sparse(dside.encode(text)))
            res["query_n_tokens"].append(len(qside.tok(text, truncation=True, max_length=MAX_POS)["input_ids"]))
            res["document_n_tokens"].append(len(dside.tok(text, truncation=True, max_length=MAX_POS)["input_ids"]))
        # ST's reading of each plain folder agrees
        for side, folder in (("queries", path / "query"), ("documents", path / "document")):
            st = st_encode(SparseEncoder(str(folder), local_files_only=True), self.texts)
            compare(st["documents"], res[side], f"{name}/{side} vs SparseEncoder(folder)", 1e-5)
        self.record(
            name,
            {"query": self.rel(path / "query"), "document": self.rel(path / "document")},
            res,
            query_side="mlm",
            query_max_length=MAX_POS,
            document_max_length=MAX_POS,
            pooling="max",
            activation="relu",
            layout="hf",
            doc_side=dside,
            notes="query: BertForMaskedLM, document: DistilBertForMaskedLM, same vocabulary; each side "
            "[CLS] text [SEP] truncated at min(model_max_length, max_position_embeddings) = 40, "
            "max over tokens of log(1 + relu(logits))",
        )

    def st_two_tower(self) -> None:
        name = "st_two_tower"

        def modules() -> list[torch.nn.Module]:
            router = Router.for_query_document(
                query_modules=[
                    MLMTransformer(str(self.tt_query)),
                    SpladePooling(pooling_strategy="max", activation_function="relu"),
                ],
                document_modules=[
                    MLMTransformer(str(self.tt_doc)),
                    SpladePooling(pooling_strategy="max", activation_function="relu"),
                ],
            )
            return [router]

        path, res = self.save_st(name, modules)
        for side in ("queries", "documents"):
            compare(res[side], self.golden["two_tower"][side], f"{name} vs two_tower {side}", 1e-5)
        self.record(
            name,
            self.rel(path),
            res,
            query_side="mlm",
            query_max_length=MAX_POS,
            document_max_length=MAX_POS,
            pooling="max",
            activation="relu",
            doc_side=MLMSide(path / "document_0_MLMTransformer", MAX_POS, "max", "relu"),
            query_mlm=MLMSide(path / "query_0_MLMTransformer", MAX_POS, "max", "relu"),
            notes="the two_tower weights inside an ST Router (outputs equal two_tower's)",
        )

    # -- 12: weight-less SparseStaticEmbedding --------------------------------------------------

    def tokens_query(self) -> None:
        name = "tokens_query"

        def modules() -> list[torch.nn.Module]:
            router = Router.for_query_document(
                query_modules=[self.static_query(None)],
                document_modules=[
                    MLMTransformer(str(self.base)),
                    SpladePooling(pooling_strategy="max", activation_function="relu"),
                ],
            )
            return [router]

        path, res = self.save_st(name, modules)
        q = path / "query_0_SparseStaticEmbedding"
        weights = load_file(str(q / "model.safetensors"))
        assert list(weights) == ["weight"] and np.all(weights["weight"] == 1.0), "ST should save a table of ones"
        # Does ST load the module without its weights file? (it does not: the table is always saved)
        probe = self.work / "tokens_query_no_weights"
        shutil.copytree(path, probe)
        (probe / "query_0_SparseStaticEmbedding" / "model.safetensors").unlink()
        try:
            SparseEncoder(str(probe), local_files_only=True)
            raise AssertionError(f"{name}: ST loaded a SparseStaticEmbedding without model.safetensors")
        except ValueError as exc:
            assert "Could not find 'model.safetensors' or 'pytorch_model.bin'" in str(exc), exc
            no_file = (
                f"Without that file {ST} refuses to load the module (ValueError: Could not find "
                "'model.safetensors' or 'pytorch_model.bin')."
            )
            log.info("%s: %s", name, no_file)
        doc = MLMSide(path / "document_0_MLMTransformer", MAX_POS, "max", "relu")
        self.record(
            name,
            self.rel(path),
            res,
            query_side="static",
            query_max_length=MODEL_MAX_LENGTH,
            document_max_length=MAX_POS,
            pooling="max",
            activation="relu",
            doc_side=doc,
            notes="SparseStaticEmbedding(weight=None) = a table of ones, which ST writes to "
            "query_0_SparseStaticEmbedding/model.safetensors like any other table (config "
            '{"frozen": false}); query vectors are a binary bag of the query\'s tokens. ' + no_file,
        )


# ----------------------------------------------------------------------------------------------
# XLM-R and splade-tiny (golden only)
# ----------------------------------------------------------------------------------------------


def xlmr_golden(work: Path) -> dict[str, Any]:
    folder = work / "xlmr"
    cfg = checkpoints.write_xlmr_checkpoint(folder, seed=XLMR_SEED)
    files = {f.name: sha256(f) for f in sorted(folder.iterdir())}
    again = work / "xlmr_again"
    checkpoints.write_xlmr_checkpoint(again, seed=XLMR_SEED)
    assert files == {f.name: sha256(f) for f in sorted(again.iterdir())}, "write_xlmr_checkpoint is not deterministic"
    shutil.rmtree(again)
    max_length = min(XLMR_MAX_LENGTH, cfg["max_position_embeddings"])
    side = MLMSide(folder, max_length, "max", "relu")
    fast = PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"))
    raw = Tokenizer.from_file(str(folder / "tokenizer.json"))
    texts = [
        "",
        "Hello world, the quick brown fox jumps over the lazy dog!",
        "the the the cat",
        "Café NAÏVE über  straße façade",
        "paris is the <mask> of france",
        " ".join(["the lunar mission cost more than the rover"] * 12),  # > 64 tokens: truncated
        "東京 and 北京 🚀 emoji",
    ]
    vectors, n_tokens = [], []
    for text in texts:
        ids = side.tok(text, truncation=True, max_length=max_length)["input_ids"]
        full = raw.encode(text).ids  # tokenizers alone, <s> ... </s>
        assert ids == (full if len(full) <= max_length else [*full[: max_length - 1], cfg["eos_token_id"]])
        assert fast(text)["input_ids"] == full
        n_tokens.append(len(ids))
        vectors.append(sparse(side.encode(text)))
    assert n_tokens[5] == max_length
    windows = side.windows(word_text_xlmr(), max_length, STRIDE)
    log.info(
        "xlmr: nnz %s windows %d (%d windows)",
        [len(v["indices"]) for v in vectors],
        len(windows["vector"]["indices"]),
        windows["n_windows"],
    )
    return {
        "writer": "tests/checkpoints.py:write_xlmr_checkpoint",
        "seed": XLMR_SEED,
        "files_sha256": files,
        "dim": cfg["vocab_size"],
        "max_length": max_length,
        "pooling": "max",
        "activation": "relu",
        "texts": texts,
        "documents": vectors,
        "document_n_tokens": n_tokens,
        "windows": windows,
    }


def word_text_xlmr() -> str:
    """About 400 tokens of words that have their own piece in the tiny XLM-R vocabulary."""
    words = [w for w in checkpoints._XLMR_WORDS if w.isascii()]
    rng = np.random.default_rng(SEED_TEXTS + 2)
    return " ".join(words[int(i)] for i in rng.integers(len(words), size=400))


def splade_tiny_windows(tiny_dir: Path, words: list[str]) -> dict[str, Any]:
    side = MLMSide(tiny_dir, TINY_MAX_LENGTH, "max", "relu")
    text = word_text(words, 2100, SEED_TEXTS + 3)
    ref = side.windows(text, TINY_MAX_LENGTH, TINY_STRIDE)
    assert 2050 <= ref["n_content_tokens"] <= 2150, ref["n_content_tokens"]
    log.info(
        "splade_tiny_windows: %d tokens, %d windows, nnz %d",
        ref["n_content_tokens"],
        ref["n_windows"],
        len(ref["vector"]["indices"]),
    )
    return {
        "model": "rasyosef/splade-tiny",
        "model_safetensors_sha256": sha256(tiny_dir / "model.safetensors"),
        "pooling": "max",
        "activation": "relu",
        **ref,
    }


# ----------------------------------------------------------------------------------------------
# self-check: static query sides re-derived with numpy + tokenizers only
# ----------------------------------------------------------------------------------------------


def static_query_numpy(folder: Path, weights: np.ndarray, texts: list[str]) -> list[dict[str, list[Any]]]:
    tk = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tk.no_truncation()
    tk.no_padding()
    cfg = json.loads((folder / "tokenizer_config.json").read_text())
    max_len = int(cfg.get("model_max_length", 10**9))
    out = []
    for text in texts:
        ids = tk.encode(text, add_special_tokens=False).ids[:max_len]
        vec = np.zeros(len(weights), dtype=np.float32)
        uniq = np.unique(np.asarray(ids, dtype=np.int64))
        vec[uniq] = weights[uniq]
        out.append(sparse(vec))
    return out


def table_from_tokens(folder: Path, entries: dict[str, float], dim: int) -> np.ndarray:
    vocab = Tokenizer.from_file(str(folder / "tokenizer.json")).get_vocab()
    table = np.zeros(dim, dtype=np.float32)
    for token, weight in entries.items():
        table[vocab[token]] = np.float32(weight)
    return table


def self_check(golden: dict[str, Any], root: Path) -> None:
    """``root``: a repository-shaped tree whose tests/fixtures/families holds the fixtures with their weights."""
    fam = golden["families"]
    checks: dict[str, tuple[Path, np.ndarray]] = {}
    for name in ("st_inference_free", "st_inference_free_hub", "tokens_query"):
        q = root / fam[name]["folder"] / "query_0_SparseStaticEmbedding"
        checks[name] = (q, load_file(str(q / "model.safetensors"))["weight"])
    q = root / fam["st_idf_json"]["folder"] / "query_0_SparseStaticEmbedding"
    entries = json.loads((q / json.loads((q / "config.json").read_text())["path"]).read_text())
    checks["st_idf_json"] = (q, table_from_tokens(q, entries, fam["st_idf_json"]["dim"]))
    f = root / fam["opensearch_idf"]["folder"]
    checks["opensearch_idf"] = (
        f,
        table_from_tokens(f, json.loads((f / "idf.json").read_text()), fam["opensearch_idf"]["dim"]),
    )
    f = root / fam["opensearch_txt"]["folder"]
    entries = {}
    for line in (f / "query_token_weights.txt").read_text(encoding="utf-8").splitlines():
        token, weight = line.split("\t")
        entries[token] = float(weight)
    checks["opensearch_txt"] = (f, table_from_tokens(f, entries, fam["opensearch_txt"]["dim"]))
    for name, (folder, table) in checks.items():
        mine = static_query_numpy(folder, table, fam[name]["texts"])
        err = compare(fam[name]["queries"], mine, f"self-check {name} queries (numpy + tokenizers)", 1e-6)
        log.info("self-check %s: static queries re-derived with numpy + tokenizers (max |diff| %.2g)", name, err)
    hub = root / fam["st_inference_free_hub"]["folder"]
    table = table_from_tokens(hub, json.loads((hub / "idf.json").read_text()), fam["st_inference_free_hub"]["dim"])
    assert np.array_equal(table, checks["st_inference_free_hub"][1]), "hub idf.json != its weight table"


# ----------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny-dir", type=Path, required=True, help="folder with rasyosef/splade-tiny's files")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    for noisy in ("sentence_transformers", "transformers", "httpx", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    tiny_dir = args.tiny_dir.resolve()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        stage = work / "stage"  # built here, then published to tests/fixtures/families without the weight files
        b = Builder(tiny_dir, work, stage)
        log.info("reduced vocabulary: %d tokens; window text %d words", b.dim, len(b.window_text.split()))
        b.symmetric("st_max_relu", "max", "relu")
        b.symmetric("st_max_log1p_relu", "max", "log1p_relu")
        b.symmetric("st_sum_relu", "sum", "relu")
        b.symmetric("st_sum_log1p_relu", "sum", "log1p_relu")
        b.prompts()
        b.inference_free()
        b.idf_json()
        b.opensearch()
        b.two_tower()
        b.st_two_tower()
        b.tokens_query()
        golden: dict[str, Any] = {
            "generated_by": {
                "script": "scripts/make_golden_families.py",
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "sentence_transformers": sentence_transformers.__version__,
                "tokenizers": tokenizers.__version__,
                "numpy": np.__version__,
            },
            "conventions": {
                "vector": "every non-zero entry, indices ascending, float32 values as floats",
                "activation": "SpladePooling names: relu = log(1 + relu(x)), log1p_relu = log(1 + log(1 + relu(x))), "
                "applied per token before pooling",
                "windows": "content = tokenizer(prompt + text, no special tokens, no truncation); L = max_length - "
                "special tokens of one sequence; windows content[i:i+L] for i = 0, L-stride, ... until i+L >= len; "
                "each run as special + window + special through the document side; merged by elementwise max",
                "n_tokens": "tokens fed to each side for the text, special and prompt tokens included",
            },
            "weights": {
                "writer": "tests/checkpoints.py:write_family_weights",
                "notes": "the fixtures' model.safetensors files are not committed: each is written from its record "
                "(numpy default_rng(seed); bias_shift, a float32 as float.hex, subtracted from the MLM output bias) "
                "and must have the recorded sha256; the references were computed from these very bytes",
                "files": b.weight_records(),
            },
            "families": b.golden,
        }
        golden["xlmr"] = xlmr_golden(work)
        golden["splade_tiny_windows"] = splade_tiny_windows(tiny_dir, b.words)

        # publish every fixture file but the weights, which the tests write from their records
        if FAMILIES_DIR.exists():
            shutil.rmtree(FAMILIES_DIR)
        shutil.copytree(b.families, FAMILIES_DIR, ignore=shutil.ignore_patterns("*.safetensors"))
        GOLDEN_PATH.write_text(json.dumps(golden, indent=0, ensure_ascii=False) + "\n", encoding="utf-8")
        # what the tests see (the published folders plus the regenerated weights) is the staged tree, file for file
        check = work / "check"
        checkpoints.family_fixtures(ROOT, dst=check / FAMILIES_REL)
        staged, regenerated = tree_digest(b.families), tree_digest(check / FAMILIES_REL)
        assert staged == regenerated, sorted(set(staged.items()) ^ set(regenerated.items()))
        log.info("the published fixtures plus the regenerated weights are the staged tree (%d files)", len(staged))
        self_check(golden, check)

    text = GOLDEN_PATH.read_text(encoding="utf-8")
    machine = [tempfile.gettempdir(), str(ROOT.parent)]  # no path of this machine may leak into committed files
    assert not any(m in text for m in machine)
    total = 0
    for f in sorted(p for p in FAMILIES_DIR.rglob("*") if p.is_file()):
        data = f.read_bytes()
        assert not any(m.encode() in data for m in machine), f
        assert not f.is_symlink() and len(data) <= 3 * 1024 * 1024, f
        assert f.suffix != ".safetensors", f
        total += len(data)
    log.info(
        "wrote %s (%d bytes) and %s (%d files, %d bytes; %d weight files to regenerate)",
        GOLDEN_PATH.relative_to(ROOT),
        len(text.encode()),
        FAMILIES_DIR.relative_to(ROOT),
        sum(1 for p in FAMILIES_DIR.rglob("*") if p.is_file()),
        total,
        len(golden["weights"]["files"]),
    )


def tree_digest(root: Path) -> dict[str, str]:
    """{path below ``root``: sha256} for every file."""
    return {p.relative_to(root).as_posix(): sha256(p) for p in sorted(root.rglob("*")) if p.is_file()}


if __name__ == "__main__":
    main()
