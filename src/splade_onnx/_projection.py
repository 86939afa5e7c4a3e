"""Which vocabulary projection a converted model runs, and the pruned head's graphs, fitted and cached.

``projection="dense"`` is the fused dense head of :func:`~splade_onnx._graph_dense.build_graph`;
``projection="pruned"`` is the exact pruned head of :mod:`splade_onnx._pruned`; ``"auto"`` (the default)
takes the pruned head when it is predicted to take at most ``AUTO_SHARE`` of the dense network's time.  Both
give the same vectors: the choice is speed only.

The prediction has two parts, cached apart: the **fit** (the basis, and the share of ids each candidate rank
keeps on a built-in sample: the same on every machine) and the **calibration** (what the head's kernels cost on
this machine, :mod:`splade_onnx._calibration`, keyed by the machine and the model).  :func:`decide` makes the
plan from the two; it is pure.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._cache import cached_graph, save_model
from ._calibration import CALIBRATION_VERSION, Calibration, machine, machine_key, measure_costs
from ._errors import ArgumentError
from ._graph import CONVERTER_VERSION
from ._graph_pruned import BOUND_TILE, hidden_graph, pruned_head_graph, pruned_query_graph, pruned_state_graph
from ._hub import ResolvedModel
from ._layout import position_limit, read_config
from ._pruned import (
    AUTO_SHARE,
    Basis,
    Bound,
    KernelCosts,
    choose_rank,
    fit_basis,
    kept_shares,
    make_bound,
    network_macs,
    network_share,
    rank_candidates,
)
from ._quantize import int8_encoder_graph
from ._sample import SAMPLE_TEXTS
from ._session import OrtBackend
from ._spec import EncoderSpec, load_spec
from ._tensors import weights_format
from ._tokenize import TextTokenizer, pad_batch

logger = logging.getLogger(__name__)

__all__ = [
    "FIT_VERSION",
    "PROJECTIONS",
    "Fit",
    "FitStats",
    "Plan",
    "calibrated",
    "decide",
    "fitted_plan",
    "int8_gain",
    "plan_projection",
    "pruned_graphs",
    "pruned_query_path",
    "shape_rules_out",
]

PROJECTIONS = ("auto", "dense", "pruned")
#: Tokens per text assumed by the shape check before a fit (the sample's mean is used after).
_TOKENS = 128
#: Bump when the fit (sample, what it records) changes: cached fits and pruned graphs are keyed by it.
#: 4: the fit records the kept share per rank; the rank and the choice are made per machine (calibration).
#: 5: the fit records the centre of short texts and what the query graph's bound keeps per rank.
FIT_VERSION = "5"


@dataclass(frozen=True)
class FitStats:
    """What the fit measured on the built-in sample, the same on every machine (``fit.json`` of the fit)."""

    hidden: int
    layers: int
    intermediate: int
    vocab: int
    #: Mean share of the vocabulary the bound kept on the sample's long texts, per candidate rank.
    kept: dict[int, float]
    #: Mean tokens of the sample's long texts: the texts the kernels are calibrated on.
    tokens: int
    sample_texts: int
    sample_tokens: int
    #: The same for the sample's short texts each centred on the fixed centre (the query graph's bound).
    query_kept: dict[int, float]

    @classmethod
    def from_json(cls, text: str) -> FitStats:
        raw = json.loads(text)
        shares = {name: {int(k): float(v) for k, v in raw[name].items()} for name in ("kept", "query_kept")}
        return cls(**{**raw, **shares})


@dataclass(frozen=True)
class Plan:
    """The pruned head's plan for one model on this machine, as written beside its graphs in ``pruned.json``."""

    rank: int
    hidden: int
    #: Mean share of the vocabulary the bound kept on the sample at ``rank``.
    kept: float
    #: Predicted pruned head time as a share of the dense head's, and of the whole network's (both of the plan's
    #: precision: with ``int8`` the encoder and the dense head are int8, the pruned head fp32).
    head_share: float
    network_share: float
    #: What ``projection="auto"`` takes.
    auto: str
    sample_texts: int
    sample_tokens: int
    #: The kernel costs the prediction used (this machine's).
    costs: dict[str, float]
    #: The precision planned for: the int8 encoder (``quantize="int8"``) or fp32.
    int8: bool = False
    #: The rank of the query graph's bound (short texts, centred on the fit's centre), and the share it keeps.
    query_rank: int = 0
    query_kept: float = 0.0


