"""Chapter-4 study (thesis 4.7): optimal setting per device and method, loss saving, VUF
reduction, loadability — through any solver (the grid federate's query over HELICS, or a local
model in tests).

Rows, in this order (entity `device:method`):
- `none:base` — the feeder with no regulation at the device location (the device at neutral);
  every saving and reduction is against it;
- `svr:published` — the SVR at the feeder's published taps (`published_svr_taps`), if any;
- one row per device (svr, fsvr, upfc — in this order) and method.

UPFC ≥ FSVR ≥ SVR by construction where the sets nest: each device's searches also start from
the previous device's best setting (`optimise.as_start`) and its loadability search from the
previous device's λ_max witness. The UPFC holds every FSVR injection exactly (grid/devices.py),
so it never ends worse than the FSVR; the nine-level FSVR (2.5 % steps) cannot hold every SVR tap
(0.625 % steps), so FSVR ≥ SVR is not a set inclusion — the study shows it, and
docs/fsvr_controller.md gives the numbers. With `fsvr_continuous` the FSVR starts from the SVR's
optimum exactly, and the whole chain holds by construction.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from lemcosim.federates.fsvr_controller.config import StudyConfig
from lemcosim.federates.fsvr_controller.optimise import (
    Evaluator,
    Loadability,
    Objective,
    Result,
    Solver,
    Space,
    as_start,
    loadability,
    optimise,
)

_DEVICE_ORDER = ("svr", "fsvr", "upfc")


@dataclass
class StudyRow:
    device: str  # none (the base case), svr, fsvr, upfc
    method: str  # base, published, sensitivity, coordinate, gwo
    feasible: bool
    losses_kw: float
    loss_saving_pct: float
    vuf_max_pct: float  # the feeder's maximum …
    vuf_max_bus: str  # … and where it is
    vuf_bus: str  # the study bus (objective.vuf_bus, else the feeder maximum's bus)
    vuf_bus_pct: float
    vuf_reduction_pct: float  # at the study bus, against the base case
    v_min_pu: float
    v_max_pu: float
    objective: float
    flows: int
    setting: dict
    violations: list[dict] = field(default_factory=list)
    note: str = ""
    history: list[tuple[int, float]] = field(default_factory=list)
    lambda_max: float | None = None
    lambda_flows: int = 0

    @property
    def entity(self) -> str:
        return f"{self.device}:{self.method}"

    def records(self) -> Iterator[tuple[str, str, float | str, str]]:
        """(entity, quantity, value, unit) for the run log; analysis/fsvr.py reads them back."""
        e = self.entity
        yield e, "feasible", 1.0 if self.feasible else 0.0, "1/0"
        for quantity, unit in (("losses_kw", "kW"), ("loss_saving_pct", "%"), ("vuf_max_pct", "%"),
                               ("vuf_bus_pct", "%"), ("vuf_reduction_pct", "%"), ("v_min_pu", "pu"),
                               ("v_max_pu", "pu"), ("objective", ""), ("flows", "count")):
            yield e, quantity, float(getattr(self, quantity)), unit
        yield e, "vuf_max_bus", self.vuf_max_bus, ""
        yield e, "vuf_bus", self.vuf_bus, ""
        if self.lambda_max is not None:
            yield e, "lambda_max", self.lambda_max, ""
            yield e, "lambda_flows", float(self.lambda_flows), "count"
        yield e, "setting", json.dumps(self.setting), ""
        yield e, "violations", json.dumps(self.violations), ""
        if self.note:
            yield e, "note", self.note, ""
        if self.history:
            yield e, "history", json.dumps(self.history), ""


def run_study(solver: Solver, study: StudyConfig, vw1_over_vir: float = 0.025) -> Iterator[StudyRow]:
    """The rows of the module docstring, one at a time (each is logged as it comes)."""
    options = study.objective.model_dump()
    objective = Objective(**options | {"constraints": tuple(options["constraints"])})
    # λ_max: a setting meeting the voltage band (thesis 4.7.4), whatever the optimum must meet
    lam = dict(lam_hi=study.lambda_max_search, tol=study.lambda_tol)
    neutral_space = Space("fsvr", vw1_over_vir=vw1_over_vir)
    base = _fixed(solver, neutral_space, neutral_space.neutral(), objective)
    vuf_bus = objective.vuf_bus or base.summary.extremes["vuf_max"]["where"]
    row = _row("none", "base", base, base, objective, vuf_bus)
    if study.loadability:
        _add_loadability(row, loadability(solver, neutral_space, fixed=neutral_space.neutral(), **lam))
    yield row
    if study.published_svr_taps is not None:
        svr = Space("svr")
        taps = np.asarray(study.published_svr_taps, float)
        published = _fixed(solver, svr, taps, objective)
        row = _row("svr", "published", published, base, objective, vuf_bus)
        if study.loadability:
            _add_loadability(row, loadability(solver, svr, fixed=taps, **lam))
        yield row
    previous: Result | None = None  # the previous device's best result
    previous_lambda: Loadability | None = None
    for device in [d for d in _DEVICE_ORDER if d in study.devices]:
        continuous = device == "upfc" or (device == "fsvr" and study.fsvr_continuous)
        space = Space(device, continuous=continuous, vw1_over_vir=vw1_over_vir)
        start = as_start(previous, space)
        best: Result | None = None
        first_flows: int | None = None
        for method in study.methods:
            options: dict = {}
            if method == "gwo":
                options = study.gwo.model_dump(exclude={"max_flows"})
                options["max_flows"] = study.gwo.max_flows or first_flows
            result = optimise(solver, space, objective, method, start=start, **options)
            first_flows = first_flows or result.flows
            if best is None or result.value < best.value:
                best = result
            row = _row(device, method, result, base, objective, vuf_bus)
            if study.loadability and method == study.methods[0]:
                known = None
                if previous_lambda is not None and previous_lambda.witness is not None:
                    mapped = as_start(previous_lambda.witness, space)
                    known = None if mapped is None else (previous_lambda.lambda_max, mapped)
                previous_lambda = loadability(solver, space, known=known, **lam)
                _add_loadability(row, previous_lambda)
            yield row
        previous = best


def _fixed(solver: Solver, space: Space, x: np.ndarray, objective: Objective) -> Result:
    evaluate = Evaluator(solver, space, objective)
    evaluate(x)
    return evaluate.result("fixed")


def _row(device: str, method: str, result: Result, base: Result, objective: Objective,
         vuf_bus: str) -> StudyRow:
    s, b = result.summary, base.summary
    if not s.converged:
        nan = float("nan")
        return StudyRow(device, method, False, nan, nan, nan, "", vuf_bus, nan, nan, nan, nan,
                        result.value, result.flows, result.setting.to_json(), result.violations,
                        result.note, result.history)
    return StudyRow(
        device, method, result.feasible, s.losses_kw,
        100 * (b.losses_kw - s.losses_kw) / b.losses_kw,
        s.vuf_max_pct, s.extremes["vuf_max"]["where"], vuf_bus, s.vuf_pct[vuf_bus],
        100 * (b.vuf_pct[vuf_bus] - s.vuf_pct[vuf_bus]) / b.vuf_pct[vuf_bus] if b.vuf_pct[vuf_bus]
        else 0.0,
        s.extremes["v_min"]["value"], s.extremes["v_max"]["value"], result.objective, result.flows,
        result.setting.to_json(), result.violations, result.note,
        result.history if method not in ("base", "published") else [])


def _add_loadability(row: StudyRow, result: Loadability) -> None:
    row.lambda_max, row.lambda_flows = result.lambda_max, result.flows
    if result.note:
        row.note = "; ".join(n for n in (row.note, f"λ_max: {result.note}") if n)
