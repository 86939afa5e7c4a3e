"""A small RAG app on Haystack with SPLADE retrieval from Qdrant, runnable offline.

    pip install 'splade-haystack[qdrant]'
    python examples/haystack_rag.py "How was the lift increase due to slipstream measured?"
    python examples/haystack_rag.py --qdrant ./qdrant-haystack --hybrid "What is a boundary layer?"

Documents: ``--docs FOLDER`` (its .txt and .md files), else the first 300 Cranfield abstracts in
data/ (in this repository).  Indexing pipeline: split -> SpladeSparseDocumentEmbedder -> Qdrant
(local mode: in memory, or on disk with ``--qdrant PATH``).  Query pipeline:
SpladeSparseTextEmbedder -> QdrantSparseEmbeddingRetriever -> ChatPromptBuilder -> chat generator.
With ``--hybrid`` the retriever is QdrantHybridRetriever and both pipelines add a dense side: here
Haystack's MockTextEmbedder / MockDocumentEmbedder, a labelled stand-in (hash vectors, no meaning)
for your dense embedder.

The chat model comes from ``RAG_CHAT_MODEL=openai:MODEL`` (OpenAIChatGenerator, with
OPENAI_API_KEY).  With none configured the app says so and answers with a clearly labelled
extractive fallback: the passages' sentences that share the most words with the question, cited.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")  # no telemetry calls from an offline example

from haystack import Document, Pipeline
from haystack.components.builders import ChatPromptBuilder
from haystack.components.generators.chat import MockChatGenerator
from haystack.components.preprocessors import DocumentSplitter
from haystack.components.writers import DocumentWriter
from haystack.dataclasses import ChatMessage

DATA = Path(__file__).resolve().parents[1] / "data" / "cranfield"
MODEL = "rasyosef/splade-tiny"
DENSE_DIM = 64
FALLBACK_LABEL = "[extractive fallback: no chat model configured (set RAG_CHAT_MODEL=openai:MODEL)]"
DENSE_LABEL = "[dense side: MockTextEmbedder stand-in (hash vectors); put your dense embedder here]"

TEMPLATE = [
    ChatMessage.from_system(
        "Answer the question using only the numbered passages. Cite passages as [n]. "
        "If they do not contain the answer, say so."
    ),
    ChatMessage.from_user(
        "Passages:\n{% for d in documents %}[{{ loop.index }}] ({{ d.meta.source }}) {{ d.content }}\n\n{% endfor %}"
        "Question: {{ question }}"
    ),
]


def load_documents(folder: Path | None, limit: int = 300) -> list[Document]:
    if folder is not None:
        files = sorted([*folder.rglob("*.txt"), *folder.rglob("*.md")])
        return [Document(content=f.read_text(encoding="utf-8"), meta={"source": str(f)}) for f in files]
    with (DATA / "corpus.jsonl").open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f][:limit]
    return [Document(content=r["text"], meta={"source": f"cranfield:{r['_id']}"}) for r in rows]


def extractive_answer(messages: list[ChatMessage]) -> str:
    """No LLM: the passages' sentences that share the most words with the question, cited."""
    text = messages[-1].text or ""
    passages, _, question = text.rpartition("Question: ")
    q_terms = set(re.findall(r"[a-z]{3,}", question.lower()))
    scored = []
    for m in re.finditer(r"\[(\d+)\] \([^)]*\) (.*?)(?=\n\n|\Z)", passages, flags=re.S):
        for sent in re.split(r"(?<=[.!?])\s+", m.group(2)):
            overlap = len(q_terms & set(re.findall(r"[a-z]{3,}", sent.lower())))
            scored.append((overlap, -int(m.group(1)), sent.strip(), m.group(1)))
    best = sorted(scored, reverse=True)[:2]
    body = " ".join(f"{s} [{n}]" for _, _, s, n in best if s) or "The passages do not answer this."
    return f"{FALLBACK_LABEL}\n{body}"


def chat_generator() -> Any:
    """The chat model named by ``RAG_CHAT_MODEL``, else the labelled extractive fallback."""
    name = os.environ.get("RAG_CHAT_MODEL", "")
    if not name:
        print(FALLBACK_LABEL, file=sys.stderr)
        return MockChatGenerator(response_fn=extractive_answer)
    provider, _, model = name.partition(":")
    if provider != "openai":
        raise SystemExit(f"RAG_CHAT_MODEL={name!r}: only openai:MODEL is wired in this example")
    from haystack.components.generators.chat import OpenAIChatGenerator

    return OpenAIChatGenerator(model=model)


