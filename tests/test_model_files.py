"""Model files that cannot be used raise ModelError (exit 1 on the command line), never ArgumentError (exit 2,
"bad usage"): a corrupt graph, a graph wanting inputs splade-onnx does not feed, an unreadable tokenizer.json."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from splade_onnx import ArgumentError, ModelError, SpladeEncoder
from splade_onnx._session import OrtBackend
from splade_onnx._tokenize import TextTokenizer
from splade_onnx.cli import EXIT_FAIL, main

from texts import SEED_DOCUMENTS


def _graph_file(tiny: SpladeEncoder) -> Path:
    files = tiny.loaded.recipes.get("document")
    assert files is not None
    return files.graph


def test_a_corrupt_graph_is_a_model_error(tiny: SpladeEncoder, tmp_path: Path) -> None:
    data = _graph_file(tiny).read_bytes()
    path = tmp_path / "model.onnx"
    path.write_bytes(data[: len(data) // 2])  # truncated, as by an interrupted copy
    with pytest.raises(ModelError, match=re.escape(f"onnxruntime {ort.__version__} cannot load {path} (")) as err:
        OrtBackend(path)
    assert not isinstance(err.value, ArgumentError)
    assert "delete it if it is a cached graph (splade-onnx builds it again), else export the model again" in str(
        err.value
    )
    path.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ModelError, match=re.escape(f"cannot load {path}")):
        OrtBackend(path)


def test_a_graph_wanting_other_inputs_is_a_model_error(tmp_path: Path) -> None:
    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])
    pixels = helper.make_tensor_value_info("pixel_values", TensorProto.INT64, ["batch", "seq"])
    out = helper.make_tensor_value_info("sparse", TensorProto.FLOAT, ["batch", "seq"])
    node = helper.make_node("Cast", ["input_ids"], ["sparse"], to=TensorProto.FLOAT)
    model = helper.make_model(
        helper.make_graph([node], "foreign", [ids, pixels], [out]), opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8
    path = tmp_path / "model.onnx"
    onnx.save_model(model, str(path))
    backend = OrtBackend(path)
    feed = {"input_ids": np.ones((1, 3), np.int64), "attention_mask": np.ones((1, 3), np.int64)}
    msg = (
        f"the ONNX graph {path} wants an input 'pixel_values' that splade-onnx does not provide (it feeds input_ids, "
        "attention_mask, token_type_ids); export the model with those inputs only"
    )
    with pytest.raises(ModelError, match=re.escape(msg)) as err:
        backend.run(feed)
    assert not isinstance(err.value, ArgumentError)


def _corrupt_tokenizer(tiny_dir: Path, dst: Path) -> Path:
    """A copy of splade-tiny whose tokenizer.json is cut short."""
    shutil.copytree(tiny_dir, dst)
    tok = dst / "tokenizer.json"
    tok.unlink()  # a copy of a read-only cache file may be read-only too
    tok.write_text((tiny_dir / "tokenizer.json").read_text()[:5000])
    return tok


def test_an_unreadable_tokenizer_is_a_model_error(tiny_dir: Path, tmp_path: Path) -> None:
    path = _corrupt_tokenizer(tiny_dir, tmp_path / "m")
    msg = f"cannot read {path} as a tokenizer ("
    fix = "save it again with AutoTokenizer.from_pretrained(...).save_pretrained(folder)"
    with pytest.raises(ModelError, match=re.escape(msg)) as err:
        TextTokenizer.from_folder(path.parent, max_length=None, model_limit=512)
    assert not isinstance(err.value, ArgumentError) and fix in str(err.value)
    path.write_text(json.dumps({"model": {"type": "NoSuchModel"}}))  # valid JSON, not a tokenizer
    with pytest.raises(ModelError, match=re.escape(msg)):
        TextTokenizer.from_folder(path.parent, max_length=None, model_limit=512)


def test_the_cli_exits_1_not_2_on_an_unreadable_tokenizer(
    tiny_dir: Path, cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _corrupt_tokenizer(tiny_dir, tmp_path / "m")
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps({"_id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(SEED_DOCUMENTS)))
    args = ["encode", str(docs), "-o", str(tmp_path / "out.jsonl"), "--model", str(path.parent)]
    code = main([*args, "--cache-dir", str(cache_dir), "-q"])
    err = capsys.readouterr().err
    assert code == EXIT_FAIL, err
    assert f"cannot read {path} as a tokenizer" in err
