"""A BEIR folder -> Ray Data -> SPLADE -> Qdrant local mode (or Milvus Lite) -> search, on a local Ray cluster.

    pip install 'splade-onnx[ray,qdrant]'          # or [ray,milvus] for --store milvus
    python examples/ray_index_corpus.py --path ./cranfield-qdrant "what is the flutter of a wing"
    python examples/ray_index_corpus.py --store milvus --path ./cranfield.db "boundary layer transition"

The corpus is streamed by Ray's JSON reader (``corpus.jsonl`` is never loaded by this process),
encoded by ``--actors`` actors of ``--cpus`` CPUs each, and upserted by the sink.  Running it
again rewrites the same points (ids come from the documents' ``_id``).

On a cluster, only the addresses change: ``--address auto`` (or ``RAY_ADDRESS``) to join it,
``--corpus s3://bucket/corpus/`` (any path Ray's readers take), ``--url http://qdrant:6333`` (or a
Milvus URI) instead of ``--path``, and ``--ship object_store`` when the nodes share no disk.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

import ray

from splade_onnx import SparseEmbedding, SpladeEncoder
from splade_onnx.ray import MilvusDatasink, QdrantDatasink, encode_dataset, prepare_model

ROOT = Path(__file__).resolve().parents[1]
logger = logging.getLogger("ray_index_corpus")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "query",
        nargs="?",
        default="what similarity laws must be obeyed when constructing aeroelastic "
        "models of heated high speed aircraft",
    )
    ap.add_argument("--beir", type=Path, default=ROOT / "data" / "cranfield", help="a BEIR folder (corpus.jsonl)")
    ap.add_argument("--corpus", default=None, help="JSONL file(s) or folder for Ray's reader (default: BEIR corpus)")
    ap.add_argument("--store", choices=("qdrant", "milvus"), default="qdrant")
    ap.add_argument("--path", default=None, help="Qdrant local folder, or Milvus Lite file ending in .db")
    ap.add_argument("--url", default=None, help="a Qdrant server URL or Milvus URI (instead of --path)")
    ap.add_argument("--collection", default="cranfield")
    ap.add_argument("--model", default="rasyosef/splade-tiny")
    ap.add_argument("--quantize", choices=("int8",), default=None)
    ap.add_argument("--ship", choices=("disk", "object_store"), default="disk")
    ap.add_argument("--address", default=None, help="a Ray cluster to join (default: start a local one)")
    ap.add_argument("--actors", type=int, default=2)
    ap.add_argument("--cpus", type=float, default=1, help="CPUs (and onnxruntime threads) per actor")
    ap.add_argument("--blocks", type=int, default=8, help="blocks to read the corpus in (work units for actors)")
    ap.add_argument("--limit", type=int, default=None, help="index only the first N documents")
    ap.add_argument("-k", type=int, default=5)
    args = ap.parse_args(argv)
    if (args.path is None) == (args.url is None):
        ap.error("give one of --path (local mode) or --url (a server)")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("ray", "splade_onnx", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    encoder = SpladeEncoder.from_pretrained(args.model, quantize=args.quantize)
    # A new local cluster, or (--address) one that is already running: the rest is the same.
    # A local cluster needs a CPU for Ray's readers and writers beside the actors' CPUs.
    local = {"include_dashboard": False, "num_cpus": int(args.actors * args.cpus) + 1}
    ray.init(**({"address": args.address} if args.address else local), configure_logging=False)
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False
        corpus = args.corpus or str(args.beir / "corpus.jsonl")
        ds = ray.data.read_json(corpus, lines=True, override_num_blocks=args.blocks)
        if args.limit is not None:
            ds = ds.limit(args.limit)
        prepared = prepare_model(encoder, ship=args.ship)  # resolved and converted once, here, not per actor
        encoded = encode_dataset(ds, model=prepared, title_column="title", concurrency=args.actors, num_cpus=args.cpus)
        if args.store == "qdrant":
            where = {"path": args.path} if args.path else {"url": args.url}
            sink: QdrantDatasink | MilvusDatasink = QdrantDatasink(
                args.collection, **where, id_column="_id", payload_columns=["title"]
            )
        else:
            sink = MilvusDatasink(
                args.collection, uri=args.path or args.url, id_column="_id", payload_columns=["title"]
            )
        # Local stores take one writer: one write task at a time (the sink also serializes them).
        encoded.write_datasink(sink, concurrency=1 if args.path else None)
    finally:
        ray.shutdown()

    query = encoder.encode_queries([args.query])[0]
    hits = search_qdrant(args, query) if args.store == "qdrant" else search_milvus(args, query)
    print(f"Q: {args.query}")
    for rank, (doc_id, score, title) in enumerate(hits, 1):
        print(f"{rank:2d}. [{doc_id}] {score:7.3f}  {title}")
    return 0


def search_qdrant(args: argparse.Namespace, query: SparseEmbedding) -> list[tuple[str, float, str]]:
    from qdrant_client import QdrantClient, models

    client = QdrantClient(path=args.path) if args.path else QdrantClient(url=args.url)
    try:
        logger.info("%d points in %r", client.count(args.collection, exact=True).count, args.collection)
        vec = models.SparseVector(indices=query.indices.tolist(), values=query.values.tolist())
        hits = client.query_points(args.collection, query=vec, using="splade", limit=args.k, with_payload=True).points
        return [(h.payload["_id"], h.score, h.payload.get("title") or "") for h in hits]  # type: ignore[index,union-attr]
    finally:
        client.close()


def search_milvus(args: argparse.Namespace, query: SparseEmbedding) -> list[tuple[str, float, str]]:
    from pymilvus import MilvusClient

    uri = str(Path(args.path).absolute()) if args.path else args.url
    client = MilvusClient(uri)
    try:
        client.load_collection(args.collection)
        params = {"params": {"drop_ratio_search": 0.0}}  # Milvus Lite takes only 0 (an exact search)
        (hits,) = client.search(
            args.collection,
            data=[query.as_dict()],
            anns_field="splade",
            limit=args.k,
            output_fields=["title"],
            search_params=params,
        )
        return [(h.get("_id", h.get("id")), h["distance"], h["entity"].get("title") or "") for h in hits]
    finally:
        client.close()


if __name__ == "__main__":
    raise SystemExit(main())
