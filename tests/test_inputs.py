"""Hostile inputs: huge texts with no whitespace, lone surrogates, wrong types, bad options.

Huge texts must cost bounded memory and still give exactly the ids of tokenizing the whole
text and truncating.  Boundedness is checked deterministically: a stand-in tokenizer records
the longest string any of its parts is handed (the RSS itself is measured by benchmarks/inputs.py).
"""

from __future__ import annotations

import base64
import itertools
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tokenizers import Tokenizer, pre_tokenizers

from splade_onnx import ArgumentError, ArgumentTypeError, InputError, SpladeEncoder
from splade_onnx._tokenize import TextTokenizer

MB10 = 10_000_000


def _cjk(n: int, seed: int = 0) -> str:
    codes = np.random.default_rng(seed).integers(0x4E00, 0x9FA5, n, dtype=np.uint32)
    return codes.tobytes().decode("utf-32-le")


def _base64(n: int, seed: int = 0) -> str:
    return base64.b64encode(np.random.default_rng(seed).bytes(n * 3 // 4)).decode()[:n]


def _word(n: int, seed: int = 0) -> str:
    """One base64 "word": the alphabet without its separators ``+``, ``/`` and ``=``."""
    return _base64(n, seed).translate(str.maketrans("+/", "xy", "="))


#: Hostile texts by name, built at any length: the 10 MB cases of the issue and their relatives.
HOSTILE: dict[str, Callable[[int], str]] = {
    "dots": lambda n: "." * n,
    "cjk": lambda n: _cjk(n // 3),  # about n bytes of UTF-8
    "base64": _base64,
    "base64-word": _word,
    "word-then-text": lambda n: _word(n) + " and then the lunar lander touched down.",
    "spaces-then-text": lambda n: " " * n + "moon landing",
    "controls-in-a-word": lambda n: "\x00" * n + "ab" + "\x0b" * 1000 + "cd e.",
    "accents-in-a-word": lambda n: "a" + "\u0301" * n + "b c",
    "added-tokens": lambda n: ("[MASK]" * (n // 6))[:n] + "[MASK",
    "long-words-and-dots": lambda n: ("y" * 7000 + ".") * (n // 7001),
}


class Spy:
    """A ``tokenizers`` object stand-in that records the longest string any of its parts is handed."""

    def __init__(self, inner: Any, longest: list[int] | None = None) -> None:
        self._inner = inner
        self.longest = longest if longest is not None else [0]

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name in ("normalizer", "pre_tokenizer"):
            return None if attr is None else Spy(attr, self.longest)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            for a in args:
                for s in [a] if isinstance(a, str) else a if isinstance(a, list) else []:
                    if isinstance(s, str):
                        self.longest[0] = max(self.longest[0], len(s))
            return attr(*args, **kwargs)

        return call


@pytest.fixture(scope="module")
def tokenizer_file(tiny_dir: Path) -> str:
    return str(tiny_dir / "tokenizer.json")


def reference(tokenizer_file: str, text: str, max_length: int) -> list[int]:
    """What the pre-cut must reproduce: the whole text tokenized, then truncated."""
    tok = Tokenizer.from_file(tokenizer_file)
    tok.enable_truncation(max_length)
    return list(tok.encode(text).ids)


def test_the_tokenizer_is_one_the_exact_rule_covers(tokenizer_file: str) -> None:
    tt = TextTokenizer(Tokenizer.from_file(tokenizer_file), 512)
    cuts = tt._word_cuts()
    assert cuts is not None and cuts.max_chars == 100  # BertNormalizer, BertPreTokenizer, WordPiece(100)


@pytest.mark.parametrize("name", sorted(HOSTILE))
@pytest.mark.parametrize("max_length", [512, 16])
def test_pre_cut_is_exact_on_hostile_texts(tokenizer_file: str, name: str, max_length: int) -> None:
    text = HOSTILE[name](150_000)
    spy = Spy(Tokenizer.from_file(tokenizer_file))
    tt = TextTokenizer(spy, max_length)  # type: ignore[arg-type]
    assert tt.encode([text]) == [reference(tokenizer_file, text, max_length)]
    assert spy.longest[0] <= 12 * 512 + 2  # pieces of 12 * max(max_length, 512) characters, never the text


@pytest.mark.parametrize("name", ["dots", "cjk", "base64", "base64-word", "word-then-text", "spaces-then-text"])
def test_10mb_texts_are_tokenized_in_bounded_pieces(tokenizer_file: str, name: str) -> None:
    text = HOSTILE[name](MB10)
    spy = Spy(Tokenizer.from_file(tokenizer_file))
    tt = TextTokenizer(spy, 512)  # type: ignore[arg-type]
    (ids,) = tt.encode([text])
    assert spy.longest[0] <= 12 * 512 + 2, spy.longest[0]  # was the whole 10 MB text
    # The whole 10 MB reference costs gigabytes (benchmarks/inputs.py --reference checks it); here
    # the same text built smaller: the same first tokens, or the same tokens for the single words.
    prefix_counts = name in ("dots", "cjk", "base64")  # truncated within the first few thousand characters
    smaller = text[:300_000] if prefix_counts else HOSTILE[name](300_000)
    assert ids == reference(tokenizer_file, smaller, 512)
    if prefix_counts:
        assert len(ids) == 512
    elif "word" in name:
        assert ids[1] == 100  # [CLS] [UNK] ...: the 10 MB word is one unknown token


def test_10mb_text_through_the_encoder(tiny: SpladeEncoder) -> None:
    (dots,) = tiny.encode_documents(["." * MB10])
    (ref,) = tiny.encode_documents(["." * 20_000])
    assert dots == ref
    assert tiny.token_count([_word(MB10)]) == 3  # [CLS] [UNK] [SEP]


def test_text_with_a_separator_python_does_not_know_uses_the_checked_fallback(tokenizer_file: str) -> None:
    # U+FA6E is unassigned for Python's Unicode tables but a CJK separator for the tokenizer:
    # no cut is made next to it, so the text goes to the bounded, checked fallback.
    text = "x" * 20_000 + "\ufa6e" + "moon. " * 3000
    spy = Spy(Tokenizer.from_file(tokenizer_file))
    tt = TextTokenizer(spy, 16)  # type: ignore[arg-type]
    assert tt.encode([text]) == [reference(tokenizer_file, text, 16)]
    assert spy.longest[0] <= 16 * 12 * 512


def test_other_tokenizers_use_the_checked_fallback_in_bounded_memory(
    tokenizer_file: str, caplog: pytest.LogCaptureFixture
) -> None:
    inner = Tokenizer.from_file(tokenizer_file)
    inner.pre_tokenizer = pre_tokenizers.Whitespace()  # not BertPreTokenizer: no exact rule
    spy = Spy(inner)
    tt = TextTokenizer(spy, 512)  # type: ignore[arg-type]
    assert tt._word_cuts() is None
    ref = Tokenizer.from_file(tokenizer_file)
    ref.pre_tokenizer = pre_tokenizers.Whitespace()
    ref.enable_truncation(512)
    for text in ("ab." * 100_000, "word " * 60_000, _cjk(100_000)):
        assert tt.encode([text]) == [ref.encode(text).ids]
    assert spy.longest[0] <= 4 * 12 * 512  # each was accepted by the 4x widening at the latest
    with caplog.at_level(logging.WARNING, logger="splade_onnx._precut"):
        (ids,) = tt.encode(["." * 1_000_000])  # one symbol word: never overflows, cannot be checked
    assert len(ids) == 3 and "could not be checked" in caplog.text
    assert spy.longest[0] <= 16 * 12 * 512


# ----------------------------------------------------------------------------- lone surrogates

SURROGATE_FIX = "clean the input, or replace such characters with text.encode('utf-8', 'replace').decode()"


def test_lone_surrogate_names_the_position_and_the_offset(tiny: SpladeEncoder) -> None:
    msg = "text at position 1 has a lone surrogate '\\ud800' at character 4, which is not valid Unicode"
    with pytest.raises(InputError, match=re.escape(msg)) as err:
        tiny.encode_documents(["fine", "moon\ud800landing"])
    assert SURROGATE_FIX in str(err.value)
    with pytest.raises(InputError, match=re.escape("text at position 0 has a lone surrogate '\\udfff' at char")):
        tiny.token_count(["\udfff"])
    fixed = "moon\ud800landing".encode("utf-8", "replace").decode()
    assert len(tiny.encode_documents([fixed])) == 1


def test_lone_surrogate_in_a_later_window_of_a_stream(tiny: SpladeEncoder) -> None:
    def texts() -> Iterator[str]:
        yield from (f"text {i}" for i in range(2100))
        yield "ok \ud83d"

    with pytest.raises(InputError, match=re.escape("text at position 2100 has a lone surrogate '\\ud83d' at char")):
        list(tiny.embed(texts()))


def test_lone_surrogate_past_the_pre_cut_still_raises(tiny: SpladeEncoder) -> None:
    # The whole text is invalid, as tokenizing it whole would say, although only a prefix is tokenized.
    text = "moon " * 100_000 + "\udc80"
    msg = "text at position 0 has a lone surrogate '\\udc80' at character 500000"
    with pytest.raises(InputError, match=re.escape(msg)):
        tiny.encode_documents([text])


def test_bad_items_are_found_before_workers_see_them(tiny: SpladeEncoder) -> None:
    texts = ["moon"] * 300 + ["bad \ud800"]
    with pytest.raises(InputError, match=re.escape("text at position 300 has a lone surrogate")):
        list(tiny.embed(iter(texts), parallel=2))
    with pytest.raises(ArgumentTypeError, match=re.escape("text at position 2 is bytes, not str; decode it first")):
        list(tiny.embed(iter(["a", "b", b"c"]), parallel=2))  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- checked at call time


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"texts": "a string"}, ArgumentTypeError, "texts must be an iterable of str, got a single str; wrap it"),
        ({"texts": b"bytes"}, ArgumentTypeError, "texts must be an iterable of str, got bytes; decode it"),
        ({"texts": None}, ArgumentTypeError, "texts must be an iterable of str, got NoneType"),
        ({"batch_size": -3}, ArgumentError, "batch_size must be a positive int or None, got -3"),
        ({"batch_size": "8"}, ArgumentTypeError, "batch_size must be a positive int or None, got str '8'"),
        ({"max_length": 0}, ArgumentError, "max_length must be an int in [2, 512] for this model, got 0"),
        ({"max_length": 4096}, ArgumentError, "max_length must be an int in [2, 512] for this model, got 4096"),
        ({"max_length": 512.0}, ArgumentTypeError, "max_length must be an int in [2, 512] for this model, got float"),
        ({"parallel": -1}, ArgumentError, "parallel must be None, 0 (one worker per core) or a positive int, got -1"),
        ({"parallel": "2"}, ArgumentTypeError, "parallel must be None, 0 (one worker per core) or a positive int"),
        ({"show_progress": "yes"}, ArgumentTypeError, "show_progress must be a bool, got str"),
        (
            {"bogus": 1},
            ArgumentTypeError,
            "SpladeEncoder.embed() got unexpected option(s) 'bogus'; valid: task, "
            "options, batch_size, max_length, top_k, min_weight, long_documents, stride, "
            "parallel, show_progress",
        ),
        ({"task": "passage"}, ArgumentError, "task must be one of 'document', 'query', got 'passage'"),
        ({"top_k": 0}, ArgumentError, "top_k must be a positive int or None, got 0"),
        ({"min_weight": "1"}, ArgumentTypeError, "min_weight must be a finite number or None, got '1'"),
        ({"min_weight": float("nan")}, ArgumentTypeError, "min_weight must be a finite number or None, got nan"),
        (
            {"long_documents": "split"},
            ArgumentError,
            "long_documents must be one of 'truncate', 'windows', got 'split'",
        ),
        ({"stride": 8}, ArgumentError, "stride is the overlap of windows: pass it with long_documents='windows'"),
        (
            {"stride": 510, "long_documents": "windows"},
            ArgumentError,
            "stride must be in [0, 509] (tokens shared by windows of 510), got 510",
        ),
        ({"stride": -1, "long_documents": "windows"}, ArgumentError, "stride must be in [0, 509]"),
    ],
)
def test_embed_checks_every_argument_when_called(
    tiny: SpladeEncoder, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    kwargs = {"texts": ["x"], **kwargs}
    with pytest.raises(error, match=re.escape(message)):
        tiny.embed(**kwargs)  # not iterated: embed is no longer a generator function


def test_options_are_keyword_only_and_unknown_ones_list_the_valid(tiny: SpladeEncoder) -> None:
    side_options = "options, batch_size, max_length, top_k, min_weight, long_documents, stride, show_progress"
    msg = "SpladeEncoder.encode() takes its options by keyword only, got 1 extra positional argument(s); options: "
    with pytest.raises(ArgumentTypeError, match=re.escape(msg + "task, " + side_options)):
        tiny.encode(["x"], 8)  # type: ignore[call-arg, arg-type]
    for method, options in (
        (tiny.encode, "task, " + side_options),
        (tiny.encode_documents, side_options),
        (tiny.encode_queries, side_options),
    ):
        msg = f"{method.__qualname__}() got unexpected option(s) 'bach_size'; valid: "
        with pytest.raises(ArgumentTypeError, match=re.escape(msg + options)):
            method(["x"], bach_size=8)  # type: ignore[call-arg]
    with pytest.raises(ArgumentTypeError, match=re.escape("token_count() got unexpected option(s) 'max_length'")):
        tiny.token_count(["x"], max_length=8)  # type: ignore[call-arg]


def test_non_str_items_of_a_lazy_stream_raise_when_reached_with_their_position(tiny: SpladeEncoder) -> None:
    def texts() -> Iterator[object]:
        yield from (f"text {i}" for i in range(2100))
        yield b"raw bytes"

    stream = tiny.embed(texts())  # type: ignore[arg-type]
    assert len(list(itertools.islice(stream, 2048))) == 2048  # the first window encodes fine
    with pytest.raises(ArgumentTypeError, match=re.escape("text at position 2100 is bytes, not str; decode it first")):
        next(stream)


@pytest.mark.parametrize("bad", [b"moon", bytearray(b"moon"), 3, None])
def test_non_str_items_name_their_position_everywhere(tiny: SpladeEncoder, bad: object) -> None:
    msg = f"text at position 2 is {type(bad).__name__}, not str"
    for call in (tiny.encode_documents, tiny.token_count, lambda t: list(tiny.embed(iter(t)))):
        with pytest.raises(ArgumentTypeError, match=re.escape(msg)):
            call(["a", "b", bad])  # type: ignore[list-item]
