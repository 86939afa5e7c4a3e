"""``projection="auto"`` decides from kernel costs measured on the user's machine: the decision is a pure function
of the fit and the costs, and the calibration is measured once per machine and model, then read from the cache."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

import splade_onnx._projection as projection
from splade_onnx._calibration import Calibration, machine, machine_key, measure_costs
from splade_onnx._hub import resolve
from splade_onnx._pruned import KernelCosts

#: splade-tiny's shape, with the shares of ids its bound keeps per rank on the sample (about what the fit finds).
TINY_FIT = projection.FitStats(
    hidden=128,
    layers=2,
    intermediate=512,
    vocab=30522,
    kept={64: 0.12, 80: 0.07, 96: 0.04, 112: 0.025, 120: 0.02},
    tokens=150,
    sample_texts=72,
    sample_tokens=4000,
    query_kept={64: 0.06, 80: 0.035, 96: 0.02, 112: 0.012, 120: 0.01},
)


def test_cheap_kernels_take_the_pruned_head() -> None:
    plan = projection.decide(TINY_FIT, KernelCosts(bound_fixed=0.07, bound_cost=0.24, final_cost=0.45))
    assert plan.auto == "pruned" and plan.network_share <= projection.AUTO_SHARE
    assert plan.rank in TINY_FIT.kept and plan.kept == TINY_FIT.kept[plan.rank]
    assert plan.query_rank in TINY_FIT.query_kept and plan.query_kept == TINY_FIT.query_kept[plan.query_rank]
    assert plan.costs == {"bound_fixed": 0.07, "bound_cost": 0.24, "final_cost": 0.45, "int8_dense": 1.0}
    assert not plan.int8


def test_with_the_int8_encoder_the_pruned_head_is_weighed_against_the_int8_dense_head() -> None:
    """The same fit and head kernels: where the int8 projection costs 0.2 of the fp32 one, the fp32 pruned head
    (0.29 of fp32) loses to it and ``auto`` keeps the dense int8 head; where it costs 0.6, the pruned head wins."""
    head = {"bound_fixed": 0.07, "bound_cost": 0.24, "final_cost": 0.45}
    fp32 = projection.decide(TINY_FIT, KernelCosts(**head, int8_dense=0.2))
    cheap = projection.decide(TINY_FIT, KernelCosts(**head, int8_dense=0.2), int8=True)
    dear = projection.decide(TINY_FIT, KernelCosts(**head, int8_dense=0.6), int8=True)
    assert fp32.auto == "pruned" and cheap.int8 and dear.int8
    assert cheap.rank == dear.rank == fp32.rank  # the rank depends on the head's own kernels only
    assert cheap.head_share == pytest.approx(fp32.head_share / 0.2) and cheap.head_share > 1
    assert cheap.auto == "dense" and cheap.network_share > projection.AUTO_SHARE
    assert dear.auto == "pruned" and dear.head_share == pytest.approx(fp32.head_share / 0.6) and dear.head_share < 1


def test_dear_kernels_take_the_dense_head() -> None:
    """A machine whose int8 products are slow (no VNNI): the same fit, the dense head."""
    plan = projection.decide(TINY_FIT, KernelCosts(bound_fixed=0.9, bound_cost=1.5, final_cost=2.0))
    assert plan.auto == "dense" and plan.network_share > projection.AUTO_SHARE


def test_the_rank_follows_the_costs() -> None:
    """Costly exact logits favour a high rank (fewer ids kept); a costly bound, a low one."""
    exact_dear = projection.decide(TINY_FIT, KernelCosts(bound_fixed=0.05, bound_cost=0.1, final_cost=5.0))
    bound_dear = projection.decide(TINY_FIT, KernelCosts(bound_fixed=0.05, bound_cost=2.0, final_cost=0.2))
    assert exact_dear.rank == max(TINY_FIT.kept) and bound_dear.rank == min(TINY_FIT.kept)


def test_the_fit_statistics_survive_json() -> None:
    from dataclasses import asdict

    assert projection.FitStats.from_json(json.dumps(asdict(TINY_FIT))) == TINY_FIT


def test_the_machine_key_describes_the_machine() -> None:
    m = machine()
    assert {"cpu", "cpu_flags", "arch", "onnxruntime", "cores"} <= set(m) and m["cpu"]
    assert machine_key() == machine_key() and len(machine_key()) == 16


def test_the_real_kernels_are_measured_in_seconds() -> None:
    cal = measure_costs(hidden=128, vocab=30522, tokens=150, ranks=(64, 120))
    c = cal.costs
    assert cal.dense_ns > 0 and c.final_cost > 0 and c.bound_fixed >= 0 and c.bound_cost >= 0
    assert set(cal.seconds) == {"dense", "bound rank 64", "bound rank 120", "exact", "int8 dense"}
    assert c.int8_dense == cal.seconds["int8 dense"] / cal.seconds["dense"] > 0


def test_the_calibration_is_cached_per_machine_and_model(
    tiny_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    res = resolve(tiny_dir)
    calls: list[str] = []

    def fake(**shape: object) -> Calibration:
        calls.append(projection.machine_key())
        return Calibration(KernelCosts(0.1, 0.2, 0.5 + len(calls)), 9.0, {"dense": 1e-3}, {"hidden": 128})

    monkeypatch.setattr(projection, "measure_costs", fake)
    first = projection.calibrated(res, tmp_path, TINY_FIT)
    again = projection.calibrated(res, tmp_path, TINY_FIT)
    assert len(calls) == 1 and again == first and first.costs.final_cost == 1.5
    written = json.loads(next(tmp_path.glob("*/calibration.json")).read_text())
    assert written["machine"] == machine() and written["costs"]["final_cost"] == 1.5

    monkeypatch.setattr(projection, "machine_key", lambda: "another-machine")
    other = projection.calibrated(res, tmp_path, TINY_FIT)
    assert calls == [calls[0], "another-machine"] and other.costs.final_cost == 2.5
    assert len(list(tmp_path.glob("*/calibration.json"))) == 2

    # the fit is made once; each load decides from this machine's calibration, and says so at INFO
    monkeypatch.setattr(projection, "machine_key", lambda: "a-third-machine")
    with caplog.at_level(logging.INFO, logger="splade_onnx._projection"):
        _, plan = projection.fitted_plan(res, tiny_dir / "model.safetensors", tmp_path, tiny_dir)
    assert plan.costs["final_cost"] == 3.5 and len(calls) == 3
    assert "exact logits 3.50 per kept id" in caplog.text
    assert f"auto takes {plan.auto}" in caplog.text


def test_int8_predicted_slower_than_fp32_is_a_warning(
    tiny_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A machine whose int8 products are dearer than fp32 (``int8_dense`` 1.5): loading int8 says, at WARNING,
    that fp32 is the faster choice; where they are cheap (0.3), it says the predicted gain at INFO."""
    res = resolve(tiny_dir)
    for int8_dense, level, said in ((1.5, logging.WARNING, "fp32 is the faster choice here"), (0.3, logging.INFO, "")):
        costs = KernelCosts(0.07, 0.24, 0.45, int8_dense)
        cal = Calibration(costs, 9.0, {"dense": 1e-3}, {"hidden": 128})
        monkeypatch.setattr(projection, "calibrated", lambda *args, _cal=cal: _cal)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="splade_onnx._projection"):
            _, plan = projection.fitted_plan(res, tiny_dir / "model.safetensors", tmp_path, tiny_dir, int8=True)
        (record,) = [r for r in caplog.records if "quantize='int8'" in r.getMessage()]
        gain = projection.int8_gain(
            plan, projection.decide(projection.FitStats.from_json(next(tmp_path.glob("*/fit.json")).read_text()), costs)
        )
        assert record.levelno == level and f"{gain:.2f}x the speed of fp32" in record.getMessage()
        assert said in record.getMessage() and (gain < 1) == (int8_dense > 1)


