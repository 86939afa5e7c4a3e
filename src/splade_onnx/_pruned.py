"""The math of the exact pruned vocabulary projection: compute only the logits that can become positive.

SPLADE keeps ``log(1 + relu(max_t logit_tv))`` per vocabulary id ``v``, and 99 % of the ids end at zero. With
max pooling an id is active iff ``max_t logit_tv > 0``, where ``logit_tv = h_t . e_v + b_v`` (``h_t`` the head's
LayerNorm output, ``e_v`` the decoder row).  The pruned head bounds ``max_t logit_tv`` from above and drops
every id whose bound is at most ``-eps``; the survivors get the dense head's own arithmetic (the same MatMul of
the same ``h``), so the result is the dense result, not an approximation of it.

The bound, per text (exact algebra; the basis changes only how tight the bound is, never the result):

* **Centre.** ``h_t = mu + delta_t`` with ``mu`` the text's mean state, so ``logit_tv = delta_t . e_v + c_v``
  with ``c_v = b_v + mu . e_v`` (one batched GEMM for all texts).  Any centre gives the same algebra: a short
  text (a query) is centred on a fixed ``mu``, the mean state of the fit's short texts, so that ``c`` is a
  constant of the graph instead of a pass over every decoder row (which, for one text, costs as much as
  the dense head).
* **Project.** The head LayerNorm makes ``(h_t - beta) / gamma`` sum to zero, so every ``delta_t`` is
  orthogonal to ``a = 1 / gamma``, and ``e_v`` may be replaced by its projection off ``a``.
* **Balance.** ``delta' = delta A`` and ``e' = e_proj B`` with ``A B^T = I``, from the Cholesky factors of the
  covariances of ``delta`` (fitted on a text sample) and of ``e``, and the SVD of ``L_e^T L_delta``: both sides
  get the same sorted diagonal covariance, so the leading coordinates carry most of each product.
* **Bound at rank r.** ``delta'_t . e'_v <= q_t . g_v`` with ``q_t = [delta'_t,<r, |delta'_t,>=r|]`` and
  ``g_v = [e'_v,<r, |e'_v,>=r|]`` (Cauchy-Schwarz on the tail): a product of width ``r + 1``.
* **In int8, with its error.** ``q`` is quantized per text (``q^ = s * round(q / s)``, ``s = max|q| / 63.9``,
  so ``|q - q^| <= s / 2`` elementwise) and ``g`` per id (``g^_v = w_v * k_v``, ``k_v`` int8, done once at
  conversion).  ``q . g - q^ . g^ = (q - q^) . g^ + q . (g - g^)``, so
  ``q_t . g_v <= s * w_v * (k_t . k_v) + s / 2 * |g^_v|_1 + max|g_v - g^_v| * |q_t|_1``.  The integer products
  ``k_t . k_v`` are exact (int32), and their max over tokens is taken before any scale is applied: one
  ``MatMulInteger`` (VNNI on CPUs that have it) and one integer max per vocabulary tile.  The text's codes stay
  within +-64 so that the products are exact on every CPU: without VNNI, onnxruntime multiplies u8 x s8 with
  ``VPMADDUBSW``, which adds pairs of products in int16 with saturation, and the table's uint8 (zero point 128)
  reach 255: ``2 * 255 * 64 = 32640`` fits, ``2 * 255 * 127`` does not (tests/test_calibration.py).

``eps`` covers float32 rounding: ``SAFETY`` times the worst-case error of every dot product and sum involved
(``H`` float32 operations, each at most the product of the two norms), plus the error of ``A B^T`` against the
identity and of ``delta`` against exact orthogonality, both measured.  Ids are only dropped below ``-eps``, so
an id whose exact logit is positive is never dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ._errors import ArgumentError

logger = logging.getLogger(__name__)

__all__ = [
    "AUTO_SHARE",
    "HALF_STEP",
    "Q_RANGE",
    "Basis",
    "Bound",
    "BoundConstants",
    "KernelCosts",
    "Table",
    "choose_rank",
    "fit_basis",
    "head_share",
    "kept_shares",
    "make_bound",
    "network_macs",
    "network_share",
    "quantize_table",
    "rank_candidates",
    "shared_logits",
    "survivors",
]

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]

#: Multiple of the worst-case rounding bound kept as margin.
SAFETY = 8.0
#: A text's ``q`` is scaled so its largest entry maps to this: its codes are within +-64 (float32 division never
#: rounds 63.9 past 64), so a pair of u8 x s8 products never saturates int16 on CPUs without VNNI (see above).
Q_RANGE = 63.9
#: ``|q - q^| <= HALF_STEP * s``: half a step, plus the rounding of ``q / s`` in float32 (``64 * 2^-24`` steps).
HALF_STEP = 0.5 + 2.0**-16


@dataclass(frozen=True)
class Basis:
    """A balanced basis of one model's head."""

    #: ``delta' = delta @ A`` [hidden, hidden], float32 as stored in the graph.
    A: F32
    #: ``e' = e_proj @ B``; ``A @ B.T`` is the identity up to ``rho``.
    B: F32
    #: The unit vector along ``1 / gamma``, which every centred head state is orthogonal to.
    a_hat: F32
    #: Spectral norm of ``A @ B.T - I`` (float64 of the stored float32 factors).
    rho: float

    def rotate(self, decoder: F32) -> F32:
        """``e'`` for every row of ``decoder`` [vocab, hidden]: projected off ``a_hat``, then times ``B``."""
        e = decoder.astype(np.float64)
        a = self.a_hat.astype(np.float64)
        return ((e - np.outer(e @ a, a)) @ self.B.astype(np.float64)).astype(np.float32)


