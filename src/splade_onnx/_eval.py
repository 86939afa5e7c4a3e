"""BEIR-style evaluation of SPLADE, BM25 (bm25s) and their fusion, scored with ir-measures."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from ._beir import BeirData, load_beir
from ._encoder import SpladeEncoder
from ._errors import ArgumentError, MissingExtraError
from ._fusion import fuse
from ._index import SparseIndex
from ._options import EncodeOptions
from ._registry import DEFAULT_MODEL

logger = logging.getLogger(__name__)

#: One side's encoding options: an :class:`EncodeOptions`, a mapping of its option names, or none.
Options = EncodeOptions | Mapping[str, Any] | None

__all__ = ["MEASURES", "bm25_run", "evaluate", "evaluate_loaded", "score_run"]

#: Reported measures, in ir-measures' names (RR@10 is MRR@10).
MEASURES = ("nDCG@10", "R@100", "RR@10")
Run = dict[str, list[tuple[str, float]]]


def _need(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingExtraError(f"evaluation needs {module}: pip install 'splade-onnx[eval]'") from e


def score_run(
    run: Mapping[str, Sequence[tuple[str, float]]], qrels: Mapping[str, Mapping[str, int]]
) -> dict[str, float]:
    """Mean of each measure over every judged query; a judged query with no results scores 0."""
    ir_measures = _need("ir_measures")
    measures = [ir_measures.parse_measure(m) for m in MEASURES]
    qrel_rows = [ir_measures.Qrel(q, d, g) for q, docs in qrels.items() for d, g in docs.items()]
    run_rows = [ir_measures.ScoredDoc(q, d, float(s)) for q, hits in run.items() if q in qrels for d, s in hits]
    totals = {str(m): 0.0 for m in measures}
    for metric in ir_measures.iter_calc(measures, qrel_rows, run_rows):
        totals[str(metric.measure)] += float(metric.value)
    n = len(qrels)
    return {name: round(v / n, 4) for name, v in zip(MEASURES, totals.values())}


def bm25_run(data: BeirData, depth: int, *, k1: float = 0.9, b: float = 0.4) -> Run:
    """BM25 with bm25s: English stopwords and Snowball stemming, Lucene scoring."""
    bm25s = _need("bm25s")
    stemmer = _need("Stemmer").Stemmer("english")
    corpus = bm25s.tokenize(data.doc_texts, stopwords="en", stemmer=stemmer, show_progress=False)
    retriever = bm25s.BM25(k1=k1, b=b)
    retriever.index(corpus, show_progress=False)
    queries = bm25s.tokenize(data.query_texts, stopwords="en", stemmer=stemmer, show_progress=False)
    docs, scores = retriever.retrieve(queries, k=min(depth, len(data.doc_ids)), show_progress=False, n_threads=1)
    run: Run = {}
    for qid, row, srow in zip(data.query_ids, docs, scores):
        run[qid] = [(data.doc_ids[int(i)], float(s)) for i, s in zip(row, srow) if s > 0]
    return run


def splade_run(
    data: BeirData,
    encoder: SpladeEncoder,
    depth: int,
    *,
    document_options: Options = None,
    query_options: Options = None,
    show_progress: bool = False,
) -> Run:
    """Exhaustive SPLADE retrieval (exact dot products through :class:`SparseIndex`).

    ``document_options`` and ``query_options`` go to ``encode_documents`` and ``encode_queries``
    (``max_length``, ``top_k``, ``min_weight``, ``long_documents``, ``stride``).
    """
    index = SparseIndex()
    doc_opts, query_opts = _side(None, document_options, "documents"), _side(None, query_options, "queries")
    docs = encoder.encode_documents(data.doc_texts, options=doc_opts, show_progress=show_progress)
    index.add(docs, ids=data.doc_ids)
    queries = encoder.encode_queries(data.query_texts, options=query_opts)
    return dict(zip(data.query_ids, index.search_batch(queries, k=depth)))


def _side(max_length: int | None, options: Options, what: str) -> EncodeOptions:
    """One side's options (an :class:`EncodeOptions` or a mapping of its names), with ``max_length`` added."""
    out = options if isinstance(options, EncodeOptions) else EncodeOptions.of(options or {}, f"{what} options")
    if max_length is not None:
        if out.max_length is not None:
            raise ArgumentError(f"{what}: pass max_length once, as an argument or in the options")
        out = out.replace(max_length=max_length)
    return out


