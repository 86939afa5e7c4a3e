"""The speed engine's invariants, which hold whatever the timing: fused pooling, batching, int8, workers."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest

import splade_onnx._engine as engine
from splade_onnx import SpladeEncoder
from splade_onnx._batching import TOKEN_BUDGET, vocab_chunks
from splade_onnx._graph_pruned import BOUND_TILE

from conftest import ROOT, TINY

CRANFIELD = ROOT / "data" / "cranfield"


@pytest.fixture(scope="module")
def cranfield_docs() -> list[str]:
    path = CRANFIELD / "corpus.jsonl"
    assert path.is_file(), f"{path} is missing: data/ is part of the repository"
    return [json.loads(line)["text"] for line in path.open()][:300]


@pytest.fixture(scope="module")
def tiny_int8(cache_dir: Path) -> SpladeEncoder:
    return SpladeEncoder.from_pretrained(TINY, cache_dir=cache_dir, quantize="int8")


def test_no_batch_seq_vocab_tensor_leaves_the_graph(cache_dir: Path) -> None:
    dense = SpladeEncoder.from_pretrained(TINY, cache_dir=cache_dir, projection="dense")
    graph = onnx.load(str(dense.loaded.recipes.get("document").graph), load_external_data=False)  # type: ignore[union-attr]
    (out,) = graph.graph.output
    assert out.name == "sparse" and len(out.type.tensor_type.shape.dim) == 2
    ops = [n.op_type for n in graph.graph.node]
    chunks = vocab_chunks(30522)
    assert ops.count("ReduceMax") == chunks  # one masked reduce-max per vocabulary slice
    assert chunks > 1 and TOKEN_BUDGET * -(-30522 // chunks) * 4 <= 16 * 2**20 + TOKEN_BUDGET * 4


def test_the_pruned_graphs_have_no_batch_seq_vocab_tensor_either(cache_dir: Path) -> None:
    """The pruned head's batched graph returns [batch, seq, hidden], the int8 codes [batch, seq, rank + 1], a
    scale and [batch, vocab]; its per-text graph bounds one text in vocabulary tiles of ``BOUND_TILE`` ids."""
    pruned = SpladeEncoder.from_pretrained(TINY, cache_dir=cache_dir, projection="pruned")
    files = pruned.loaded.recipes.get("document")
    assert files is not None and files.head is not None
    rank = json.loads((files.graph.parent / "pruned.json").read_text())["rank"]
    graph = onnx.load(str(files.graph), load_external_data=False)
    dims = {o.name: [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim] for o in graph.graph.output}
    assert dims == {
        "hidden": ["batch", "seq", 128],
        "codes": ["batch", "seq", rank + 1],
        "scale": ["batch", 1],
        "lo": ["batch", 30522],
    }
    head = onnx.load(str(files.head), load_external_data=False)
    products = [n for n in head.graph.node if n.op_type == "MatMulIntegerToFloat"]
    tables = {t.name: list(t.dims) for t in head.graph.initializer if t.name.startswith("table.codes")}
    assert len(products) == len(tables) == -(-30522 // BOUND_TILE)
    assert all(rows <= BOUND_TILE and cols == rank + 1 for rows, cols in tables.values())


def test_peak_memory_does_not_depend_on_batch_size(
    tiny: SpladeEncoder, cranfield_docs: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[int, int]] = []
    run_all = engine.run_all

    def spy(backend, feeds):  # type: ignore[no-untyped-def]
        def record(fs):  # type: ignore[no-untyped-def]
            for f in fs:
                seen.append(f["input_ids"].shape)
                yield f

        return run_all(backend, record(feeds))

    monkeypatch.setattr(engine, "run_all", spy)
    big = tiny.encode_documents(cranfield_docs[:120], batch_size=100_000)
    monkeypatch.undo()
    assert seen and all(b * s <= TOKEN_BUDGET or b == 1 for b, s in seen)
    small = tiny.encode_documents(cranfield_docs[:120], batch_size=3)
    for a, b in zip(big, small):
        assert np.array_equal(a.indices, b.indices)
        np.testing.assert_allclose(a.values, b.values, atol=1e-5, rtol=0)


def test_streaming_reads_a_bounded_window(tiny: SpladeEncoder) -> None:
    pulled = 0

    def texts() -> Iterator[str]:
        nonlocal pulled
        for i in itertools.count():
            pulled += 1
            yield f"text number {i}"

    stream = tiny.embed(texts())
    first = list(itertools.islice(stream, 3))
    assert len(first) == 3 and pulled <= 2048 + 1  # one window, not the endless generator


def test_order_is_kept_across_sorting(tiny: SpladeEncoder, cranfield_docs: list[str]) -> None:
    docs = cranfield_docs[:60]
    mixed = [d if i % 3 else d.split(".")[0] for i, d in enumerate(docs)]  # very different lengths
    out = tiny.encode_documents(mixed, batch_size=8)
    for i in (0, 1, 2, 29, 59):
        (single,) = tiny.encode_documents([mixed[i]])
        assert np.array_equal(out[i].indices, single.indices)


def test_parallel_equals_serial(tiny: SpladeEncoder, cranfield_docs: list[str]) -> None:
    docs = cranfield_docs[:40] * 10
    serial = tiny.encode_documents(docs)
    parallel = list(tiny.embed(iter(docs), parallel=2))
    assert len(parallel) == len(docs)
    for a, b in zip(serial, parallel):
        assert np.array_equal(a.indices, b.indices)
        np.testing.assert_allclose(a.values, b.values, atol=1e-5, rtol=0)


#: int8 tolerance, stated in the README: per-document cosine to fp32 >= 0.97, mean >= 0.99,
#: and at least 8 of fp32's top-10 terms among int8's top-20.
def test_int8_stays_within_tolerance_of_fp32(
    tiny: SpladeEncoder, tiny_int8: SpladeEncoder, cranfield_docs: list[str]
) -> None:
    assert tiny_int8.loaded.recipes.get("document").graph != tiny.loaded.recipes.get("document").graph  # type: ignore[union-attr]
    ops = {n.op_type for n in onnx.load(str(tiny_int8.loaded.recipes.get("document").graph)).graph.node}  # type: ignore[union-attr]
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= ops
    fp, q = tiny.encode_documents(cranfield_docs), tiny_int8.encode_documents(cranfield_docs)
    cos, overlap = [], []
    for a, b in zip(fp, q):
        da, db = a.as_dict(), b.as_dict()
        keys = sorted(set(da) | set(db))
        va, vb = np.array([da.get(k, 0.0) for k in keys]), np.array([db.get(k, 0.0) for k in keys])
        cos.append(float(va @ vb / np.linalg.norm(va) / np.linalg.norm(vb)))
        top_a = set(a.indices[np.argsort(-a.values)[:10]].tolist())
        top_b = set(b.indices[np.argsort(-b.values)[:20]].tolist())
        overlap.append(len(top_a & top_b))
    assert min(cos) >= 0.97 and float(np.mean(cos)) >= 0.99, (min(cos), np.mean(cos))
    assert min(overlap) >= 8


def test_int8_rejects_unknown_modes(tiny_dir: Path, cache_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"quantize must be one of \(None, 'int8'\), got 'int4'"):
        SpladeEncoder.from_pretrained(tiny_dir, cache_dir=cache_dir, quantize="int4")
