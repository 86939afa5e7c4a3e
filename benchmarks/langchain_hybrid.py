"""The LangChain hybrid recipe, measured on Cranfield: EnsembleRetriever(SPLADE + BM25).

    .venv/bin/python benchmarks/langchain_hybrid.py [--data data/cranfield]

SPLADE is langchain-splade's SpladeRetriever; BM25 is langchain-community's BM25Retriever
(rank_bm25, lower-cased word tokens); EnsembleRetriever (langchain-classic) fuses them with
weighted reciprocal rank.  Scores come from splade-onnx's evaluation (ir-measures), with
documents truncated at 256 tokens and queries at 64 for SPLADE, as in the reference runs.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from langchain_classic.retrievers import EnsembleRetriever
from langchain_community.retrievers import BM25Retriever
from langchain_core.documents import Document
from langchain_splade import SpladeRetriever, SpladeSparseEmbeddings

from splade_onnx._beir import load_beir
from splade_onnx._eval import score_run

ROOT = Path(__file__).resolve().parents[1]


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "cranfield")
    ap.add_argument("-k", type=int, default=100)
    args = ap.parse_args()
    data = load_beir(args.data)
    docs = [Document(page_content=t, id=i) for i, t in zip(data.doc_ids, data.doc_texts)]
    splade = SpladeRetriever.from_documents(docs, embeddings=SpladeSparseEmbeddings(max_length=256), k=args.k)
    bm25 = BM25Retriever.from_documents(docs, preprocess_func=words, k=args.k)
    ensemble = EnsembleRetriever(retrievers=[splade, bm25], weights=[0.5, 0.5])
    runs: dict[str, dict[str, list[tuple[str, float]]]] = {"SpladeRetriever": {}, "BM25Retriever": {}, "Ensemble": {}}
    judged = [(q, t) for q, t in zip(data.query_ids, data.query_texts) if q in data.qrels]
    for qid, text in judged:
        text = " ".join(text.split()[:64])
        for name, r in (("SpladeRetriever", splade), ("BM25Retriever", bm25), ("Ensemble", ensemble)):
            hits = r.invoke(text)
            runs[name][qid] = [(str(d.id), float(len(hits) - i)) for i, d in enumerate(hits)]
    rows = {name: score_run(run, data.qrels) for name, run in runs.items()}
    lines = ["| retriever | nDCG@10 | R@100 | RR@10 |", "|---|---|---|---|"]
    lines += [f"| {n} | {s['nDCG@10']:.4f} | {s['R@100']:.4f} | {s['RR@10']:.4f} |" for n, s in rows.items()]
    print(f"{args.data.name}, {len(judged)} judged queries\n" + "\n".join(lines))
    out = ROOT / "benchmarks" / "results" / f"langchain_hybrid_{args.data.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
