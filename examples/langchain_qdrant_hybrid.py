"""QdrantVectorStore in HYBRID mode (dense + SPLADE) on a real local Qdrant, persisted on disk.

    pip install langchain-splade[qdrant]
    python examples/langchain_qdrant_hybrid.py --path ./qdrant-hybrid "supersonic flutter of wings"

The sparse side is SPLADE (langchain-splade).  The dense side comes from ``--dense
provider:model`` (``langchain.embeddings.init_embeddings``, e.g. ``openai:text-embedding-3-small``).
Offline, with none given, the dense side is a clearly labelled stand-in: a deterministic
hash embedding that carries no meaning, so the ranking is SPLADE's with noise from that side.
The collection is created once and reopened from disk on later runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings
from langchain_qdrant import QdrantVectorStore, RetrievalMode
from langchain_splade import SpladeSparseEmbeddings
from qdrant_client import QdrantClient

DATA = Path(__file__).resolve().parents[1] / "data" / "cranfield"
STAND_IN = "[dense stand-in: hash embedding, no meaning; pass --dense provider:model for a real one]"


def dense_embeddings(name: str | None) -> Embeddings:
    if not name:
        print(STAND_IN, file=sys.stderr)
        return DeterministicFakeEmbedding(size=64)
    from langchain.embeddings import init_embeddings

    return init_embeddings(name)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("query", nargs="?", default="supersonic flutter of wings")
    ap.add_argument("--path", type=Path, required=True, help="folder of the local Qdrant")
    ap.add_argument("--dense", default=None)
    ap.add_argument("-n", type=int, default=300, help="Cranfield abstracts to index")
    ap.add_argument("-k", type=int, default=5)
    args = ap.parse_args(argv)
    sparse, dense = SpladeSparseEmbeddings("rasyosef/splade-tiny"), dense_embeddings(args.dense)
    client = QdrantClient(path=str(args.path))
    if not client.collection_exists("cranfield"):
        client.close()
        rows = [json.loads(line) for line in (DATA / "corpus.jsonl").open()][: args.n]
        store = QdrantVectorStore.from_texts(
            [r["text"] for r in rows],
            embedding=dense,
            sparse_embedding=sparse,
            metadatas=[{"id": r["_id"]} for r in rows],
            path=str(args.path),
            collection_name="cranfield",
            retrieval_mode=RetrievalMode.HYBRID,
        )
        print(f"indexed {len(rows)} abstracts into {args.path}")
    else:
        store = QdrantVectorStore(
            client=client,
            collection_name="cranfield",
            embedding=dense,
            sparse_embedding=sparse,
            retrieval_mode=RetrievalMode.HYBRID,
        )
        print(f"reopened {args.path}")
    print(f"Q: {args.query}")
    for doc, score in store.similarity_search_with_score(args.query, k=args.k):
        print(f"  {score:6.3f}  cranfield:{doc.metadata['id']}  {doc.page_content[:90]}")
    store.client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
