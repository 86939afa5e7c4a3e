"""Behaviour of SpladeEncoder on the real splade-tiny: batching, streaming, bad input, decode."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from splade_onnx import ArgumentTypeError, SparseEmbedding, SpladeEncoder
from splade_onnx._batching import plan_batches

from conftest import golden
from texts import DEMO_QUERIES, LONG_TEXT, PARITY_TEXTS, SEED_DOCUMENTS


def test_batched_equals_one_by_one(tiny: SpladeEncoder) -> None:
    batched = tiny.encode_documents(PARITY_TEXTS, batch_size=7)
    for text, b in zip(PARITY_TEXTS, batched):
        (single,) = tiny.encode_documents([text])
        assert np.array_equal(single.indices, b.indices)
        np.testing.assert_allclose(single.values, b.values, atol=1e-5, rtol=0)


def test_embed_streams_a_generator_in_order(tiny: SpladeEncoder) -> None:
    texts = [f"{d} ({i})" for i, d in enumerate(SEED_DOCUMENTS * 3)]
    listed = tiny.encode_documents(texts)
    streamed = tiny.embed(t for t in texts)
    assert not isinstance(streamed, list)
    got = list(streamed)
    assert len(got) == len(texts)
    for a, b in zip(listed, got):
        assert np.array_equal(a.indices, b.indices)
        np.testing.assert_allclose(a.values, b.values, atol=1e-5, rtol=0)


def test_token_budget_batching_keeps_every_position() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 600, size=500).tolist()
    batches = plan_batches(lengths, token_budget=2048, max_batch=64)
    assert sorted(i for b in batches for i in b) == list(range(500))
    for b in batches:
        assert len(b) <= 64
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 2048


def test_output_types(tiny: SpladeEncoder) -> None:
    (e,) = tiny.encode_queries(["moon landing"])
    assert isinstance(e, SparseEmbedding)
    assert e.values.dtype == np.float32 and e.indices.dtype == np.int64
    assert np.all(np.diff(e.indices) > 0) and np.all(e.values > 0)


def test_queries_use_the_same_side_as_documents_for_standard_splade(tiny: SpladeEncoder) -> None:
    assert tiny.encode_queries(DEMO_QUERIES) == tiny.encode_documents(DEMO_QUERIES)


def test_decode_is_weight_descending_and_expands(tiny: SpladeEncoder) -> None:
    (e,) = tiny.encode_documents(["The lunar mission landed near the south pole."])
    terms = tiny.decode(e)
    assert len(terms) == len(e)
    weights = [w for _, w in terms]
    assert weights == sorted(weights, reverse=True)
    assert dict(terms)["lunar"] > 1.0
    assert "moon" in dict(terms) or "moons" in dict(terms)  # learned expansion
    assert tiny.decode(e, top_k=3) == terms[:3]


def test_explain_sums_to_the_score(tiny: SpladeEncoder) -> None:
    q, d = tiny.encode_documents(["moon rover", SEED_DOCUMENTS[1]])
    parts = tiny.explain(q, d)
    assert parts and abs(sum(c for _, c in parts) - q.dot(d)) < 1e-4
    assert parts[0][0] in {"rover", "moon"}


def test_truncates_at_max_length(tiny: SpladeEncoder) -> None:
    assert tiny.max_length == 512
    assert tiny.token_count([LONG_TEXT]) == 512
    ref = golden("splade_tiny.json")["vectors"][PARITY_TEXTS.index(LONG_TEXT)]
    assert ref["n_tokens"] == 512


def test_max_length_option(tiny_dir, cache_dir) -> None:  # type: ignore[no-untyped-def]
    short = SpladeEncoder.from_pretrained(tiny_dir, cache_dir=cache_dir, max_length=16)
    assert short.max_length == 16 and short.token_count([LONG_TEXT]) == 16
    with pytest.raises(ValueError, match=re.escape("max_length=4096 exceeds the model's limit of 512 positions")):
        SpladeEncoder.from_pretrained(tiny_dir, cache_dir=cache_dir, max_length=4096)
    with pytest.raises(ValueError, match=re.escape("max_length must be an int >= 2, got 0")):
        SpladeEncoder.from_pretrained(tiny_dir, cache_dir=cache_dir, max_length=0)


def test_huge_text_is_pre_cut_to_the_same_tokens(tiny: SpladeEncoder) -> None:
    tok = tiny.loaded.document.tokenizer
    huge = ("word " * 50 + "\n") * 4000  # about 1 MB
    assert len(huge) > 1_000_000
    cut = tok._precut(huge)
    assert len(cut) <= tok.max_length * 12  # only a small prefix is ever tokenized
    assert tok.encode([huge]) == [tok._tok.encode(huge).ids]  # identical to tokenizing everything
    # Texts without whitespace, or with whitespace only, are tokenized in bounded pieces, with the same ids
    # (tests/test_inputs.py checks the bound).
    for odd in ("x" * 300_000, " " * 300_000, "a" + " " * 200_000 + "b c d", "." * 300_000):
        assert tok.encode([odd]) == [tok._tok.encode(odd).ids]
    (e,) = tiny.encode_documents([huge])
    assert len(e) > 0


def test_empty_input_gives_empty_list(tiny: SpladeEncoder) -> None:
    assert tiny.encode_documents([]) == []
    assert list(tiny.embed(iter([]))) == []


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (["ok", None], "text at position 1 is NoneType, not str; convert or drop it before encoding"),
        (["a", "b", 3], "text at position 2 is int, not str"),
        ("just one string", "texts must be an iterable of str, got a single str; wrap it: [text]"),
        (None, "texts must be an iterable of str, got NoneType"),
    ],
)
def test_bad_items_name_their_position(tiny: SpladeEncoder, texts: object, message: str) -> None:
    with pytest.raises(TypeError, match=re.escape(message)):
        tiny.encode_documents(texts)  # type: ignore[arg-type]


def test_bad_options(tiny: SpladeEncoder) -> None:
    with pytest.raises(ValueError, match=re.escape("batch_size must be a positive int or None, got 0")):
        tiny.encode_documents(["x"], batch_size=0)
    with pytest.raises(ValueError, match=re.escape("parallel must be None, 0 (one worker per core)")):
        list(tiny.embed(["x"], parallel=-1))
    with pytest.raises(TypeError):
        tiny.encode_documents(["x"], bogus=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="decode takes a SparseEmbedding"):
        tiny.decode({1: 2.0})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=re.escape("index 99999 is outside this model's vocabulary of 30522")):
        tiny.decode(SparseEmbedding(values=[1.0], indices=[99999]))


def test_from_pretrained_lists_its_options_for_an_unknown_one(tmp_path: Path) -> None:
    with pytest.raises(ArgumentTypeError, match=re.escape("got unexpected option(s) 'colour'")) as err:
        SpladeEncoder.from_pretrained("rasyosef/splade-tiny", colour="red", cache_dir=tmp_path)  # type: ignore[call-arg]
    assert "max_length" in str(err.value) and "quantize" in str(err.value)
    assert not (tmp_path / "onnx").exists()  # refused before anything was resolved or built
