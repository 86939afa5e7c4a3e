from pathlib import Path

import splade_onnx
from splade_onnx._registry import close_matches, get, list_models

FIELDS = {
    "name",
    "sources",
    "license",
    "commercial_use",
    "size_mb",
    "vocab_size",
    "architecture",
    "pooling",
    "activation",
    "query_mode",
    "description",
}


def test_every_entry_is_complete() -> None:
    rows = splade_onnx.list_supported_models()
    assert rows[0]["name"] == splade_onnx.DEFAULT_MODEL == "rasyosef/splade-tiny"
    assert {"rasyosef/splade-tiny", "prithivida/Splade_PP_en_v1"} <= {r["name"] for r in rows}
    for r in rows:
        assert set(r) >= FIELDS, r["name"]
        assert r["sources"] and all(isinstance(s, str) for s in r["sources"])


def test_non_commercial_licenses_are_marked() -> None:
    for m in list_models():
        if m.name.startswith("naver/"):
            assert m.license == "cc-by-nc-sa-4.0" and m.commercial_use is False, m.name
        if m.license.startswith("cc-by-nc"):
            assert not m.commercial_use and "Non-commercial" in m.description


def test_lookup_and_aliases() -> None:
    assert get("RASYOSEF/SPLADE-TINY") is get("rasyosef/splade-tiny")
    assert get("prithvida/Splade_PP_en_v1") is get("prithivida/Splade_PP_en_v1")  # FastEmbed's typo alias
    assert get("nope") is None
    assert close_matches("splade_pp_en_v1")[0] == "prithivida/Splade_PP_en_v1"


def test_every_entry_point_defaults_to_the_one_constant(cache_dir: Path) -> None:
    import inspect

    from splade_onnx.cli import build_parser

    # None, so that a model given twice (positionally and as document=) is told apart from the default
    assert inspect.signature(splade_onnx.SpladeEncoder.from_pretrained).parameters["model"].default is None
    assert splade_onnx.SpladeEncoder.from_pretrained(cache_dir=cache_dir).name == splade_onnx.DEFAULT_MODEL
    assert inspect.signature(splade_onnx.SparseTextEmbedding).parameters["model_name"].default == (
        splade_onnx.DEFAULT_MODEL
    )
    assert inspect.signature(splade_onnx.evaluate).parameters["encoder"].default == splade_onnx.DEFAULT_MODEL
    args = build_parser().parse_args(["search", "index.npz", "q"])
    assert args.model == splade_onnx.DEFAULT_MODEL
