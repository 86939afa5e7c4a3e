"""The ``splade-onnx`` command line: encode, index, search, eval, explain, models, convert.

Exit codes: 0 success, 1 failure (model, file system), 2 bad usage, 3 malformed input
(the message names the file and line).  Progress bars go to stderr; ``--quiet`` hides them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from ._beir import read_jsonl
from ._encoder import SpladeEncoder
from ._errors import FileMissingError, InputError
from ._registry import DEFAULT_MODEL
from ._types import SparseEmbedding

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INPUT = 0, 1, 2, 3


def _read_texts(path: str, field: str) -> list[tuple[str, str]]:
    """``(id, text)`` pairs from jsonl (``_id``/``id`` and ``field``) or plain text (one per line).

    The whole input is read and checked before anything is encoded or written.
    """
    if path == "-":
        with tempfile.NamedTemporaryFile("w", suffix=".stdin", delete=False, encoding="utf-8") as tmp:
            tmp.write(sys.stdin.read())
        try:
            return _read_texts(tmp.name, field)
        finally:
            os.unlink(tmp.name)
    p = Path(path)
    if not p.is_file():
        raise FileMissingError(f"input file {p} does not exist")
    if p.suffix == ".jsonl":
        out = []
        for n, obj in read_jsonl(p, required=(field,)):
            rid = obj.get("_id", obj.get("id", str(n)))
            out.append((str(rid), obj[field]))
        return out
    with p.open(encoding="utf-8") as f:
        return [(str(n), line.rstrip("\n")) for n, line in enumerate(f, 1)]


@contextlib.contextmanager
def _atomic_output(path: str | None) -> Iterator[IO[str]]:
    """stdout, or a temp file renamed onto ``path`` only if everything was written."""
    if path is None or path == "-":
        yield sys.stdout
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _encoder(args: argparse.Namespace) -> SpladeEncoder:
    return SpladeEncoder.from_pretrained(
        args.model,
        cache_dir=args.cache_dir,
        max_length=args.max_length,
        threads=args.threads,
        quantize="int8" if args.int8 else None,
    )


def _vector_json(emb: SparseEmbedding) -> dict[str, Any]:
    return {"indices": emb.indices.tolist(), "values": [round(v, 6) for v in emb.values.tolist()]}


def cmd_encode(args: argparse.Namespace) -> int:
    rows = _read_texts(args.input, args.field)
    enc = _encoder(args)
    texts = [t for _, t in rows]
    kind = enc.encode_queries if args.queries else enc.encode_documents
    with _atomic_output(args.output) as out:
        vectors = kind(texts, batch_size=args.batch_size, show_progress=not args.quiet)
        for (rid, _), emb in zip(rows, vectors):
            out.write(json.dumps({"id": rid, **_vector_json(emb)}) + "\n")
    logger.info("encoded %d texts", len(rows))
    return EXIT_OK


def cmd_index(args: argparse.Namespace) -> int:
    from ._index import SparseIndex

    rows = _read_texts(args.input, args.field)
    enc = _encoder(args)
    index = SparseIndex()
    index.add(enc.encode_documents([t for _, t in rows], show_progress=not args.quiet), ids=[r for r, _ in rows])
    index.save(args.output)
    print(f"indexed {len(index)} documents with {enc.name} into {args.output}", file=sys.stderr)
    return EXIT_OK


def cmd_search(args: argparse.Namespace) -> int:
    from ._index import SparseIndex

    index = SparseIndex.load(args.index)
    enc = _encoder(args)
    queries = enc.encode_queries(args.query)
    for text, hits in zip(args.query, index.search_batch(queries, k=args.k)):
        if args.json:
            print(json.dumps({"query": text, "hits": [{"id": d, "score": round(s, 6)} for d, s in hits]}))
            continue
        print(f"Q: {text}")
        for rank, (doc, score) in enumerate(hits, 1):
            print(f"  {rank:3d}. {score:8.3f}  {doc}")
        if not hits:
            print("  (no document shares a term with this query)")
    return EXIT_OK


def cmd_eval(args: argparse.Namespace) -> int:
    from ._eval import MEASURES, evaluate

    enc = _encoder(args)
    results = evaluate(args.data_dir, enc, bm25=args.bm25, hybrid=args.hybrid, doc_max_length=args.doc_max_length,
                       query_max_length=args.query_max_length, convex_weight=args.convex_weight,
                       show_progress=not args.quiet)  # fmt: skip
    if args.json:
        print(json.dumps({"data": str(args.data_dir), "model": enc.name, "results": results}, indent=1))
        return EXIT_OK
    w = args.convex_weight
    labels = {"splade": f"SPLADE ({enc.name})", "bm25": "BM25 (bm25s)", "hybrid-rrf": "hybrid RRF (k=60)",
              "hybrid-convex": f"hybrid convex ({w:g} SPLADE + {1 - w:g} BM25)"}  # fmt: skip
    print(f"{args.data_dir}")
    print("| system | " + " | ".join(MEASURES) + " |")
    print("|---|" + "---|" * len(MEASURES))
    for name, scores in results.items():
        print(f"| {labels[name]} | " + " | ".join(f"{scores[m]:.4f}" for m in MEASURES) + " |")
    return EXIT_OK


def cmd_explain(args: argparse.Namespace) -> int:
    enc = _encoder(args)
    q, d = enc.encode_queries([args.query])[0], enc.encode_documents([args.document])[0]
    parts = enc.explain(q, d)
    print(f"score {q.dot(d):.4f} from {len(parts)} shared terms")
    for tok, c in parts[: args.top]:
        print(f"  {tok:20s} {c:8.4f}")
    for label, text, emb in (("query", args.query, q), ("document", args.document, d)):
        own = set(enc._tokenizer.encode([text])[0])
        expansion = [(t, w) for i, (t, w) in zip(_ids_by_weight(emb), enc.decode(emb)) if i not in own]
        shown = ", ".join(f"{t} {w:.2f}" for t, w in expansion[: args.top])
        print(f"{label} expansion terms (not in its text): {shown or '(none)'}")
    return EXIT_OK


def _ids_by_weight(emb: SparseEmbedding) -> list[int]:
    """Vocabulary ids in the order :meth:`SpladeEncoder.decode` lists them."""
    return [int(i) for _, i in sorted(zip((-emb.values).tolist(), emb.indices.tolist()))]


def cmd_models(args: argparse.Namespace) -> int:
    from . import list_supported_models

    rows = list_supported_models()
    if args.json:
        print(json.dumps(rows, indent=1))
        return EXIT_OK
    print("| model | license | commercial use | architecture | size MB | sources |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['license']} | {'yes' if r['commercial_use'] else 'NO'} | {r['architecture']} | "
              f"{r['size_mb']:g} | {'; '.join(r['sources'])} |")  # fmt: skip
    return EXIT_OK


def cmd_convert(args: argparse.Namespace) -> int:
    enc = _encoder(args)
    print(enc._files.graph if enc._files else "")
    print(f"converted {enc.name} from {enc.source}", file=sys.stderr)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="splade-onnx", description="SPLADE sparse embeddings on onnxruntime.")
    ap.add_argument("-v", "--verbose", action="store_true", help="log where models come from and what is built")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def model_opts(p: argparse.ArgumentParser) -> None:
        p.add_argument("--model", default=DEFAULT_MODEL, help="registry name, HF repo id or local folder")
        p.add_argument("--cache-dir", default=None)
        p.add_argument("--max-length", type=int, default=None, help="truncate texts at this many tokens")
        p.add_argument("--threads", type=int, default=None)
        p.add_argument("--int8", action="store_true", help="use the int8-quantized graph")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")

    p = sub.add_parser("encode", help="texts (jsonl or one per line) to jsonl sparse vectors")
    p.add_argument("input", help="a .jsonl file (with --field and _id/id), a text file, or - for stdin")
    p.add_argument("-o", "--output", default=None, help="output jsonl (written atomically); default stdout")
    p.add_argument("--field", default="text")
    p.add_argument("--queries", action="store_true", help="encode as queries")
    p.add_argument("--batch-size", type=int, default=None)
    model_opts(p)
    p.set_defaults(func=cmd_encode)

    p = sub.add_parser("index", help="encode documents and save a SparseIndex")
    p.add_argument("input")
    p.add_argument("-o", "--output", required=True, help="index file to write (.npz)")
    p.add_argument("--field", default="text")
    model_opts(p)
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("search", help="query a saved index")
    p.add_argument("index")
    p.add_argument("query", nargs="+")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--json", action="store_true")
    model_opts(p)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("eval", help="nDCG@10, R@100, MRR@10 on a BEIR folder")
    p.add_argument("data_dir")
    p.add_argument("--bm25", action="store_true", help="also BM25 (bm25s)")
    p.add_argument("--hybrid", action="store_true", help="also SPLADE+BM25 fusion (RRF and convex)")
    p.add_argument("--doc-max-length", type=int, default=None)
    p.add_argument("--query-max-length", type=int, default=None)
    p.add_argument("--convex-weight", type=float, default=0.5, help="SPLADE's weight in the convex fusion")
    p.add_argument("--json", action="store_true")
    model_opts(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("explain", help="why a document scores for a query: shared and expansion terms")
    p.add_argument("query")
    p.add_argument("document")
    p.add_argument("--top", type=int, default=10)
    model_opts(p)
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("models", help="the model registry, with licenses")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("convert", help="convert a checkpoint to the cached ONNX graph (optionally int8)")
    p.add_argument("model")
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--max-length", type=int, default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--int8", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_convert)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s")
    try:
        return int(args.func(args))
    except InputError as e:
        print(f"splade-onnx: bad input: {e}", file=sys.stderr)
        return EXIT_INPUT
    except (FileNotFoundError, ValueError, OSError, ImportError, TypeError) as e:
        print(f"splade-onnx: error: {e}", file=sys.stderr)
        return EXIT_FAIL
    except BrokenPipeError:
        return EXIT_OK
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
