"""The splade-onnx command line, run in-process and once as the installed console script."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from splade_onnx import (
    ArgumentError,
    ArgumentTypeError,
    FileMissingError,
    IndexFormatError,
    InputError,
    MissingExtraError,
    ModelIdentity,
    ModelMismatchError,
    ModelNotFoundError,
    SparseEmbedding,
    SparseIndex,
    SpladeEncoder,
)
from splade_onnx.cli import EXIT_FAIL, EXIT_INPUT, EXIT_OK, EXIT_USAGE, main

from conftest import TINY
from texts import SEED_DOCUMENTS


@pytest.fixture
def run(cache_dir: Path, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    def _run(*args: str) -> tuple[int, str, str]:
        code = main([*args[:1], *args[1:], "--cache-dir", str(cache_dir), "-q"] if args[0] != "models" else list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    return _run


@pytest.fixture
def docs_jsonl(tmp_path: Path) -> Path:
    p = tmp_path / "docs.jsonl"
    p.write_text("".join(json.dumps({"_id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(SEED_DOCUMENTS)))
    return p


def test_encode_writes_the_core_vectors(run, docs_jsonl: Path, tmp_path: Path, tiny: SpladeEncoder) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "vectors.jsonl"
    code, _, _ = run("encode", str(docs_jsonl), "-o", str(out))
    assert code == EXIT_OK
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [f"d{i}" for i in range(12)]
    for row, emb in zip(rows, tiny.encode_documents(SEED_DOCUMENTS)):
        assert row["indices"] == emb.indices.tolist()
        np.testing.assert_allclose(row["values"], emb.values, atol=1e-6)


def test_encode_with_either_projection_writes_the_same_vectors(run, docs_jsonl: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rows = {}
    for projection in ("dense", "pruned"):
        out = tmp_path / f"{projection}.jsonl"
        assert run("encode", str(docs_jsonl), "-o", str(out), "--projection", projection)[0] == EXIT_OK
        rows[projection] = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows["dense"]) == 12
    for d, p in zip(rows["dense"], rows["pruned"]):
        assert d["indices"] == p["indices"]
        np.testing.assert_allclose(d["values"], p["values"], atol=1e-6)
    code, _, err = run("encode", str(docs_jsonl), "-o", str(tmp_path / "x.jsonl"), "--projection", "sparse")
    assert code == EXIT_USAGE and "invalid choice: 'sparse'" in err


def test_encode_reports_malformed_lines_and_writes_nothing(run, docs_jsonl: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with docs_jsonl.open("a") as f:
        f.write("{not json}\n")
    out = tmp_path / "vectors.jsonl"
    code, _, err = run("encode", str(docs_jsonl), "-o", str(out))
    assert code == EXIT_INPUT
    assert f"{docs_jsonl}:13: not valid JSON" in err
    assert not out.exists() and list(tmp_path.glob(".vectors*")) == []


def test_index_then_search(run, docs_jsonl: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    index = tmp_path / "seed.npz"
    assert run("index", str(docs_jsonl), "-o", str(index))[0] == EXIT_OK
    assert len(SparseIndex.load(index)) == 12
    code, out, _ = run("search", str(index), "How much did the mission cost?", "-k", "3", "--json")
    assert code == EXIT_OK
    hits = json.loads(out)["hits"]
    assert hits[0]["id"] == "d4" and len(hits) == 3


def test_search_engine_choice(  # type: ignore[no-untyped-def]
    run, docs_jsonl: Path, tmp_path: Path, cache_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    index = tmp_path / "seed.npz"
    assert run("index", str(docs_jsonl), "-o", str(index))[0] == EXIT_OK
    search = ("search", str(index), "How much did the mission cost?", "rocket launch site", "-k", "5")
    default = run(*search)
    assert default[0] == EXIT_OK and "d4" in default[1]
    assert run(*search, "--engine", "exhaustive") == run(*search, "--engine", "exact") == default
    exact = [json.loads(line)["hits"] for line in run(*search, "--json")[1].splitlines()]
    code, out, _ = run(*search, "--json", "--engine", "seismic")  # approximate: each hit with its exact score
    assert code == EXIT_OK
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="splade_onnx._seismic_store"):
        assert run(*search, "--json", "--engine", "seismic")[:2] == (code, out)
    assert f"read the structure built before from {cache_dir / 'seismic'}" in caplog.text  # kept in --cache-dir
    for want, got in zip(exact, (json.loads(line)["hits"] for line in out.splitlines()), strict=True):
        assert got[0] == want[0] and all(h in want for h in got)
    code, out, err = run("search", str(index), "q", "--engine", "bm25")
    assert (code, out) == (EXIT_USAGE, "") and "invalid choice: 'bm25'" in err
    assert all(f"'{name}'" in err.split("invalid choice")[1] for name in ("exact", "exhaustive", "seismic"))


def test_eval_prints_a_table(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "mini"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": str(i), "text": t}) + "\n" for i, t in enumerate(SEED_DOCUMENTS))
    )
    (folder / "queries.jsonl").write_text('{"_id": "4", "text": "cost of the mission"}\n')
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n4\t4\t1\n")
    code, out, _ = run("eval", str(folder), "--bm25", "--hybrid")
    assert code == EXIT_OK
    assert "| system | nDCG@10 | R@100 | RR@10 |" in out
    for label in ("SPLADE (rasyosef/splade-tiny)", "BM25 (bm25s)", "hybrid RRF (k=60)", "hybrid convex (0.5 SPLADE"):
        assert label in out
    (folder / "queries.jsonl").write_text('{"_id": "4", "text": "cost"}\n{"_id": 5}\n')
    code, _, err = run("eval", str(folder))
    assert code == EXIT_INPUT and "queries.jsonl:2: missing field 'text'" in err


def test_explain_models_convert(run) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run("explain", "lunar rover", "It aimed to land a rover on the Moon's surface")
    assert code == EXIT_OK and out.startswith("score ") and "rover" in out and "expansion terms" in out
    code, out, _ = run("models")
    assert code == EXIT_OK and "| rasyosef/splade-tiny | apache-2.0 | yes |" in out and "| NO |" in out
    code, out, _ = run("convert", TINY, "--int8")
    assert code == EXIT_OK and out.strip().endswith("model.onnx") and Path(out.strip()).is_file()


def test_console_script(cache_dir: Path) -> None:
    exe = Path(sys.executable).parent / "splade-onnx"
    proc = subprocess.run(
        [str(exe), "search", "/no/such/index.npz", "q"],
        capture_output=True,
        text=True,
        env={**os.environ, "SPLADE_ONNX_CACHE": str(cache_dir)},
        check=False,
    )
    assert proc.returncode == 1 and "/no/such/index.npz" in proc.stderr
    proc = subprocess.run([str(exe), "bogus"], capture_output=True, text=True, check=False)
    assert proc.returncode == 2


# ---------------------------------------------------------------------------- input


def test_blank_lines_are_skipped_with_one_warning(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    docs = tmp_path / "docs.txt"
    docs.write_text("The rover landed on the Moon.\n\n   \nThe mission cost 75 million dollars.\r\n\n")
    out = tmp_path / "vectors.jsonl"
    code, _, err = run("encode", str(docs), "-o", str(out))
    assert code == EXIT_OK
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["1", "4"]  # line numbers
    assert err.count("warning") == 1 and f"skipped 3 blank lines in {docs}" in err
    index = tmp_path / "docs.npz"
    assert run("index", str(docs), "-o", str(index))[0] == EXIT_OK
    code, out_text, _ = run("search", str(index), "how much did it cost", "--json")
    assert SparseIndex.load(index).ids == ["1", "4"]
    hits = [h["id"] for h in json.loads(out_text)["hits"]]
    assert hits[0] == "4" and set(hits) <= {"1", "4"}  # no empty document ranks first


def _stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode()), encoding="utf-8"))


def test_stdin_is_sniffed_for_jsonl(run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny: SpladeEncoder) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "vectors.jsonl"
    _stdin(
        monkeypatch,
        "\n" + "".join(json.dumps({"_id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(SEED_DOCUMENTS[:3])),
    )
    assert run("encode", "-", "-o", str(out))[0] == EXIT_OK
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["d0", "d1", "d2"]
    assert rows[1]["indices"] == tiny.encode_documents([SEED_DOCUMENTS[1]])[0].indices.tolist()
    _stdin(monkeypatch, "[1, 2]\nplain text\n\n")  # JSON, but not an object: plain text
    assert run("encode", "-", "-o", str(out))[0] == EXIT_OK
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["1", "2"]
    _stdin(monkeypatch, '{"_id": "a", "text": "x"}\nnot json\n')  # jsonl from its first line on
    monkeypatch.setattr(SpladeEncoder, "from_pretrained", _must_not_load)
    code, _, err = run("encode", "-")
    assert code == EXIT_INPUT and "<stdin>:2: not valid JSON" in err
    assert "first non-blank line is a JSON object" in " ".join(build_parser_help("encode").split())


def build_parser_help(command: str) -> str:
    from splade_onnx.cli import build_parser

    sub = build_parser()._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
    return str(sub.format_help())


# ---------------------------------------------------------------------------- checks before the model


def _must_not_load(*args: object, **kwargs: object) -> None:
    raise AssertionError("must not load")


def _beir_folder(folder: Path, corpus: str) -> Path:
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(corpus)
    (folder / "queries.jsonl").write_text('{"_id": "q", "text": "x"}\n')
    (folder / "qrels" / "test.tsv").write_text("q\t1\t1\n")
    return folder


@pytest.mark.parametrize(
    "case",
    [
        "missing_extra",
        "bad_corpus",
        "index_into_missing_folder",
        "output_is_a_folder",
        "duplicate_ids",
        "duplicate_line_id",
        "not_utf8",
        "bad_id",
        "missing_field",
        "missing_input",
        "input_is_a_folder",
        "corrupt_index",
        "missing_index",
        "missing_ann_extra",
    ],
)
def test_errors_come_before_the_model_loads(
    run, tmp_path: Path, docs_jsonl: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(SpladeEncoder, "from_pretrained", _must_not_load)
    text = tmp_path / "docs.txt"
    text.write_bytes(b"fine\ncaf\xe9\n")
    bad = tmp_path / "bad.jsonl"
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 not really")
    args, code, message = {
        "missing_extra": (["eval", str(tmp_path), "--bm25"], EXIT_FAIL, "pip install 'splade-onnx[eval]'"),
        "bad_corpus": (
            ["eval", str(_beir_folder(tmp_path / "beir", '{"_id": "1"}\n'))],
            EXIT_INPUT,
            "corpus.jsonl:1: missing field 'text'",
        ),
        "index_into_missing_folder": (
            ["index", str(docs_jsonl), "-o", "no/such/dir/x.npz"],
            EXIT_FAIL,
            "cannot write no/such/dir/x.npz: the folder no/such/dir does not exist",
        ),
        "output_is_a_folder": (["index", str(docs_jsonl), "-o", str(tmp_path)], EXIT_USAGE, "is a folder"),
        "duplicate_ids": (
            ["index", str(bad), "-o", str(tmp_path / "x.npz")],
            EXIT_INPUT,
            f"{bad}:3: duplicate id 'd1' (first on line 1)",
        ),
        "duplicate_line_id": (["encode", str(bad)], EXIT_INPUT, f"{bad}:3: duplicate id 'd1' (first on line 1)"),
        "not_utf8": (["index", str(text), "-o", str(tmp_path / "x.npz")], EXIT_INPUT, f"{text}:2: not valid UTF-8"),
        "bad_id": (["encode", str(bad)], EXIT_INPUT, f"{bad}:1: field '_id' must be a string or an integer"),
        "missing_field": (
            ["encode", str(docs_jsonl), "--field", "body"],
            EXIT_INPUT,
            f"{docs_jsonl}:1: missing field 'body'",
        ),
        "missing_input": (["encode", str(tmp_path / "nope.txt")], EXIT_FAIL, "nope.txt does not exist"),
        "input_is_a_folder": (["encode", str(tmp_path)], EXIT_USAGE, "is a folder"),
        "corrupt_index": (["search", str(corrupt), "q"], EXIT_INPUT, f"not a splade-onnx index or corrupt: {corrupt}"),
        "missing_index": (["search", str(tmp_path / "nope.npz"), "q"], EXIT_FAIL, "nope.npz"),
        "missing_ann_extra": (
            ["search", str(tmp_path / "ok.npz"), "q", "--engine", "seismic"],
            EXIT_FAIL,
            "pip install 'splade-onnx[ann]'",
        ),
    }[case]
    if case == "missing_extra":
        monkeypatch.setitem(sys.modules, "bm25s", None)  # import bm25s -> ImportError
    elif case == "duplicate_ids":
        bad.write_text('{"_id": "d1", "text": "a"}\n{"_id": "d2", "text": "b"}\n{"_id": "d1", "text": "c"}\n')
    elif case == "duplicate_line_id":
        bad.write_text('{"_id": "d1", "text": "a"}\n\n{"id": "d1", "text": "c"}\n')
    elif case == "bad_id":
        bad.write_text('{"_id": ["d1"], "text": "a"}\n')
    elif case == "missing_ann_extra":
        SparseIndex().save(tmp_path / "ok.npz")
        monkeypatch.setitem(sys.modules, "seismic", None)  # import seismic -> ImportError
    monkeypatch.chdir(tmp_path)
    got, out, err = run(*args)
    assert (got, out) == (code, "") and message in err, err


@pytest.mark.parametrize(
    "args",
    [
        ["search", "x.npz", "q", "-k", "0"],
        ["encode", "x.txt", "--threads", "0"],
        ["encode", "x.txt", "--max-length", "1"],
        ["encode", "x.txt", "--batch-size", "0"],
        ["explain", "q", "d", "--top", "0"],
        ["search", "x.npz", "q", "-k", "ten"],
        ["eval", "data", "--convex-weight", "1.5"],
        ["eval", "data", "--doc-max-length", "0"],
        ["bogus"],
    ],
)
def test_usage_errors_exit_2(
    run, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(SpladeEncoder, "from_pretrained", _must_not_load)
    code, out, err = run(*args)
    assert code == EXIT_USAGE and out == "" and "usage: splade-onnx" in err
    assert "must be at least" in err or "not an integer" in err or "must be in [0, 1]" in err or "invalid choice" in err


def test_usage_errors_found_by_the_model_exit_2(run, docs_jsonl: Path) -> None:  # type: ignore[no-untyped-def]
    code, _, err = run("encode", str(docs_jsonl), "--max-length", "100000")
    assert code == EXIT_USAGE and "exceeds the model's limit" in err


@pytest.mark.parametrize(
    ("exc", "code", "message"),
    [
        (InputError("docs.jsonl:3: bad"), EXIT_INPUT, "splade-onnx: bad input: docs.jsonl:3: bad"),
        (IndexFormatError("corrupt"), EXIT_INPUT, "splade-onnx: bad input: corrupt"),
        (ArgumentError("k must be >= 1"), EXIT_USAGE, "splade-onnx: error: k must be >= 1"),
        (ArgumentTypeError("wrong type"), EXIT_USAGE, "splade-onnx: error: wrong type"),
        (ModelMismatchError("built by another."), EXIT_FAIL, "another. On the command line: --allow-model-mismatch"),
        (MissingExtraError("needs pip install 'splade-onnx[eval]'"), EXIT_FAIL, "pip install 'splade-onnx[eval]'"),
        (ModelNotFoundError("no source"), EXIT_FAIL, "splade-onnx: error: no source"),
        (FileMissingError("gone"), EXIT_FAIL, "splade-onnx: error: gone"),
        (PermissionError(13, "Permission denied"), EXIT_FAIL, "Permission denied"),
        (KeyboardInterrupt(), 130, ""),
        (BrokenPipeError(32, "Broken pipe"), EXIT_OK, ""),
    ],
)
def test_exit_codes_map_the_error_tree(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], exc: BaseException, code: int, message: str
) -> None:
    from splade_onnx import cli

    def fail(args: object) -> int:
        raise exc

    monkeypatch.setattr(cli, "cmd_models", fail)
    assert main(["models"]) == code
    err = capsys.readouterr().err
    assert message in err and (message or err == "")


def test_other_exceptions_keep_their_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    from splade_onnx import cli

    def bug(args: object) -> int:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(cli, "cmd_models", bug)
    with pytest.raises(ZeroDivisionError):
        main(["models"])


# ---------------------------------------------------------------------------- model identity


def test_index_records_the_model_and_search_refuses_another(
    run, tmp_path: Path, docs_jsonl: Path, tiny: SpladeEncoder, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "seed.npz"
    assert run("index", str(docs_jsonl), "-o", str(path))[0] == EXIT_OK
    saved = SparseIndex.load(path).model
    assert saved is not None and saved.matches(tiny.identity) and saved.fingerprint == tiny.identity.fingerprint

    other = ModelIdentity("someone/other-splade", tiny.identity.vocab_size, "0" * 64)
    foreign = SparseIndex(model=other)
    foreign.add(tiny.encode_documents(SEED_DOCUMENTS), ids=[f"d{i}" for i in range(12)])
    foreign.save(path)
    code, out, err = run("search", str(path), "How much did the mission cost?")
    assert code == EXIT_FAIL and out == ""
    assert f"{path} was built by someone/other-splade" in err and "--allow-model-mismatch" in err
    code, out, err = run("search", str(path), "How much did the mission cost?", "--json", "--allow-model-mismatch")
    assert code == EXIT_OK and json.loads(out)["hits"][0]["id"] == "d4"
    assert "its scores would be meaningless (allow_model_mismatch=True)" in caplog.text  # still warned


# ---------------------------------------------------------------------------- pipes


def test_a_closed_stdout_pipe_exits_quietly(cache_dir: Path, tmp_path: Path, tiny: SpladeEncoder) -> None:
    # 5,000 documents sharing the query's terms: ~150 kB of results, more than a pipe holds.
    query = tiny.encode_queries(["lunar mission cost"])[0]
    rng = np.random.default_rng(0)
    index = SparseIndex(model=tiny.identity)
    index.add(
        [
            SparseEmbedding(values=rng.random(query.indices.size).astype(np.float32) + 0.1, indices=query.indices)
            for _ in range(5000)
        ]
    )
    path = tmp_path / "big.npz"
    index.save(path)
    exe = Path(sys.executable).parent / "splade-onnx"
    argv = [str(exe), "search", str(path), "lunar mission cost", "-k", "5000", "-q", "--cache-dir", str(cache_dir)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()  # like `| head -1`
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == EXIT_OK
    assert first == b"Q: lunar mission cost\n"
    assert err == ""  # no "error: Broken pipe", no "Exception ignored ... BrokenPipeError"


def test_side_options_prune_each_side_and_bad_values_exit_2(  # type: ignore[no-untyped-def]
    run, docs_jsonl: Path, tmp_path: Path, tiny: SpladeEncoder
) -> None:
    out = tmp_path / "v.jsonl"
    assert run("encode", str(docs_jsonl), "-o", str(out), "--top-k", "5")[0] == EXIT_OK
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["indices"] for r in rows] == [e.indices.tolist() for e in tiny.encode_documents(SEED_DOCUMENTS, top_k=5)]
    assert run("encode", str(docs_jsonl), "-o", str(out), "--queries", "--query-min-weight", "1.0")[0] == EXIT_OK
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    want = tiny.encode_queries(SEED_DOCUMENTS, min_weight=1.0)
    assert [r["indices"] for r in rows] == [e.indices.tolist() for e in want]
    index = tmp_path / "i.npz"
    assert run("index", str(docs_jsonl), "-o", str(index), "--long-documents", "windows", "--stride", "64")[0] == 0
    code, text, _ = run("search", str(index), "How much did the mission cost?", "--query-top-k", "3", "--json")
    assert code == EXIT_OK and json.loads(text)["hits"]
    code, _, err = run("search", str(index), "q", "--stride", "600", "--long-documents", "windows")
    assert code == EXIT_USAGE and "stride must be in [0, 509]" in err
    code, _, err = run("search", str(index), "q", "--top-k", "0")
    assert code == EXIT_USAGE and "--top-k" in err
