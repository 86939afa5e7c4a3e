"""A small RAG app on LangChain with SPLADE retrieval, runnable offline.

    pip install langchain-splade langchain-text-splitters   # plus langchain-qdrant for --qdrant
    python examples/langchain_rag.py "How was the lift increase due to slipstream measured?"
    python examples/langchain_rag.py --qdrant ./qdrant-rag "What is a boundary layer?"

Documents: ``--docs FOLDER`` (its .txt and .md files), else the first 300 Cranfield
abstracts in data/ (in this repository).  Pipeline: split -> SPLADE retriever (in memory, or a
local Qdrant collection with ``--qdrant PATH``) -> prompt -> chat model.

The chat model comes from ``RAG_CHAT_MODEL`` (``provider:model`` for
``langchain.chat_models.init_chat_model``, with that provider's usual API-key
variable).  With none configured the app says so and answers with a clearly labelled
extractive fallback: the retrieved sentences that share the most terms with the question.
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

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableLambda, RunnablePassthrough

DATA = Path(__file__).resolve().parents[1] / "data" / "cranfield"
FALLBACK_LABEL = "[extractive fallback: no chat model configured (set RAG_CHAT_MODEL=provider:model)]"

PROMPT = ChatPromptTemplate.from_messages(
    [
        (
            "system",
            "Answer the question using only the numbered passages. Cite passages as [n]. "
            "If they do not contain the answer, say so.",
        ),
        ("human", "Passages:\n{context}\n\nQuestion: {question}"),
    ]
)


def load_documents(folder: Path | None, limit: int = 300) -> list[Document]:
    if folder is not None:
        files = sorted([*folder.rglob("*.txt"), *folder.rglob("*.md")])
        return [Document(page_content=f.read_text(encoding="utf-8"), metadata={"source": str(f)}) for f in files]
    rows = [json.loads(line) for line in (DATA / "corpus.jsonl").open()][:limit]
    return [Document(page_content=r["text"], metadata={"source": f"cranfield:{r['_id']}"}) for r in rows]


def split(docs: Sequence[Document]) -> list[Document]:
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    return RecursiveCharacterTextSplitter(chunk_size=600, chunk_overlap=80).split_documents(list(docs))


def format_passages(docs: Sequence[Document]) -> str:
    return "\n\n".join(f"[{i}] ({d.metadata.get('source', '?')}) {d.page_content}" for i, d in enumerate(docs, 1))


def extractive_answer(prompt_value: Any) -> AIMessage:
    """No LLM: the passages' sentences that share the most words with the question, cited."""
    text = prompt_value.to_messages()[-1].content
    passages, question = text.split("\n\nQuestion: ")
    q_terms = set(re.findall(r"[a-z]{3,}", question.lower()))
    scored = []
    for block in passages.removeprefix("Passages:\n").split("\n\n"):
        m = re.match(r"\[(\d+)\] \([^)]*\) (.*)", block, flags=re.S)
        if not m:
            continue
        for sent in re.split(r"(?<=[.!?])\s+", m.group(2)):
            overlap = len(q_terms & set(re.findall(r"[a-z]{3,}", sent.lower())))
            scored.append((overlap, -int(m.group(1)), sent.strip(), m.group(1)))
    best = sorted(scored, reverse=True)[:2]
    body = " ".join(f"{s} [{n}]" for _, _, s, n in best if s) or "The passages do not answer this."
    return AIMessage(content=f"{FALLBACK_LABEL}\n{body}")


def chat_model() -> BaseChatModel | None:
    name = os.environ.get("RAG_CHAT_MODEL")
    if not name:
        return None
    from langchain.chat_models import init_chat_model

    return init_chat_model(name)


def build_chain(
    retriever: BaseRetriever, llm: BaseChatModel | Runnable[Any, BaseMessage] | None
) -> Runnable[str, dict[str, Any]]:
    """question -> {"answer", "sources"}; ``llm=None`` uses the extractive fallback."""
    model: Runnable[Any, BaseMessage] = llm if llm is not None else RunnableLambda(extractive_answer)
    answer = PROMPT | model | StrOutputParser()

    def run(question: str) -> dict[str, Any]:
        docs = retriever.invoke(question)
        text = answer.invoke({"context": format_passages(docs), "question": question})
        return {"answer": text, "sources": docs}

    return RunnablePassthrough() | RunnableLambda(run)


def make_retriever(chunks: list[Document], qdrant: Path | None, k: int) -> BaseRetriever:
    from langchain_splade import SpladeRetriever, SpladeSparseEmbeddings

    embeddings = SpladeSparseEmbeddings("rasyosef/splade-tiny")
    if qdrant is None:
        return SpladeRetriever.from_documents(chunks, embeddings=embeddings, k=k)
    from langchain_qdrant import QdrantVectorStore, RetrievalMode

    store = QdrantVectorStore.from_documents(
        chunks,
        embedding=None,
        sparse_embedding=embeddings,
        path=str(qdrant),
        collection_name="rag",
        retrieval_mode=RetrievalMode.SPARSE,
        force_recreate=True,
    )
    return store.as_retriever(search_kwargs={"k": k})


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("question", nargs="?", default="How was the lift increase due to slipstream measured?")
    ap.add_argument("--docs", type=Path, default=None)
    ap.add_argument("--qdrant", type=Path, default=None, help="keep the index in a local Qdrant at this path")
    ap.add_argument("-k", type=int, default=4)
    args = ap.parse_args(argv)
    chunks = split(load_documents(args.docs))
    llm = chat_model()
    if llm is None:
        print(FALLBACK_LABEL, file=sys.stderr)
    result = build_chain(make_retriever(chunks, args.qdrant, args.k), llm).invoke(args.question)
    print(f"Q: {args.question}\n\n{result['answer']}\n\nSources:")
    for i, d in enumerate(result["sources"], 1):
        score = d.metadata.get("score")
        print(f"  [{i}] {d.metadata.get('source')}" + (f"  score {score:.2f}" if score is not None else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