def _cholesky(c: F64) -> F64:
    """Cholesky factor of a covariance, with a small ridge: centred states always have a null direction."""
    ridge = 1e-6 * max(float(np.trace(c)) / len(c), 1e-30)
    out: F64 = np.linalg.cholesky(c + ridge * np.eye(len(c))).astype(np.float64)
    return out


def fit_basis(deltas: F32 | F64, decoder: F32, gamma: F32) -> Basis:
    """The balanced basis from centred head states ``deltas`` [n, hidden] of any text, and the decoder.

    >>> rng = np.random.default_rng(0)
    >>> decoder = rng.normal(size=(50, 8)).astype(np.float32)
    >>> basis = fit_basis(rng.normal(size=(200, 8)), decoder, np.ones(8, np.float32))
    >>> bool(basis.rho < 1e-5), basis.A.shape
    (True, (8, 8))
    """
    d = np.asarray(deltas, dtype=np.float64)
    g = np.asarray(gamma, dtype=np.float64)
    a = np.divide(1.0, g, out=np.zeros_like(g), where=g != 0)
    a_hat = a / max(float(np.linalg.norm(a)), 1e-30)
    e = decoder.astype(np.float64)
    e -= np.outer(e @ a_hat, a_hat)
    l_d = _cholesky(d.T @ d / max(len(d), 1))
    l_e = _cholesky(e.T @ e / len(e))
    _, s, wt = np.linalg.svd(l_e.T @ l_d)
    s = np.maximum(s, 1e-30)
    A = (np.linalg.solve(l_d.T, wt.T) * np.sqrt(s)).astype(np.float32)
    B = ((l_d @ wt.T) / np.sqrt(s)).astype(np.float32)
    rho = float(np.linalg.norm(A.astype(np.float64) @ B.astype(np.float64).T - np.eye(len(A)), 2))
    return Basis(A=A, B=B, a_hat=a_hat.astype(np.float32), rho=rho)