def evaluate(
    data_dir: str | os.PathLike[str],
    encoder: SpladeEncoder | str = DEFAULT_MODEL,
    *,
    bm25: bool = False,
    hybrid: bool = False,
    doc_max_length: int | None = None,
    query_max_length: int | None = None,
    convex_weight: float = 0.5,
    depth: int = 100,
    split: str = "test",
    document_options: Options = None,
    query_options: Options = None,
    show_progress: bool = False,
) -> dict[str, dict[str, float]]:
    """nDCG@10, R@100 and MRR@10 (``RR@10``) on a BEIR folder, over its judged queries.

    Returns ``{"splade": {...}}`` plus ``"bm25"`` with ``bm25=True`` and, with
    ``hybrid=True``, ``"hybrid-rrf"`` (reciprocal-rank fusion, k=60) and
    ``"hybrid-convex"`` (``convex_weight`` x min-max SPLADE + the rest x min-max BM25).
    A document whose id equals the query's id is kept: BEIR's collections share
    one number space between queries and documents.  ``document_options`` and
    ``query_options`` go to ``encode_documents`` and ``encode_queries`` (pruning with
    ``top_k``/``min_weight``, ``long_documents="windows"``, ...).
    """
    if not 0.0 <= convex_weight <= 1.0:
        raise ArgumentError(f"convex_weight must be in [0, 1], got {convex_weight}")
    if depth < 10:
        raise ArgumentError(f"depth must be >= 10 for the reported measures, got {depth}")
    data = load_beir(data_dir, split=split)
    if isinstance(encoder, str):
        encoder = SpladeEncoder.from_pretrained(encoder)
    logger.info("evaluating on %s: %d docs, %d judged queries", data_dir, len(data.doc_ids), len(data.qrels))
    return evaluate_loaded(
        data,
        encoder,
        bm25=bm25,
        hybrid=hybrid,
        doc_max_length=doc_max_length,
        query_max_length=query_max_length,
        convex_weight=convex_weight,
        depth=depth,
        document_options=document_options,
        query_options=query_options,
        show_progress=show_progress,
    )


def evaluate_loaded(
    data: BeirData,
    encoder: SpladeEncoder,
    *,
    bm25: bool = False,
    hybrid: bool = False,
    doc_max_length: int | None = None,
    query_max_length: int | None = None,
    convex_weight: float = 0.5,
    depth: int = 100,
    document_options: Options = None,
    query_options: Options = None,
    show_progress: bool = False,
) -> dict[str, dict[str, float]]:
    """:func:`evaluate` on a collection already read (the CLI reads it before it loads the model)."""
    runs: dict[str, Run] = {
        "splade": splade_run(
            data,
            encoder,
            depth,
            document_options=_side(doc_max_length, document_options, "documents"),
            query_options=_side(query_max_length, query_options, "queries"),
            show_progress=show_progress,
        )
    }
    if bm25 or hybrid:
        runs["bm25"] = bm25_run(data, depth)
    if hybrid:
        pairs = [(runs["splade"].get(q, []), runs["bm25"].get(q, [])) for q in data.query_ids]
        runs["hybrid-rrf"] = {q: fuse(p, method="rrf", limit=depth) for q, p in zip(data.query_ids, pairs)}
        w = [convex_weight, 1.0 - convex_weight]
        runs["hybrid-convex"] = {
            q: fuse(p, method="convex", weights=w, limit=depth) for q, p in zip(data.query_ids, pairs)
        }
    return {name: score_run(run, data.qrels) for name, run in runs.items()}
