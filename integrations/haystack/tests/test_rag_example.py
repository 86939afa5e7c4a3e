"""examples/haystack_rag.py: Haystack's echoing MockChatGenerator in place of the LLM, and offline runs."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from haystack import Document
from haystack.components.generators.chat import MockChatGenerator

from conftest import CACHE, REPO, SEED

EXAMPLE = REPO / "examples" / "haystack_rag.py"


def load_example() -> Any:
    spec = importlib.util.spec_from_file_location("haystack_rag", EXAMPLE)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run_example(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "RAG_CHAT_MODEL"}
    env["SPLADE_ONNX_CACHE"] = str(CACHE)
    cmd = [sys.executable, str(EXAMPLE), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc


def seed_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    for i, t in enumerate(SEED):
        (folder / f"{i}.txt").write_text(t)
    return folder


def test_retrieved_passages_reach_the_prompt(monkeypatch: Any) -> None:
    monkeypatch.setenv("SPLADE_ONNX_CACHE", str(CACHE))
    rag = load_example()
    store = rag.document_store(None)
    docs = [Document(content=t, meta={"source": f"seed:{i}"}) for i, t in enumerate(SEED)]
    rag.indexing_pipeline(store, hybrid=False).run({"splitter": {"documents": docs}})
    pipe = rag.query_pipeline(store, MockChatGenerator(), hybrid=False, k=2)  # echoes the prompt it is given
    result = rag.ask(pipe, "How much did the mission cost?", hybrid=False)
    assert result["sources"][0].meta["source"] == "seed:2"
    assert "[1] (seed:2) The estimated cost of the mission is around $35 million" in result["answer"]
    assert result["answer"].rstrip().endswith("Question: How much did the mission cost?")
    assert "[3]" not in result["answer"]  # k=2 passages


def test_offline_run_labels_its_fallback_and_cites_its_sources(tmp_path: Path) -> None:
    proc = run_example("--docs", str(seed_folder(tmp_path)), "How much did the mission cost?")
    answer, sources = proc.stdout.split("Sources:")
    assert "[extractive fallback: no chat model configured" in answer and "[extractive fallback" in proc.stderr
    assert "$35 million [1]" in answer
    assert sources.splitlines()[1].strip().startswith("[1] ") and "2.txt" in sources.splitlines()[1]


def test_hybrid_run_on_a_local_qdrant_folder(tmp_path: Path) -> None:
    proc = run_example("--docs", str(seed_folder(tmp_path)), "--qdrant", str(tmp_path / "q"), "--hybrid", "-k", "3")
    assert "[dense side: MockTextEmbedder stand-in" in proc.stderr
    sources = proc.stdout.split("Sources:")[1].splitlines()[1:]
    assert len(sources) == 3 and all(".txt  score 0." in s for s in sources)  # fused RRF scores, below 1
    assert "[extractive fallback: no chat model configured" in proc.stdout
    assert (tmp_path / "q").is_dir()  # the collection is on disk
