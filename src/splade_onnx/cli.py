"""The ``splade-onnx`` command line: encode, index, search, eval, explain, models, convert.

Input of ``encode`` and ``index``: a ``.jsonl`` file (one JSON object per line, the text in
``--field``, the id in ``_id`` or ``id``, else the line number; blank lines are ignored), any
other file as plain text (one text per line, its id its 1-based line number; blank lines are
skipped, with one warning on stderr saying how many), or ``-`` for stdin, which is read as
jsonl when its first non-blank line is a JSON object and as plain text otherwise.  Everything
that can be checked is checked before the model is loaded: the whole input (UTF-8, JSON,
fields, duplicate ids, reported as ``file:line``), the output folder, the index file, and
the optional ``[eval]`` dependencies.

Exit codes (mapped in one place, :func:`exit_code`):

=====  ===================================================================================
0      success; also when whoever reads stdout closes it early (``... | head -1``): the
       command stops quietly, since the reader has what it wanted
1      failure: the model, a file or folder (any other ``SpladeError``, ``OSError``); an
       index built by another model (``ModelMismatchError``; ``search --allow-model-mismatch``
       overrides it); a missing optional dependency (``MissingExtraError``, naming the
       ``pip install``)
2      bad usage: an unknown command or option, or a value out of range (``-k 0``,
       ``--max-length 1``; argparse, or ``ArgumentError``/``ArgumentTypeError``)
3      malformed input: a bad input line (``InputError``, names ``file:line``) or an
       index file that is corrupt, malformed or too new (``IndexFormatError``)
130    interrupted (Ctrl-C)
=====  ===================================================================================

Progress bars go to stderr; ``--quiet`` hides them.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ._beir import load_beir
from ._cli_io import INPUT_RULES, atomic_output, check_output, read_texts, require_eval_extras
from ._encoder import SpladeEncoder
from ._errors import (
    ArgumentError,
    ArgumentTypeError,
    IndexFormatError,
    InputError,
    MissingExtraError,
    ModelMismatchError,
    SpladeError,
)
from ._index_engines import ENGINES
from ._options import EncodeOptions
from ._registry import DEFAULT_MODEL
from ._types import SparseEmbedding

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

# ---------------------------------------------------------------------------- commands


def _encoder(args: argparse.Namespace) -> SpladeEncoder:
    enc = SpladeEncoder.from_pretrained(
        args.model,
        query=getattr(args, "query_model", None),
        cache_dir=args.cache_dir,
        max_length=args.max_length,
        threads=args.threads,
        quantize="int8" if args.int8 else None,
        projection=args.projection,
    )
    if hasattr(args, "top_k"):  # check the side options before any work (they are usage errors)
        for task in ("document", "query"):
            enc.check_options(_side(args, task), task=task)
    return enc


def _side(args: argparse.Namespace, task: str, batch_size: int | None = None) -> EncodeOptions:
    """The encoding options of one side from the command line (pruning per side, windows for documents)."""
    if task == "query":
        return EncodeOptions(batch_size=batch_size, top_k=args.query_top_k, min_weight=args.query_min_weight)
    return EncodeOptions(
        batch_size=batch_size,
        top_k=args.top_k,
        min_weight=args.min_weight,
        long_documents=args.long_documents,
        stride=args.stride,
    )


def _vector_json(emb: SparseEmbedding) -> dict[str, Any]:
    return {"indices": emb.indices.tolist(), "values": [round(v, 6) for v in emb.values.tolist()]}


def cmd_encode(args: argparse.Namespace) -> int:
    rows = read_texts(args.input, args.field)
    check_output(args.output, create_folder=True)
    enc = _encoder(args)
    texts = [t for _, t in rows]
    task = "query" if args.queries else "document"
    with atomic_output(args.output) as out:
        vectors = enc.encode(texts, task=task, options=_side(args, task, args.batch_size), show_progress=not args.quiet)
        for (rid, _), emb in zip(rows, vectors):
            out.write(json.dumps({"id": rid, **_vector_json(emb)}) + "\n")
    logger.info("encoded %d texts", len(rows))
    return EXIT_OK


def cmd_index(args: argparse.Namespace) -> int:
    from ._index import SparseIndex

    check_output(args.output, create_folder=False)
    rows = read_texts(args.input, args.field)
    enc = _encoder(args)
    index = SparseIndex(model=enc.identity)
    docs = enc.encode_documents([t for _, t in rows], options=_side(args, "document"), show_progress=not args.quiet)
    index.add(docs, ids=[r for r, _ in rows])
    index.save(args.output)
    print(f"indexed {len(index)} documents with {enc.name} into {args.output}", file=sys.stderr)
    return EXIT_OK


def cmd_search(args: argparse.Namespace) -> int:
    from ._index import SparseIndex, check_model
    from ._seismic import Seismic

    engine = Seismic(cache=args.cache_dir) if args.engine == "seismic" and args.cache_dir is not None else args.engine
    index = SparseIndex.load(args.index, engine=engine)  # before the model: a bad file fails fast
    enc = _encoder(args)
    check_model(index.model, enc.identity, where=args.index, allow_mismatch=args.allow_model_mismatch)
    queries = enc.encode_queries(args.query, options=_side(args, "query"))
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
    from ._eval import MEASURES, evaluate_loaded

    require_eval_extras(bm25=args.bm25 or args.hybrid)
    data = load_beir(args.data_dir)  # read and checked before the model loads
    enc = _encoder(args)
    results = evaluate_loaded(
        data,
        enc,
        bm25=args.bm25,
        hybrid=args.hybrid,
        doc_max_length=args.doc_max_length,
        query_max_length=args.query_max_length,
        convex_weight=args.convex_weight,
        document_options=_side(args, "document"),
        query_options=_side(args, "query"),
        show_progress=not args.quiet,
    )
    if args.json:
        print(json.dumps({"data": str(args.data_dir), "model": enc.name, "results": results}, indent=1))
        return EXIT_OK
    w = args.convex_weight
    labels = {
        "splade": f"SPLADE ({enc.name})",
        "bm25": "BM25 (bm25s)",
        "hybrid-rrf": "hybrid RRF (k=60)",
        "hybrid-convex": f"hybrid convex ({w:g} SPLADE + {1 - w:g} BM25)",
    }
    print(f"{args.data_dir}")
    print("| system | " + " | ".join(MEASURES) + " |")
    print("|---|" + "---|" * len(MEASURES))
    for name, scores in results.items():
        print(f"| {labels[name]} | " + " | ".join(f"{scores[m]:.4f}" for m in MEASURES) + " |")
    return EXIT_OK


def cmd_explain(args: argparse.Namespace) -> int:
    enc = _encoder(args)
    q = enc.encode_queries([args.query], options=_side(args, "query"))[0]
    d = enc.encode_documents([args.document], options=_side(args, "document"))[0]
    parts = enc.explain(q, d)
    print(f"score {q.dot(d):.4f} from {len(parts)} shared terms")
    for tok, c in parts[: args.top]:
        print(f"  {tok:20s} {c:8.4f}")
    for label, text, emb in (("query", args.query, q), ("document", args.document, d)):
        own = set(enc.loaded.document.tokenizer.encode([text])[0])
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
    print("| model | license | commercial use | architecture | parameters | query side | sources |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['name']} | {r['license']} | {'yes' if r['commercial_use'] else 'NO'} | {r['architecture']} | "
            f"{r['parameters'] or '?'} | {r['query_mode']} | {'; '.join(r['sources'])} |"
        )
    return EXIT_OK


def cmd_convert(args: argparse.Namespace) -> int:
    enc = _encoder(args)
    recipe = enc.loaded.recipes.get("document")
    print(recipe.graph if recipe else "")
    print(f"converted {enc.name} from {enc.source}", file=sys.stderr)
    return EXIT_OK


# ---------------------------------------------------------------------------- arguments


def _int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer >= ``minimum`` (anything else is a usage error, exit 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0 or math.isnan(value):
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return value


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


_POSITIVE = _int_at_least(1)
_NON_NEGATIVE = _int_at_least(0)
_LENGTH = _int_at_least(2)  # room for the [CLS] and [SEP] tokens

EPILOG = """exit codes: 0 success (also when stdout is closed early, e.g. by | head), 1 failure (model,
file, an index built by another model, a missing optional dependency), 2 bad usage (unknown
option, value out of range), 3 malformed input (file:line) or a corrupt index file, 130 interrupted"""


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="splade-onnx",
        description="SPLADE sparse embeddings on onnxruntime.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("-v", "--verbose", action="store_true", help="log where models come from and what is built")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def model_opts(p: argparse.ArgumentParser) -> None:
        p.add_argument("--model", default=DEFAULT_MODEL, help="registry name, HF repo id or local folder")
        p.add_argument("--cache-dir", default=None, help="converted models (and `search --engine seismic` structures)")
        p.add_argument("--max-length", type=_LENGTH, default=None, help="truncate texts at this many tokens (>= 2)")
        p.add_argument("--threads", type=_POSITIVE, default=None)
        p.add_argument("--int8", action="store_true", help="use the int8-quantized graph")
        p.add_argument(
            "--projection",
            choices=("auto", "dense", "pruned"),
            default="auto",
            help="documents' vocabulary projection: the exact pruned head where the model's fit "
            "predicts a gain (auto), or one of them; the vectors are the same",
        )
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
        p.add_argument("--query-model", default=None, help="a separate query checkpoint (two-tower models)")
        p.add_argument("--top-k", type=_POSITIVE, default=None, help="keep each document's k heaviest terms")
        p.add_argument("--min-weight", type=_finite, default=None, help="drop document weights below this")
        p.add_argument("--query-top-k", type=_POSITIVE, default=None, help="keep each query's k heaviest terms")
        p.add_argument("--query-min-weight", type=_finite, default=None, help="drop query weights below this")
        p.add_argument(
            "--long-documents",
            choices=("truncate", "windows"),
            default="truncate",
            help="truncate documents at --max-length (default), or encode every token in overlapping "
            "windows merged by max",
        )
        p.add_argument(
            "--stride",
            type=_NON_NEGATIVE,
            default=None,
            help="tokens shared by consecutive windows (default: a quarter of a window)",
        )

    p = sub.add_parser("encode", help="texts (jsonl or one per line) to jsonl sparse vectors", epilog=INPUT_RULES)
    p.add_argument("input", help="a .jsonl file (with --field and _id/id), a text file, or - for stdin (sniffed)")
    p.add_argument("-o", "--output", default=None, help="output jsonl (written atomically); default stdout")
    p.add_argument("--field", default="text", help="the text field of jsonl input (default: text)")
    p.add_argument("--queries", action="store_true", help="encode as queries")
    p.add_argument("--batch-size", type=_POSITIVE, default=None)
    model_opts(p)
    p.set_defaults(func=cmd_encode)

    p = sub.add_parser("index", help="encode documents and save a SparseIndex", epilog=INPUT_RULES)
    p.add_argument("input", help="a .jsonl file (with --field and _id/id), a text file, or - for stdin (sniffed)")
    p.add_argument("-o", "--output", required=True, help="index file to write (.npz), in an existing folder")
    p.add_argument("--field", default="text", help="the text field of jsonl input (default: text)")
    model_opts(p)
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("search", help="query a saved index")
    p.add_argument("index")
    p.add_argument("query", nargs="+")
    p.add_argument("-k", type=_POSITIVE, default=10)
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--allow-model-mismatch",
        action="store_true",
        help="search an index built by another model than --model (warn instead of exit 1)",
    )
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default="exact",
        help="exact (default) or exhaustive: the same hits; seismic: approximate, for large indexes "
        "(pip install 'splade-onnx[ann]')",
    )
    model_opts(p)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("eval", help="nDCG@10, R@100, MRR@10 on a BEIR folder (needs the [eval] extra)")
    p.add_argument("data_dir")
    p.add_argument("--bm25", action="store_true", help="also BM25 (bm25s)")
    p.add_argument("--hybrid", action="store_true", help="also SPLADE+BM25 fusion (RRF and convex)")
    p.add_argument("--doc-max-length", type=_LENGTH, default=None)
    p.add_argument("--query-max-length", type=_LENGTH, default=None)
    p.add_argument("--convex-weight", type=_fraction, default=0.5, help="SPLADE's weight in the convex fusion")
    p.add_argument("--json", action="store_true")
    model_opts(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("explain", help="why a document scores for a query: shared and expansion terms")
    p.add_argument("query")
    p.add_argument("document")
    p.add_argument("--top", type=_POSITIVE, default=10)
    model_opts(p)
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("models", help="the model registry, with licenses")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("convert", help="convert a checkpoint to the cached ONNX graph (optionally int8)")
    p.add_argument("model")
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--max-length", type=_LENGTH, default=None)
    p.add_argument("--threads", type=_POSITIVE, default=None)
    p.add_argument("--int8", action="store_true")
    p.add_argument("--projection", choices=("auto", "dense", "pruned"), default="auto")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_convert)
    return ap


# ---------------------------------------------------------------------------- exit codes


def exit_code(exc: BaseException) -> tuple[int, str | None]:
    """The exit code for ``exc`` and the message for stderr (``None``: say nothing): the one mapping.

    :func:`main` handles the error tree (``SpladeError``), ``OSError``, ``BrokenPipeError`` and
    ``KeyboardInterrupt`` this way; anything else is a bug and keeps its traceback.
    """
    if isinstance(exc, BrokenPipeError):
        return EXIT_OK, None  # the reader of stdout is gone: stop quietly
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED, None
    if isinstance(exc, (InputError, IndexFormatError)):
        return EXIT_INPUT, f"bad input: {exc}"
    if isinstance(exc, (ArgumentError, ArgumentTypeError)):
        return EXIT_USAGE, f"error: {exc}"
    if isinstance(exc, ModelMismatchError):
        return EXIT_FAIL, f"error: {exc} On the command line: --allow-model-mismatch."
    if isinstance(exc, (MissingExtraError, SpladeError, OSError)):
        return EXIT_FAIL, f"error: {exc}"
    return EXIT_FAIL, None


def _stdout_to_devnull() -> None:
    """After a broken pipe, point stdout at /dev/null so the interpreter's last flush cannot fail
    ("Exception ignored ... BrokenPipeError"), as the Python docs on SIGPIPE recommend."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a real file (captured output)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


_HANDLED = (BrokenPipeError, KeyboardInterrupt, SpladeError, OSError)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help (0), or a usage error argparse has reported (2)
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s")
    try:
        code = int(args.func(args))
        sys.stdout.flush()  # a closed pipe shows up here, not at interpreter exit
    except _HANDLED as e:
        code, message = exit_code(e)
        if isinstance(e, BrokenPipeError):
            _stdout_to_devnull()
        if message is not None:
            print(f"splade-onnx: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