@dataclass(frozen=True)
class BoundConstants:
    """The model's side of ``eps``: largest norms over the vocabulary and the measured basis errors."""

    row_norm: float  # max_v |e_v|
    rot_norm: float  # max_v |e'_v|
    bias: float  # max_v |b_v|
    rounding: float  # SAFETY * hidden * 2^-24
    basis_error: float  # rho * row_norm
    off_axis: float  # max_v |e_v . a_hat|
    l1: float  # max_v |g^_v|_1
    step: float  # max_v max|g_v - g^_v|


def _up(x: F64) -> F32:
    """float32 no smaller than ``x`` (the error terms must never round down)."""
    out: F32 = np.nextafter(x.astype(np.float32), np.float32(np.inf))
    return out


@dataclass(frozen=True)
class Table:
    """The int8 table of the bound at one rank: ``g^_v = scale_v * codes_v`` for ``g_v = [e'_<r, |e'_>=r|]``."""

    #: int8 [vocab, rank + 1].
    codes: NDArray[np.int8]
    #: ``w_v`` [vocab], float32.
    scale: F32
    #: ``|g^_v|_1`` [vocab], rounded up.
    l1: F32
    #: ``max_i |g_vi - g^_vi|`` [vocab], rounded up.
    step: F32


def quantize_table(rot: F32, rank: int) -> Table:
    """The int8 table of the rank-``rank`` bound from the rotated decoder rows ``rot`` [vocab, hidden].

    >>> t = quantize_table(np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 0.0]], np.float32), 1)
    >>> t.codes.tolist(), t.scale.tolist(), bool(t.step[0] <= t.scale[0] / 2), bool(t.step[1] < 1e-30)
    ([[95, 127], [0, 0]], [0.031496062874794006, 0.0], True, True)
    """
    r64 = rot.astype(np.float64)
    g = np.concatenate([r64[:, :rank], np.linalg.norm(r64[:, rank:], axis=1)[:, None]], axis=1)
    scale = (np.abs(g).max(axis=1) / 127.0).astype(np.float32)
    safe = np.where(scale > 0, scale, 1.0).astype(np.float64)
    codes = np.clip(np.round(g / safe[:, None]), -127, 127).astype(np.int8)
    g_hat = codes.astype(np.float64) * scale.astype(np.float64)[:, None]
    return Table(codes=codes, scale=scale, l1=_up(np.abs(g_hat).sum(axis=1)), step=_up(np.abs(g - g_hat).max(axis=1)))


@dataclass(frozen=True)
class Bound:
    """Everything the pruned graphs need: the basis, the rank and its int8 table."""

    A: F32
    a_hat: F32
    rank: int
    table: Table
    constants: BoundConstants


def make_bound(basis: Basis, decoder: F32, bias: F32, rank: int) -> Bound:
    hidden = decoder.shape[1]
    if not 0 < rank < hidden:
        raise ArgumentError(f"rank must be in [1, {hidden - 1}], got {rank}")
    rot = basis.rotate(decoder)
    table = quantize_table(rot, rank)
    row_norm = float(np.linalg.norm(decoder.astype(np.float64), axis=1).max())
    k = BoundConstants(
        row_norm=row_norm,
        rot_norm=float(np.linalg.norm(rot.astype(np.float64), axis=1).max()),
        bias=float(np.abs(bias.astype(np.float64)).max(initial=0.0)),
        rounding=SAFETY * hidden * 2.0**-24,
        basis_error=basis.rho * row_norm,
        off_axis=float(np.abs(decoder.astype(np.float64) @ basis.a_hat.astype(np.float64)).max()),
        l1=float(table.l1.max(initial=0.0)),
        step=float(table.step.max(initial=0.0)),
    )
    return Bound(A=basis.A, a_hat=basis.a_hat, rank=rank, table=table, constants=k)


def shared_logits(decoder: F32, bias: F32, center: F32) -> F32:
    """``c_v = b_v + center . e_v`` for every id, in float64 and rounded up to float32: the constant part of the
    bound of texts centred on ``center``."""
    return _up(bias.astype(np.float64) + decoder.astype(np.float64) @ center.astype(np.float64))


