"""Every model family against its reference library, on both sides (golden files from scripts/make_golden_families.py).

The fixtures under ``tests/fixtures/families/`` are seeded random models in their real on-disk
layouts, written by sentence-transformers 6.x itself where a sentence-transformers layout is involved.
Their weight files are not committed: the ``families`` fixture (conftest.py) writes each one from its
seed with numpy, byte for byte (sha256-checked) as the oracle used it.
The references are ``SparseEncoder.encode_query`` / ``encode_document`` (or transformers for plain
checkpoints), computed once in the oracle venv; no test needs torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from splade_onnx import SparseEmbedding, SpladeEncoder

from conftest import FAMILIES_REL, ROOT, family_folder, golden

GOLDEN = golden("families.json")
FAMILIES: dict[str, dict[str, Any]] = GOLDEN["families"]
TOL = 1e-4


def load(family: str, families: Path, cache_dir: Path) -> SpladeEncoder:
    folder = FAMILIES[family]["folder"]
    if isinstance(folder, Mapping):
        return SpladeEncoder.from_pretrained(
            document=family_folder(families, folder["document"]),
            query=family_folder(families, folder["query"]),
            cache_dir=cache_dir,
        )
    return SpladeEncoder.from_pretrained(family_folder(families, folder), cache_dir=cache_dir)


def assert_same(got: SparseEmbedding, ref: Mapping[str, list[Any]], what: str) -> None:
    ref_idx = np.asarray(ref["indices"], dtype=np.int64)
    ref_val = np.asarray(ref["values"], dtype=np.float32)
    keep = ref_val != 0
    ref_idx, ref_val = ref_idx[keep], ref_val[keep]
    assert got.indices.tolist() == ref_idx.tolist(), f"{what}: index sets differ"
    if ref_val.size:
        diff = float(np.max(np.abs(got.values - ref_val)))
        assert diff <= TOL, f"{what}: max |diff| {diff:.2e} > {TOL}"


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def family(request: pytest.FixtureRequest, families: Path, cache_dir: Path) -> tuple[str, SpladeEncoder]:
    return request.param, load(request.param, families, cache_dir)


def test_queries_match_the_reference(family: tuple[str, SpladeEncoder]) -> None:
    name, enc = family
    ref = FAMILIES[name]
    expected = "static" if ref["query_side"] == "static" else "two-tower" if "two_tower" in name else "same"
    assert enc.query_mode == expected
    got = enc.encode_queries(ref["texts"])
    for i, (g, r) in enumerate(zip(got, ref["queries"], strict=True)):
        assert_same(g, r, f"{name} query {i}")


def test_documents_match_the_reference(family: tuple[str, SpladeEncoder]) -> None:
    name, enc = family
    ref = FAMILIES[name]
    got = enc.encode_documents(ref["texts"])
    for i, (g, r) in enumerate(zip(got, ref["documents"], strict=True)):
        assert_same(g, r, f"{name} document {i}")


def test_windows_match_the_reference_computed_window_by_window(family: tuple[str, SpladeEncoder]) -> None:
    name, enc = family
    w = FAMILIES[name].get("windows")
    if w is None:
        pytest.skip(f"{name} has no windowed reference (sum pooling: windows are refused)")
    assert w["n_content_tokens"] >= 4 * w["max_length"] and w["n_windows"] > 4
    (got,) = enc.encode_documents([w["text"]], long_documents="windows", max_length=w["max_length"], stride=w["stride"])
    assert_same(got, w["vector"], f"{name} windows")
    (cut,) = enc.encode_documents([w["text"]], max_length=w["max_length"])
    assert len(cut) < len(got)


def test_splade_tiny_windows_on_a_text_four_times_its_length(tiny: SpladeEncoder) -> None:
    w = GOLDEN["splade_tiny_windows"]
    assert w["n_content_tokens"] >= 4 * tiny.max_length
    (got,) = tiny.encode_documents([w["text"]], long_documents="windows", stride=w["stride"])
    assert_same(got, w["vector"], "splade-tiny windows")


def test_weight_files_are_regenerated_byte_for_byte_or_refused(families: Path, tmp_path: Path) -> None:
    """Every weight file comes from its seed (numpy only) with the oracle's sha256; a record that does not
    reproduce the oracle's bytes (here a bias shift one float32 step off) stops the tests with a clear message."""
    import hashlib

    from checkpoints import materialize_families

    files: dict[str, dict[str, Any]] = GOLDEN["weights"]["files"]
    assert sorted(p.relative_to(families).as_posix() for p in families.rglob("*.safetensors")) == sorted(files)
    for rel, spec in files.items():
        assert hashlib.sha256((families / rel).read_bytes()).hexdigest() == spec["sha256"], rel
    rel = "st_max_relu/model.safetensors"
    shift = np.float32(float.fromhex(files[rel]["bias_shift"]))
    off = {rel: {**files[rel], "bias_shift": float(np.nextafter(shift, np.float32(np.inf))).hex()}}
    message = rf"{rel}: sha256 [0-9a-f]{{64}}, the oracle recorded {files[rel]['sha256']}"
    with pytest.raises(AssertionError, match=message):
        materialize_families(ROOT / FAMILIES_REL, dst=tmp_path / "families", files=off)


