"""Optimal settings of SVR, FSVR and UPFC (SPEC §3, thesis 4.7) by real power flows.

Decision variables: SVR 3 taps; FSVR 9 coefficients (discrete levels or continuous ±R_max); UPFC
3 magnitudes (≤ 2·R_max, docs of grid/devices.py) and 3 angles. Objective: total loss (kW), VUF
(feeder maximum or at a named bus, %) or a weighted sum. Constraints: by default V_min ≤ |V| ≤
V_max at every bus phase (thesis 4.7); `Objective.constraints` may add the feeder's VUF limit (and
line loading); `require_feasible` asks for every grid limit (assist mode).

Feasibility first. Every setting is ranked by a merit: a feasible one by its objective, an
infeasible one by `INFEASIBLE` + PENALTY_PER_PU × (its largest violation + 0.01 × the sum of its
voltage violations, a tie-break that rewards partial progress) — so any feasible setting beats
every infeasible one, and among infeasible ones the smallest largest violation wins. A result
carries `feasible`, the violated constraints with their extreme values, and a note when no
feasible setting was found.

Methods, all counting their power flows (every distinct setting is solved once, cached):
- Grey Wolf Optimisation as published (Mirjalili, Mirjalili & Lewis 2014): α, β, δ are the best
  three settings found so far; every wolf moves to the mean of X_l − A·|C·X_l − X| over the three
  leaders; a falls linearly from 2 to 0; an optional budget of power flows;
- coordinate search: every coordinate in turn tries all of its levels (continuous ones a grid
  that is refined around the best), repeated until a sweep improves nothing;
- sensitivity search (our stronger method for the discrete SVR/FSVR): linearise phasors and
  losses around the incumbent with n + 1 power flows, choose each FSVR row exactly among its
  9³ level combinations on the linear model inside a trust region, verify with one power flow,
  repeat; then a short coordinate polish. The UPFC (continuous) uses the coordinate search.
Every search first evaluates its start candidates and begins at the best of them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from lemcosim.federates.fsvr_controller.correction import correct
from lemcosim.federates.grid.devices import SVR_STEP, SVR_STEPS, DeviceSetting, fsvr_as_upfc
from lemcosim.federates.grid.model import GridModel, Limits, PowerFlow
from lemcosim.federates.grid.vuf import vuf_pct

ObjectiveKind = Literal["loss", "vuf", "weighted"]
PENALTY_PER_PU = 1000.0
INFEASIBLE = 1e6  # merit offset of an infeasible setting: behind every feasible objective value
# merit per unit of Σ|α| of a nine-level FSVR: among settings that do the same, the smallest wins —
# not a row (0.1, 0.1, 0.1), which adds only the input's near-zero zero-sequence voltage. Continuous
# spaces get none, so that a search started at another device's optimum never ends worse in its
# objective (UPFC ≥ FSVR ≥ SVR by construction)
TIE_BREAK = 1e-4
BAND = ("v_min", "v_max")
ALL_LIMITS = ("v_min", "v_max", "vuf_max", "loading_max")


@dataclass(frozen=True)
class Summary:
    """What an optimiser needs of one power flow (from a local model or a grid query answer)."""

    converged: bool
    losses_kw: float = float("inf")
    vuf_pct: dict[str, float] = field(default_factory=dict)
    band_violation_pu: float = float("inf")  # Σ |V| outside [v_min, v_max]
    device_v_in: np.ndarray | None = None
    # with detail: every bus·phase phasor (pu) and the band, for the sensitivity method
    node_names: tuple[str, ...] = ()
    phasors: np.ndarray | None = None
    band_pu: tuple[float, float] = (0.95, 1.05)
    feasible: bool = False  # every grid limit (voltage, VUF, loading) met
    extremes: dict = field(default_factory=dict)  # v_min, v_max, vuf_max, loading_max → where, value
    violations: tuple[dict, ...] = ()  # every violated grid limit: constraint, where, value, limit
    vuf_limit_pct: float | None = None  # the grid's VUF limit, if known (for predictions)

    @property
    def vuf_max_pct(self) -> float:
        return max(self.vuf_pct.values(), default=0.0)

    def violated(self, constraints: Collection[str] = BAND) -> list[dict]:
        """The violated constraints among `constraints` (v_min, v_max, vuf_max, loading_max)."""
        if not self.converged:
            return [{"constraint": "convergence", "where": "", "value": None, "limit": None}]
        return [v for v in self.violations if v["constraint"] in constraints]

    def largest_violation(self, constraints: Collection[str] = BAND) -> float:
        """How far the worst constraint is exceeded: pu for voltages, VUF and loading as
        fractions (percentage points / 100); inf when not converged."""
        if not self.converged:
            return float("inf")
        worst = 0.0
        for v in self.violated(constraints):
            excess = v["limit"] - v["value"] if v["constraint"] == "v_min" else v["value"] - v["limit"]
            worst = max(worst, excess if v["constraint"] in BAND else excess / 100.0)
        return worst

    @classmethod
    def of_flow(cls, flow: PowerFlow, limits: Limits, v_in: np.ndarray | None = None) -> Summary:
        if not flow.converged:
            return cls(False)
        violations = tuple(flow.violations(limits))
        return cls(True, flow.losses_kw, dict(zip(flow.vuf_buses, flow.vuf_pct.tolist(), strict=True)),
                   flow.band_violation_pu(limits), v_in, tuple(flow.node_names), flow.v_pu.copy(),
                   (limits.v_min_pu, limits.v_max_pu), not violations,
                   flow.extremes(), violations,
                   limits.vuf_max_pct)

    @classmethod
    def of_answer(cls, answer: dict) -> Summary:
        """From the grid federate's query answer (docs/grid.md)."""
        if not answer.get("converged"):
            return cls(False)
        v_in = answer.get("device_v_in")
        detail = answer.get("phasors") or {}
        return cls(True, float(answer["losses_kw"]), dict(answer.get("vuf_pct") or {}),
                   float(answer["band_violation_pu"]),
                   None if v_in is None else np.asarray(v_in["re"]) + 1j * np.asarray(v_in["im"]),
                   tuple(detail.get("names", ())),
                   np.asarray(detail["re"]) + 1j * np.asarray(detail["im"]) if detail else None,
                   tuple(answer.get("band_pu", (0.95, 1.05))), bool(answer.get("feasible")),
                   dict(answer.get("extremes") or {}), tuple(answer.get("violations") or ()),
                   (answer.get("limits") or {}).get("vuf_max_pct"))