def survivors(h: F32, decoder: F32, bias: F32, basis: Basis, rank: int, *, margin: float = 1e-3) -> NDArray[np.int64]:
    """The ids the rank-``rank`` int8 bound keeps for one text ``h`` [tokens, hidden] (a float64 reference of the
    graph's algorithm, used to choose the rank; ``margin`` stands in for the graph's ``eps``)."""
    d, c = _centred(h, decoder, bias, basis)
    return _kept(d, c, quantize_table(basis.rotate(decoder), rank), rank, margin)


def _centred(h: F32, decoder: F32, bias: F32, basis: Basis) -> tuple[F32, F64]:
    """A text's centred states in the basis, ``delta'`` [tokens, hidden], and its shared logit part ``c``."""
    mu = h.mean(0, dtype=np.float64)
    return _rotated(h, mu, basis), bias.astype(np.float64) + decoder.astype(np.float64) @ mu


def _rotated(h: F32, mu: F64, basis: Basis) -> F32:
    """``delta' = (h - mu) A``: a text's states centred on ``mu``, in the basis."""
    return ((h - mu) @ basis.A).astype(np.float32)


def _exact_codes(table: Table) -> F32 | F64:
    """The table's codes as floats whose products with codes of at most 127 sum exactly: float32 while every sum
    stays below 2^24 (``(rank + 1) * 127 * 127``; up to a hidden size of about 1,040), float64 beyond."""
    wide = table.codes.shape[1] * 127 * 127 >= 2**24
    return table.codes.astype(np.float64 if wide else np.float32)


def _kept(
    d: F32, c: F64, table: Table, rank: int, margin: float = 1e-3, codes: F32 | F64 | None = None
) -> NDArray[np.int64]:
    """The ids kept for one text's centred states ``d`` and shared part ``c``; ``codes`` is
    :func:`_exact_codes` of ``table``, when the caller reuses it across texts."""
    codes = _exact_codes(table) if codes is None else codes
    d64 = d.astype(np.float64)
    q = np.concatenate([d64[:, :rank], np.linalg.norm(d64[:, rank:], axis=1)[:, None]], axis=1)
    s = max(float(np.abs(q).max(initial=0.0)), 1e-30) / Q_RANGE
    top = (codes @ np.round(q / s).T.astype(codes.dtype)).max(1)  # exact integers
    err = HALF_STEP * s * table.l1 + table.step * float(np.abs(q).sum(axis=1).max(initial=0.0))
    return np.flatnonzero(s * table.scale * top + err + c > -margin)


@dataclass(frozen=True)
class KernelCosts:
    """What the pruned head's kernels cost on one machine, each relative to the dense head's cost per (token, id)
    pair (one fp32 multiply-add per hidden unit, and the max): measured by :mod:`splade_onnx._calibration`.

    The int8 bound costs ``bound_fixed`` per (token, id) pair (writing and taking the max of the products) plus
    ``bound_cost * (rank + 1) / hidden`` for its ``rank + 1`` columns; the exact stage (the kept ids' rows
    gathered, times the text's states, max over tokens) costs ``final_cost`` per (token, kept id) pair.
    """

    bound_fixed: float
    bound_cost: float
    final_cost: float
    #: The int8 dense head (onnxruntime's dynamic quantization of the same projection) per (token, id) pair.
    int8_dense: float = 1.0


#: ``projection="auto"`` takes the pruned head when it predicts at most this share of the dense network's time.
AUTO_SHARE = 0.9


