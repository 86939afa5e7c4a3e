"""The FastEmbed facade: the seed page's code with only the import line changed."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from splade_onnx import ArgumentError, ArgumentTypeError, SparseEmbedding, SparseTextEmbedding, SpladeEncoder

from conftest import TINY
from texts import SEED_DOCUMENTS


@pytest.fixture(scope="module")
def model(cache_dir: Path) -> SparseTextEmbedding:
    return SparseTextEmbedding(model_name=TINY, cache_dir=str(cache_dir))


def test_seed_page_code_runs(model: SparseTextEmbedding, tiny: SpladeEncoder) -> None:
    # As on FastEmbed's SPLADE page, with `from fastembed import ...` changed to splade_onnx.
    documents = SEED_DOCUMENTS
    sparse_embeddings_list = list(model.embed(documents, batch_size=6))
    index = 0
    emb = sparse_embeddings_list[index]
    assert isinstance(emb, SparseEmbedding)
    assert isinstance(emb.values, np.ndarray) and isinstance(emb.indices, np.ndarray)
    assert emb.values[:5].shape == (5,) and emb.indices[:5].shape == (5,)
    assert len(sparse_embeddings_list) == 12
    # the same batches as the encoder's: a batch short enough for the latency graph runs the dense head there
    same = tiny.encode_documents(documents, batch_size=6)
    assert [e.as_dict() for e in sparse_embeddings_list] == [e.as_dict() for e in same]
    token_weights = dict(model.encoder.decode(emb))
    assert max(token_weights, key=token_weights.__getitem__) in {"india", "lunar", "mission", "chandra"}


def test_query_and_passage_embed(model: SparseTextEmbedding) -> None:
    (q,) = list(model.query_embed("lunar landing"))
    (q2,) = list(model.query_embed(["lunar landing"]))
    (p,) = list(model.passage_embed(["lunar landing"]))
    assert q == q2 == p
    assert len(list(model.embed("a single string is one document"))) == 1


def test_parallel_equals_serial(model: SparseTextEmbedding) -> None:
    docs = [f"{d} #{i}" for i, d in enumerate(SEED_DOCUMENTS * 40)]
    serial = list(model.embed(docs))
    parallel = list(model.embed(docs, parallel=2))
    assert len(parallel) == len(docs)
    assert all(a == b for a, b in zip(serial, parallel))


def test_list_supported_models_has_fastembed_shape() -> None:
    models = SparseTextEmbedding.list_supported_models()
    names = [m["model"] for m in models]
    assert names[0] == TINY and "prithivida/Splade_PP_en_v1" in names  # the default model first
    for m in models:
        assert {"model", "sources", "model_file", "description", "license", "size_in_GB", "vocab_size"} <= set(m)
    pp = models[names.index("prithivida/Splade_PP_en_v1")]
    assert pp["sources"]["hf"] == "Qdrant/Splade_PP_en_v1" and pp["model_file"] == "model.onnx"


def test_unknown_options_are_rejected_with_the_valid_ones() -> None:
    with pytest.raises(TypeError, match=re.escape("SparseTextEmbedding() got unexpected option(s) 'colour'; valid:")):
        SparseTextEmbedding(TINY, colour="red")


def test_lazy_load_and_local_folder(tiny_dir: Path, cache_dir: Path) -> None:
    m = SparseTextEmbedding("any-name", cache_dir=str(cache_dir), specific_model_path=str(tiny_dir), lazy_load=True)
    assert not hasattr(m.model, "model")  # the network is not loaded (lazy_load); the folder is read
    assert len(next(iter(m.embed(["moon"])))) > 0
    assert hasattr(m.model, "model")
    with pytest.raises(TypeError, match=re.escape("embed() got unexpected option(s) 'foo'")):
        list(m.embed(["x"], foo=1))
    assert m.token_count("moon") == 3


def test_arguments_are_checked_when_called_not_when_iterated(model: SparseTextEmbedding) -> None:
    batch = "batch_size must be a positive int or None, got 0"
    for call in (
        lambda: model.embed(["x"], batch_size=0),
        lambda: model.embed(["x"], 0),
        lambda: model.passage_embed(["x"], batch_size=0),
        lambda: model.query_embed("q", batch_size=0),
        lambda: model.token_count(["x"], batch_size=0),
    ):
        with pytest.raises(ArgumentError, match=re.escape(batch)):
            call()  # never iterated
    with pytest.raises(ArgumentError, match=re.escape("parallel must be None, 0 (one worker per core)")):
        model.embed(["x"], parallel=-2)
    with pytest.raises(ArgumentTypeError, match=re.escape("query_embed() got unexpected option(s) 'bogus'; valid: ")):
        model.query_embed("q", bogus=1)
    with pytest.raises(ArgumentTypeError, match=re.escape("passage_embed() got unexpected option(s) 'foo'; valid: ")):
        model.passage_embed(["x"], foo=1)
    with pytest.raises(ArgumentTypeError, match=re.escape("embed() got unexpected option(s) 'foo'; valid: batch_size")):
        model.embed(["x"], foo=1)


def test_bytes_are_rejected_with_their_position(model: SparseTextEmbedding) -> None:
    whole = "texts must be an iterable of str, got bytes; decode it and wrap it: [data.decode('utf-8')]"
    for call in (model.embed, model.passage_embed, model.query_embed, model.token_count):
        with pytest.raises(ArgumentTypeError, match=re.escape(whole)):
            call(b"moon")  # type: ignore[operator]
    item = "text at position 1 is bytes, not str; decode it first: text.decode('utf-8')"
    lazy = model.embed(iter(["moon", b"landing"]))  # type: ignore[list-item]
    with pytest.raises(ArgumentTypeError, match=re.escape(item)):
        list(lazy)
    with pytest.raises(ArgumentTypeError, match=re.escape(item)):
        list(model.query_embed(["moon", b"landing"]))  # type: ignore[list-item]


def test_query_embed_takes_a_generator(model: SparseTextEmbedding) -> None:
    (q,) = list(model.query_embed(q for q in ["lunar landing"]))
    assert q == next(iter(model.query_embed("lunar landing")))
