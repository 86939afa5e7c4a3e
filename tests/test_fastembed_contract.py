"""FastEmbed 0.9.1's contract on the facade: each behaviour FastEmbed's own sparse tests and type stub check that
applies to SPLADE models, tested here on the real splade-tiny, the family fixtures and the look-alikes of the
repositories FastEmbed downloads (``tests/fastembed_lookalikes.py``)."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import re
import subprocess
import sys
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from splade_onnx import (
    ArgumentError,
    ArgumentTypeError,
    ModelNotFoundError,
    SparseEmbedding,
    SparseTextEmbedding,
    SpladeEncoder,
)
from splade_onnx._fastembed_options import construction
from splade_onnx._loading import LoadOptions, load
from splade_onnx._session import SessionSettings, main_session

import fastembed_calls
from conftest import ROOT, TINY, golden
from fastembed_lookalikes import write_repo

FASTEMBED = golden("fastembed.json")
FASTEMBED_LIST = json.loads((ROOT / "tests" / "fixtures" / "fastembed_sparse_models.json").read_text())["models"]
PP = "prithivida/Splade_PP_en_v1"
GTE = "opensearch-project/opensearch-neural-sparse-encoding-doc-v3-gte"
DOCS = ["Chandrayaan-3 is India's third lunar mission", "The rover explored the lunar south pole"]


@pytest.fixture(scope="module")
def tiny_model(cache_dir: Path) -> SparseTextEmbedding:
    return SparseTextEmbedding(TINY, cache_dir=str(cache_dir))


def lookalike_cache(root: Path, families: Path, *repos: str) -> Path:
    """A fresh cache folder whose ``hf/`` holds the look-alikes of ``repos``, checked against FastEmbed's golden."""
    for repo in repos:
        assert write_repo(repo, root / "hf", families) == FASTEMBED["repos"][repo], repo
    return root


def graphs(cache: Path) -> list[Path]:
    """The graphs converted into ``cache`` so far."""
    return sorted((cache / "onnx").rglob("*.onnx"))


def document_network_untouched(model: SparseTextEmbedding) -> bool:
    doc = model.encoder.loaded.document
    return not doc.main.opened and (doc.fast is None or not doc.fast.opened)


# ------------------------------------------------------------------ model lists (test_common, _list_supported_models)


def test_list_supported_models_is_a_list_of_dicts_in_fastembeds_shape() -> None:
    listed = SparseTextEmbedding.list_supported_models()
    assert isinstance(listed, list) and all(isinstance(d, dict) for d in listed)
    first = listed[0]
    for key in ("model", "license", "size_in_GB", "model_file", "sources"):
        assert first[key], key
    assert first["sources"] == {"hf": TINY, "url": None}
    described = SparseTextEmbedding._list_supported_models()
    assert [d["model"] for d in listed] == [d.model for d in described]
    for row, d in zip(listed, described):
        assert asdict(d).items() <= row.items()  # FastEmbed's fields, beside the registry's own


def test_every_splade_model_of_fastembed_is_described_as_fastembed_describes_it() -> None:
    described = {d.model: d for d in SparseTextEmbedding._list_supported_models()}
    splade = [m for m in FASTEMBED_LIST if m["class"] in ("SpladePP", "IfSplade")]
    assert len(splade) == 3  # the misspelt prithvida/... is a model of its own in FastEmbed's list, as here
    for m in splade:
        d = described[m["model"]]
        assert d.sources.hf == m["hf"] and d.sources.url is None and d.sources.deprecated_tar_struct is False
        assert (d.model_file, d.additional_files) == (m["model_file"], m["additional_files"])
        assert (d.vocab_size, d.license, d.size_in_GB) == (m["vocab_size"], m["license"], m["size_in_GB"])
    assert {m["model"] for m in FASTEMBED_LIST if m["class"] not in ("SpladePP", "IfSplade")}.isdisjoint(described)


def test_model_file_names_the_file_each_model_is_read_from() -> None:
    described = {d.model: d for d in SparseTextEmbedding._list_supported_models()}
    for name in ("naver/splade-v3", "naver/splade-v3-distilbert", "naver/splade-v3-doc"):
        assert described[name].model_file == "pytorch_model.bin", name  # the repositories ship nothing else
    assert described[TINY].model_file == "model.safetensors"
    assert described[GTE].model_file == "model.onnx" and described[GTE].additional_files == ["idf.json"]


# ------------------------------------------------------------------ SparseEmbedding (test_sparse_embedding_base)