def _shape(config: dict[str, Any]) -> tuple[int, int, int, int] | None:
    """``(hidden, layers, intermediate, vocab)`` from a BERT/RoBERTa/DistilBERT/ModernBERT ``config.json``; a gated
    MLP's (ModernBERT's) intermediate size counts 3/2, for its three projections (:attr:`EncoderSpec.mlp_width`)."""
    try:
        hidden = int(config.get("hidden_size") or config["dim"])
        layers = int(config.get("num_hidden_layers") or config["n_layers"])
        inner = int(config.get("intermediate_size") or config["hidden_dim"])
        if config.get("model_type") == "modernbert":
            inner = inner * 3 // 2
        return hidden, layers, inner, int(config["vocab_size"])
    except (KeyError, TypeError, ValueError):
        return None


def shape_rules_out(config: dict[str, Any]) -> bool:
    """True when even a head that cost nothing would not bring the network under ``AUTO_SHARE`` of dense: the
    encoder dominates (24 layers of 1024), so ``"auto"`` takes the dense head without fitting or measuring."""
    shape = _shape(config)
    if shape is None:
        return True
    hidden, layers, intermediate, vocab = shape
    enc, proj = network_macs(hidden=hidden, layers=layers, intermediate=intermediate, vocab=vocab, tokens=_TOKENS)
    return network_share(enc, proj, 0.0) > AUTO_SHARE


def decide(stats: FitStats, costs: KernelCosts, *, int8: bool = False) -> Plan:
    """The plan from the fit and this machine's kernel costs: the cheapest rank, and ``"pruned"`` for ``"auto"``
    when the whole network is predicted at most ``AUTO_SHARE`` of its dense time.

    With ``int8`` both candidates run the int8 encoder, and the pruned head (fp32, exact) is weighed against the
    int8 dense head (``costs.int8_dense`` of the fp32 one); the encoder's multiply-adds are assumed to gain what
    the int8 projection gains, as both are the same int8 matrix products."""
    rank, kept, share = choose_rank(stats.kept, stats.hidden, costs)
    query_rank, query_kept, _ = choose_rank(stats.query_kept, stats.hidden, costs)
    enc, proj = network_macs(
        hidden=stats.hidden,
        layers=stats.layers,
        intermediate=stats.intermediate,
        vocab=stats.vocab,
        tokens=stats.tokens,
    )
    unit = costs.int8_dense if int8 else 1.0  # the dense head's cost per multiply-add, fp32 = 1
    head = share / unit
    whole = network_share(enc, proj, head)  # both terms scaled by ``unit``: the ratio is unchanged
    return Plan(
        rank=rank,
        hidden=stats.hidden,
        kept=kept,
        head_share=head,
        network_share=whole,
        auto="pruned" if whole <= AUTO_SHARE else "dense",
        sample_texts=stats.sample_texts,
        sample_tokens=stats.sample_tokens,
        costs=asdict(costs),
        int8=int8,
        query_rank=query_rank,
        query_kept=query_kept,
    )


def _fit(spec: EncoderSpec, tokenizer: TextTokenizer, limit: int | None) -> tuple[Basis, NDArray[np.float32], FitStats]:
    """Run the encoder on the built-in sample, fit the basis and the short texts' centre, measure what each rank
    keeps."""
    # Each text alone, and runs of six joined: documents are longer than queries, and the share of ids a text
    # keeps grows with its length.
    joined = [" ".join(SAMPLE_TEXTS[i : i + 6]) for i in range(0, len(SAMPLE_TEXTS), 6)]
    ids, _ = tokenizer.encode_counted([*SAMPLE_TEXTS, *joined], limit)
    session = OrtBackend(hidden_graph(spec).SerializeToString())
    hs: list[NDArray[np.float32]] = []
    for lo in range(0, len(ids), 8):
        part = ids[lo : lo + 8]
        out = session.run_outputs(pad_batch(part, tokenizer.pad_id), ["hidden"])[0]
        hs.extend(out[r, : len(x)] for r, x in enumerate(part))
    deltas = np.concatenate([h - h.mean(0, dtype=np.float64) for h in hs])
    basis = fit_basis(deltas, spec.decoder, spec.head_ln[0])
    # Short texts (queries) are centred on one fixed state, the mean of the sample's short texts.
    short = hs[: len(SAMPLE_TEXTS)]
    center = np.concatenate(short).mean(0, dtype=np.float64).astype(np.float32)
    # The documents' rank is chosen on the long texts, where more ids survive; the query graph's on the short ones.
    long = hs[len(SAMPLE_TEXTS) :]
    kept, query_kept = kept_shares([(long, None), (short, center)], spec.decoder, spec.decoder_bias, basis)
    stats = FitStats(
        hidden=spec.hidden,
        layers=len(spec.layers),
        intermediate=spec.mlp_width,
        vocab=spec.vocab,
        kept=kept,
        tokens=int(np.mean([len(h) for h in long])),
        sample_texts=len(hs),
        sample_tokens=sum(len(h) for h in hs),
        query_kept=query_kept,
    )
    return basis, center, stats


