"""TextTokenizer's declared interface (what the encoder, the static query side and the benchmarks read) and its
split from the exact long-text pre-cut (splade_onnx._precut), on the real splade-tiny tokenizer."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from tokenizers import Tokenizer, models

from splade_onnx import ArgumentError, ArgumentTypeError, _precut
from splade_onnx._tokenize import TextTokenizer


@pytest.fixture(scope="module")
def tok(tiny_dir: Path) -> TextTokenizer:
    return TextTokenizer.from_folder(tiny_dir, max_length=None, model_limit=512)


@pytest.fixture(scope="module")
def plain(tiny_dir: Path) -> Tokenizer:
    return Tokenizer.from_file(str(tiny_dir / "tokenizer.json"))


def test_vocabulary_accessors_are_the_tokenizers(tok: TextTokenizer, plain: Tokenizer) -> None:
    assert tok.vocab() == plain.get_vocab(with_added_tokens=True) and len(tok.vocab()) == tok.vocab_size == 30522
    assert tok.token_to_id("[CLS]") == 101 and tok.token_to_id("moon") == plain.token_to_id("moon")
    assert tok.token_to_id("no-such-token-here") is None
    assert tok.unk_id == plain.token_to_id("[UNK]") == 100
    assert tok.id_to_token(101) == "[CLS]"


def test_unk_id_is_none_without_an_unknown_token() -> None:
    bpe = Tokenizer(models.BPE(vocab={"a": 0, "b": 1}, merges=[]))
    assert json.loads(bpe.to_str())["model"]["unk_token"] is None
    assert TextTokenizer(bpe, 16).unk_id is None


def test_to_str_is_the_wrapped_tokenizer_truncating_at_max_length(tok: TextTokenizer) -> None:
    ref = Tokenizer.from_str(tok.to_str())
    assert ref.truncation is not None and ref.truncation["max_length"] == tok.max_length == 512
    assert ref.padding is None
    text = "the moon landing " * 400
    assert tok.encode([text]) == [ref.encode(text).ids]


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (1, ArgumentError, "max_length must be an int in [2, 512] for this model, got 1"),
        (513, ArgumentError, "max_length must be an int in [2, 512] for this model, got 513"),
        (True, ArgumentTypeError, "max_length must be an int in [2, 512] for this model, got bool True"),
        ("64", ArgumentTypeError, "max_length must be an int in [2, 512] for this model, got str '64'"),
    ],
)
def test_check_max_length(tok: TextTokenizer, value: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        tok.check_max_length(value)


def test_check_max_length_returns_an_allowed_length(tok: TextTokenizer) -> None:
    assert tok.check_max_length(2) == 2 and tok.check_max_length(512) == 512


def test_the_wrapper_pre_cuts_with_the_precut_interface(tok: TextTokenizer, plain: Tokenizer) -> None:
    """The quick prefix and the long-text ids are _precut's; the pre-cut constants live there only."""
    cuts = _precut.WordCuts.of(plain)
    assert cuts is not None and cuts.max_chars == 100
    text = "moon " * 5000
    limit = 64 * _precut.CHARS_PER_TOKEN
    assert tok._precut(text, 64) == _precut.prefix(text, limit, cuts) == text[: limit - limit % 5]  # after a space
    assert _precut.prefix("short", limit, None) == "short"
    assert _precut.prefix("x" * (limit + 10), limit, None) == ""  # no whitespace: nothing is known to end a word
    plain.enable_truncation(64)
    word = "y" * 100_000 + " moon"
    assert _precut.encode_long(plain, word, 64, True, cuts) == plain.encode(word).ids  # [CLS] [UNK] moon [SEP]
    words = "word " * 60_000
    assert _precut.encode_long(plain, words, 64, True, None) == plain.encode(words).ids  # the checked fallback