def test_an_empty_embedding_indexes_numpy_arrays() -> None:
    empty = SparseEmbedding.from_dict({})
    assert empty.indices.dtype == np.int64 and empty.indices.shape == (0,) and empty.values.shape == (0,)
    assert empty.as_dict() == {}
    dense = np.arange(5, dtype=float)
    dense[empty.indices] = empty.values
    assert dense.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_from_dict_keeps_every_pair_and_sorts_the_indices() -> None:
    data = {3: 1.5, 0: 2.0, 4: -0.25}
    e = SparseEmbedding.from_dict(data)
    # FastEmbed keeps the dict's order ([3, 0, 4]); indices here are always ascending, each with its own value
    assert e.indices.tolist() == [0, 3, 4] and e.values.tolist() == [2.0, 1.5, -0.25]
    assert e.indices.dtype == np.int64 and e.values.dtype == np.float32
    assert e.as_dict() == data  # the round trip: a dict compares equal whatever its order
    assert {k: e.as_object()[k].tolist() for k in ("indices", "values")} == {
        "indices": [0, 3, 4],
        "values": [2.0, 1.5, -0.25],
    }


@pytest.mark.parametrize("empty_first", [True, False])
def test_concatenating_an_empty_embedding_keeps_integer_indices(empty_first: bool) -> None:
    parts = [SparseEmbedding.from_dict({}), SparseEmbedding.from_dict({3: 1.5, 0: 2.0, 4: -0.25})]
    if not empty_first:
        parts.reverse()
    indices = np.concatenate([p.indices for p in parts])
    assert np.issubdtype(indices.dtype, np.integer)
    dense = np.zeros(5)
    dense[indices] = np.concatenate([p.values for p in parts])
    assert dense.tolist() == [2.0, 0.0, 0.0, 1.5, -0.25]


# ------------------------------------------------------------------ encoding (test_sparse_embeddings)


def test_model_names_are_case_insensitive_as_fastembeds_tests_use_them(
    cache_dir: Path, tiny_model: SparseTextEmbedding
) -> None:
    lower = SparseTextEmbedding(TINY.upper(), cache_dir=str(cache_dir))
    assert lower.model_name == TINY.upper() and lower.encoder.name == TINY
    assert list(lower.embed(DOCS)) == list(tiny_model.embed(DOCS))


def test_batch_embedding_and_a_single_embedding_agree(tiny_model: SparseTextEmbedding) -> None:
    first = next(iter(tiny_model.embed(["Hello World"] * 10, batch_size=6)))
    alone = next(iter(tiny_model.embed("Hello World")))
    assert len(first) > 0 and first == alone
    assert first.indices.dtype == np.int64 and first.values.dtype == np.float32
    assert list(tiny_model.embed(x for x in ["Hello World", "moon"])) == list(tiny_model.embed(["Hello World", "moon"]))