def calibrated(res: ResolvedModel, root: Path, stats: FitStats) -> Calibration:
    """This machine's kernel costs for the model ``res`` of this fit, measured on first use and cached per machine
    (:func:`~splade_onnx._calibration.machine_key`) and model (``calibration.json``)."""

    def build(dest: Path) -> None:
        ranks = rank_candidates(stats.hidden)
        cal = measure_costs(hidden=stats.hidden, vocab=stats.vocab, tokens=stats.tokens, ranks=(ranks[0], ranks[-1]))
        dest.write_text(json.dumps({"machine": machine(), **asdict(cal)}, indent=1))

    variant = f"pruned-calibration {CALIBRATION_VERSION} fit={FIT_VERSION} machine={machine_key()}"
    raw = json.loads(cached_graph(res, root, variant, build, main="calibration.json").read_text())
    return Calibration(
        costs=KernelCosts(**raw["costs"]), dense_ns=raw["dense_ns"], seconds=raw["seconds"], shape=raw["shape"]
    )


Fit = tuple[Path, Plan]


def fitted_plan(res: ResolvedModel, weights: Path, root: Path, tokenizer_folder: Path, *, int8: bool = False) -> Fit:
    """The pruned head's plan for a converted checkpoint on this machine, for the fp32 or the ``int8`` encoder: its
    fit (``fit.json`` and the basis, ``basis.npz``, made on the built-in sample), this machine's calibration, each
    cached on first use, and the decision made from them; the folder holding the fit, and the plan."""

    def build(dest: Path) -> None:
        spec = load_spec(res.path, weights)
        tok = TextTokenizer.from_folder(tokenizer_folder, max_length=None, model_limit=None)
        basis, center, stats = _fit(spec, tok, position_limit(read_config(res.path)))
        np.savez(
            dest.parent / "basis.npz", A=basis.A, B=basis.B, a_hat=basis.a_hat, rho=np.float64(basis.rho), center=center
        )
        dest.write_text(json.dumps(asdict(stats), indent=1))

    variant = f"{weights_format(weights)}->splade v{CONVERTER_VERSION} pruned-fit {FIT_VERSION}"
    entry = cached_graph(res, root, variant, build, main="fit.json").parent
    stats = FitStats.from_json((entry / "fit.json").read_text())
    cal = calibrated(res, root, stats)
    plan = decide(stats, cal.costs, int8=int8)
    c = cal.costs
    logger.info(
        "projection for %s (%s) on this machine: dense head %.2f ns per (token, id), int8 dense head %.2f of it; "
        "int8 bound %.3f + %.3f x (rank + 1) / hidden of it, exact logits %.2f per kept id; rank %d of %d keeps "
        "%.1f %% of the ids on the sample, so the pruned head takes %.2f of the %s dense head's time and the "
        "network %.2f of its dense time: auto takes %s",
        res.source,
        "int8 encoder" if int8 else "fp32",
        cal.dense_ns,
        c.int8_dense,
        c.bound_fixed,
        c.bound_cost,
        c.final_cost,
        plan.rank,
        plan.hidden,
        100 * plan.kept,
        plan.head_share,
        "int8" if int8 else "fp32",
        plan.network_share,
        plan.auto,
    )
    if int8:
        fp32 = decide(stats, c)
        gain = int8_gain(plan, fp32)
        say = logger.warning if gain < 1.0 else logger.info
        say(
            "quantize='int8' for %s is predicted at %.2fx the speed of fp32 on this machine (the int8 encoder with "
            "the %s head, against fp32 with the %s head)%s",
            res.source,
            gain,
            plan.auto,
            fp32.auto,
            ": fp32 is the faster choice here" if gain < 1.0 else "",
        )
    return entry, plan


def int8_gain(int8: Plan, fp32: Plan) -> float:
    """The predicted speed of the int8 encoder with ``auto``'s head over fp32 with its own, from the two plans of
    one fit and calibration: each network's time relative to the fp32 dense network (the int8 dense network
    taking ``int8_dense`` of it).

    >>> costs = {"bound_fixed": 0.1, "bound_cost": 0.2, "final_cost": 1.0, "int8_dense": 0.5}
    >>> plan = dict(rank=64, hidden=128, kept=0.1, head_share=0.3, sample_texts=1, sample_tokens=1, costs=costs)
    >>> round(int8_gain(Plan(**plan, network_share=0.8, auto="pruned", int8=True),
    ...                 Plan(**plan, network_share=0.6, auto="pruned")), 3)
    1.5
    """
    fp32_time = min(1.0, fp32.network_share)
    int8_time = int8.costs.get("int8_dense", 1.0) * min(1.0, int8.network_share)
    return fp32_time / int8_time