# (setting, load multiplier) → summary of the solved power flow
Solver = Callable[[DeviceSetting | None, float], Summary]


def local_solver(model: GridModel) -> Solver:
    """Solve on an in-process grid model (the constraints are the model's limits)."""
    def solve(setting: DeviceSetting | None, load_mult: float) -> Summary:
        model.set_device(setting)
        if model.load_mult != load_mult:
            model.set_load_mult(load_mult)
        flow = model.solve()
        v_in = model.device_voltages()[0] if flow.converged and setting is not None else None
        return Summary.of_flow(flow, model.limits, v_in)
    return solve


@dataclass(frozen=True)
class Objective:
    kind: ObjectiveKind = "loss"
    vuf_bus: str | None = None  # None: feeder maximum
    w_loss_per_kw: float = 1.0
    w_vuf_per_pct: float = 10.0
    constraints: tuple[str, ...] = BAND  # grid limits the setting must meet (see ALL_LIMITS)
    require_feasible: bool = False  # every grid limit (assist mode), whatever `constraints` says

    @property
    def limits(self) -> tuple[str, ...]:
        return ALL_LIMITS if self.require_feasible else tuple(self.constraints)

    def feasible(self, summary: Summary) -> bool:
        return summary.converged and not summary.violated(self.limits)

    def objective(self, summary: Summary) -> float:
        """The objective alone (kW, % or their weighted sum)."""
        if not summary.converged:
            return float("inf")
        vuf = self.vuf_of(summary)
        return {"loss": summary.losses_kw, "vuf": vuf,
                "weighted": self.w_loss_per_kw * summary.losses_kw + self.w_vuf_per_pct * vuf
                }[self.kind]

    def value(self, summary: Summary) -> float:
        """The merit the searches minimise (module docstring: feasibility first)."""
        if not summary.converged:
            return float("inf")
        if self.feasible(summary):
            return self.objective(summary)
        return infeasible_merit(summary.largest_violation(self.limits), summary.band_violation_pu)

    def vuf_of(self, summary: Summary) -> float:
        return summary.vuf_max_pct if self.vuf_bus is None else summary.vuf_pct[self.vuf_bus]


