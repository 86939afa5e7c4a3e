"""``splade_onnx.pinecone``: pinecone-text's ``BaseSparseEncoder`` contract, against pinecone-text itself.

tests/golden/pinecone_text.json is what pinecone-text 0.11.0's own ``SpladeEncoder`` returned on
splade-tiny (``scripts/make_golden_pinecone.py``, torch + transformers): each text alone, the same
texts as one batch, a ``str``, the empty string, ``max_seq_length`` 8 and 512, an empty list, and
its ``max_seq_length`` checks.  This environment has the real pinecone-text installed (extra
``[pinecone]``, no torch), so the encoder is a subclass of its ``BaseSparseEncoder`` and its
``hybrid_convex_scale`` runs on our dicts; a subprocess checks the module without it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from splade_onnx import ArgumentError, ArgumentTypeError, SpladeEncoder
from splade_onnx.pinecone import DEFAULT_MAX_SEQ_LENGTH, FROM_PINECONE_TEXT, SpladePineconeEncoder

from conftest import ROOT, TINY, golden
from texts import LONG_TEXT, SEED_DOCUMENTS

GOLDEN = golden("pinecone_text.json")
CASES = GOLDEN["cases"]
#: The core's parity with transformers is 3.2e-6; pinecone-text runs the same torch model.
ATOL = 1e-5


@pytest.fixture(scope="module")
def pc(tiny: SpladeEncoder) -> SpladePineconeEncoder:
    return SpladePineconeEncoder(tiny)


def assert_same(ours: object, reference: object) -> None:
    """The same shape (one dict or a list of dicts), the same terms, weights within ATOL, Python types."""
    if isinstance(reference, dict):
        assert isinstance(ours, dict)
        ours, reference = [ours], [reference]
    assert isinstance(ours, list) and isinstance(reference, list) and len(ours) == len(reference)
    for n, (a, b) in enumerate(zip(ours, reference)):
        assert list(a) == ["indices", "values"], n
        assert a["indices"] == b["indices"], n
        np.testing.assert_allclose(a["values"], b["values"], rtol=0, atol=ATOL, err_msg=str(n))
        assert all(type(i) is int for i in a["indices"]) and all(type(v) is float for v in a["values"])
        assert all(v > 0 for v in a["values"]) and a["indices"] == sorted(set(a["indices"]))


def test_the_golden_file_is_pinecone_texts_own() -> None:
    assert GOLDEN["producer"]["pinecone-text"] == "0.11.0" and "torch" in GOLDEN["producer"]
    assert GOLDEN["max_seq_length_default"] == DEFAULT_MAX_SEQ_LENGTH == 256
    assert {c["types"] == ["indices:int", "values:float"] for c in CASES.values() if "types" in c} == {True}


def test_is_pinecone_texts_base_sparse_encoder(pc: SpladePineconeEncoder) -> None:
    from pinecone_text.sparse.base_sparse_encoder import BaseSparseEncoder

    assert FROM_PINECONE_TEXT and isinstance(pc, BaseSparseEncoder)
    assert pc.max_seq_length == 256 and pc.device == "cpu"
    assert repr(pc) == "SpladePineconeEncoder(model='rasyosef/splade-tiny', max_seq_length=256)"


def test_a_list_gives_pinecone_texts_vectors_of_each_text(pc: SpladePineconeEncoder) -> None:
    assert_same(pc.encode_documents(GOLDEN["inputs"]["documents"]), CASES["documents_one_by_one"]["output"])
    assert_same(pc.encode_queries(GOLDEN["inputs"]["queries"]), CASES["queries_one_by_one"]["output"])


def test_pinecone_text_pools_over_the_padding_of_a_batch() -> None:
    """Why a list is compared with pinecone-text's texts one by one: in a batch, its max runs over the padding
    positions too, so a padded text gains terms from them.  Only the longest text of a batch is unpadded."""
    tokens = GOLDEN["tokens"]["documents"]
    batched, alone = CASES["documents"]["output"], CASES["documents_one_by_one"]["output"]
    for n, (b, a) in enumerate(zip(batched, alone)):
        extra = set(b["indices"]) - set(a["indices"])
        assert set(a["indices"]) <= set(b["indices"]), n
        if tokens[n] == max(tokens):
            assert not extra and np.allclose(b["values"], a["values"], atol=ATOL), n
        else:
            assert extra, n  # terms the text itself never produced


def test_a_str_gives_one_dict(pc: SpladePineconeEncoder) -> None:
    assert CASES["one_document"]["shape"] == CASES["one_query"]["shape"] == "dict"
    assert_same(pc.encode_documents(SEED_DOCUMENTS[0]), CASES["one_document"]["output"])
    assert_same(pc.encode_queries("lunar rover"), CASES["one_query"]["output"])
    assert_same(pc.encode_queries(""), CASES["empty_string"]["output"])
    assert pc.encode_documents("lunar rover") == pc.encode_documents(["lunar rover"])[0]


def test_max_seq_length_truncates_as_pinecone_text_does(tiny: SpladeEncoder) -> None:
    assert_same(
        SpladePineconeEncoder(tiny, max_seq_length=8).encode_documents(SEED_DOCUMENTS[:3]), CASES["short"]["output"]
    )
    assert_same(
        SpladePineconeEncoder(tiny, max_seq_length=512).encode_documents([LONG_TEXT]), CASES["long_512"]["output"]
    )
    at_256 = SpladePineconeEncoder(tiny).encode_documents([LONG_TEXT])
    assert at_256 == SpladePineconeEncoder(tiny, max_seq_length=256).encode_documents([LONG_TEXT])
    assert at_256 != SpladePineconeEncoder(tiny, max_seq_length=512).encode_documents([LONG_TEXT])


def test_max_seq_length_checks(tiny: SpladeEncoder) -> None:
    """pinecone-text refuses values outside 1..512 with ValueError; so do we, outside 2..the model's limit."""
    checks = GOLDEN["max_seq_length_checks"]
    assert (
        checks["0"] == checks["513"] == {"error": "ValueError", "message": "max_seq_length must be between 1 and 512"}
    )
    assert checks["1"] == {"output": 1}  # accepted there, but no room for [CLS] and [SEP]: the text is not cut at all
    assert_same(SpladePineconeEncoder(tiny).encode_documents("moon"), CASES["max_seq_length_1"]["output"])
    for n in (0, 1, -3):
        with pytest.raises(
            ArgumentError, match=re.escape(f"max_seq_length must be at least 2 (room for [CLS] and [SEP]), got {n}")
        ):
            SpladePineconeEncoder(tiny, max_seq_length=n)
    with pytest.raises(ValueError, match=re.escape("max_seq_length must be from 2 to 512 for rasyosef/splade-tiny")):
        SpladePineconeEncoder(tiny, max_seq_length=513)
    for bad in ("256", 25.6, True):
        with pytest.raises(ArgumentTypeError, match=re.escape("max_seq_length must be an int or None, got")):
            SpladePineconeEncoder(tiny, max_seq_length=bad)  # type: ignore[arg-type]


