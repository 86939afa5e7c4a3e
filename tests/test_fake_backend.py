"""The encoder's own logic on a fake backend behind the engine seam: no onnxruntime session is opened.

Like httpx's ``MockTransport``: :class:`FakeBackend` answers ``run(inputs)`` with weights that are a
known function of the token ids (id ``t`` weighs ``1 + t % 7``; padding weighs nothing), so ordering,
batching, windows, pruning, the query cache and the truncation warning are checked against
hand-computed vectors.  The tokenizer is splade-tiny's real one; no session is opened.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from splade_onnx import ArgumentError, EncodeOptions, ModelIdentity, SparseEmbedding, SpladeEncoder
from splade_onnx._engine import NetworkEngine
from splade_onnx._hub import resolve
from splade_onnx._loading import LoadedModel
from splade_onnx._tokenize import TextTokenizer

from conftest import TINY

VOCAB = 30522


class FakeBackend:
    """Pooled weights: for each row, the max over its tokens of ``1 + id % 7`` at each id, padding excluded."""

    def __init__(self) -> None:
        self.batches: list[tuple[int, int]] = []

    def run(self, inputs: Mapping[str, NDArray[np.int64]]) -> NDArray[np.float32]:
        ids, mask = inputs["input_ids"], inputs["attention_mask"]
        self.batches.append(ids.shape)
        out = np.zeros((ids.shape[0], VOCAB), np.float32)
        for r in range(ids.shape[0]):
            for t in ids[r][mask[r] > 0]:
                out[r, t] = max(out[r, t], 1 + int(t) % 7)
        return out


def weights_of(ids: list[int]) -> dict[int, float]:
    """What the fake backend gives a text whose tokens (special tokens included) are ``ids``."""
    return {t: float(1 + t % 7) for t in sorted(set(ids))}


@pytest.fixture(scope="module")
def tokenizer(cache_dir: Path) -> TextTokenizer:
    folder = resolve(TINY, cache_dir=cache_dir).path
    return TextTokenizer.from_folder(folder, max_length=None, model_limit=512)


def fake_encoder(tokenizer: TextTokenizer, **kwargs: int) -> tuple[SpladeEncoder, FakeBackend]:
    backend = FakeBackend()
    side = NetworkEngine(backend, tokenizer)
    model = LoadedModel(document=side, query=side, identity=ModelIdentity("fake", VOCAB, "f00d"))
    return SpladeEncoder(model, **kwargs), backend


TEXTS = ["the lunar module", "a", "boundary layer flow over a flat plate at high speed", "heat transfer", "a"]


def test_vectors_come_back_in_input_order_whatever_the_batching(tokenizer: TextTokenizer) -> None:
    enc, backend = fake_encoder(tokenizer)
    for batch_size in (1, 2, 256):
        out = enc.encode_documents(TEXTS, batch_size=batch_size)
        assert [v.as_dict() for v in out] == [weights_of(tokenizer.encode([t])[0]) for t in TEXTS]
    assert max(rows for rows, _ in backend.batches) == len(TEXTS)  # one batch of all at batch_size=256
    assert enc.query_mode == "same" and enc.identity.fingerprint == "f00d"


def test_pruning_keeps_the_heaviest_terms_with_ties_to_the_smaller_id(tokenizer: TextTokenizer) -> None:
    enc, _ = fake_encoder(tokenizer)
    full = weights_of(tokenizer.encode([TEXTS[2]])[0])
    top = sorted(full, key=lambda t: (-full[t], t))[:3]
    (v,) = enc.encode_documents([TEXTS[2]], top_k=3)
    assert v.as_dict() == {t: full[t] for t in sorted(top)}
    (w,) = enc.encode_documents([TEXTS[2]], options=EncodeOptions(min_weight=5.0))
    assert w.as_dict() == {t: x for t, x in full.items() if x >= 5.0}


def test_windows_merge_by_max_so_every_token_counts(tokenizer: TextTokenizer) -> None:
    enc, _ = fake_encoder(tokenizer)
    long_text = " ".join(f"word{i}" for i in range(400))
    pre, post = tokenizer.special_ids()
    ids = pre + tokenizer.content_ids(long_text, 0).tolist() + post
    (cut,) = enc.encode_documents([long_text], max_length=32)
    (whole,) = enc.encode_documents([long_text], max_length=32, long_documents="windows", stride=8)
    assert whole.as_dict() == weights_of(ids)  # every token's id, from some window
    assert set(cut.as_dict()) < set(whole.as_dict())


def test_a_cut_text_warns_once_naming_its_position(tokenizer: TextTokenizer, caplog: pytest.LogCaptureFixture) -> None:
    enc, _ = fake_encoder(tokenizer)
    long_text = " ".join(["word"] * 100)
    with caplog.at_level(logging.WARNING, logger="splade_onnx"):
        enc.encode_documents(["short", long_text, long_text], max_length=16)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith("text at position 1 was longer than 16 tokens")


def test_the_query_cache_counts_distinct_texts_and_runs_only_misses(tokenizer: TextTokenizer) -> None:
    enc, backend = fake_encoder(tokenizer, query_cache=8)
    first = enc.encode_queries(["heat transfer", "heat transfer", "lunar"])
    runs = len(backend.batches)
    again = enc.encode_queries(["lunar", "heat transfer"])
    assert len(backend.batches) == runs  # all hits: the backend was not called
    assert [v.as_dict() for v in again] == [first[2].as_dict(), first[0].as_dict()]
    assert first[0] is not first[1]  # a repeated text gets its own copy
    info = enc.query_cache_info()
    assert info is not None and (info.hits, info.misses, info.currsize, info.maxsize) == (2, 2, 2, 8)


def test_options_are_one_value_given_once(tokenizer: TextTokenizer) -> None:
    enc, _ = fake_encoder(tokenizer)
    opts = EncodeOptions(top_k=2)
    assert (
        enc.encode_documents(["heat transfer"], options=opts)[0] == enc.encode_documents(["heat transfer"], top_k=2)[0]
    )
    with pytest.raises(ArgumentError, match="pass the encoding options once: options= was given with top_k"):
        enc.encode_documents(["x"], options=opts, top_k=3)
    with pytest.raises(ArgumentError, match=r"max_length must be an int in \[2, 512\] for this model, got 513"):
        enc.check_options(EncodeOptions(max_length=513), task="query")


def test_the_constructor_takes_a_loaded_model() -> None:
    with pytest.raises(TypeError, match="SpladeEncoder\\(\\) takes a LoadedModel, got str"):
        SpladeEncoder("rasyosef/splade-tiny")  # type: ignore[arg-type]


def test_sparse_embedding_equality_is_by_value() -> None:
    assert SparseEmbedding(values=[1.0], indices=[3]).as_dict() == {3: 1.0}
