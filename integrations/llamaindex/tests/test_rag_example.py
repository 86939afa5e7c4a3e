"""examples/llamaindex_rag.py with MockLLM (the LLM cannot run here) and offline."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from llama_index.core import Document
from llama_index.core.llms import MockLLM
from llama_index.sparse_embeddings.splade import SpladeRetriever, SpladeSparseEmbedding

from conftest import REPO, SEED

EXAMPLE = REPO / "examples" / "llamaindex_rag.py"


def load_example() -> Any:
    spec = importlib.util.spec_from_file_location("llamaindex_rag", EXAMPLE)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_retrieved_nodes_reach_the_llm_prompt(embedding: SpladeSparseEmbedding) -> None:
    rag = load_example()
    docs = [Document(text=t, metadata={"source": f"seed:{i}"}) for i, t in enumerate(SEED)]
    retriever = SpladeRetriever.from_defaults(nodes=docs, sparse_embedding=embedding, similarity_top_k=2)
    response = rag.build_engine(retriever, MockLLM()).query(
        "How much did the mission cost?"
    )  # MockLLM echoes its prompt
    assert response.source_nodes[0].node.metadata["source"] == "seed:2"
    assert "The estimated cost of the mission is around $35 million" in str(response)
    assert "How much did the mission cost?" in str(response)


def test_offline_run_labels_its_fallback(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for i, t in enumerate(SEED):
        (folder / f"{i}.txt").write_text(t)
    env = {k: v for k, v in os.environ.items() if k != "RAG_LLM"}
    env["SPLADE_ONNX_CACHE"] = str(REPO / ".cache" / "test")
    cmd = [sys.executable, str(EXAMPLE), "--docs", str(folder), "How much did the mission cost?"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "[extractive fallback: no LLM configured" in proc.stdout
    assert "$35 million" in proc.stdout.split("Sources:")[0]
    assert "2.txt" in proc.stdout.split("Sources:")[1].splitlines()[1]