def document_store(qdrant: Path | None) -> Any:
    from haystack_integrations.document_stores.qdrant import QdrantDocumentStore

    where: dict[str, Any] = {"location": ":memory:"} if qdrant is None else {"path": str(qdrant)}
    return QdrantDocumentStore(
        **where, use_sparse_embeddings=True, embedding_dim=DENSE_DIM, recreate_index=True, progress_bar=False
    )


def indexing_pipeline(store: Any, *, hybrid: bool) -> Pipeline:
    from haystack.components.embedders import MockDocumentEmbedder
    from haystack_integrations.components.embedders.splade import SpladeSparseDocumentEmbedder

    pipe = Pipeline()
    pipe.add_component("splitter", DocumentSplitter(split_by="word", split_length=120, split_overlap=20))
    pipe.add_component("sparse", SpladeSparseDocumentEmbedder(MODEL, progress_bar=False))
    pipe.add_component("writer", DocumentWriter(store))
    if hybrid:
        pipe.add_component("dense", MockDocumentEmbedder(dimension=DENSE_DIM))
        pipe.connect("splitter.documents", "dense.documents")
        pipe.connect("dense.documents", "sparse.documents")
    else:
        pipe.connect("splitter.documents", "sparse.documents")
    pipe.connect("sparse.documents", "writer.documents")
    return pipe


def query_pipeline(store: Any, generator: Any, *, hybrid: bool, k: int) -> Pipeline:
    """question -> retrieved passages -> prompt -> generator; the answer is ``["generator"]["replies"]``."""
    from haystack.components.embedders import MockTextEmbedder
    from haystack_integrations.components.embedders.splade import SpladeSparseTextEmbedder
    from haystack_integrations.components.retrievers.qdrant import (
        QdrantHybridRetriever,
        QdrantSparseEmbeddingRetriever,
    )

    pipe = Pipeline()
    pipe.add_component("sparse", SpladeSparseTextEmbedder(MODEL))
    if hybrid:
        pipe.add_component("dense", MockTextEmbedder(dimension=DENSE_DIM))
        pipe.add_component("retriever", QdrantHybridRetriever(store, top_k=k))
        pipe.connect("dense.embedding", "retriever.query_embedding")
    else:
        pipe.add_component("retriever", QdrantSparseEmbeddingRetriever(store, top_k=k))
    pipe.add_component("prompt", ChatPromptBuilder(template=TEMPLATE, required_variables=["documents", "question"]))
    pipe.add_component("generator", generator)
    pipe.connect("sparse.sparse_embedding", "retriever.query_sparse_embedding")
    pipe.connect("retriever.documents", "prompt.documents")
    pipe.connect("prompt.prompt", "generator.messages")
    return pipe


def ask(pipe: Pipeline, question: str, *, hybrid: bool) -> dict[str, Any]:
    """``{"answer": str, "sources": [Document, ...]}`` for ``question``."""
    inputs: dict[str, Any] = {"sparse": {"text": question}, "prompt": {"question": question}}
    if hybrid:
        inputs["dense"] = {"text": question}
    out = pipe.run(inputs, include_outputs_from={"retriever"})
    return {"answer": out["generator"]["replies"][0].text, "sources": out["retriever"]["documents"]}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("question", nargs="?", default="How was the lift increase due to slipstream measured?")
    ap.add_argument("--docs", type=Path, default=None)
    ap.add_argument("--qdrant", type=Path, default=None, help="keep the index in a local Qdrant at this path")
    ap.add_argument("--hybrid", action="store_true", help="QdrantHybridRetriever, with a dense stand-in")
    ap.add_argument("-k", type=int, default=4)
    args = ap.parse_args(argv)
    if args.hybrid:
        print(DENSE_LABEL, file=sys.stderr)
    store = document_store(args.qdrant)
    indexing_pipeline(store, hybrid=args.hybrid).run({"splitter": {"documents": load_documents(args.docs)}})
    result = ask(
        query_pipeline(store, chat_generator(), hybrid=args.hybrid, k=args.k), args.question, hybrid=args.hybrid
    )
    print(f"Q: {args.question}\n\n{result['answer']}\n\nSources:")
    for i, d in enumerate(result["sources"], 1):
        print(f"  [{i}] {d.meta.get('source')}  score {d.score or 0:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