@pytest.mark.parametrize("name", [PP, GTE])
def test_fastembeds_models_encode_as_fastembed_by_lower_case_name(
    name: str, families: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As FastEmbed's tests load them (``SparseTextEmbedding(name.lower())``), against FastEmbed's own vectors."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    case = FASTEMBED["models"][name]
    cache = lookalike_cache(tmp_path, families, case["repo"])
    model = SparseTextEmbedding(name.lower(), cache_dir=str(cache))
    text = FASTEMBED["texts"][1]
    doc = next(iter(model.embed([text], batch_size=6)))
    query = next(iter(model.query_embed([text])))
    for got, want in ((doc, case["documents"][1]), (query, case["queries"][1])):
        assert got.indices.tolist() == want["indices"]
        assert np.allclose(got.values, want["values"], atol=1e-4)


def test_parallel_equals_serial_for_documents_and_queries(tiny_model: SparseTextEmbedding) -> None:
    docs = ["hello world", "flag embedding"] * 30
    serial = list(tiny_model.embed(docs, batch_size=10, parallel=None))
    duo = tiny_model.embed(docs, batch_size=10, parallel=2)
    first = next(duo)
    assert multiprocessing.active_children()  # worker processes encode it
    _assert_same_vectors([first, *duo], serial)
    queries = [f"{d} {i}" for i, d in enumerate(docs)]
    # Serial short queries go through the latency graph, the workers' batches of 10 through the main graph: the
    # same weights up to float rounding (the last bit), so the ids are compared exactly and the values to 1e-6.
    _assert_same_vectors(
        list(tiny_model.query_embed(queries, batch_size=10, parallel=0)), list(tiny_model.query_embed(queries))
    )


def _assert_same_vectors(got: list[SparseEmbedding], want: list[SparseEmbedding]) -> None:
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.indices.tolist() == w.indices.tolist(), f"text {i}: index sets differ"
        np.testing.assert_allclose(g.values, w.values, rtol=0, atol=1e-6, err_msg=f"text {i}")


def test_a_short_list_is_encoded_in_this_process_whatever_parallel_says(tiny_model: SparseTextEmbedding) -> None:
    """As in FastEmbed: a ``str``, or a list shorter than ``batch_size``, starts no worker."""
    for texts, batch_size in ((DOCS, 256), (DOCS[0], 1)):
        vectors = tiny_model.embed(texts, batch_size=batch_size, parallel=2)
        first = next(vectors)
        assert multiprocessing.active_children() == []
        assert [first, *vectors] == list(tiny_model.embed(texts))


def test_the_type_stubs_calls_run(cache_dir: Path) -> None:
    model = fastembed_calls.construct(str(cache_dir))
    calls = fastembed_calls.keyword_calls(model)
    for iterator in calls[1:7]:
        (vector,) = list(iterator)  # one text each, as a str or a list
        assert isinstance(vector, SparseEmbedding)
    as_object, as_pairs, round_trip, count = calls[7:]
    assert as_pairs == dict(zip(as_object["indices"], as_object["values"])) == round_trip.as_dict()
    assert count == model.token_count("lunar mission") + model.token_count("moon")
    name, model_file, hf, size, vocab, arena, model_name = fastembed_calls.model_attributes(model)
    assert (name, model_file, hf, vocab, arena, model_name) == (TINY, "model.safetensors", TINY, 30522, False, TINY)
    assert size == 0.017


@pytest.mark.slow
def test_mypy_strict_accepts_fastembed_style_calls(tmp_path: Path) -> None:
    """The calls of FastEmbed's type stub (and what its wrappers read), type-checked against this package; a call
    beside them that breaks the package's types is the one error, so the check is not vacuous."""
    pytest.importorskip("mypy")
    wrong = tmp_path / "wrong.py"
    wrong.write_text("from splade_onnx import SparseTextEmbedding\n\nSparseTextEmbedding().query_embed(query=3)\n")
    files = [str(ROOT / "tests" / "fastembed_calls.py"), str(wrong)]
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"), *files],
        cwd=ROOT,
        env={**os.environ, "MYPYPATH": str(ROOT / "src")},
        capture_output=True,
        text=True,
    )
    errors = [line for line in proc.stdout.splitlines() if ": error: " in line]
    assert len(errors) == 1 and errors[0].startswith(f'{wrong}:3: error: Argument "query"'), proc.stdout + proc.stderr


def test_arguments_fastembed_forwards_are_taken_and_unknown_ones_refused(tiny_model: SparseTextEmbedding) -> None:
    for call, where, valid in (
        (lambda: tiny_model.embed(DOCS, bogus=1), "embed()", "batch_size, parallel, show_progress"),
        (lambda: tiny_model.passage_embed(DOCS, bogus=1), "passage_embed()", "batch_size, parallel, show_progress"),
        (lambda: tiny_model.query_embed("q", bogus=1), "query_embed()", "batch_size, parallel, show_progress"),
        (lambda: tiny_model.token_count("q", bogus=1), "token_count()", "batch_size"),
    ):
        with pytest.raises(
            ArgumentTypeError, match=re.escape(f"{where} got unexpected option(s) 'bogus'; valid: {valid}")
        ):
            call()
    assert list(tiny_model.query_embed(DOCS, batch_size=1, parallel=1, show_progress=False)) == list(
        tiny_model.query_embed(DOCS)
    )


# ------------------------------------------------------------------ lazy_load and .model


