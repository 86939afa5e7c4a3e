"""Options: checked by the core when a component is built, per side, and the model families' query sides.

The inference-free model is the core's seeded fixture (sentence-transformers Router layout): its
queries must be weighted tokens from the static table, never the document network.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from haystack import Document
from haystack_integrations.components.embedders.splade import SpladeSparseDocumentEmbedder, SpladeSparseTextEmbedder
from tokenizers import Tokenizer

from splade_onnx import ArgumentError, ArgumentTypeError, SpladeEncoder

from conftest import CACHE, SEED


@pytest.fixture(scope="module")
def free_dir(families: Path) -> Path:
    return families / "st_inference_free"


@pytest.fixture(scope="module")
def free(free_dir: Path) -> SpladeEncoder:
    return SpladeEncoder.from_pretrained(free_dir, cache_dir=CACHE)


@pytest.fixture(scope="module")
def query_text(free: SpladeEncoder) -> str:
    """A query sharing terms with the random documents: whole words among their heaviest terms."""
    words = [t for d in free.encode_documents(SEED) for t, _ in free.decode(d, top_k=40) if t.isalpha()]
    q = " ".join(dict.fromkeys(words[:: max(1, len(words) // 8)]))
    (v,) = free.encode_queries([q])
    assert any(v.dot(d) > 0 for d in free.encode_documents(SEED)), q
    return q


def as_core(embedding: object) -> tuple[list[int], list[float]]:
    return embedding.indices, embedding.values  # type: ignore[attr-defined]


def core(v: object) -> tuple[list[int], list[float]]:
    return v.indices.tolist(), v.values.tolist()  # type: ignore[attr-defined]


def test_the_text_embedder_uses_the_static_query_side(free: SpladeEncoder, free_dir: Path, query_text: str) -> None:
    assert free.query_mode == "static"
    got = as_core(SpladeSparseTextEmbedder(str(free_dir), cache_dir=str(CACHE)).run(query_text)["sparse_embedding"])
    (want,) = free.encode_queries([query_text])
    assert got == core(want) != core(free.encode_documents([query_text])[0])
    tok = Tokenizer.from_file(str(free_dir / "query_0_SparseStaticEmbedding" / "tokenizer.json"))
    assert set(got[0]) <= set(tok.encode(query_text, add_special_tokens=False).ids)  # no expansion
    docs = SpladeSparseDocumentEmbedder(str(free_dir), cache_dir=str(CACHE), progress_bar=False)
    out = docs.run([Document(content=t) for t in SEED])["documents"]
    assert [as_core(d.sparse_embedding) for d in out] == [core(v) for v in free.encode_documents(SEED)]


def test_two_tower_query_model(families: Path, query_text: str) -> None:
    tower = families / "two_tower"
    text = SpladeSparseTextEmbedder(str(tower / "document"), query_model=str(tower / "query"), cache_dir=str(CACHE))
    text.warm_up()
    assert text.encoder is not None and text.encoder.query_mode == "two-tower"
    alone = SpladeEncoder.from_pretrained(tower / "query", cache_dir=CACHE)
    assert as_core(text.run(query_text)["sparse_embedding"]) == core(alone.encode_documents([query_text])[0])
    docs = SpladeSparseDocumentEmbedder(
        str(tower / "document"), query_model=str(tower / "query"), cache_dir=str(CACHE), progress_bar=False
    )
    docs.warm_up()
    assert docs.encoder is text.encoder  # one pair loaded once for both sides
    document = SpladeEncoder.from_pretrained(tower / "document", cache_dir=CACHE)
    (d,) = docs.run([Document(content=SEED[0])])["documents"]
    assert as_core(d.sparse_embedding) == core(document.encode_documents(SEED[:1])[0])


def test_pruning_windows_and_lengths_per_side(free: SpladeEncoder, free_dir: Path, query_text: str) -> None:
    docs = SpladeSparseDocumentEmbedder(
        str(free_dir),
        cache_dir=str(CACHE),
        top_k=5,
        long_documents="windows",
        stride=4,
        batch_size=2,
        progress_bar=False,
    )
    (full,) = free.encode_queries([query_text])
    cut = float(sorted(full.values)[len(full.values) // 2])  # drops about half the query's terms
    text = SpladeSparseTextEmbedder(str(free_dir), cache_dir=str(CACHE), min_weight=cut, max_length=4)
    long = " ".join(SEED) * 4  # past the fixture's 40 positions
    texts = [*SEED, long]
    out = [as_core(d.sparse_embedding) for d in docs.run([Document(content=t) for t in texts])["documents"]]
    assert out == [core(v) for v in free.encode_documents(texts, top_k=5, long_documents="windows", stride=4)]
    assert all(len(i) <= 5 for i, _ in out)
    assert out[-1] != core(free.encode_documents([long], top_k=5)[0])  # windows: not the truncated vector
    q = as_core(text.run(query_text)["sparse_embedding"])
    assert q == core(free.encode_queries([query_text], min_weight=cut, max_length=4)[0])
    assert q != core(free.encode_queries([query_text], min_weight=cut)[0])  # max_length cut the query
    assert len(q[0]) < len(full.indices) and all(v >= cut for v in q[1])
    shortened = SpladeSparseDocumentEmbedder(str(free_dir), cache_dir=str(CACHE), max_length=8, progress_bar=False)
    (d,) = shortened.run([Document(content=SEED[0])])["documents"]
    assert as_core(d.sparse_embedding) == core(free.encode_documents(SEED[:1], max_length=8)[0])
    assert docs.encoder is text.encoder is shortened.encoder  # per-side options never reload the model


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"top_k": 0}, ArgumentError, "top_k must be a positive int or None, got 0"),
        ({"min_weight": float("inf")}, ArgumentTypeError, "min_weight must be a finite number or None, got inf"),
        ({"threads": 0}, ArgumentError, "threads must be a positive int or None, got 0"),
        ({"quantize": "int4"}, ArgumentError, "quantize must be one of (None, 'int8'), got 'int4'"),
        ({"projection": "sparse"}, ArgumentError, "projection must be one of 'auto', 'dense', 'pruned', got 'sparse'"),
        ({"local_files_only": "yes"}, ArgumentTypeError, "local_files_only must be a bool, got str 'yes'"),
        ({"providers": ["NoSuchExecutionProvider"]}, ArgumentError, "onnxruntime provider 'NoSuchExecutionProvider'"),
        ({"providers": "CPUExecutionProvider"}, ArgumentTypeError, "providers must be a list or None, got str"),
        ({"cache_dir": 3}, ArgumentTypeError, "cache_dir must be a str or os.PathLike or None, got int 3"),
    ],
)
@pytest.mark.parametrize("cls", [SpladeSparseTextEmbedder, SpladeSparseDocumentEmbedder])
def test_bad_options_fail_at_construction(
    cls: type, options: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        cls(**options)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        (
            {"long_documents": "split"},
            ArgumentError,
            "long_documents must be one of 'truncate', 'windows', got 'split'",
        ),
        ({"stride": 8}, ArgumentError, "stride is the overlap of windows: pass it with long_documents='windows'"),
        ({"batch_size": 0}, ArgumentError, "batch_size must be a positive int or None, got 0"),
        ({"progress_bar": 1}, ArgumentTypeError, "progress_bar must be a bool, got int 1"),
        (
            {"meta_fields_to_embed": "title"},
            ArgumentTypeError,
            "meta_fields_to_embed must be a list of str, got a single str",
        ),
        (
            {"meta_fields_to_embed": ["a", 2]},
            ArgumentTypeError,
            "meta_fields_to_embed must be a list of str, got 2 in it",
        ),
        ({"embedding_separator": None}, ArgumentTypeError, "embedding_separator must be a str, got NoneType"),
    ],
)
def test_bad_document_options_fail_at_construction(
    options: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        SpladeSparseDocumentEmbedder(**options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cls", "name"),
    [(SpladeSparseTextEmbedder, "long_documents"), (SpladeSparseDocumentEmbedder, "document_top_k")],
)
def test_an_unknown_option_lists_the_valid_ones(cls: type, name: str) -> None:
    with pytest.raises(ArgumentTypeError, match=rf"got unexpected option\(s\) '{name}'; valid: query_model, "):
        cls(**{name: 1})
    with pytest.raises(ArgumentTypeError, match="takes its options by keyword only"):
        cls("rasyosef/splade-tiny", None)


@pytest.mark.parametrize(
    ("max_length", "error", "message"),
    [
        (10_000, ArgumentError, "max_length must be an int in [2, {limit}] for this model, got 10000"),
        ("64", ArgumentTypeError, "max_length must be an int in [2, {limit}] for this model, got str '64'"),
    ],
)
@pytest.mark.parametrize("cls", [SpladeSparseTextEmbedder, SpladeSparseDocumentEmbedder])
def test_max_length_is_checked_against_the_model_at_warm_up(
    free_dir: Path, cls: type, max_length: object, error: type[Exception], message: str
) -> None:
    """Its allowed range is the side's (the static query table's 512, the document network's 40 positions):
    the component is built, and refused at warm_up, before any text."""
    message = message.format(limit=512 if cls is SpladeSparseTextEmbedder else 40)
    component = cls(str(free_dir), cache_dir=str(CACHE), max_length=max_length)
    with pytest.raises(error, match=re.escape(message)):
        component.warm_up()
    with pytest.raises(error, match=re.escape(message)):
        component.run("moon" if cls is SpladeSparseTextEmbedder else [Document(content="moon")])
    assert component.encoder is None
