"""Pure helpers for turning a stream of texts into padded batches and back."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
from numpy.typing import NDArray

from ._errors import ArgumentTypeError
from ._types import SparseEmbedding

__all__ = ["check_texts", "plan_batches", "rows_to_sparse", "windows"]


def plan_batches(lengths: Sequence[int], *, token_budget: int, max_batch: int) -> list[list[int]]:
    """Group positions into batches sorted by length so that ``rows * longest <= token_budget``.

    A text longer than the budget gets a batch of its own.  Every position appears
    exactly once.

    >>> plan_batches([5, 1, 3, 2], token_budget=6, max_batch=8)
    [[1, 3], [2], [0]]
    >>> plan_batches([2, 2, 2], token_budget=100, max_batch=2)
    [[0, 1], [2]]
    """
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    batches: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        if cur and ((len(cur) + 1) * lengths[i] > token_budget or len(cur) >= max_batch):
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    return batches


def rows_to_sparse(weights: NDArray[np.float32]) -> list[SparseEmbedding]:
    """One :class:`SparseEmbedding` per row of a [batch, vocab] matrix, zeros dropped.

    >>> [e.as_dict() for e in rows_to_sparse(np.array([[0, 1.5, 0], [0, 0, 0]], np.float32))]
    [{1: 1.5}, {}]
    """
    rows, cols = np.nonzero(weights > 0)
    vals = weights[rows, cols]
    bounds = np.searchsorted(rows, np.arange(weights.shape[0] + 1))
    return [
        SparseEmbedding(values=vals[a:b], indices=cols[a:b].astype(np.int64))
        for a, b in itertools.pairwise(bounds.tolist())
    ]


def check_texts(texts: object, what: str = "texts") -> None:
    """Reject a bare string or None where a collection of strings is expected."""
    if isinstance(texts, (str, bytes)):
        raise ArgumentTypeError(
            f"{what} must be an iterable of str, got a single {type(texts).__name__}; wrap it: [text]"
        )
    if texts is None or not isinstance(texts, Iterable):
        raise ArgumentTypeError(f"{what} must be an iterable of str, got {type(texts).__name__}")


def windows(texts: Iterable[object], size: int) -> Iterator[tuple[int, list[str]]]:
    """Consecutive chunks of at most ``size`` texts with their start position, type-checked."""
    it = iter(texts)
    start = 0
    while True:
        chunk = list(itertools.islice(it, size))
        if not chunk:
            return
        for j, t in enumerate(chunk):
            if not isinstance(t, str):
                raise ArgumentTypeError(
                    f"text at position {start + j} is {type(t).__name__}, not str; convert or drop it before encoding"
                )
        yield start, chunk  # type: ignore[misc]
        start += len(chunk)
