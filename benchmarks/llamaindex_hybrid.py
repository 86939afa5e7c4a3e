"""The LlamaIndex hybrid recipe, measured on CISI: QueryFusionRetriever(SPLADE + BM25), reciprocal rerank.

    .venv/bin/python benchmarks/llamaindex_hybrid.py [--data data/cisi]

SPLADE is this package's SpladeRetriever (documents <= 256 tokens); BM25 is
llama-index-retrievers-bm25 (bm25s, English stemming and stopwords).  QueryFusionRetriever
runs with num_queries=1 (no query generation, so MockLLM is never asked anything) and
mode="reciprocal_rerank".  Scores come from splade-onnx's evaluation (ir-measures).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import Stemmer
from llama_index.core.llms import MockLLM
from llama_index.core.retrievers import QueryFusionRetriever
from llama_index.core.schema import TextNode
from llama_index.retrievers.bm25 import BM25Retriever
from llama_index.sparse_embeddings.splade import SpladeRetriever, SpladeSparseEmbedding

from splade_onnx._beir import load_beir
from splade_onnx._eval import score_run

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "cisi")
    ap.add_argument("-k", type=int, default=100)
    args = ap.parse_args()
    data = load_beir(args.data)
    nodes = [TextNode(text=t, id_=i) for i, t in zip(data.doc_ids, data.doc_texts)]
    splade = SpladeRetriever.from_defaults(
        nodes=nodes, sparse_embedding=SpladeSparseEmbedding(max_length=256), similarity_top_k=args.k
    )
    bm25 = BM25Retriever.from_defaults(
        nodes=nodes, similarity_top_k=args.k, stemmer=Stemmer.Stemmer("english"), language="english"
    )
    fusion = QueryFusionRetriever(
        [splade, bm25], llm=MockLLM(), num_queries=1, mode="reciprocal_rerank", similarity_top_k=args.k, use_async=False
    )
    runs: dict[str, dict[str, list[tuple[str, float]]]] = {
        "SpladeRetriever": {},
        "BM25Retriever": {},
        "QueryFusion": {},
    }
    for qid, text in zip(data.query_ids, data.query_texts):
        if qid not in data.qrels:
            continue
        for name, r in (("SpladeRetriever", splade), ("BM25Retriever", bm25), ("QueryFusion", fusion)):
            runs[name][qid] = [(h.node.node_id, float(h.score or 0.0)) for h in r.retrieve(text)]
    rows = {name: score_run(run, data.qrels) for name, run in runs.items()}
    lines = ["| retriever | nDCG@10 | R@100 | RR@10 |", "|---|---|---|---|"]
    lines += [f"| {n} | {s['nDCG@10']:.4f} | {s['R@100']:.4f} | {s['RR@10']:.4f} |" for n, s in rows.items()]
    print(f"{args.data.name}, {len(runs['QueryFusion'])} judged queries\n" + "\n".join(lines))
    out = ROOT / "benchmarks" / "results" / f"llamaindex_hybrid_{args.data.name}.json"
    out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