def rank_candidates(hidden: int) -> list[int]:
    """Ranks tried when a model is converted: 1/2 to 15/16 of the hidden size.

    >>> rank_candidates(128)
    [64, 72, 80, 88, 96, 104, 112, 120]
    """
    return sorted({min(hidden - 1, max(1, hidden * k // 16)) for k in range(8, 16)})


def head_share(rank: int, hidden: int, kept: float, costs: KernelCosts) -> float:
    """The pruned head's cost as a share of the dense head's: the int8 bound (a fixed part for its (token, id)
    pairs and a part per column of its ``rank + 1``), then the exact logits of the kept share ``kept`` of the ids.

    >>> round(head_share(104, 128, 0.02, KernelCosts(bound_fixed=0.14, bound_cost=0.14, final_cost=1.85)), 3)
    0.292
    """
    return costs.bound_fixed + costs.bound_cost * (rank + 1) / hidden + costs.final_cost * kept


def kept_shares(
    groups: Sequence[tuple[Sequence[F32], F32 | None]], decoder: F32, bias: F32, basis: Basis
) -> list[dict[int, float]]:
    """For each group of texts ``(hs, center)``, the mean share of the vocabulary the bound keeps for them at each
    of :func:`rank_candidates` (the numpy reference of the graph's bound): what the rank is chosen from, the same
    on every machine.  A group with a ``center`` is centred on it (the query graph's bound), one with ``None``
    text by text on each text's own mean.  The rotated decoder and each rank's table are made once for all."""
    vocab, hidden = decoder.shape
    rot = basis.rotate(decoder)
    texts = []  # once per text, not once per rank
    for hs, center in groups:
        if center is None:
            texts.append([_centred(h, decoder, bias, basis) for h in hs])
        else:
            mu = center.astype(np.float64)
            c = bias.astype(np.float64) + decoder.astype(np.float64) @ mu  # one product for the whole group
            texts.append([(_rotated(h, mu, basis), c) for h in hs])
    out: list[dict[int, float]] = [{} for _ in groups]
    for r in rank_candidates(hidden):
        table = quantize_table(rot, r)
        codes = _exact_codes(table)
        for shares, group in zip(out, texts):
            shares[r] = float(np.mean([_kept(d, c, table, r, codes=codes).size / vocab for d, c in group]))
    return out


def choose_rank(kept: Mapping[int, float], hidden: int, costs: KernelCosts) -> tuple[int, float, float]:
    """The rank with the cheapest pruned head, given the share of ids each rank keeps (:func:`kept_shares`) and
    this machine's kernel costs: ``(rank, kept share of ids, head share)``.

    >>> rank, kept, share = choose_rank({64: 0.05, 96: 0.02}, 128, KernelCosts(0.1, 0.2, 2.0))
    >>> rank, kept, round(share, 3)
    (96, 0.02, 0.292)
    """
    best: tuple[int, float, float] | None = None
    for r, k in sorted(kept.items()):
        share = head_share(r, hidden, k, costs)
        logger.debug("rank %d: %.3f of the ids kept, %.3f of the dense head", r, k, share)
        if best is None or share < best[2]:
            best = (r, k, share)
    if best is None:
        raise ArgumentError("no rank to choose from: the fit measured no candidate rank")
    return best


def network_macs(*, hidden: int, layers: int, intermediate: int, vocab: int, tokens: int) -> tuple[int, int]:
    """Multiply-adds per token of the encoder (with the head's dense layer) and of the vocabulary projection,
    for texts of ``tokens`` tokens.

    >>> network_macs(hidden=128, layers=2, intermediate=512, vocab=30522, tokens=128)
    (475136, 3906816)
    """
    per_layer = 4 * hidden * hidden + 2 * hidden * intermediate + 2 * tokens * hidden
    return layers * per_layer + hidden * hidden, vocab * hidden


def network_share(encoder: int, projection: int, head: float) -> float:
    """The whole network's predicted time with a head of share ``head`` of the dense head, as a share of dense.

    >>> round(network_share(475136, 3906816, 0.875), 3)
    0.889
    """
    return (encoder + projection * head) / (encoder + projection)
