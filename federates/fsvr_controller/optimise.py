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
from lemcosim.federates.grid.model import GridModel, PowerFlow

ObjectiveKind = Literal["loss", "vuf", "weighted"]
PENALTY_PER_PU = 1000.0


@dataclass(frozen=True)
class Objective:
    kind: ObjectiveKind = "loss"
    vuf_bus: str | None = None  # None: feeder maximum
    w_loss_per_kw: float = 1.0
    w_vuf_per_pct: float = 10.0
    v_min_pu: float = 0.95
    v_max_pu: float = 1.05

    def value(self, flow: PowerFlow) -> float:
        if not flow.converged:
            return float("inf")
        vuf = self.vuf_of(flow)
        base = {"loss": flow.losses_kw, "vuf": vuf,
                "weighted": self.w_loss_per_kw * flow.losses_kw + self.w_vuf_per_pct * vuf}[self.kind]
        return base + PENALTY_PER_PU * self.violation_pu(flow)

    def vuf_of(self, flow: PowerFlow) -> float:
        if self.vuf_bus is None:
            return flow.extreme("vuf_max")[1]
        return float(dict(zip(flow.vuf_buses, flow.vuf_pct, strict=True))[self.vuf_bus])

    def violation_pu(self, flow: PowerFlow) -> float:
        mag = flow.magnitude()
        return float(np.maximum(self.v_min_pu - mag, 0).sum() + np.maximum(mag - self.v_max_pu, 0).sum())


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
    flow: PowerFlow
    flows: int
    history: list[tuple[int, float]] = field(default_factory=list)  # (flows so far, best value)


class Evaluator:
    """Solves a device setting on a grid model; caches distinct settings and counts flows."""

    def __init__(self, model: GridModel, space: Space, objective: Objective) -> None:
        self.model, self.space, self.objective = model, space, objective
        self.flows = 0
        self._cache: dict[bytes, tuple[float, PowerFlow]] = {}
        self.best: tuple[float, np.ndarray, PowerFlow] | None = None
        self.history: list[tuple[int, float]] = []

    def __call__(self, x: np.ndarray) -> float:
        x = self.space.snap(np.array(x, float))
        key = np.round(x, 9).tobytes()
        if key not in self._cache:
            self.model.set_device(self.space.setting(x))
            flow = self.model.solve()
            self.flows += 1
            value = self.objective.value(flow)
            self._cache[key] = (value, flow)
            if self.best is None or value < self.best[0]:
                self.best = (value, x.copy(), flow)
            self.history.append((self.flows, self.best[0]))
        return self._cache[key][0]

    def result(self, method: str) -> Result:
        assert self.best is not None
        value, x, flow = self.best
        return Result(method, x, self.space.setting(x), value, flow, self.flows, list(self.history))


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


def fsvr_start(model: GridModel, space: Space) -> np.ndarray:
    """The voltage-correction scheme's A from the device's measured V_in at neutral setting."""
    model.set_device(space.setting(space.neutral()))
    model.solve()
    v_in, _ = model.device_voltages()
    a, _ = correct(v_in, vw1_over_vir=space.vw1_over_vir)
    return a.ravel()


Optimiser = Callable[[Evaluator], Result]


def optimise(model: GridModel, space: Space, objective: Objective, method: str = "coordinate",
             **options) -> Result:
    """Best setting of the model's device by `method` (coordinate or gwo)."""
    evaluate = Evaluator(model, space, objective)
    if method == "gwo":
        result = grey_wolf(evaluate, **options)
    else:
        start = fsvr_start(model, space) if space.kind == "fsvr" else None
        result = coordinate_search(evaluate, start, **options)
    model.set_device(space.setting(result.x))
    return result


def loadability(model: GridModel, space: Space | None, objective: Objective,
                lam_hi: float = 4.0, tol: float = 0.01, method: str = "coordinate") -> float:
    """λ_max: the largest load multiplier with a setting inside the voltage band (bisection)."""
    def feasible(lam: float) -> bool:
        model.set_load_mult(lam)
        if space is None:
            flow = model.solve()
            return flow.converged and objective.violation_pu(flow) == 0
        feas = Objective("loss", v_min_pu=objective.v_min_pu, v_max_pu=objective.v_max_pu)
        result = optimise(model, space, feas, method)
        return result.flow.converged and feas.violation_pu(result.flow) == 0

    lo, hi = 0.0, lam_hi
    if feasible(hi):
        return hi
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if feasible(mid) else (lo, mid)
    model.set_load_mult(1.0)
    return lo