def test_an_empty_list_gives_an_empty_list(pc: SpladePineconeEncoder) -> None:
    """pinecone-text's SpladeEncoder fails on [] (an IndexError inside it); its BM25Encoder, like us, returns []."""
    assert CASES["empty_list"]["error"] == "IndexError"
    assert pc.encode_documents([]) == [] and pc.encode_queries([]) == []


def test_inputs_that_are_neither_a_str_nor_a_list_of_str(pc: SpladePineconeEncoder) -> None:
    for bad in (None, 3, b"moon"):
        with pytest.raises(ArgumentTypeError, match=re.escape("texts must be a str or a list of str, got")):
            pc.encode_documents(bad)  # type: ignore[call-overload]
    with pytest.raises(ArgumentTypeError, match=re.escape("text at position 1 is int, not str")):
        pc.encode_queries(["moon", 3])  # type: ignore[list-item]
    assert pc.encode_documents(("moon", "lunar rover")) == pc.encode_documents(["moon", "lunar rover"])  # type: ignore[call-overload]


def test_each_call_returns_new_lists(pc: SpladePineconeEncoder) -> None:
    """LangChain's Pinecone hybrid retriever rewrites ``values`` in place; nothing of ours may change with it."""
    first = pc.encode_documents(["lunar rover"])
    first[0]["values"] = [float(v) * 0 for v in first[0]["values"]]
    first[0]["indices"].clear()
    assert pc.encode_documents(["lunar rover"]) != first
    assert_same(pc.encode_documents(["lunar rover"]), [pc.encode_documents("lunar rover")])


