"""A small RAG app on LlamaIndex with SPLADE retrieval, runnable offline.

    pip install llama-index-sparse-embeddings-splade     # plus llama-index-vector-stores-qdrant for --qdrant
    python examples/llamaindex_rag.py "How was the lift increase due to slipstream measured?"
    python examples/llamaindex_rag.py --qdrant ./qdrant-li "What is a boundary layer?"

Documents: ``--docs FOLDER`` (.txt/.md files), else the first 300 Cranfield abstracts in
data/ (in this repository).  Pipeline: documents -> nodes -> SpladeRetriever (in memory), or a local
Qdrant collection in hybrid mode with ``--qdrant PATH`` -> RetrieverQueryEngine -> LLM.

The LLM comes from ``RAG_LLM=openai:MODEL`` (llama-index-llms-openai and OPENAI_API_KEY).
With none configured the app says so and answers with a clearly labelled extractive
fallback: the context sentences that share the most words with the question.
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

from llama_index.core import Document
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.llms import LLM, CompletionResponse, CustomLLM, LLMMetadata
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import BaseNode

DATA = Path(__file__).resolve().parents[1] / "data" / "cranfield"
FALLBACK_LABEL = "[extractive fallback: no LLM configured (set RAG_LLM=openai:MODEL)]"


class ExtractiveLLM(CustomLLM):
    """No model: answers with the context sentences that share the most words with the question."""

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="extractive-fallback")

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        context, _, rest = prompt.partition("---------------------\n")[2].partition("\n---------------------")
        question = rest.split("Query: ")[-1].split("\n")[0]
        q_terms = set(re.findall(r"[a-z]{3,}", question.lower()))
        sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n", context) if s.strip()]
        scored = sorted(sentences, key=lambda s: -len(q_terms & set(re.findall(r"[a-z]{3,}", s.lower()))))
        return CompletionResponse(text=f"{FALLBACK_LABEL}\n" + " ".join(scored[:2]))

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
        yield self.complete(prompt, formatted, **kwargs)


def load_documents(folder: Path | None, limit: int = 300) -> list[Document]:
    if folder is not None:
        files = sorted([*folder.rglob("*.txt"), *folder.rglob("*.md")])
        return [Document(text=f.read_text(encoding="utf-8"), metadata={"source": str(f)}) for f in files]
    rows = [json.loads(line) for line in (DATA / "corpus.jsonl").open()][:limit]
    return [Document(text=r["text"], metadata={"source": f"cranfield:{r['_id']}"}) for r in rows]


def make_llm() -> LLM:
    name = os.environ.get("RAG_LLM", "")
    if not name:
        print(FALLBACK_LABEL, file=sys.stderr)
        return ExtractiveLLM()
    provider, _, model = name.partition(":")
    if provider != "openai":
        raise SystemExit(f"RAG_LLM={name!r}: only openai:MODEL is wired in this example")
    from llama_index.llms.openai import OpenAI

    return OpenAI(model=model)


def make_retriever(nodes: list[BaseNode], qdrant: Path | None, k: int) -> BaseRetriever:
    from llama_index.sparse_embeddings.splade import SpladeRetriever, SpladeSparseEmbedding

    embedding = SpladeSparseEmbedding(model_name="rasyosef/splade-tiny")
    if qdrant is None:
        return SpladeRetriever.from_defaults(nodes=nodes, sparse_embedding=embedding, similarity_top_k=k)
    from llama_index.core import StorageContext, VectorStoreIndex
    from llama_index.core.embeddings import MockEmbedding
    from llama_index.sparse_embeddings.splade import to_qdrant_sparse_fns
    from llama_index.vector_stores.qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient

    doc_fn, query_fn = to_qdrant_sparse_fns(embedding)
    store = QdrantVectorStore(
        collection_name="rag",
        client=QdrantClient(path=str(qdrant)),
        enable_hybrid=True,
        sparse_doc_fn=doc_fn,
        sparse_query_fn=query_fn,
    )
    print("[dense side: MockEmbedding stand-in; SPARSE mode ranks by SPLADE]", file=sys.stderr)
    index = VectorStoreIndex(
        nodes, storage_context=StorageContext.from_defaults(vector_store=store), embed_model=MockEmbedding(embed_dim=8)
    )
    return index.as_retriever(vector_store_query_mode="sparse", similarity_top_k=k, sparse_top_k=k)


def build_engine(retriever: BaseRetriever, llm: LLM) -> RetrieverQueryEngine:
    return RetrieverQueryEngine.from_args(retriever, llm=llm)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("question", nargs="?", default="How was the lift increase due to slipstream measured?")
    ap.add_argument("--docs", type=Path, default=None)
    ap.add_argument("--qdrant", type=Path, default=None)
    ap.add_argument("-k", type=int, default=3)
    args = ap.parse_args(argv)
    nodes = SentenceSplitter(chunk_size=256, chunk_overlap=32).get_nodes_from_documents(load_documents(args.docs))
    response = build_engine(make_retriever(nodes, args.qdrant, args.k), make_llm()).query(args.question)
    print(f"Q: {args.question}\n\n{response}\n\nSources:")
    for i, n in enumerate(response.source_nodes, 1):
        print(f"  [{i}] {n.node.metadata.get('source')}  score {n.score or 0:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
