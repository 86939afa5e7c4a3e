"""Fusing ranked lists: reciprocal-rank fusion and a score-normalised convex combination.

Pure functions over ``[(id, score), ...]`` lists, best first.  The adapters reuse
them for their hybrid retrievers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from ._errors import ArgumentError

__all__ = ["fuse"]

Ranking = Sequence[tuple[str, float]]


def fuse(
    rankings: Sequence[Ranking],
    *,
    method: Literal["rrf", "convex"] = "rrf",
    weights: Sequence[float] | None = None,
    rrf_k: int = 60,
    limit: int | None = None,
) -> list[tuple[str, float]]:
    """Combine several rankings of ids into one, best first.

    ``rrf``: ``sum_i w_i / (rrf_k + rank_i)`` (rank from 1; Cormack et al. 2009).
    ``convex``: ``sum_i w_i * minmax_i(score)``, each ranking's scores scaled to
    [0, 1] (a ranking whose scores are all equal counts 1 for each of its ids).
    An id missing from a ranking gets nothing from it.  Weights default to equal
    (``1`` for rrf, ``1/n`` for convex).  Ties are broken by first appearance,
    scanning the rankings in order, so the result is deterministic.

    >>> a, b = [("d1", 9.0), ("d2", 5.0)], [("d2", 0.8), ("d3", 0.1)]
    >>> [d for d, _ in fuse([a, b])]
    ['d2', 'd1', 'd3']
    >>> fuse([a, b], method="convex", weights=[0.3, 0.7])
    [('d2', 0.7), ('d1', 0.3), ('d3', 0.0)]
    """
    if method not in ("rrf", "convex"):
        raise ArgumentError(f"method must be 'rrf' or 'convex', got {method!r}")
    if not rankings:
        return []
    if weights is None:
        weights = [1.0 if method == "rrf" else 1.0 / len(rankings)] * len(rankings)
    if len(weights) != len(rankings):
        raise ArgumentError(f"got {len(weights)} weights for {len(rankings)} rankings; pass one weight per ranking")
    if any(w < 0 for w in weights):
        raise ArgumentError(f"weights must be >= 0, got {list(weights)}")
    if rrf_k < 0:
        raise ArgumentError(f"rrf_k must be >= 0, got {rrf_k}")
    if limit is not None and limit < 1:
        raise ArgumentError(f"limit must be >= 1 or None, got {limit}")
    total: dict[str, float] = {}
    for ranking, w in zip(rankings, weights):
        if method == "rrf":
            for rank, (doc, _) in enumerate(ranking, 1):
                total[doc] = total.get(doc, 0.0) + w / (rrf_k + rank)
        elif ranking:
            scores = [s for _, s in ranking]
            lo, hi = min(scores), max(scores)
            for doc, s in ranking:
                total[doc] = total.get(doc, 0.0) + w * ((s - lo) / (hi - lo) if hi > lo else 1.0)
    order = {doc: i for i, doc in enumerate(total)}
    fused = sorted(total.items(), key=lambda kv: (-kv[1], order[kv[0]]))
    return fused[:limit]
