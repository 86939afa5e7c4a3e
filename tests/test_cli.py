"""The splade-onnx command line, run in-process and once as the installed console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from splade_onnx import SparseIndex, SpladeEncoder
from splade_onnx.cli import EXIT_INPUT, EXIT_OK, main

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


def test_eval_prints_a_table(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "mini"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": str(i), "text": t}) + "\n"
                                                 for i, t in enumerate(SEED_DOCUMENTS)))  # fmt: skip
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
    proc = subprocess.run([str(exe), "search", "/no/such/index.npz", "q"], capture_output=True, text=True,
                          env={**os.environ, "SPLADE_ONNX_CACHE": str(cache_dir)}, check=False)  # fmt: skip
    assert proc.returncode == 1 and "/no/such/index.npz" in proc.stderr
    proc = subprocess.run([str(exe), "bogus"], capture_output=True, text=True, check=False)
    assert proc.returncode == 2
