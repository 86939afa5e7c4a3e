"""The query path: the one-slice latency graph and the opt-in query cache, proven without timers."""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from splade_onnx import ArgumentError, SpladeEncoder
from splade_onnx._batching import fast_tokens, vocab_chunks
from splade_onnx._engine import NetworkEngine
from splade_onnx._tokenize import pad_batch
from test_parity import assert_same

from conftest import ROOT, TINY, golden

CRANFIELD = ROOT / "data" / "cranfield"


@pytest.fixture(scope="module")
def queries() -> list[str]:
    return [json.loads(line)["text"] for line in (CRANFIELD / "queries.jsonl").open()]


@pytest.fixture(scope="module")
def docs() -> list[str]:
    return [json.loads(line)["text"] for line in (CRANFIELD / "corpus.jsonl").open()][:200]


def _spy(engine: NetworkEngine) -> tuple[list[int], list[int], Any]:
    """Record the token count (rows x padded length) of every run on the main and the latency session."""
    main_sizes: list[int] = []
    fast_sizes: list[int] = []
    main, fast = engine.backend, engine.fast.get()  # type: ignore[union-attr]
    real_main, real_fast = main.run, fast.run

    def on_main(feed: Any) -> Any:
        main_sizes.append(int(feed["input_ids"].size))
        return real_main(feed)

    def on_fast(feed: Any) -> Any:
        fast_sizes.append(int(feed["input_ids"].size))
        return real_fast(feed)

    main.run, fast.run = on_main, on_fast  # type: ignore[method-assign]
    real_all = getattr(main, "run_all", None)  # a backend that overlaps batches takes them all at once

    def on_main_all(feeds: Any) -> Any:
        def record(fs: Any) -> Any:
            for f in fs:
                main_sizes.append(int(f["input_ids"].size))
                yield f

        return real_all(record(feeds))  # type: ignore[misc]

    if real_all is not None:
        main.run_all = on_main_all  # type: ignore[attr-defined]

    def undo() -> None:
        main.run, fast.run = real_main, real_fast  # type: ignore[method-assign]
        if real_all is not None:
            main.run_all = real_all  # type: ignore[attr-defined]

    return main_sizes, fast_sizes, undo


def test_latency_graph_is_the_pooled_graph_in_one_slice(cache_dir: Path) -> None:
    recipe = SpladeEncoder.from_pretrained(TINY, cache_dir=cache_dir, projection="dense").loaded.recipes.get("document")
    assert recipe is not None and recipe.fast_graph is not None
    fast = recipe.fast_graph()
    assert fast != recipe.graph and fast.parent.parent == recipe.graph.parent.parent  # cached beside it
    ops = [n.op_type for n in onnx.load(str(fast), load_external_data=False).graph.node]
    main = [n.op_type for n in onnx.load(str(recipe.graph), load_external_data=False).graph.node]
    assert ops.count("ReduceMax") == 1 and main.count("ReduceMax") == vocab_chunks(30522) > 1
    assert fast_tokens(30522) * 30522 * 4 <= 32 * 2**20  # its one [tokens, vocab] slice stays within 32 MiB


def test_latency_graph_computes_the_same_weights(tiny: SpladeEncoder, queries: list[str]) -> None:
    engine = tiny.loaded.document
    assert engine.fast is not None
    ids = engine.tokenizer.encode(queries[:60])
    feeds = [pad_batch([x], engine.tokenizer.pad_id) for x in ids] + [pad_batch(ids[:6], engine.tokenizer.pad_id)]
    for feed in feeds:
        a, b = engine.backend.run(feed), engine.fast.get().run(feed)
        assert np.array_equal(a > 0, b > 0)
        assert float(np.abs(a - b).max()) <= 1e-6


def test_short_batches_take_the_latency_graph_and_long_ones_the_main(
    tiny: SpladeEncoder, queries: list[str], docs: list[str]
) -> None:
    engine = tiny.loaded.document
    main_sizes, fast_sizes, undo = _spy(engine)
    try:
        for q in queries[:20]:
            tiny.encode_queries([q])
        tiny.encode_documents(docs)
    finally:
        undo()
    assert len(fast_sizes) >= 20 and main_sizes
    assert max(fast_sizes) <= engine.fast_tokens < min(main_sizes)


def test_latency_graph_is_made_only_when_a_short_batch_comes(tiny_dir: Path, tmp_path: Path, docs: list[str]) -> None:
    enc = SpladeEncoder.from_pretrained(tiny_dir, cache_dir=tmp_path, projection="dense")
    fast = enc.loaded.document.fast
    assert fast is not None and not fast.opened
    assert len(list((tmp_path / "onnx").iterdir())) == 1  # loading converts the main graph only
    long_docs = [
        d
        for d, n in zip(docs, map(len, enc.loaded.document.tokenizer.encode(docs)))
        if n > enc.loaded.document.fast_tokens
    ]
    assert len(long_docs) >= 2
    enc.encode_documents(long_docs[:2], batch_size=1)
    assert not fast.opened  # a document job never pays for the second session
    enc.encode_queries(["shock waves"])
    assert fast.opened and len(list((tmp_path / "onnx").iterdir())) == 2


def test_single_queries_on_the_latency_graph_match_the_reference(tiny: SpladeEncoder) -> None:
    g = golden("splade_tiny.json")
    engine = tiny.loaded.document
    main_sizes, fast_sizes, undo = _spy(engine)
    try:
        short = [(t, ref) for t, ref in zip(g["texts"], g["vectors"]) if 0 < ref["n_tokens"] <= engine.fast_tokens]
        for i, (text, ref) in enumerate(short):
            (emb,) = tiny.encode_queries([text])
            assert_same(emb.indices, emb.values, ref, f"short text {i} {text[:30]!r}")
    finally:
        undo()
    assert len(short) >= 10 and len(fast_sizes) == len(short) and not main_sizes