def infeasible_merit(largest: float | np.ndarray, band_sum: float | np.ndarray):
    return INFEASIBLE + PENALTY_PER_PU * (largest + 0.01 * band_sum)


@dataclass(frozen=True)
class Space:
    """The decision space of a device: per-variable levels (discrete) or bounds (continuous)."""

    kind: Literal["svr", "fsvr", "upfc"]
    continuous: bool = False
    vw1_over_vir: float = 0.025

    @property
    def size(self) -> int:
        return {"svr": 3, "fsvr": 9, "upfc": 6}[self.kind]

    @property
    def r_max(self) -> float:
        return 4 * self.vw1_over_vir

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        if self.kind == "svr":
            return np.full(3, -SVR_STEPS * SVR_STEP), np.full(3, SVR_STEPS * SVR_STEP)
        if self.kind == "fsvr":
            return np.full(9, -self.r_max), np.full(9, self.r_max)
        return (np.r_[np.zeros(3), np.full(3, -180.0)],
                np.r_[np.full(3, 2 * self.r_max), np.full(3, 180.0)])

    def levels(self, i: int) -> np.ndarray | None:
        """The discrete values of variable i, or None if continuous."""
        if self.kind == "svr":
            return np.arange(-SVR_STEPS, SVR_STEPS + 1) * SVR_STEP
        if self.kind == "fsvr" and not self.continuous:
            return np.arange(-4, 5) * self.vw1_over_vir
        return None

    def snap(self, x: np.ndarray) -> np.ndarray:
        lo, hi = self.bounds()
        x = np.clip(x, lo, hi)
        for i in range(self.size):
            lv = self.levels(i)
            if lv is not None:
                x[i] = lv[np.abs(lv - x[i]).argmin()]
        return x

    def setting(self, x: np.ndarray) -> DeviceSetting:
        if self.kind == "svr":
            return DeviceSetting("svr", alpha=np.diag(x[:3]))
        if self.kind == "fsvr":
            return DeviceSetting("fsvr", alpha=x.reshape(3, 3), continuous=self.continuous,
                                 vw1_over_vir=self.vw1_over_vir)
        return DeviceSetting("upfc", magnitude_pu=x[:3], angle_deg=x[3:],
                             vw1_over_vir=self.vw1_over_vir)

    def neutral(self) -> np.ndarray:
        return np.zeros(self.size)

    def tie_break(self, x: np.ndarray) -> float:
        """TIE_BREAK·Σ|α| for the nine-level FSVR, else 0 (see TIE_BREAK)."""
        return TIE_BREAK * float(np.abs(x).sum()) if self.kind == "fsvr" and not self.continuous else 0.0


@dataclass
class Result:
    method: str
    x: np.ndarray
    setting: DeviceSetting
    value: float  # the merit (the objective when feasible)
    summary: Summary
    flows: int
    history: list[tuple[int, float]] = field(default_factory=list)  # (flows so far, best merit)
    feasible: bool = False
    objective: float = float("nan")  # the objective alone, also when infeasible
    violations: list[dict] = field(default_factory=list)  # violated constraints, extreme values

    @property
    def note(self) -> str:
        """Empty when feasible; otherwise what was found instead of a feasible setting."""
        if self.feasible:
            return ""
        worst = "; ".join(f"{v['constraint']} {v['value']} at {v['where']} (limit {v['limit']})"
                          for v in self.violations)
        return f"no feasible setting found in {self.flows} power flows; least violation: {worst}"