@pytest.fixture(scope="module")
def xlmr(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> SpladeEncoder:
    """The 250,002-token XLM-R checkpoint, regenerated byte for byte from its seed (too big to commit)."""
    import hashlib

    from checkpoints import write_xlmr_checkpoint

    folder = tmp_path_factory.mktemp("xlmr")
    write_xlmr_checkpoint(folder, seed=GOLDEN["xlmr"]["seed"])
    for name, digest in GOLDEN["xlmr"]["files_sha256"].items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, f"{name} is not the oracle's"
    return SpladeEncoder.from_pretrained(folder, cache_dir=cache_dir)


def test_xlmr_250k_vocabulary_matches_transformers(xlmr: SpladeEncoder) -> None:
    ref = GOLDEN["xlmr"]
    assert xlmr.vocab_size == ref["dim"] == 250_002 and xlmr.max_length == ref["max_length"]
    for i, (g, r) in enumerate(zip(xlmr.encode_documents(ref["texts"]), ref["documents"], strict=True)):
        assert_same(g, r, f"xlmr document {i}")
    w = ref["windows"]
    (got,) = xlmr.encode_documents([w["text"]], long_documents="windows", stride=w["stride"])
    assert_same(got, w["vector"], "xlmr windows")


def test_xlmr_projection_stays_in_bounded_slices(xlmr: SpladeEncoder, cache_dir: Path) -> None:
    """At 250k tokens the vocabulary projection is cut into slices, so no [tokens, vocab] logits tensor exists:
    each slice's logits for a full token budget stay within the chunk bound (16 MiB)."""
    import onnx

    from splade_onnx._batching import CHUNK_BYTES, TOKEN_BUDGET

    dense = SpladeEncoder.from_pretrained(
        xlmr.loaded.recipes.get("document").folder, cache_dir=cache_dir, projection="dense"
    )  # type: ignore[union-attr]
    graph = onnx.load(str(dense.loaded.recipes.get("document").graph))  # type: ignore[union-attr]
    slices = [t for t in graph.graph.initializer if t.name.startswith("decoder.weight.")]
    assert len(slices) > 100 and sum(t.dims[1] for t in slices) == 250_002
    assert max(TOKEN_BUDGET * t.dims[1] * 4 for t in slices) <= CHUNK_BYTES * 1.01
    whole = sorted(t.name.rsplit("_", 1)[0] for t in graph.graph.initializer if 250_002 in t.dims)
    assert whole == ["decoder.bias", "word_embeddings"]  # the bias vector and the input table, never the projection


def test_query_token_weights_txt_gives_missing_tokens_weight_one(
    tmp_path: Path, families: Path, cache_dir: Path
) -> None:
    """OpenSearch's rule for query_token_weights.txt: a token the file does not list weighs 1 (idf.json: 0)."""
    import shutil

    src = family_folder(families, FAMILIES["opensearch_txt"]["folder"])
    folder = tmp_path / "txt"
    shutil.copytree(src, folder)
    (folder / "query_token_weights.txt").write_text("moon\t2.5\n\nthe\t0\n", encoding="utf-8")
    enc = SpladeEncoder.from_pretrained(folder, cache_dir=cache_dir)
    (q,) = enc.encode_queries(["the moon landing"])
    weights = dict(enc.decode(q))
    assert weights == {"moon": 2.5, "landing": 1.0}
    (folder / "query_token_weights.txt").write_text("moon 2.5\n", encoding="utf-8")
    from splade_onnx import ModelError

    with pytest.raises(ModelError, match=r"query_token_weights.txt:1: expected 'token<TAB>weight', got 'moon 2.5'"):
        SpladeEncoder.from_pretrained(folder, cache_dir=cache_dir)