def test_the_bound_kernel_is_exact_at_the_extreme_codes(tmp_path: Path) -> None:
    """The largest products the bound can meet (table codes +-127, a text's codes +-round(Q_RANGE)) come out exact
    on this CPU: without VNNI, onnxruntime's u8 x s8 product adds pairs in int16 with saturation, which codes of
    +-127 overflowed (the pruned head then dropped active ids)."""
    import numpy as np

    from splade_onnx._cache import save_model
    from splade_onnx._graph import FLOAT, INT8, GraphBuilder, value
    from splade_onnx._graph_pruned import shifted_codes, tile_maxima
    from splade_onnx._pruned import Q_RANGE
    from splade_onnx._session import OrtBackend

    rng = np.random.default_rng(0)
    width, top = 97, round(Q_RANGE)
    table = np.where(rng.random((1024, width)) < 0.5, 127, -127).astype(np.int8)
    codes = np.where(rng.random((60, width)) < 0.5, top, -top).astype(np.int8)
    codes[0], table[0] = top, 127  # one all-positive pair: the largest sum
    b = GraphBuilder()
    out = tile_maxima(b, shifted_codes(table), "codes")
    save_model(
        b.model("bound", [value("codes", INT8, ["tokens", width])], [value(out, FLOAT, None)], contrib=True),
        tmp_path / "bound.onnx",
    )
    got = OrtBackend(tmp_path / "bound.onnx", threads=1).session.run(None, {"codes": codes})[0]
    assert top == 64 and np.array_equal(got, (table.astype(np.int64) @ codes.T.astype(np.int64)).max(1))