class Evaluator:
    """Solves device settings through a solver; caches distinct settings and counts flows."""

    def __init__(self, solver: Solver, space: Space, objective: Objective,
                 load_mult: float = 1.0, stop_when_feasible: bool = False) -> None:
        self.solver, self.space, self.objective, self.load_mult = solver, space, objective, load_mult
        self.stop_when_feasible = stop_when_feasible
        self.flows = 0
        self._cache: dict[bytes, float] = {}
        self._summaries: dict[bytes, Summary] = {}
        self.best: tuple[float, np.ndarray, Summary] | None = None
        self.history: list[tuple[int, float]] = []

    def __call__(self, x: np.ndarray) -> float:
        x = self.space.snap(np.array(x, float))
        key = np.round(x, 9).tobytes()
        if key not in self._cache:
            summary = self.solver(self.space.setting(x), self.load_mult)
            self.flows += 1
            value = self.objective.value(summary) + self.space.tie_break(x)
            self._cache[key] = value
            self._summaries[key] = summary
            if self.best is None or value < self.best[0]:
                self.best = (value, x.copy(), summary)
            self.history.append((self.flows, self.best[0]))
            if self.stop_when_feasible and self.objective.feasible(summary):
                raise _FeasibleFound
        return self._cache[key]

    def summary_of(self, x: np.ndarray) -> Summary | None:
        """The power flow already solved for setting x (None if it was not)."""
        return self._summaries.get(np.round(self.space.snap(np.array(x, float)), 9).tobytes())

    def best_start(self, candidates: Sequence[np.ndarray]) -> np.ndarray:
        """Evaluate the candidates; the best one."""
        snapped = [self.space.snap(np.array(c, float)) for c in candidates]
        return snapped[int(np.argmin([self(c) for c in snapped]))]

    def result(self, method: str) -> Result:
        assert self.best is not None
        value, x, summary = self.best
        o = self.objective
        return Result(method, x, self.space.setting(x), value, summary, self.flows,
                      list(self.history), o.feasible(summary), o.objective(summary),
                      summary.violated(o.limits))


class _FeasibleFound(Exception):
    """Raised by an Evaluator with stop_when_feasible at its first feasible setting."""