def test_lazy_load_leaves_the_network_unloaded_until_documents_come(
    families: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = lookalike_cache(tmp_path, families, FASTEMBED["models"][PP]["repo"])
    model = SparseTextEmbedding(PP, cache_dir=str(cache), lazy_load=True)
    assert not hasattr(model.model, "model") and graphs(cache) == []
    assert (model.model._model_dir / "model.onnx").is_file()  # the files are fetched when the object is made
    list(model.embed(["hello world", "flag embedding"]))
    assert hasattr(model.model, "model") and graphs(cache)
    assert model.model.model.get_providers() == ["CPUExecutionProvider"]
    for verb in ("query_embed", "passage_embed"):  # the query side of SpladePP is its network
        again = SparseTextEmbedding(PP, cache_dir=str(cache), lazy_load=True)
        assert not hasattr(again.model, "model")
        list(getattr(again, verb)(["hello world", "flag embedding"]))
        assert hasattr(again.model, "model")


def test_inference_free_queries_never_load_the_network(
    families: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FastEmbed's IfSplade with ``lazy_load=True``: queries are weighed from idf.json, the network stays unloaded;
    here its graph is not even converted."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    case = FASTEMBED["models"][GTE]
    cache = lookalike_cache(tmp_path, families, case["repo"])
    model = SparseTextEmbedding(GTE, cache_dir=str(cache), lazy_load=True)
    texts = FASTEMBED["texts"]
    queries = list(model.query_embed(texts, parallel=2))
    assert [q.indices.tolist() for q in queries] == [r["indices"] for r in case["queries"]]
    assert all(np.allclose(q.values, r["values"] or [], atol=1e-6) for q, r in zip(queries, case["queries"]))
    assert model.token_count(texts) > 0
    assert not hasattr(model.model, "model") and document_network_untouched(model) and graphs(cache) == []
    docs = list(model.embed(texts, batch_size=FASTEMBED["batch_size"]))
    assert [d.indices.tolist() for d in docs] == [r["indices"] for r in case["documents"]]
    assert hasattr(model.model, "model") and graphs(cache)


def test_inference_free_family_fixture_queries_never_load_the_network(families: Path, tmp_path: Path) -> None:
    free = families / "st_inference_free"
    model = SparseTextEmbedding(str(free), cache_dir=str(tmp_path), lazy_load=True)
    assert model.encoder.query_mode == "static"
    (q,) = list(model.query_embed("how far is the moon"))
    assert len(q) > 0 and document_network_untouched(model) and graphs(tmp_path) == []
    assert not hasattr(model.model, "model")
    eager = SparseTextEmbedding(str(free), cache_dir=str(tmp_path))
    assert graphs(tmp_path) and list(eager.query_embed("how far is the moon")) == [q]
    assert document_network_untouched(eager)  # made, not opened: sessions open on first use
    assert hasattr(eager.model, "model") and eager.encoder.loaded.document.main.opened


def test_load_onnx_model_loads_the_network(families: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = lookalike_cache(tmp_path, families, FASTEMBED["models"][PP]["repo"])
    model = SparseTextEmbedding(PP, cache_dir=str(cache), lazy_load=True)
    assert graphs(cache) == [] and not hasattr(model.model, "model")
    model.model.load_onnx_model()
    assert graphs(cache) and hasattr(model.model, "model")
    assert model.model.model is main_session(model.encoder.loaded.document.backend)
    assert model.model._model_dir.parent.parent.name == "models--Qdrant--Splade_PP_en_v1"  # what FastEmbed's CI deletes
    text = "the moon landing: lunar mission"
    assert model.model.tokenizer.encode(text).ids == model.encoder.loaded.document.tokenizer.encode([text])[0]
    assert (model.model.model_name, model.model.lazy_load, model.model.model_description.model) == (PP, True, PP)
    assert model.model.model_description.sources.hf == "Qdrant/Splade_PP_en_v1"


# ------------------------------------------------------------------ constructor arguments


def test_session_options_reach_every_session(cache_dir: Path, tiny_model: SparseTextEmbedding) -> None:
    assert tiny_model.model.model.get_session_options().enable_cpu_mem_arena is True
    model = SparseTextEmbedding(TINY, cache_dir=str(cache_dir), enable_cpu_mem_arena=False)
    assert model.model.model.get_session_options().enable_cpu_mem_arena is False
    list(model.query_embed("moon"))  # a short batch: the latency graph's session
    fast = model.encoder.loaded.document.fast
    assert fast is not None and fast.get().session.get_session_options().enable_cpu_mem_arena is False
    # one value for every session a model opens: the pruned head's two graphs too
    opts = LoadOptions(cache_dir=cache_dir, projection="pruned", session=SessionSettings(enable_cpu_mem_arena=False))
    pruned = load(TINY, options=opts).document.backend
    assert [s.session.get_session_options().enable_cpu_mem_arena for s in (pruned.state, pruned.head)] == [False] * 2  # type: ignore[attr-defined]
    with pytest.raises(ArgumentTypeError, match=re.escape("enable_cpu_mem_arena must be a bool, got str 'no'")):
        SparseTextEmbedding(TINY, cache_dir=str(cache_dir), enable_cpu_mem_arena="no")


def test_threads_and_providers_take_effect(cache_dir: Path) -> None:
    model = SparseTextEmbedding(TINY, cache_dir=str(cache_dir), threads=1, providers=["CPUExecutionProvider"])
    session = model.model.model
    assert session.get_session_options().intra_op_num_threads == 1
    assert session.get_providers() == ["CPUExecutionProvider"]
    assert model.threads == 1 and model.model.providers == ["CPUExecutionProvider"]


def test_cuda_and_device_ids_choose_providers_as_fastembed_does(cache_dir: Path) -> None:
    def chosen(**kw: Any) -> tuple[Any, tuple[int, ...]]:
        args: dict[str, Any] = {"cache_dir": None, "threads": None, "providers": None, "cuda": "auto"}
        args.update(device_ids=None, lazy_load=False, kwargs={})
        args.update(kw)
        opts = construction(TINY, **args).options
        return opts.providers, opts.devices

    assert chosen(cuda=False) == chosen(cuda="cpu") == (None, ())
    assert chosen(cuda=True) == (["CUDAExecutionProvider"], ())
    assert chosen(cuda="cuda", device_ids=[2, 5]) == ([("CUDAExecutionProvider", {"device_id": 2})], (2, 5))
    assert chosen(cuda=True, kwargs={"device_id": 1})[0] == [("CUDAExecutionProvider", {"device_id": 1})]
    with pytest.warns(UserWarning, match="mutually exclusive"):
        assert chosen(cuda=True, providers=["CPUExecutionProvider"]) == (["CPUExecutionProvider"], ())
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        assert chosen() == (None, ())  # "auto" without CUDA: the CPU
        with pytest.raises(ArgumentError, match="'CUDAExecutionProvider' is not available in this install"):
            SparseTextEmbedding(TINY, cache_dir=str(cache_dir), cuda=True)
    with pytest.raises(ArgumentError, match=re.escape("cuda must be True, False or one of 'cpu', 'cuda', 'auto'")):
        chosen(cuda="gpu")
    with pytest.raises(ArgumentError, match=re.escape("each of device_ids must be an int >= 0, got -1")):
        chosen(device_ids=[-1])


def test_worker_processes_take_the_device_ids_in_turn(tiny: SpladeEncoder) -> None:
    recipe = tiny.loaded.recipes["document"]
    assert recipe.for_worker(3) is recipe  # no device ids: every worker as the parent
    spread = dataclasses.replace(recipe, devices=(2, 5))
    got = [spread.for_worker(i).providers for i in range(5)]
    assert got == [[("CUDAExecutionProvider", {"device_id": d})] for d in (2, 5, 2, 5, 2)]


def test_unknown_constructor_keywords_are_refused_with_the_valid_ones(cache_dir: Path) -> None:
    valid = (
        "valid: model_name, cache_dir, threads, providers, cuda, device_ids, lazy_load, device_id, "
        "specific_model_path, local_files_only, max_length, enable_cpu_mem_arena"
    )
    with pytest.raises(
        ArgumentTypeError, match=re.escape(f"SparseTextEmbedding() got unexpected option(s) 'colour'; {valid}")
    ):
        SparseTextEmbedding(TINY, cache_dir=str(cache_dir), colour="red")


def test_the_misspelt_name_loads_with_fastembeds_deprecation_warning(
    families: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = lookalike_cache(tmp_path, families, FASTEMBED["models"][PP]["repo"])
    with pytest.warns(DeprecationWarning, match="prithivida/Splade_PP_en_v1"):
        model = SparseTextEmbedding("prithvida/Splade_PP_en_v1", cache_dir=str(cache), lazy_load=True)
    assert model.encoder.name == PP
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SparseTextEmbedding(PP, cache_dir=str(cache), lazy_load=True)


def test_fastembed_cache_path_is_the_default_cache(
    families: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = lookalike_cache(tmp_path, families, FASTEMBED["models"][PP]["repo"])
    monkeypatch.setenv("FASTEMBED_CACHE_PATH", str(cache))
    model = SparseTextEmbedding(PP, lazy_load=True, local_files_only=True)
    assert model.cache_dir == str(cache) and model.model._model_dir.is_relative_to(cache)
    monkeypatch.delenv("FASTEMBED_CACHE_PATH")
    with pytest.raises(ModelNotFoundError, match="local_files_only=True"):
        SparseTextEmbedding(PP, cache_dir=str(tmp_path / "empty"), local_files_only=True)


def test_token_count_adds_up_and_ignores_batch_size(tiny_model: SparseTextEmbedding) -> None:
    documents = [
        "Name me a couple of cities were the capitals of Germany?",
        "Berlin is the current capital of Germany, Bonn is a former capital of Germany.",
    ]
    both = tiny_model.token_count(documents)
    assert tiny_model.token_count(documents[0]) + tiny_model.token_count(documents[1]) == both
    assert tiny_model.token_count(documents, batch_size=1) == both
    assert both == sum(len(tiny_model.model.tokenizer.encode(d).ids) for d in documents)
