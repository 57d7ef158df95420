"""The FSVR optimisers on real IEEE 13 flows (the correction scheme: test_fsvr_correction.py)."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from lemcosim.federates.fsvr_controller.config import StudyConfig
from lemcosim.federates.fsvr_controller.optimise import (
    INFEASIBLE,
    Evaluator,
    Objective,
    Space,
    Summary,
    coordinate_search,
    grey_wolf,
    loadability,
    local_solver,
    optimise,
)
from lemcosim.federates.grid.model import GridModel, Limits

# the setting of issue 10 that keeps IEEE 13 inside 0.95-1.05 pu at 105 % load
WITNESS_105 = np.array([[0.025, 0.05, -0.075], [-0.05, 0, -0.025], [0.05, 0.05, 0.1]])


def fsvr_feeder(network: str = "ieee13", **limits) -> tuple[Space, GridModel]:
    space = Space("fsvr")
    return space, GridModel(network, device=space.setting(space.neutral()), limits=Limits(**limits))


def test_optimisers_count_power_flows_and_improve_on_neutral():
    space = Space("svr")
    model = GridModel("ieee13", device=space.setting(space.neutral()),
                      limits=Limits(v_min_pu=0.9, v_max_pu=1.1))
    objective = Objective("loss")
    evaluate = Evaluator(local_solver(model), space, objective)
    neutral = evaluate(space.neutral())
    result = coordinate_search(evaluate)
    assert result.value <= neutral
    assert result.flows == evaluate.flows == len(result.history)
    assert [f for f, _ in result.history] == list(range(1, result.flows + 1))
    assert all(b2 <= b1 for (_, b1), (_, b2) in zip(result.history, result.history[1:], strict=False))
    gwo = grey_wolf(Evaluator(local_solver(model), space, objective), population=6, iterations=50,
                    seed=1, max_flows=20)
    assert gwo.flows <= 20 and gwo.value <= neutral + 1e-9  # the neutral wolf is in the pack


def sphere_solver():
    """Mirjalili's benchmark F1 (sphere, optimum at the origin) as a solver: 'losses' = Σ x_i² over
    the UPFC's six variables scaled by their ranges; no constraint is ever violated."""
    space = Space("upfc")
    lo, hi = space.bounds()

    def solve(setting, load_mult):
        x = np.r_[setting.magnitude_pu, setting.angle_deg] / (hi - lo)
        return Summary(True, float((x ** 2).sum()), band_violation_pu=0.0, feasible=True)
    return space, solve


def test_grey_wolf_as_published_converges_on_the_sphere_function():
    # Mirjalili et al. 2014, F1: GWO drives the sphere to its optimum (≈ 1e-28 after 500
    # iterations of 30 wolves in 30 dimensions). Here 6 dimensions, 12 wolves, 150 iterations,
    # the pack starting with one wolf at the far corner: < 1e-15 (measured ≈ 3e-22 for seeds 0-3).
    space, solve = sphere_solver()
    corner = space.bounds()[1]
    result = grey_wolf(Evaluator(solve, space, Objective("loss")), population=12, iterations=150,
                       seed=3, start=corner)
    assert result.value < 1e-15
    # every wolf of every iteration is one power flow, minus settings already solved
    assert 12 * 40 < result.flows <= 12 * 150
    capped = grey_wolf(Evaluator(solve, space, Objective("loss")), population=12, iterations=150,
                       seed=3, start=corner, max_flows=100)
    assert capped.flows == 96  # 100 // 12 = 8 iterations, a from 2 to 0 over those 8
    assert capped.value > result.value


def test_merit_ranks_every_feasible_setting_before_every_infeasible_one():
    objective = Objective("loss")
    band = {"constraint": "v_min", "where": "611.c", "value": 0.9499, "limit": 0.95}
    feasible = Summary(True, 500.0, band_violation_pu=0.0, feasible=True)
    slightly_off = Summary(True, 10.0, band_violation_pu=1e-4, violations=(band,))
    far_off = Summary(True, 10.0, band_violation_pu=0.05,
                      violations=({**band, "value": 0.9},))
    assert objective.value(feasible) == 500.0 < INFEASIBLE < objective.value(slightly_off)
    assert objective.value(slightly_off) < objective.value(far_off)
    assert slightly_off.largest_violation() == pytest.approx(1e-4)
    # a VUF or loading violation is a constraint only when every grid limit is required
    vuf = Summary(True, 10.0, band_violation_pu=0.0,
                  violations=({"constraint": "vuf_max", "where": "675", "value": 2.4, "limit": 2.0},))
    assert objective.value(vuf) == 10.0
    assert Objective("loss", require_feasible=True).value(vuf) == pytest.approx(INFEASIBLE + 4.0)