def grey_wolf(evaluate: Evaluator, population: int = 12, iterations: int = 30, seed: int = 0,
              max_flows: int | None = None, start: np.ndarray | None = None) -> Result:
    """GWO as published (module docstring). Wolf 0 starts at `start` (default neutral), the others
    uniformly at random; `max_flows` caps the power flows (then `iterations` is at most
    max_flows // population, so that a still falls from 2 to 0 over the budget)."""
    rng = np.random.default_rng(seed)
    lo, hi = evaluate.space.bounds()
    if max_flows is not None:
        iterations = max(1, min(iterations, max_flows // population))
    wolves = rng.uniform(lo, hi, size=(population, len(lo)))
    wolves[0] = evaluate.space.neutral() if start is None else start
    leaders: list[tuple[float, np.ndarray]] = []  # α, β, δ: best three so far, best first
    for it in range(iterations):
        for wolf in wolves:
            if max_flows is not None and evaluate.flows >= max_flows:
                return evaluate.result("gwo")
            f = evaluate(wolf)
            if len(leaders) < 3 or f < leaders[-1][0]:
                leaders = sorted(leaders + [(f, wolf.copy())], key=lambda item: item[0])[:3]
        a = 2.0 * (1 - it / iterations)
        moved = np.zeros_like(wolves)
        for _, leader in leaders:
            r1, r2 = rng.random(wolves.shape), rng.random(wolves.shape)
            big_a, big_c = 2 * a * r1 - a, 2 * r2
            moved += leader - big_a * np.abs(big_c * leader - wolves)
        wolves = np.clip(moved / len(leaders), lo, hi)
    return evaluate.result("gwo")


def coordinate_search(evaluate: Evaluator, start: np.ndarray | None = None,
                      max_sweeps: int = 6, grid_points: int = 9) -> Result:
    """Exact sweeps over each coordinate's levels; continuous coordinates on a refined grid."""
    space = evaluate.space
    x = space.snap(space.neutral() if start is None else np.array(start, float))
    best = evaluate(x)
    lo, hi = space.bounds()
    width = hi - lo
    for _ in range(max_sweeps):
        improved = False
        for i in range(space.size):
            candidates = space.levels(i)
            if candidates is None:
                candidates = np.clip(x[i] + np.linspace(-0.5, 0.5, grid_points) * width[i], lo[i], hi[i])
            for value in candidates:
                trial = x.copy()
                trial[i] = value
                f = evaluate(trial)
                if f < best - 1e-9:
                    best, x, improved = f, space.snap(trial), True
        if space.levels(0) is None:
            width = width / 3.0  # refine the continuous grid around the incumbent
        elif not improved:
            break
    return evaluate.result("coordinate")


class _LinearModel:
    """Bus·phase phasors and losses as linear functions of the device variables, around x0."""

    def __init__(self, objective: Objective, space: Space, base: Summary, jac: np.ndarray,
                 grad: np.ndarray, x0: np.ndarray) -> None:
        self.objective, self.space, self.base = objective, space, base
        self.jac, self.grad, self.x0 = jac, grad, x0
        by_bus: dict[str, dict[str, int]] = {}
        for i, name in enumerate(base.node_names):
            bus, _, phase = name.rpartition(".")
            by_bus.setdefault(bus, {})[phase] = i
        self.buses = [b for b, ph in by_bus.items() if len(ph) == 3]
        self.groups = np.array([[by_bus[b][p] for p in "abc"] for b in self.buses], dtype=int)

    def values(self, xs: np.ndarray) -> np.ndarray:
        """Predicted merit of candidate settings xs (k, n), feasibility first on the band."""
        dx = xs - self.x0
        v = self.base.phasors[None, :] + dx @ self.jac.T  # (k, nodes)
        loss = self.base.losses_kw + dx @ self.grad
        mag = np.abs(v)
        lo, hi = self.base.band_pu
        below, above = np.maximum(lo - mag, 0), np.maximum(mag - hi, 0)
        largest = np.maximum(below.max(axis=1), above.max(axis=1))
        vuf = vuf_pct(v[:, self.groups]) if len(self.groups) else np.zeros((len(xs), 0))
        o = self.objective
        if o.vuf_bus is not None:
            vuf_obj = vuf[:, self.buses.index(o.vuf_bus)]
        else:
            vuf_obj = vuf.max(axis=1) if vuf.shape[1] else np.zeros(len(xs))
        base = {"loss": loss, "vuf": vuf_obj,
                "weighted": o.w_loss_per_kw * loss + o.w_vuf_per_pct * vuf_obj}[o.kind]
        if "vuf_max" in o.limits and self.base.vuf_limit_pct is not None and vuf.shape[1]:
            largest = np.maximum(largest, (vuf.max(axis=1) - self.base.vuf_limit_pct) / 100.0)
        return (np.where(largest > 1e-9, infeasible_merit(largest, below.sum(1) + above.sum(1)), base)
                + np.array([self.space.tie_break(x) for x in xs]))


def sensitivity_search(evaluate: Evaluator, start: np.ndarray | None = None,
                       iterations: int = 8, polish_sweeps: int = 2) -> Result:
    """Linearise the feeder around the incumbent (n + 1 power flows), then choose each group of
    variables — an FSVR row (up to 9³ level combinations), an SVR tap — exactly on the linear
    model within a trust region of `radius` levels, sweeping the groups until none changes;
    verify with one real power flow; accept and relinearise, or halve the radius. Ends with a
    short coordinate-search polish. Discrete spaces only (the UPFC uses the coordinate search)."""
    space = evaluate.space
    if space.levels(0) is None:
        return coordinate_search(evaluate, start)
    x = space.snap(space.neutral() if start is None else np.array(start, float))
    best = evaluate(x)
    groups = [list(range(3 * p, 3 * p + 3)) for p in range(3)] if space.kind == "fsvr" else [
        [i] for i in range(space.size)]
    radius = 4.0
    model = None
    for _ in range(iterations):
        if model is None:
            model = _linearise(evaluate, x)
            if model is None:
                break
        candidate = x.copy()
        for _sweep in range(4):
            changed = False
            for group in groups:
                axes = []
                for i in group:
                    lv = space.levels(i)
                    step = lv[1] - lv[0]
                    axes.append(lv[np.abs(lv - x[i]) <= radius * step + 1e-12])
                combos = np.array(np.meshgrid(*axes, indexing="ij")).reshape(len(group), -1).T
                xs = np.repeat(candidate[None, :], len(combos), axis=0)
                xs[:, group] = combos
                choice = xs[int(np.argmin(model.values(xs)))]
                if not np.allclose(choice, candidate):
                    candidate, changed = choice, True
            if not changed:
                break
        value = evaluate(candidate)
        if value < best - 1e-9:
            best, x, model = value, candidate, None  # relinearise at the better point
        elif radius > 1:
            radius /= 2  # the linear model overreached: a smaller step
        else:
            break
    if polish_sweeps:
        coordinate_search(evaluate, x, max_sweeps=polish_sweeps)
    return evaluate.result("sensitivity")


def _linearise(evaluate: Evaluator, x: np.ndarray) -> _LinearModel | None:
    """Finite differences of phasors and losses, one level per variable (n power flows)."""
    space = evaluate.space
    base = evaluate.summary_of(x)
    if base is None or base.phasors is None or not base.converged:
        return None
    jac = np.zeros((len(base.phasors), space.size), complex)
    grad = np.zeros(space.size)
    for i in range(space.size):
        levels = space.levels(i)
        step = levels[1] - levels[0]
        trial = x.copy()
        trial[i] += step if x[i] + step <= levels[-1] + 1e-12 else -step
        evaluate(trial)
        other = evaluate.summary_of(trial)
        if other is None or other.phasors is None or not other.converged:
            return None
        jac[:, i] = (other.phasors - base.phasors) / (trial[i] - x[i])
        grad[i] = (other.losses_kw - base.losses_kw) / (trial[i] - x[i])
    return _LinearModel(evaluate.objective, space, base, jac, grad, x)


def _starts(evaluate: Evaluator, given: Sequence[np.ndarray | None]) -> list[np.ndarray]:
    """The distinct candidates among the given starts, the neutral setting and (FSVR) the
    voltage-correction scheme's A from the device's V_in at the neutral setting, best first
    (every one a counted flow)."""
    space = evaluate.space
    candidates = [np.asarray(g, float) for g in given if g is not None] + [space.neutral()]
    if space.kind == "fsvr":
        evaluate(space.neutral())
        neutral = evaluate.summary_of(space.neutral())
        if neutral is not None and neutral.device_v_in is not None:
            a, _ = correct(neutral.device_v_in, vw1_over_vir=space.vw1_over_vir)
            candidates.append(a.ravel())
    snapped = {np.round(space.snap(c.copy()), 9).tobytes(): space.snap(c.copy()) for c in candidates}
    return sorted(snapped.values(), key=evaluate)


def as_start(result: Result | None, space: Space) -> np.ndarray | None:
    """Another device's result as a start in `space`: SVR taps snapped to the FSVR levels (the
    nine-level FSVR cannot hold every 0.625 % tap; a continuous FSVR holds them exactly); an
    FSVR's injection as the UPFC setting that reproduces it at the solved V_in (`fsvr_as_upfc`,
    exact within the UPFC's bound)."""
    if result is None:
        return None
    other = result.setting
    if space.kind == other.kind:
        return result.x.copy()
    if space.kind == "fsvr" and other.kind == "svr":
        return space.snap(other.alpha.ravel().copy())
    if space.kind == "upfc" and other.kind in ("svr", "fsvr") and result.summary.device_v_in is not None:
        magnitude, angle = fsvr_as_upfc(other.alpha, result.summary.device_v_in)
        return space.snap(np.r_[magnitude, angle])
    return None


def optimise(solver: Solver, space: Space, objective: Objective, method: str = "sensitivity",
             load_mult: float = 1.0, start: np.ndarray | None = None, **options) -> Result:
    """Best device setting by `method` (sensitivity, coordinate or gwo). Sensitivity and
    coordinate search begin at the best of `start`, the neutral setting and (FSVR) the correction
    scheme's A; GWO puts its first wolf at `start` (or neutral)."""
    evaluate = Evaluator(solver, space, objective, load_mult)
    if method == "gwo":
        return grey_wolf(evaluate, start=start, **options)
    begin = _starts(evaluate, [start])[0]
    if method == "sensitivity":
        return sensitivity_search(evaluate, begin, **options)
    return coordinate_search(evaluate, begin, **options)


def feasible_setting(solver: Solver, space: Space, objective: Objective,
                     iterations: int = 6) -> Result:
    """A setting at least `objective` under which every constraint of `objective` holds (assist
    mode: `require_feasible`): the sensitivity search from the correction scheme's A; check
    `result.feasible` (`result.summary.feasible`: every grid limit)."""
    return optimise(solver, space, objective, "sensitivity", iterations=iterations)


def feasibility_search(solver: Solver, space: Space, load_mult: float,
                       starts: Sequence[np.ndarray | None] = (),
                       constraints: tuple[str, ...] = BAND, attempts: int = 3) -> Result:
    """The first setting found that meets every constraint at `load_mult`: a search by the merit
    (the largest violation) from the best of `starts`, the neutral setting and (FSVR) the
    correction scheme's A, and, while nothing is feasible, from the next best of them (at most
    `attempts` searches: a local search from one start can end in another basin than the one a
    feasible setting lies in); the least-violating setting if none is found."""
    evaluate = Evaluator(solver, space, Objective("loss", constraints=constraints), load_mult,
                         stop_when_feasible=True)
    search = coordinate_search if space.levels(0) is None else sensitivity_search
    try:
        for begin in _starts(evaluate, starts)[:attempts]:
            search(evaluate, begin)
    except _FeasibleFound:
        pass
    return evaluate.result("feasibility")


@dataclass
class Loadability:
    lambda_max: float
    flows: int
    witness: Result | None  # a feasible setting at lambda_max (None without a device or if none)
    note: str = ""


def loadability(solver: Solver, space: Space, lam_hi: float = 3.0, tol: float = 0.02,
                known: tuple[float, np.ndarray] | None = None, fixed: np.ndarray | None = None,
                constraints: tuple[str, ...] = BAND) -> Loadability:
    """λ_max: the largest load multiplier (every feeder load's P and Q) for which a setting of the
    device meets every constraint (default the voltage band), by bisection on [0, lam_hi] to `tol`.

    At each λ a feasibility search (`feasibility_search`: minimise the largest violation, stop at
    the first feasible setting) starts from the setting that was feasible at the last feasible λ
    and the least-violating one of the last λ tried (warm start), besides the neutral setting and
    the correction scheme's A. `known` = (λ, x): a setting believed feasible at λ (another device's
    witness mapped by `as_start`); verified with one power flow, it raises the lower end of the
    bracket, so a device that can do everything another can reaches at least its λ_max.
    `fixed`: no search, the device stays at this setting (base case, published taps).
    Bisection assumes that feasibility, once lost with growing λ, does not return."""
    flows = 0
    witness: Result | None = None
    warm: list[np.ndarray] = []

    def feasible(lam: float, extra: Sequence[np.ndarray] = ()) -> bool:
        nonlocal flows, witness
        if fixed is not None:
            evaluate = Evaluator(solver, space, Objective("loss", constraints=constraints), lam)
            evaluate(fixed)
            result = evaluate.result("fixed")
        else:
            result = feasibility_search(solver, space, lam, [*extra, *warm], constraints)
        flows += result.flows
        warm[:] = [result.x] + ([witness.x] if witness is not None else [])
        if result.feasible:
            witness = result
        return result.feasible

    lo, hi = 0.0, lam_hi
    if known is not None and feasible(known[0], [known[1]]):
        lo = known[0]
    if feasible(hi):
        return Loadability(hi, flows, witness)
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if feasible(mid) else (lo, mid)
    note = "" if witness is not None else f"no feasible setting found at any λ tried in (0, {lam_hi}]"
    return Loadability(lo, flows, witness, note)
