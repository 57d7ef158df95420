"""The grid model: one feeder in OpenDSS, net injections, an optional regulator device, results.

`GridModel` owns the (process-wide) OpenDSS engine. Injections are constant-power single-phase
elements per `BUS.PHASE` (positive into the grid), created on first use and then edited in place,
so a window costs one `Solve`. A device whose wiring changes (sign or zero pattern of α, another
kind) recompiles the circuit; a change of magnitude only is a property edit.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lemcosim.federates.common.errors import LemcosimError
from lemcosim.federates.grid.devices import (
    DeviceError,
    DeviceSetting,
    DeviceSlot,
    device_commands,
    magnitude_edits,
)
from lemcosim.federates.grid.plausibility import V_COLLAPSE_PU, collapse_reason
from lemcosim.federates.grid.vuf import vuf_pct
from lemcosim.networks.builder import (
    RegulatorMode,
    bus_bases_kv_ln,
    compile_dss,
    compile_network,
    dss,
    run,
)
from lemcosim.networks.loader import NetworkError, load_network
from lemcosim.networks.model import Network
from lemcosim.networks.results import NodeIndex

DEVICE_BUS = "dev"
_INJ_PREFIX = "inj_"
# injections hold constant power over this voltage range (OpenDSS's default 0.95 would turn them
# into impedances exactly where a market pushes the voltage)
_INJ_VMIN_PU, _INJ_VMAX_PU = 0.5, 1.5
# handles into the process's OpenDSS engine (`GridModel._bind_result_reads`): not pickled
_ENGINE_BINDINGS = ("_all_bus_volts", "_all_pct_norm", "_read_results", "_solve")


class GridError(LemcosimError):
    """A request the grid cannot serve: unknown bus or phase, bad device setting, bad network."""


@dataclass(frozen=True)
class Limits:
    v_min_pu: float = 0.95
    v_max_pu: float = 1.05
    vuf_max_pct: float = 2.0
    loading_max_pct: float = 100.0
    # absolute: any value beyond a limit is a violation; no_worse: only one beyond its limit and
    # worse than in the committed state (a feeder that already violates a limit stays operable)
    rule: str = "absolute"


def _limit(limits: Limits, which: str) -> float:
    return {"v_min": limits.v_min_pu, "v_max": limits.v_max_pu, "vuf_max": limits.vuf_max_pct,
            "loading_max": limits.loading_max_pct}[which]


@dataclass
class PowerFlow:
    """A solved (or failed) power flow."""

    converged: bool
    losses_kw: float = float("nan")
    losses_kvar: float = float("nan")
    node_names: list[str] = field(default_factory=list)  # "bus.phase"
    v_pu: np.ndarray = field(default_factory=lambda: np.zeros(0, complex))
    vuf_buses: list[str] = field(default_factory=list)
    vuf_pct: np.ndarray = field(default_factory=lambda: np.zeros(0))
    line_names: list[str] = field(default_factory=list)
    loading_pct: np.ndarray = field(default_factory=lambda: np.zeros(0))
    reason: str = ""
    _magnitude: np.ndarray | None = field(default=None, repr=False, compare=False)
    _stack: np.ndarray | None = field(default=None, repr=False, compare=False)
    _threshold_cache: dict = field(default_factory=dict, repr=False, compare=False)

    def magnitude(self) -> np.ndarray:
        """|V| per bus phase, pu (computed once: every judgement of the flow reads it)."""
        if self._magnitude is None:
            self._magnitude = np.abs(self.v_pu)
        return self._magnitude

    def extreme(self, which: str) -> tuple[str, float]:
        """(where, value) of v_min, v_max, vuf_max or loading_max ("", 0.0 if there is none)."""
        if which in ("v_min", "v_max"):
            names, values = self.node_names, self.magnitude()
        else:
            names, values = ((self.vuf_buses, self.vuf_pct) if which == "vuf_max"
                             else (self.line_names, self.loading_pct))
        if len(values) == 0:  # nothing of the kind (or not solved)
            return "", 0.0
        k = int(values.argmin() if which == "v_min" else values.argmax())
        return names[k], float(values[k])

    def extremes(self) -> dict[str, dict[str, str | float]]:
        """{v_min, v_max, vuf_max, loading_max: {where, value}} (an approval answer's)."""
        out = {}
        for which in ("v_min", "v_max", "vuf_max", "loading_max"):
            where, value = self.extreme(which)
            out[which] = {"where": where, "value": value}
        return out

    def violations(self, limits: Limits, reference: PowerFlow | None = None) -> list[dict]:
        """Each violated constraint with where and its extreme value (see `Limits.rule`): a bus
        phase, bus or line beyond its limit by more than 1e-9; with no_worse, and worse than in
        `reference` by more than 1e-4 of the limit (solver noise is not a new violation)."""
        if not self.converged:
            return [{"constraint": "convergence", "where": "", "value": None, "limit": None}]
        compare = limits.rule == "no_worse" and reference is not None and reference.converged
        sign, threshold = (reference if compare else self)._thresholds(limits, self, compare)
        stack = self._stacked()
        bad = sign * stack > threshold  # every bus phase, bus and line at once
        if not bad.any():
            return []
        out = []
        for which, lo, hi, names in self._segments():
            seg = bad[lo:hi]
            if seg.any():
                values = stack[lo:hi]
                i = int(np.flatnonzero(seg)[np.argmax(sign[lo] * values[seg])])
                out.append({"constraint": which, "where": names[i],
                            "value": round(float(values[i]), 6), "limit": _limit(limits, which)})
        return out

    def _thresholds(self, limits: Limits, flow: PowerFlow, compare: bool
                    ) -> tuple[np.ndarray, np.ndarray]:
        """Sign (−1 for a lower limit) and threshold per element of `flow._stacked()`: an element
        violates when sign·value > threshold. With `compare`, this flow is the reference: a
        quantity laid out as in `flow` must also be worse than here. Kept per reference (a
        window's committed flow judges every query of the window)."""
        key = (limits, compare)
        cached = self._threshold_cache.get(key)
        if cached is not None and cached[0] is flow.node_names and cached[1] is flow.vuf_buses \
                and cached[2] is flow.line_names:
            return cached[3], cached[4]
        ref = {w: (lo, hi, names) for w, lo, hi, names in self._segments()} if compare else {}
        ref_stack = self._stacked() if compare else None
        signs, thresholds = [], []
        for which, lo, hi, names in flow._segments():
            sign, limit = (-1.0 if which == "v_min" else 1.0), _limit(limits, which)
            threshold = np.full(hi - lo, sign * limit + 1e-9)
            r_lo, r_hi, ref_names = ref.get(which, (0, 0, None))
            if ref_names is not None and (ref_names is names or list(ref_names) == list(names)):
                threshold = np.maximum(threshold, sign * ref_stack[r_lo:r_hi] + 1e-4 * limit)
            signs.append(np.full(hi - lo, sign))
            thresholds.append(threshold)
        sign_vec, threshold_vec = np.concatenate(signs), np.concatenate(thresholds)
        self._threshold_cache[key] = (flow.node_names, flow.vuf_buses, flow.line_names,
                                      sign_vec, threshold_vec)
        return sign_vec, threshold_vec

    def _segments(self) -> list[tuple[str, int, int, list[str]]]:
        """(constraint, start, end, names) of each judged quantity in `_stacked`."""
        n, m, k = len(self.node_names), len(self.vuf_buses), len(self.line_names)
        return [("v_min", 0, n, self.node_names), ("v_max", n, 2 * n, self.node_names),
                ("vuf_max", 2 * n, 2 * n + m, self.vuf_buses),
                ("loading_max", 2 * n + m, 2 * n + m + k, self.line_names)]

    def _stacked(self) -> np.ndarray:
        """|V| (twice: the v_min and v_max checks), VUF and line loading in one array."""
        if self._stack is None:
            mag = self.magnitude()
            self._stack = np.concatenate((mag, mag, self.vuf_pct, self.loading_pct))
        return self._stack

    def band_violation_pu(self, limits: Limits) -> float:
        """Σ over bus phases of how far |V| lies outside [v_min, v_max], pu (inf if not solved)."""
        if not self.converged:
            return float("inf")
        mag = self.magnitude()
        return float(np.maximum(limits.v_min_pu - mag, 0).sum()
                     + np.maximum(mag - limits.v_max_pu, 0).sum())

    def buses_json(self) -> dict[str, dict[str, dict[str, float]]]:
        out: dict[str, dict[str, dict[str, float]]] = {}
        for name, v in zip(self.node_names, self.v_pu, strict=True):
            bus, _, phase = name.rpartition(".")
            out.setdefault(bus, {})[phase] = {"v_pu": round(float(abs(v)), 7),
                                              "angle_deg": round(float(np.degrees(np.angle(v))), 5)}
        return out

    def summary_json(self) -> dict:
        """The `lemcosim powerflow --json` object."""
        return {
            "converged": self.converged,
            "losses_kw": _finite(self.losses_kw),
            "losses_kvar": _finite(self.losses_kvar),
            "buses": self.buses_json(),
            "vuf_pct": {b: round(float(v), 6) for b, v in zip(self.vuf_buses, self.vuf_pct,
                                                                   strict=True)},
            "max_line_loading_pct": round(self.extreme("loading_max")[1], 6),
        }


def _load_kws():
    loads = dss().Loads
    i = loads.First()
    while i > 0:
        yield loads.kW()
        i = loads.Next()


def _finite(x: float) -> float | None:
    return None if not np.isfinite(x) else round(float(x), 6)


class GridModel:
    """A feeder (shipped/our-format network or a user's .dss) ready to solve."""

    def __init__(self, network: str | Path, *, regulators: RegulatorMode = "published",
                 load_mult: float = 1.0, device: DeviceSetting | None = None,
                 device_at: str | None = None, limits: Limits | None = None) -> None:
        self.ref = str(network)
        self.is_dss = self.ref.lower().endswith(".dss")
        self.network: Network | None = None if self.is_dss else load_network(self.ref)
        self.regulators = regulators
        self.load_mult = load_mult
        self.limits = limits or Limits()
        self.device = device
        self.device_at = device_at
        self.slot: DeviceSlot | None = None
        self.injections: dict[str, tuple[float, float]] = {}
        # BUS.PHASE -> the injection load's index in OpenDSS's load list (selecting a load by
        # index costs 1.4 µs, by name 11 µs: a batch of approvals edits ~7 loads per solve)
        self._elements: dict[str, int] = {}
        self._applied: dict[str, tuple[float, float]] = {}  # what the OpenDSS elements hold now
        self.solves = 0
        self._bind_result_reads()
        self.compile()

    # --- checkpoints (lemcosim run --resume) ----------------------------------------------------
    def __getstate__(self) -> dict:
        # the circuit lives in the OpenDSS engine, not in this object: __setstate__ rebuilds it
        return {k: v for k, v in vars(self).items() if k not in _ENGINE_BINDINGS} | {"_applied": {}}

    def __setstate__(self, state: dict) -> None:
        vars(self).update(state)
        self._bind_result_reads()
        order, injections = list(self._elements), self.injections
        self._elements, self.injections = {}, {}
        self.compile()  # with the device setting in force
        for key in order:  # the same elements in the same order: the same circuit
            self._ensure_element(key)
        self.set_injections(injections)

    # --- building --------------------------------------------------------------------------
    def _bind_result_reads(self) -> None:
        """The engine's array getters, read in place: each fills OpenDSS's global result buffer,
        which `_read_results` views without a copy (opendssdirect's wrappers copy it into a list
        and check for an engine error after each; the solve checks once after both reads). A view
        holds until the next getter: callers copy what they keep."""
        circuit = dss().Circuit
        self._all_bus_volts = circuit._lib.Circuit_Get_AllBusVolts_GR
        self._all_pct_norm = circuit._lib.PDElements_Get_AllPctNorm_GR
        util = circuit._api_util
        buffer = util.ffi.buffer

        def read_results(getter, *args) -> np.ndarray:
            getter(*args)
            ptr, count = util.gr_float64_pointers  # looked up anew: `clear_buffers` replaces them
            return np.frombuffer(buffer(ptr[0], count[0] * 8), dtype=np.float64)

        self._read_results = read_results

    def compile(self) -> None:
        if self.network is not None:
            compile_network(self.network, self.regulators, self.load_mult)
        else:
            compile_dss(self.ref, self.load_mult)
        # a tight tolerance makes a re-solve from another starting point land on the same state
        run(["set tolerance=1e-8"], self.ref)
        self._node_kv_ln = bus_bases_kv_ln()
        self._load_kw_nominal = sum(_load_kws())  # before any injection element exists
        if self.device is not None:
            self._install_device(self.device)
        self.index = NodeIndex.of_active_circuit()
        solution = dss().Solution
        # with control actions off (no regulator or capacitor controls: the published taps) the
        # control loop of `Solve` does nothing but costs ~1.6 µs a solve
        self._solve = solution.SolveNoControl if solution.ControlMode() == -1 else solution.Solve
        keep = [i for i, b in enumerate(self.index.bus) if not str(b).startswith(DEVICE_BUS + "_")
                and str(b) != DEVICE_BUS]
        self._report = np.array(keep, dtype=int)
        self._report_names = [self.index.names[i] for i in keep]
        # where each reported node's (re, im) sits in AllBusVolts, and its base voltage
        at = self.index.keep[self._report]
        # AllBusVolts is (re, im) pairs: read as complex, it is node order (a slice when the
        # reported nodes come first: no copy by fancy indexing in every solve)
        self._volts_at = slice(0, len(at)) if np.array_equal(at, np.arange(len(at))) else at
        self._volts_base = self.index.base_v[self._report]
        self._vuf_groups = self._three_phase_groups()
        self._line_mask, self._line_names = self._lines()
        self._elements.clear()
        self._applied.clear()
        for key in list(self.injections):
            self._ensure_element(key)

    def _install_device(self, setting: DeviceSetting) -> None:
        bus_in, bus_out = self._open_slot()
        kv_ln = self._node_kv_ln.get(bus_in, 0.0)
        if kv_ln <= 0:
            raise GridError(f"device input bus {bus_in} has no voltage base")
        self.slot = DeviceSlot(DEVICE_BUS, bus_in, bus_out, kv_ln)
        run(device_commands(self.slot, setting) + ["calcvoltagebases"], f"device {setting.kind}")

    def _open_slot(self) -> tuple[str, str]:
        """Make room for the device: disable a regulator bank, or cut a line's sending end."""
        engine = dss()
        at = (self.device_at or self._default_location()).lower()
        regs = [r for r in (self.network.regulators if self.network else []) if r.name == at]
        if regs:
            bank = [r for r in self.network.regulators
                    if (r.bus1, r.bus2) == (regs[0].bus1, regs[0].bus2)]
            run([f"disable transformer.{r.name}" for r in bank]
                + [f"disable regcontrol.{r.name}" for r in bank if self.regulators == "control"],
                f"device at {at}")
            return regs[0].bus1, regs[0].bus2
        kind, _, name = at.rpartition(".")
        if kind in ("", "line") and name in [n.lower() for n in engine.Lines.AllNames()]:
            engine.Lines.Name(name)
            bus1 = engine.Lines.Bus1()
            bus, _, nodes = bus1.partition(".")
            run([f"edit line.{name} bus1={DEVICE_BUS}_o" + (f".{nodes}" if nodes else "")],
                f"device at {at}")
            return bus.lower(), f"{DEVICE_BUS}_o"
        if kind in ("", "transformer") and name in [n.lower() for n in engine.Transformers.AllNames()]:
            engine.Transformers.Name(name)
            engine.CktElement.BusNames()
            buses = [b.partition(".")[0].lower() for b in engine.CktElement.BusNames()]
            run([f"disable transformer.{name}"], f"device at {at}")
            return buses[0], buses[1]
        raise DeviceError(f"device location {at!r} is neither a regulator nor a line of the feeder")

    def _default_location(self) -> str:
        net = self.network
        if net is None or net.substation_bus is None:
            raise DeviceError("give the device location (--at LINE or REGULATOR) for this feeder")
        sub = net.substation_bus.lower()
        for reg in net.regulators:
            if reg.bus1 == sub:
                return reg.name
        for line in net.lines:
            if line.bus1 == sub and line.phases == "abc":
                return line.name
        raise DeviceError(f"no regulator or three-phase line leaves substation bus {sub}")

    def _three_phase_groups(self) -> tuple[list[str], np.ndarray]:
        by_bus: dict[str, dict[str, int]] = {}
        for j, i in enumerate(self._report):
            by_bus.setdefault(str(self.index.bus[i]), {})[str(self.index.phase[i])] = j
        buses = [b for b, ph in by_bus.items() if len(ph) == 3]
        groups = np.array([[by_bus[b][p] for p in "abc"] for b in buses], dtype=int).reshape(-1, 3)
        return buses, groups

    def _lines(self) -> tuple[np.ndarray, list[str]]:
        names = [n.lower() for n in dss().PDElements.AllNames()]
        mask = np.array([n.startswith("line.") and not n.startswith(f"line.{DEVICE_BUS}_")
                         for n in names], dtype=bool)
        return mask, [n.removeprefix("line.") for n, m in zip(names, mask, strict=True) if m]

    # --- injections --------------------------------------------------------------------------
    def bus_phases(self) -> list[str]:
        return list(self._report_names)

    def _ensure_element(self, key: str) -> int:
        if key in self._elements:
            return self._elements[key]
        bus, _, phase = key.rpartition(".")
        if phase not in ("a", "b", "c") or not bus:
            raise GridError(f"injection {key!r}: expected BUS.PHASE with phase a, b or c")
        if key not in self._report_names:
            known = sorted({b.rpartition('.')[0] for b in self._report_names})
            if bus not in known:
                raise GridError(f"injection {key!r}: unknown bus {bus!r} (feeder buses: "
                                f"{', '.join(known[:12])}{', …' if len(known) > 12 else ''})")
            raise GridError(f"injection {key!r}: bus {bus} has no phase {phase}")
        name = f"{_INJ_PREFIX}{bus}_{phase}".replace(".", "_")
        node = "abc".index(phase) + 1
        run([f"new load.{name} bus1={bus}.{node} phases=1 conn=wye model=1 "
             f"kv={self._node_kv_ln[bus]:.10g} kw=0 kvar=0 vminpu={_INJ_VMIN_PU} "
             f"vmaxpu={_INJ_VMAX_PU}"], f"injection {key}")
        loads = dss().Loads
        loads.Idx(loads.Count())  # appended: the last of the list
        if loads.Name().lower() != name.lower():
            raise GridError(f"injection {key!r}: OpenDSS did not append load {name}")
        self._elements[key] = loads.Count()
        return self._elements[key]

    def set_injections(self, injections: dict[str, tuple[float, float] | list[float]],
                       base: dict[str, tuple[float, float]] | None = None) -> None:
        """Replace every injection (kW, kvar; positive into the grid); unknown keys raise.

        `base`: injections this model held before (so already checked) that `injections` add to,
        key by key (an approval query on the committed state: only its own keys are checked)."""
        cleaned: dict[str, tuple[float, float]] = dict(base) if base else {}
        for key, pq in injections.items():
            if key not in self._elements:  # a new element, or a key to normalise first
                key = str(key).lower()
                if key not in self._elements:
                    self._ensure_element(key)
            try:
                p_kw, q_kvar = (float(pq[0]), float(pq[1]) if len(pq) > 1 else 0.0)
            except (TypeError, ValueError, IndexError):
                raise GridError(f"injection {key!r}: expected [p_kw, q_kvar], got {pq!r}") from None
            prev = cleaned.get(key)
            if prev is not None:
                p_kw, q_kvar = prev[0] + p_kw, prev[1] + q_kvar
            if not math.isfinite(p_kw + q_kvar):  # finite iff both are (inf − inf is NaN)
                raise GridError(f"injection {key!r}: not a finite number")
            cleaned[key] = (p_kw, q_kvar)
        gone = [key for key in self.injections if key not in cleaned]
        self._write(itertools.chain(cleaned.items(), ((k, (0.0, 0.0)) for k in gone)))
        self.injections = cleaned

    def update_injections(self, values: dict[str, tuple[float, float]]) -> None:
        """Set the injections at these keys (kW, kvar; the others keep theirs): one intent of a
        batch of approvals changes a few keys of many (unknown or non-finite ones raise)."""
        for key, (p_kw, q_kvar) in values.items():
            if key not in self._elements:
                self._ensure_element(key)
            if not math.isfinite(p_kw + q_kvar):
                raise GridError(f"injection {key!r}: not a finite number")
        self._write(values.items())
        self.injections.update(values)

    def _balance_kw(self) -> tuple[float, float]:
        """What the injections generate and absorb, kW (the collapse check)."""
        return (sum(p for p, _ in self.injections.values() if p > 0),
                sum(-p for p, _ in self.injections.values() if p < 0))

    def _write(self, values) -> None:
        """Edit the elements whose value OpenDSS does not hold yet."""
        loads = dss().Loads
        # the engine's setters themselves: opendssdirect's wrappers check for an engine error
        # after each call, twice the cost of the edit (a batch of approvals edits ~7 loads per
        # solve); one check after the edits raises the same error
        engine = loads._lib
        select, set_kw, set_kvar = engine.Loads_Set_idx, engine.Loads_Set_kW, engine.Loads_Set_kvar
        try:
            for key, value in values:
                held = self._applied.get(key)
                if held == value:  # OpenDSS already holds it: no FFI call
                    continue
                select(self._elements[key])
                p_changed = held is None or held[0] != value[0]
                if p_changed:
                    set_kw(-value[0])
                # OpenDSS's kW setter rescales kvar to keep the load's power factor: a load holding
                # reactive power gets its kvar written again after every kW
                if held is None or held[1] != value[1] or (p_changed and held[1] != 0.0):
                    set_kvar(-value[1])
                self._applied[key] = value
        finally:
            loads._check_for_error()

    def set_load_mult(self, load_mult: float) -> None:
        """Scale every feeder load's P and Q (not the injections)."""
        self.load_mult = load_mult
        run([f"set loadmult={load_mult}"], self.ref)

    # --- device ----------------------------------------------------------------------------
    def set_device(self, setting: DeviceSetting | None) -> None:
        setting = setting.validate() if setting is not None else None
        old = self.device
        self.device = setting
        if setting is None and old is None:
            return
        if old is not None and setting is not None and old.wiring == setting.wiring and self.slot:
            run(magnitude_edits(self.slot, setting), f"device {setting.kind}")
            return
        injections = self.injections
        self.compile()
        self.set_injections(injections)

    # --- solving ---------------------------------------------------------------------------
    def solve(self) -> PowerFlow:
        engine = dss()
        self.solves += 1
        try:
            self._solve()
        except Exception as exc:  # noqa: BLE001 - OpenDSS reports non-convergence as an error
            return PowerFlow(False, reason=f"OpenDSS: {exc}")
        if not engine.Solution.Converged():
            return PowerFlow(False, reason=f"power flow did not converge in "
                             f"{engine.Solution.MaxIterations()} iterations")
        circuit = engine.Circuit
        read = self._read_results
        v = read(self._all_bus_volts).view(complex)[self._volts_at] / self._volts_base
        magnitude = np.abs(v)
        if not math.isfinite(magnitude.sum()):  # a NaN or inf anywhere
            return PowerFlow(False, reason="power flow gave non-finite voltages")
        losses = circuit.Losses()
        v_min, loss_kw = float(magnitude.min()), losses[0] / 1000.0
        # what the loads draw less what the injections generate: served is at least this, so a
        # state with losses below it and V_min above the collapse bound cannot be a collapse
        drawn_kw = -circuit.TotalPower()[0] - loss_kw
        if v_min < V_COLLAPSE_PU or loss_kw > drawn_kw:
            generated_kw, absorbed_kw = self._balance_kw()
            collapsed = collapse_reason(v_min, loss_kw, drawn_kw + generated_kw,
                                        self._load_kw_nominal * self.load_mult + absorbed_kw)
            if collapsed:
                return PowerFlow(False, reason=collapsed)
        buses, groups = self._vuf_groups
        vuf = vuf_pct(v[groups]) if len(groups) else np.zeros(0)
        loading = read(self._all_pct_norm, False)[self._line_mask]
        circuit._check_for_error()  # the reads' own (the engine's getters do not raise)
        return PowerFlow(True, losses[0] / 1000.0, losses[1] / 1000.0, self._report_names, v,
                         buses, vuf, self._line_names, loading, _magnitude=magnitude)

    def device_voltages(self) -> tuple[np.ndarray, np.ndarray]:
        """(V_in, V_out) phasors of the device, pu of its phase base (for checks and controllers)."""
        if self.slot is None:
            raise DeviceError("no device in this feeder")
        engine = dss()
        out = []
        for nodes in ((1, 2, 3), (10, 11, 12)):
            engine.Circuit.SetActiveBus(self.slot.name)
            raw = np.asarray(engine.Bus.Voltages())
            node_list = list(engine.Bus.Nodes())
            v = raw[0::2] + 1j * raw[1::2]
            out.append(np.array([v[node_list.index(n)] for n in nodes]) / (self.slot.kv_ln * 1000))
        return out[0], out[1]

    def device_powers_kva(self) -> tuple[np.ndarray, np.ndarray]:
        """(S_in, S_out) per phase, kVA: complex power entering the device from its input bus and
        leaving it towards its output bus (equal for an ideal series device)."""
        if self.slot is None:
            raise DeviceError("no device in this feeder")
        lines = dss().Lines
        s_in, s_out = np.zeros(3, complex), np.zeros(3, complex)
        for p in range(3):
            for prefix, terminal, s in (("in", 1, s_in), ("out", 0, s_out)):
                # each switch line's terminal on the device bus (its second for inputs, first
                # for outputs); power into the device at an input = −(power into that terminal)
                lines.Name(f"{self.slot.name}_{prefix}{p + 1}")
                powers = np.asarray(dss().CktElement.Powers())  # per terminal: P1, Q1, P2, Q2
                value = powers[2 * terminal] + 1j * powers[2 * terminal + 1]
                s[p] = -value if prefix == "in" else value
        return s_in, s_out


__all__ = ["DeviceError", "GridError", "GridModel", "Limits", "NetworkError", "PowerFlow"]
