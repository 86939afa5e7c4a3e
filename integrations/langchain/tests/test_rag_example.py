"""examples/langchain_rag.py, run with a fake chat model (the one thing that cannot run here) and offline."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableLambda
from langchain_splade import SpladeRetriever, SpladeSparseEmbeddings

from conftest import REPO, SEED

EXAMPLE = REPO / "examples" / "langchain_rag.py"


def load_example() -> Any:
    spec = importlib.util.spec_from_file_location("langchain_rag", EXAMPLE)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_retrieved_passages_reach_the_prompt_and_are_cited(embeddings: SpladeSparseEmbeddings) -> None:
    rag = load_example()
    docs = [Document(page_content=t, metadata={"source": f"seed:{i}"}) for i, t in enumerate(SEED)]
    retriever = SpladeRetriever.from_documents(rag.split(docs), embeddings=embeddings, k=2)
    seen: list[str] = []
    fake = GenericFakeChatModel(messages=iter([AIMessage(content="It cost about $35 million [1].")]))

    def record(prompt: Any) -> Any:
        seen.append(prompt.to_messages()[-1].content)
        return prompt

    result = rag.build_chain(retriever, RunnableLambda(record) | fake).invoke("How much did the mission cost?")
    assert result["sources"][0].metadata["source"] == "seed:2"
    (prompt,) = seen
    assert "[1] (seed:2) The estimated cost of the mission is around $35 million" in prompt
    assert "Question: How much did the mission cost?" in prompt
    assert "[1]" in result["answer"] and "35 million" in result["answer"]


def test_offline_run_labels_its_fallback_and_lists_sources(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for i, t in enumerate(SEED):
        (folder / f"{i}.txt").write_text(t)
    env = {k: v for k, v in os.environ.items() if k != "RAG_CHAT_MODEL"}
    env["SPLADE_ONNX_CACHE"] = str(REPO / ".cache" / "test")
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), "--docs", str(folder), "How much did the mission cost?"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "[extractive fallback: no chat model configured" in out
    assert "$35 million [1]" in out
    assert "Sources:" in out and "2.txt" in out.split("Sources:")[1].splitlines()[1]


def test_qdrant_hybrid_example_creates_then_reopens(tmp_path: Path) -> None:
    example = REPO / "examples" / "langchain_qdrant_hybrid.py"
    env = {**os.environ, "SPLADE_ONNX_CACHE": str(REPO / ".cache" / "test")}
    outs = []
    for _ in range(2):
        cmd = [sys.executable, str(example), "--path", str(tmp_path / "q"), "-n", "60", "wing flutter"]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
        assert proc.returncode == 0, proc.stderr
        assert "[dense stand-in" in proc.stderr
        outs.append(proc.stdout)
    assert "indexed 60 abstracts" in outs[0] and "reopened" in outs[1]
    assert outs[0].split("Q: ")[1] == outs[1].split("Q: ")[1]  # same hits from the reopened on-disk collection
