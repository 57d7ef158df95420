"""Optimal settings of SVR, FSVR and UPFC (SPEC §3, thesis 4.7) by real power flows.

Decision variables: SVR 3 taps; FSVR 9 coefficients (discrete levels or continuous ±R_max); UPFC
3 magnitudes and 3 angles. Objective: total loss (kW), VUF (feeder maximum or at a named bus, %)
or a weighted sum; V_min ≤ |V| ≤ V_max as a penalty (1000 per pu beyond the band).

Three methods, all counting their power flows (every distinct setting is solved once, cached):
- Grey Wolf Optimisation (Mirjalili, Mirjalili & Lewis 2014), the thesis' method;
- coordinate search: every coordinate in turn tries all of its levels (continuous ones a grid
  that is refined around the best), repeated until a sweep improves nothing;
- sensitivity search (our stronger method for the discrete SVR/FSVR): linearise phasors and
  losses around the incumbent with n + 1 power flows, choose each FSVR row exactly among its
  9³ level combinations on the linear model inside a trust region, verify with one power flow,
  repeat; then a short coordinate polish. The UPFC (continuous) uses the coordinate search.
For the FSVR the searches start from the voltage-correction scheme's setting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from lemcosim.federates.fsvr_controller.correction import correct
from lemcosim.federates.grid.devices import SVR_STEP, SVR_STEPS, DeviceSetting
from lemcosim.federates.grid.model import GridModel, Limits, PowerFlow
from lemcosim.federates.grid.vuf import vuf_pct

ObjectiveKind = Literal["loss", "vuf", "weighted"]
PENALTY_PER_PU = 1000.0


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
    feasible: bool = True  # every grid limit (voltage, VUF, loading) met
    extremes: dict = field(default_factory=dict)

    @property
    def vuf_max_pct(self) -> float:
        return max(self.vuf_pct.values(), default=0.0)

    @classmethod
    def of_flow(cls, flow: PowerFlow, limits: Limits, v_in: np.ndarray | None = None) -> Summary:
        if not flow.converged:
            return cls(False)
        return cls(True, flow.losses_kw, dict(zip(flow.vuf_buses, flow.vuf_pct.tolist(), strict=True)),
                   flow.band_violation_pu(limits), v_in, tuple(flow.node_names), flow.v_pu.copy(),
                   (limits.v_min_pu, limits.v_max_pu), not flow.violations(limits))

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
                   dict(answer.get("extremes") or {}))


# (setting, load multiplier) → summary of the solved power flow
Solver = Callable[[DeviceSetting | None, float], Summary]


def local_solver(model: GridModel) -> Solver:
    """Solve on an in-process grid model (the band is the model's limits)."""
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
    require_feasible: bool = False  # add PENALTY_PER_PU when any grid limit is violated

    def value(self, summary: Summary) -> float:
        """Objective plus PENALTY_PER_PU per pu of voltage outside the band (and per unmet limit
        when `require_feasible`)."""
        if not summary.converged:
            return float("inf")
        vuf = self.vuf_of(summary)
        base = {"loss": summary.losses_kw, "vuf": vuf,
                "weighted": self.w_loss_per_kw * summary.losses_kw + self.w_vuf_per_pct * vuf
                }[self.kind]
        infeasible = self.require_feasible and not summary.feasible
        return base + PENALTY_PER_PU * (summary.band_violation_pu + infeasible)

    def vuf_of(self, summary: Summary) -> float:
        return summary.vuf_max_pct if self.vuf_bus is None else summary.vuf_pct[self.vuf_bus]


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
        return np.r_[np.zeros(3), np.full(3, -180.0)], np.r_[np.full(3, self.r_max), np.full(3, 180.0)]

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


@dataclass
class Result:
    method: str
    x: np.ndarray
    setting: DeviceSetting
    value: float
    summary: Summary
    flows: int
    history: list[tuple[int, float]] = field(default_factory=list)  # (flows so far, best value)


class Evaluator:
    """Solves device settings through a solver; caches distinct settings and counts flows."""

    def __init__(self, solver: Solver, space: Space, objective: Objective,
                 load_mult: float = 1.0) -> None:
        self.solver, self.space, self.objective, self.load_mult = solver, space, objective, load_mult
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
            value = self.objective.value(summary)
            self._cache[key] = value
            self._summaries[key] = summary
            if self.best is None or value < self.best[0]:
                self.best = (value, x.copy(), summary)
            self.history.append((self.flows, self.best[0]))
        return self._cache[key]

    def summary_of(self, x: np.ndarray) -> Summary | None:
        """The power flow already solved for setting x (None if it was not)."""
        return self._summaries.get(np.round(self.space.snap(np.array(x, float)), 9).tobytes())

    def result(self, method: str) -> Result:
        assert self.best is not None
        value, x, summary = self.best
        return Result(method, x, self.space.setting(x), value, summary, self.flows,
                      list(self.history))


def grey_wolf(evaluate: Evaluator, population: int = 12, iterations: int = 30,
              seed: int = 0) -> Result:
    """GWO: wolves move towards the three best (α, β, δ); a falls linearly from 2 to 0."""
    rng = np.random.default_rng(seed)
    lo, hi = evaluate.space.bounds()
    wolves = rng.uniform(lo, hi, size=(population, len(lo)))
    wolves[0] = evaluate.space.neutral()
    fitness = np.array([evaluate(w) for w in wolves])
    for it in range(iterations):
        leaders = wolves[np.argsort(fitness)[:3]]
        a = 2.0 * (1 - it / iterations)
        moved = np.zeros_like(wolves)
        for leader in leaders:
            r1, r2 = rng.random(wolves.shape), rng.random(wolves.shape)
            big_a, big_c = 2 * a * r1 - a, 2 * r2
            moved += leader - big_a * np.abs(big_c * leader - wolves)
        wolves = np.clip(moved / 3.0, lo, hi)
        fitness = np.array([evaluate(w) for w in wolves])
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

    def __init__(self, objective: Objective, base: Summary, jac: np.ndarray, grad: np.ndarray,
                 x0: np.ndarray) -> None:
        self.objective, self.base, self.jac, self.grad, self.x0 = objective, base, jac, grad, x0
        by_bus: dict[str, dict[str, int]] = {}
        for i, name in enumerate(base.node_names):
            bus, _, phase = name.rpartition(".")
            by_bus.setdefault(bus, {})[phase] = i
        self.buses = [b for b, ph in by_bus.items() if len(ph) == 3]
        self.groups = np.array([[by_bus[b][p] for p in "abc"] for b in self.buses], dtype=int)

    def values(self, xs: np.ndarray) -> np.ndarray:
        """Predicted objective (with the band penalty) of candidate settings xs (k, n)."""
        dx = xs - self.x0
        v = self.base.phasors[None, :] + dx @ self.jac.T  # (k, nodes)
        loss = self.base.losses_kw + dx @ self.grad
        mag = np.abs(v)
        lo, hi = self.base.band_pu
        band = np.maximum(lo - mag, 0).sum(axis=1) + np.maximum(mag - hi, 0).sum(axis=1)
        vuf = vuf_pct(v[:, self.groups]) if len(self.groups) else np.zeros((len(xs), 0))
        o = self.objective
        if o.vuf_bus is not None:
            vuf_obj = vuf[:, self.buses.index(o.vuf_bus)]
        else:
            vuf_obj = vuf.max(axis=1) if vuf.shape[1] else np.zeros(len(xs))
        base = {"loss": loss, "vuf": vuf_obj,
                "weighted": o.w_loss_per_kw * loss + o.w_vuf_per_pct * vuf_obj}[o.kind]
        return base + PENALTY_PER_PU * band


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
    return coordinate_search(evaluate, x, max_sweeps=polish_sweeps) if polish_sweeps else \
        evaluate.result("sensitivity")


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
    return _LinearModel(evaluate.objective, base, jac, grad, x)


def fsvr_start(solver: Solver, space: Space, load_mult: float = 1.0) -> np.ndarray:
    """The voltage-correction scheme's A from the device's V_in at the neutral setting."""
    summary = solver(space.setting(space.neutral()), load_mult)
    if summary.device_v_in is None:
        return space.neutral()
    a, _ = correct(summary.device_v_in, vw1_over_vir=space.vw1_over_vir)
    return a.ravel()


def feasible_setting(solver: Solver, space: Space, objective: Objective,
                     iterations: int = 6) -> Result:
    """A setting at least `objective` under which every grid limit holds (assist mode): the
    sensitivity search from the correction scheme's A; check `result.summary.feasible`."""
    evaluate = Evaluator(solver, space, objective)
    return sensitivity_search(evaluate, fsvr_start(solver, space), iterations)


def upfc_equivalent(fsvr: Result, space: Space) -> np.ndarray | None:
    """The UPFC injection V_se = A·V_in that reproduces an FSVR result (clipped to R_max): a
    start from which the UPFC can only do better — it spans every FSVR injection and more."""
    v_in = fsvr.summary.device_v_in
    if v_in is None or fsvr.setting.kind != "fsvr":
        return None
    v_se = fsvr.setting.alpha @ v_in
    magnitude = np.minimum(np.abs(v_se), space.r_max)
    angle = (np.degrees(np.angle(v_se)) - np.array([0.0, -120.0, 120.0]) + 180.0) % 360.0 - 180.0
    return np.r_[magnitude, angle]


def optimise(solver: Solver, space: Space, objective: Objective, method: str = "coordinate",
             load_mult: float = 1.0, start: np.ndarray | None = None, **options) -> Result:
    """Best device setting by `method` (sensitivity, coordinate or gwo); FSVR searches start from
    the correction scheme's A unless `start` is given."""
    evaluate = Evaluator(solver, space, objective, load_mult)
    if method == "gwo":
        return grey_wolf(evaluate, **options)
    if start is None and space.kind == "fsvr":
        start = fsvr_start(solver, space, load_mult)
    if method == "sensitivity":
        return sensitivity_search(evaluate, start, **options)
    return coordinate_search(evaluate, start, **options)


def loadability(solver: Solver, space: Space | None, lam_hi: float = 4.0, tol: float = 0.01,
                method: str = "coordinate") -> tuple[float, int]:
    """(λ_max, power flows): the largest load multiplier for which a device setting keeps every
    voltage inside the band, by bisection with the optimiser inside (`space` None: no device)."""
    flows = 0

    def feasible(lam: float) -> bool:
        nonlocal flows
        if space is None:
            flows += 1
            summary = solver(None, lam)
            return summary.converged and summary.band_violation_pu == 0
        result = optimise(solver, space, Objective("loss"), method, load_mult=lam)
        flows += result.flows
        return result.summary.converged and result.summary.band_violation_pu == 0

    lo, hi = 0.0, lam_hi
    if feasible(hi):
        return hi, flows
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if feasible(mid) else (lo, mid)
    return lo, flows
