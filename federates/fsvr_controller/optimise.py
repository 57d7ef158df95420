"""Optimal settings of SVR, FSVR and UPFC (SPEC §3, thesis 4.7) by real power flows.

Decision variables: SVR 3 taps; FSVR 9 coefficients (discrete levels or continuous ±R_max); UPFC
3 magnitudes and 3 angles. Objective: total loss (kW), VUF (feeder maximum or at a named bus, %)
or a weighted sum; V_min ≤ |V| ≤ V_max as a penalty (1000 per pu beyond the band).

Two methods, both counting their power flows:
- Grey Wolf Optimisation (Mirjalili, Mirjalili & Lewis 2014), the thesis' method;
- coordinate search: every coordinate in turn tries all of its levels (continuous ones a grid
  that is refined around the best), repeated until a sweep improves nothing; for the FSVR it
  starts from the voltage-correction scheme's setting, so the first sweep already sits near a
  balanced output. Every distinct setting is solved once (a cache), so the count is honest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from lemcosim.federates.fsvr_controller.correction import correct
from lemcosim.federates.grid.devices import SVR_STEP, SVR_STEPS, DeviceSetting
from lemcosim.federates.grid.model import GridModel, Limits, PowerFlow

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

    @property
    def vuf_max_pct(self) -> float:
        return max(self.vuf_pct.values(), default=0.0)

    @classmethod
    def of_flow(cls, flow: PowerFlow, limits: Limits, v_in: np.ndarray | None = None) -> Summary:
        if not flow.converged:
            return cls(False)
        return cls(True, flow.losses_kw, dict(zip(flow.vuf_buses, flow.vuf_pct.tolist(), strict=True)),
                   flow.band_violation_pu(limits), v_in)

    @classmethod
    def of_answer(cls, answer: dict) -> Summary:
        """From the grid federate's query answer (docs/grid.md)."""
        if not answer.get("converged"):
            return cls(False)
        v_in = answer.get("device_v_in")
        return cls(True, float(answer["losses_kw"]), dict(answer.get("vuf_pct") or {}),
                   float(answer["band_violation_pu"]),
                   None if v_in is None else np.asarray(v_in["re"]) + 1j * np.asarray(v_in["im"]))


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

    def value(self, summary: Summary) -> float:
        """Objective plus PENALTY_PER_PU per pu of voltage outside the band."""
        if not summary.converged:
            return float("inf")
        vuf = self.vuf_of(summary)
        base = {"loss": summary.losses_kw, "vuf": vuf,
                "weighted": self.w_loss_per_kw * summary.losses_kw + self.w_vuf_per_pct * vuf
                }[self.kind]
        return base + PENALTY_PER_PU * summary.band_violation_pu

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
            if self.best is None or value < self.best[0]:
                self.best = (value, x.copy(), summary)
            self.history.append((self.flows, self.best[0]))
        return self._cache[key]

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


def fsvr_start(solver: Solver, space: Space, load_mult: float = 1.0) -> np.ndarray:
    """The voltage-correction scheme's A from the device's V_in at the neutral setting."""
    summary = solver(space.setting(space.neutral()), load_mult)
    if summary.device_v_in is None:
        return space.neutral()
    a, _ = correct(summary.device_v_in, vw1_over_vir=space.vw1_over_vir)
    return a.ravel()


def optimise(solver: Solver, space: Space, objective: Objective, method: str = "coordinate",
             load_mult: float = 1.0, **options) -> Result:
    """Best device setting by `method` (coordinate or gwo)."""
    evaluate = Evaluator(solver, space, objective, load_mult)
    if method == "gwo":
        return grey_wolf(evaluate, **options)
    start = fsvr_start(solver, space, load_mult) if space.kind == "fsvr" else None
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