# ----------------------------------------------------------------------------- the query cache


@pytest.fixture
def cached(cache_dir: Path) -> SpladeEncoder:
    return SpladeEncoder.from_pretrained(TINY, cache_dir=cache_dir, query_cache=2)


def _same(a: Any, b: Any) -> bool:
    return bool(np.array_equal(a.indices, b.indices) and np.array_equal(a.values, b.values))


def test_query_cache_hits_return_the_encoded_vector(cached: SpladeEncoder, tiny: SpladeEncoder) -> None:
    q = "shock wave boundary layer interaction"
    (ref,) = tiny.encode_queries([q])
    (first,) = cached.encode_queries([q])
    (again,) = cached.encode_queries([q])
    assert _same(first, ref) and _same(again, ref)
    assert tuple(cached.query_cache_info()) == (1, 1, 2, 1)  # type: ignore[arg-type]


def test_query_cache_returns_copies(cached: SpladeEncoder) -> None:
    q = "heat transfer in hypersonic flow"
    (a,) = cached.encode_queries([q])
    kept = a.values.copy()
    a.values[:] = -1.0  # a caller scribbling on its vector
    (b,) = cached.encode_queries([q])
    assert np.array_equal(b.values, kept)
    b.values[:] = -2.0
    (c,) = cached.encode_queries([q])
    assert np.array_equal(c.values, kept)


def test_query_cache_evicts_the_least_recently_used(cached: SpladeEncoder) -> None:
    cached.encode_queries(["one"])
    cached.encode_queries(["two"])
    cached.encode_queries(["one"])  # "one" is now the most recent
    cached.encode_queries(["three"])  # evicts "two"
    assert cached.query_cache_info().currsize == 2  # type: ignore[union-attr]
    before = cached.query_cache_info()
    cached.encode_queries(["one"])
    cached.encode_queries(["two"])
    after = cached.query_cache_info()
    assert (after.hits - before.hits, after.misses - before.misses) == (1, 1)  # type: ignore[union-attr]


def test_query_cache_keys_hold_the_call_options(cached: SpladeEncoder) -> None:
    q = "supersonic flow past a cone"
    (full,) = cached.encode_queries([q])
    (again,) = cached.encode_queries([q], batch_size=7)  # batching does not change a vector: same key
    assert _same(again, full) and cached.query_cache_info()[:2] == (1, 1)  # type: ignore[index]
    (top,) = cached.encode_queries([q], top_k=3)
    (short,) = cached.encode_queries([q], max_length=4)
    assert len(top) == 3 and len(full) > 3 and not _same(short, full)
    assert cached.query_cache_info()[:2] == (1, 3)  # type: ignore[index]


def test_query_cache_encodes_a_repeated_text_once_per_call(cached: SpladeEncoder) -> None:
    a, _, c = cached.encode_queries(["laminar flow", "a plate", "laminar flow"])
    assert _same(a, c) and a.values is not c.values
    assert cached.query_cache_info()[:2] == (0, 2)  # type: ignore[index]


def test_documents_and_uncached_encoders_do_not_use_the_cache(cached: SpladeEncoder, tiny: SpladeEncoder) -> None:
    cached.encode_documents(["laminar flow"])
    assert cached.query_cache_info()[:2] == (0, 0)  # type: ignore[index]
    assert tiny.query_cache_info() is None
    cached.encode_queries(["laminar flow"])
    cached.clear_query_cache()
    assert tuple(cached.query_cache_info()) == (0, 0, 2, 0)  # type: ignore[arg-type]


def test_query_cache_keeps_the_cut_warning(cached: SpladeEncoder, caplog: pytest.LogCaptureFixture) -> None:
    long = "flow " * 600
    for _ in range(2):  # a miss, then a hit: both warn
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="splade_onnx"):
            cached.encode_queries(["short", long])
        assert "text at position 1 was longer than 512 tokens" in caplog.text


def test_query_cache_is_thread_safe(cache_dir: Path, tiny: SpladeEncoder, queries: list[str]) -> None:
    enc = SpladeEncoder.from_pretrained(TINY, cache_dir=cache_dir, query_cache=3)
    qs = queries[:6]
    refs = tiny.encode_queries(qs)

    def work(k: int) -> bool:
        i = k % len(qs)
        (v,) = enc.encode_queries([qs[i]])
        return _same(v, refs[i])

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(work, range(120)))
    info = enc.query_cache_info()
    assert info is not None and info.hits + info.misses == 120 and info.currsize <= 3


def test_query_cache_value_is_checked(cache_dir: Path) -> None:
    with pytest.raises(ArgumentError, match=r"query_cache must be an int >= 0 \(0: off\), got -1"):
        SpladeEncoder.from_pretrained(TINY, cache_dir=cache_dir, query_cache=-1)
    with pytest.raises(TypeError, match=r"query_cache must be an int >= 0 .* got str '8'"):
        SpladeEncoder.from_pretrained(TINY, cache_dir=cache_dir, query_cache="8")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="got bool True"):
        SpladeEncoder.from_pretrained(TINY, cache_dir=cache_dir, query_cache=True)


def test_query_cache_rejects_bad_items_with_their_position(cached: SpladeEncoder) -> None:
    with pytest.raises(TypeError, match="position 1"):
        cached.encode_queries(["fine", ["not", "a", "str"]])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="position 2 has a lone surrogate"):
        cached.encode_queries(["fine", "fine", "bad \ud800"])