def test_results_carry_feasibility_and_the_violated_constraints():
    space, model = fsvr_feeder()
    solver = local_solver(model)
    result = optimise(solver, space, Objective("loss"))
    # IEEE 13 without regulation reaches 0.9055 pu (611.c); the FSVR's loss optimum is feasible
    assert result.feasible and result.violations == [] and result.note == ""
    assert result.summary.extremes["v_min"]["value"] >= 0.95
    assert result.summary.extremes["v_max"]["value"] <= 1.05
    assert result.objective == pytest.approx(result.summary.losses_kw)
    # the merit adds 1e-4 per unit of Σ|α| (a tie-break towards the smallest setting)
    assert result.value == pytest.approx(result.objective + 1e-4 * np.abs(result.x).sum())
    # at 2.5 × load no setting is feasible: the least-violating one, said so, with the extremes
    hopeless = optimise(solver, space, Objective("loss"), load_mult=2.5, iterations=2)
    assert not hopeless.feasible and hopeless.value > INFEASIBLE
    assert hopeless.note.startswith("no feasible setting found")
    (v_min,) = [v for v in hopeless.violations if v["constraint"] == "v_min"]
    assert v_min["value"] < 0.95 and v_min["limit"] == 0.95


def test_the_issue_witness_is_feasible_at_105_percent_load_and_loadability_finds_it():
    space, model = fsvr_feeder()
    solver = local_solver(model)
    evaluate = Evaluator(solver, space, Objective("loss"), load_mult=1.05)
    evaluate(WITNESS_105.ravel())
    witness = evaluate.result("witness")
    assert witness.feasible  # measured 0.9502 (611.c) to 1.0499 pu (rg60.c)
    assert 0.95 <= witness.summary.extremes["v_min"]["value"] < 0.951
    found = loadability(solver, space, lam_hi=2.0, tol=0.02)
    assert found.lambda_max >= 1.05 and found.witness is not None and found.witness.feasible
    # the neutral device (no regulation) and the best SVR reach less
    base = loadability(solver, space, lam_hi=2.0, tol=0.02, fixed=space.neutral())
    svr = Space("svr")
    with_svr = loadability(local_solver(GridModel("ieee13", device=svr.setting(svr.neutral()))),
                           svr, lam_hi=2.0, tol=0.02)
    assert base.lambda_max < with_svr.lambda_max < found.lambda_max


def test_a_known_feasible_setting_raises_the_bracket():
    # warm start from another device's witness, verified by one flow: λ_max is at least there.
    # A coarse bisection on [0, 1.5] to 0.5 shows it: from 0 it tries 1.5 (infeasible), 0.75
    # (feasible), 1.125 (infeasible: λ_max ≈ 1.10) and ends at 0.75, while the witness lifts the
    # lower end to 1.05, and 1.5 − 1.05 < 0.5 ends the bisection there
    space, model = fsvr_feeder()
    solver = local_solver(model)
    coarse = loadability(solver, space, lam_hi=1.5, tol=0.5)
    assert coarse.lambda_max == pytest.approx(0.75)
    known = loadability(solver, space, lam_hi=1.5, tol=0.5, known=(1.05, WITNESS_105.ravel()))
    assert known.lambda_max >= 1.05 and known.witness.feasible


def test_sensitivity_search_beats_coordinate_search_with_fewer_power_flows():
    # IEEE 13, SVR minimising the feeder's maximum VUF inside 0.95–1.05 pu (measured: coordinate
    # 1.514 % after 224 flows, sensitivity 1.365 % after 107)
    results = {}
    for method in ("coordinate", "sensitivity"):
        space = Space("svr")
        model = GridModel("ieee13", device=space.setting(space.neutral()))
        results[method] = optimise(local_solver(model), space, Objective("vuf"), method)
    assert results["sensitivity"].value <= results["coordinate"].value
    assert results["sensitivity"].flows < results["coordinate"].flows
    assert results["sensitivity"].feasible


def test_published_taps_off_the_svr_steps_are_refused_by_name():
    with pytest.raises(ValidationError, match=r"published_svr_taps[\s\S]*not steps of 0.00625"):
        StudyConfig.model_validate({"published_svr_taps": [0.003, 0, 0]})
    assert StudyConfig.model_validate({"published_svr_taps": [0.0625, 0.05, 0.06875]})