def test_constructor_options(tiny: SpladeEncoder, cache_dir: Path) -> None:
    with pytest.raises(
        ArgumentTypeError, match=re.escape("takes the model first, got the int 128; pass max_seq_length=128")
    ):
        SpladePineconeEncoder(128)  # type: ignore[arg-type]
    with pytest.raises(ArgumentError, match=re.escape("device='cuda': this encoder runs on onnxruntime")):
        SpladePineconeEncoder(tiny, device="cuda")
    with pytest.raises(ArgumentError, match=re.escape("pass max_seq_length=, pinecone-text's name")):
        SpladePineconeEncoder(TINY, max_length=128, cache_dir=cache_dir)
    with pytest.raises(ArgumentError, match=re.escape("options ['quantize'] apply when loading a model by name")):
        SpladePineconeEncoder(tiny, quantize="int8")
    with pytest.raises(TypeError, match="colour"):
        SpladePineconeEncoder(TINY, colour="red", cache_dir=cache_dir)
    by_name = SpladePineconeEncoder(TINY, cache_dir=cache_dir, device="cpu", max_seq_length=64)
    assert by_name.encode_queries("lunar rover") == SpladePineconeEncoder(tiny, max_seq_length=64).encode_queries(
        "lunar rover"
    )


def test_hybrid_convex_scale_takes_our_dicts(pc: SpladePineconeEncoder) -> None:
    from pinecone_text.hybrid import hybrid_convex_scale

    sparse = pc.encode_queries("lunar rover")
    dense, scaled = hybrid_convex_scale([0.5, -1.0, 2.0], sparse, alpha=0.25)
    assert dense == [0.125, -0.25, 0.5]
    assert scaled["indices"] == sparse["indices"]
    assert scaled["values"] == pytest.approx([0.75 * v for v in sparse["values"]])
    assert sparse == pc.encode_queries("lunar rover")  # the input is left as it was
    with pytest.raises(ValueError, match="Alpha must be between 0 and 1"):
        hybrid_convex_scale([0.5], sparse, alpha=1.5)


def test_an_inference_free_model_queries_its_static_table(families: Path) -> None:
    enc = SpladeEncoder.from_pretrained(str(families / "st_inference_free"))
    assert SpladePineconeEncoder(enc).max_seq_length == 40  # 256 is past the model's 40 positions: its limit
    with pytest.raises(ArgumentError, match=re.escape(f"max_seq_length must be from 2 to 40 for {enc.name}")):
        SpladePineconeEncoder(enc, max_seq_length=41)
    pc = SpladePineconeEncoder(enc, max_seq_length=16)
    assert enc.query_mode == "static"
    text = " ".join(SEED_DOCUMENTS[:4])  # far past 16 tokens, most of them distinct
    (query,) = enc.encode_queries([text])
    assert pc.encode_queries(text) == {"indices": query.indices.tolist(), "values": query.values.tolist()}
    assert len(query.indices) > 16  # the static side is not cut at max_seq_length
    (doc,) = enc.encode_documents([text], max_length=16)
    assert pc.encode_documents(text) == {"indices": doc.indices.tolist(), "values": doc.values.tolist()}


#: The module in a process where pinecone-text cannot be imported, as in an environment without the extra.
WITHOUT_PINECONE_TEXT = r"""
import importlib.abc, json, sys


class Uninstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "pinecone_text":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, Uninstalled())
from splade_onnx.pinecone import FROM_PINECONE_TEXT, SpladePineconeEncoder

pc = SpladePineconeEncoder(sys.argv[1], cache_dir=sys.argv[2])
print(json.dumps({
    "from_pinecone_text": FROM_PINECONE_TEXT,
    "mro": [c.__module__ + "." + c.__qualname__ for c in SpladePineconeEncoder.__mro__],
    "loaded": sorted(m for m in sys.modules if m.startswith("pinecone_text")),
    "one": pc.encode_queries("lunar rover"),
    "list": pc.encode_documents(["lunar rover", "moon"]),
}))
"""


def test_without_pinecone_text_the_same_class_stands_alone(pc: SpladePineconeEncoder, cache_dir: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", WITHOUT_PINECONE_TEXT, TINY, str(cache_dir)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), *sys.path])},  # this checkout's code
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.splitlines()[-1])
    assert out["from_pinecone_text"] is False and out["loaded"] == []
    assert out["mro"] == ["splade_onnx.pinecone.SpladePineconeEncoder", "builtins.object"]
    assert out["one"] == pc.encode_queries("lunar rover")
    assert out["list"] == pc.encode_documents(["lunar rover", "moon"])