def pruned_graphs(
    res: ResolvedModel, weights: Path, root: Path, fit: Fit, activation: str, *, int8: bool = False
) -> tuple[Path, Path]:
    """The pruned head's state graph and per-text head graph for a converted checkpoint, built from its fit
    and plan (:func:`fitted_plan`) and cached in their turn; with ``int8`` the state graph's encoder is int8
    (:func:`~splade_onnx._quantize.int8_encoder_graph`), the bound and the head stay fp32."""
    folder, plan = fit
    act = "" if activation == "relu" else f" activation={activation}"

    def build(dest: Path) -> None:
        spec, bound, _ = _bound(res, weights, folder, plan.rank)
        save_model(pruned_state_graph(spec, bound), dest)
        save_model(pruned_head_graph(spec, bound, activation=activation), dest.parent / "head.onnx")
        shutil.copy(folder / "fit.json", dest.parent / "fit.json")
        (dest.parent / "pruned.json").write_text(json.dumps(asdict(plan), indent=1))

    source = weights_format(weights)
    variant = f"{source}->splade v{CONVERTER_VERSION} pruned fit={FIT_VERSION} rank={plan.rank} tile={BOUND_TILE}{act}"
    state = cached_graph(res, root, variant, build)
    head = state.parent / "head.onnx"
    if int8:
        notes = {"fit.json": (folder / "fit.json").read_text(), "pruned.json": json.dumps(asdict(plan), indent=1)}
        state = int8_encoder_graph(res, root, state, notes=notes)
    return state, head


def _bound(
    res: ResolvedModel, weights: Path, folder: Path, rank: int
) -> tuple[EncoderSpec, Bound, NDArray[np.float32]]:
    """The model's spec, the bound at ``rank`` from the basis its fit in ``folder`` wrote (``basis.npz``), and the
    fit's centre of short texts."""
    spec = load_spec(res.path, weights)
    with np.load(folder / "basis.npz") as z:
        basis, center = Basis(A=z["A"], B=z["B"], a_hat=z["a_hat"], rho=float(z["rho"])), z["center"]
    return spec, make_bound(basis, spec.decoder, spec.decoder_bias, rank), center


def pruned_query_path(res: ResolvedModel, weights: Path, root: Path, fit: Fit, activation: str) -> Path:
    """The pruned head's query graph (:func:`~splade_onnx._graph_pruned.pruned_query_graph`: one short text, the
    encoder and the exact head in one run) at the plan's query rank, cached."""
    folder, plan = fit
    act = "" if activation == "relu" else f" activation={activation}"

    def build(dest: Path) -> None:
        spec, bound, center = _bound(res, weights, folder, plan.query_rank)
        save_model(pruned_query_graph(spec, bound, center, activation=activation), dest)

    source = weights_format(weights)
    variant = f"{source}->splade v{CONVERTER_VERSION} pruned-query fit={FIT_VERSION} rank={plan.query_rank}{act}"
    return cached_graph(res, root, variant, build)


def plan_projection(projection: str, res: ResolvedModel, *, converted: bool, pooling: str) -> str:
    """``projection`` (one of :data:`PROJECTIONS`, checked by the caller) narrowed by what the model allows:
    ``"dense"``, ``"pruned"``, or ``"auto"`` when the fit decides.

    The pruned head needs a ``converted`` checkpoint (safetensors or pytorch_model.bin) and max pooling, in fp32
    or with the int8 encoder; ``"pruned"`` asked of another model is an error that says why, and ``"auto"``
    takes dense there.
    """
    if projection == "dense":
        return "dense"
    why = None
    if not converted:
        why = "it is an ONNX export (the pruned head is built when splade-onnx converts a checkpoint)"
    elif pooling != "max":
        why = f"it pools by {pooling} (the bound rules out ids by their max over tokens)"
    if why is None:
        if projection == "auto" and shape_rules_out(read_config(res.path)):
            return "dense"
        return projection
    if projection == "pruned":
        raise ArgumentError(
            f"projection='pruned' cannot be used for {res.source}: {why}; use projection='dense' or 'auto'"
        )
    return "dense"
