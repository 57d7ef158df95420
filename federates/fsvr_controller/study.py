"""Chapter-4 study (thesis 4.7): optimal setting per device and method, loss saving, VUF
reduction, loadability — through any solver (the grid federate's query over HELICS, or a local
model in tests)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from lemcosim.federates.fsvr_controller.optimise import (
    Objective,
    Result,
    Solver,
    Space,
    Summary,
    loadability,
    optimise,
    upfc_equivalent,
)


@dataclass
class StudyRow:
    device: str
    method: str
    setting: dict
    losses_kw: float
    loss_saving_pct: float
    vuf_max_pct: float
    vuf_reduction_pct: float
    objective: float
    flows: int
    history: list[tuple[int, float]]
    lambda_max: float | None = None
    lambda_flows: int = 0


def run_study(solver: Solver, devices: list[str], methods: list[str], objective: Objective,
              base_space: Space, gwo_options: dict, with_loadability: bool, lam_hi: float,
              lam_tol: float) -> Iterator[StudyRow | tuple[str, Summary, float | None]]:
    """Yields ("base", summary, λ_max) first, then one StudyRow per device and method."""
    base = solver(base_space.setting(base_space.neutral()), 1.0)
    base_lambda = None
    if with_loadability:
        base_lambda, _ = loadability(solver, None, lam_hi, lam_tol)
    yield "base", base, base_lambda
    best_fsvr: Result | None = None
    for device in devices:
        space = Space(device, continuous=device == "upfc", vw1_over_vir=base_space.vw1_over_vir)
        for method in methods:
            options = gwo_options if method == "gwo" else {}
            start = None
            if device == "upfc" and method != "gwo" and best_fsvr is not None:
                start = upfc_equivalent(best_fsvr, space)  # the UPFC bounds the FSVR
            result: Result = optimise(solver, space, objective, method, start=start, **options)
            if device == "fsvr" and (best_fsvr is None or result.value < best_fsvr.value):
                best_fsvr = result
            s = result.summary
            row = StudyRow(device, method, result.setting.to_json(), s.losses_kw,
                           100 * (base.losses_kw - s.losses_kw) / base.losses_kw,
                           s.vuf_max_pct,
                           100 * (base.vuf_max_pct - s.vuf_max_pct) / base.vuf_max_pct
                           if base.vuf_max_pct else 0.0,
                           result.value, result.flows, result.history)
            if with_loadability and method == methods[0]:
                row.lambda_max, row.lambda_flows = loadability(solver, space, lam_hi, lam_tol, method)
            yield row
