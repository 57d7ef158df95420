"""Voltage regulators of SPEC §3 (SVR, FSVR, UPFC): settings, hardware limits, OpenDSS realisation.

All three sit in series between an input bus and an output bus (`DeviceSlot`) and share one exact
construction: V_out = (I + B)·V_in with a real 3×3 series matrix B (`series_matrix`). Per output
phase p a chain of three series windings, one per input phase k, each a single-phase transformer
whose primary is across input phase k (to ground) and whose secondary, rated |B_pk| times the
primary, sits in the chain. Negative B_pk swaps the secondary's terminals; B_pk = 0 is a switch.
The windings are ideal: no magnetising, no-load or load loss, 1e-4 % leakage reactance and
`ppm_antifloat=0` — OpenDSS's default adds a shunt to ground of ~1 ppm of the rating, which grows
as kVA/kV² and, on a winding at line potential rated |B|·kV, draws a large spurious current. So the
primaries draw from the input exactly the complex power the secondaries add: S_in = S_out.

- SVR: B = diag(taps). FSVR: B = A.
- UPFC: V_se_p = m_p·(cos θ_p·V_in,p + sin θ_p·q_p), q_p = (V_in,p+2 − V_in,p+1)/√3 the quadrature
  voltage a phase shifter takes from the other two phases (= j·V_in,p for a balanced input). So m_p
  is the series magnitude in pu of the input phase and θ_p its angle from V_in,p, any angle,
  continuous; the shunt side supplies the series power, as an ideal UPFC with a lossless DC link
  whose shunt converter also supplies the series converter's reactive power.

UPFC bound (`DeviceSetting.u_max`). An FSVR row injects Σ_k α_pk·V_in,k with |α_pk| ≤ R_max; for a
balanced input V_in = (1, a², a)·V this is (α_pp + α_p,p+1·a² + α_p,p+2·a)·V_in,p, whose largest
magnitude over the box is at a vertex: R_max·|1 + a² − a| = 2·R_max (e.g. the row (R, R, −R)). The
UPFC's bound is therefore m_p ≤ 2·R_max = 0.2 pu (default levels), so every FSVR injection at a
balanced input is a UPFC injection; `fsvr_as_upfc` gives the exact UPFC setting of an FSVR's
injection at any solved input.

Node layout of the device bus `<name>`: input nodes 1–3, chain nodes 4–9 (two per output phase),
output nodes 10–12; switch lines tie nodes 1–3 to the input bus and 10–12 to the output bus.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from lemcosim.federates.common.errors import LemcosimError

Kind = Literal["svr", "fsvr", "upfc"]
SVR_STEP = 0.00625  # 5/8 % per step
SVR_STEPS = 16  # ±16 steps = ±10 %
_SERIES_X_PCT = 1e-4  # series windings' leakage, % on their rating (`_series_kva`)
# Every series element (winding leakage referred to the chain, switch) has this impedance, pu of
# kV_ln²/1 MVA: it drops ~1e-8 pu at feeder currents while the solver's admittances stay moderate —
# a fixed winding rating would put 1/α² times more admittance in the chain and, at |α| = 1e-3,
# lose a percent of the device's reactive power to round-off in the solution
_SERIES_Z_PU = 1e-8


class DeviceError(LemcosimError):
    """A device setting outside the hardware's levels or limits, or an unknown location."""


@dataclass(frozen=True)
class DeviceSlot:
    """Where a device sits: between `bus_in` and `bus_out`, phase-to-neutral base `kv_ln`."""

    name: str
    bus_in: str
    bus_out: str
    kv_ln: float


@dataclass(frozen=True)
class DeviceSetting:
    """One device and its setting.

    svr: `alpha` diagonal (3 tap deviations, multiples of 0.00625 within ±0.1).
    fsvr: `alpha` 3×3 (row p = output phase, column k = input phase); discrete mode: multiples of
    V_w1/V_ir within ±4 levels; continuous mode: |α| ≤ R_max.
    upfc: `magnitude_pu` (3, pu of the input phase voltage, ≤ u_max = 2·R_max) and `angle_deg`
    (3, from the input phase voltage; see the module docstring).
    """

    kind: Kind
    alpha: np.ndarray = field(default_factory=lambda: np.zeros((3, 3)))
    magnitude_pu: np.ndarray = field(default_factory=lambda: np.zeros(3))
    angle_deg: np.ndarray = field(default_factory=lambda: np.zeros(3))
    continuous: bool = False
    vw1_over_vir: float = 0.025

    @property
    def r_max(self) -> float:
        """(V_w1 + V_w2)/V_ir with V_w2 = 3·V_w1: the largest |α| (or |V_se| in pu)."""
        return 4.0 * self.vw1_over_vir

    @property
    def u_max(self) -> float:
        """The UPFC's series bound, pu of the input phase: the FSVR's largest row injection at a
        balanced input, 2·R_max (module docstring)."""
        return 2.0 * self.r_max

    def validate(self) -> DeviceSetting:
        if self.kind == "svr":
            off = self.alpha - np.diag(np.diag(self.alpha))
            if np.any(off != 0):
                raise DeviceError("an SVR has per-phase taps only: off-diagonal α must be 0")
            steps = np.diag(self.alpha) / SVR_STEP
            if np.any(np.abs(steps - np.round(steps)) > 1e-6) or np.any(np.abs(steps) > SVR_STEPS + 1e-9):
                raise DeviceError(f"SVR taps {np.diag(self.alpha).tolist()} are not steps of "
                                  f"{SVR_STEP} within ±{SVR_STEPS} steps (±10 %)")
        elif self.kind == "fsvr":
            if self.alpha.shape != (3, 3):
                raise DeviceError("an FSVR needs 9 coefficients alpha_a1 … alpha_c3")
            if self.continuous:
                if np.any(np.abs(self.alpha) > self.r_max + 1e-12):
                    raise DeviceError(f"FSVR coefficients must lie within ±R_max = ±{self.r_max:g}")
            else:
                levels = self.alpha / self.vw1_over_vir
                bad = (np.abs(levels - np.round(levels)) > 1e-6) | (np.abs(levels) > 4 + 1e-9)
                if bad.any():
                    p, k = np.argwhere(bad)[0]
                    raise DeviceError(
                        f"FSVR coefficient alpha_{'abc'[p]}{k + 1} = {self.alpha[p, k]:g} is not one "
                        f"of the 9 levels {{−4…+4}}·{self.vw1_over_vir:g}")
        else:
            if np.any(self.magnitude_pu < 0) or np.any(self.magnitude_pu > self.u_max + 1e-12):
                raise DeviceError(f"UPFC series magnitudes {self.magnitude_pu.tolist()} must lie in "
                                  f"[0, 2·R_max = {self.u_max:g}] pu")
        return self

    @property
    def wiring(self) -> tuple:
        """What forces a rebuild when it changes (signs and zeros of α; the device kind)."""
        return (self.kind, tuple(np.sign(np.round(series_matrix(self), 12)).astype(int).ravel()))

    def to_json(self) -> dict:
        if self.kind == "upfc":
            return {"kind": "upfc", "magnitude_pu": self.magnitude_pu.tolist(),
                    "angle_deg": self.angle_deg.tolist()}
        out = {"kind": self.kind, "alpha": self.alpha.tolist()}
        if self.kind == "fsvr":
            out["continuous"] = self.continuous
        return out


def setting_from_json(data: dict, vw1_over_vir: float = 0.025) -> DeviceSetting:
    """{"kind": "svr", "taps": [3]} | {"kind": "fsvr", "alpha": [[3]×3], "continuous"?} |
    {"kind": "upfc", "magnitude_pu": [3], "angle_deg": [3]}; validated."""
    if not isinstance(data, dict) or data.get("kind") not in ("svr", "fsvr", "upfc"):
        raise DeviceError(f"device setting needs kind svr, fsvr or upfc, got {data!r:.80}")
    kind = data["kind"]
    try:
        if kind == "svr":
            taps = np.asarray(data.get("taps", data.get("alpha", [0, 0, 0])), float)
            alpha = np.diag(taps) if taps.shape == (3,) else taps
            return DeviceSetting("svr", alpha=alpha).validate()
        if kind == "fsvr":
            alpha = np.asarray(data.get("alpha", np.zeros(9)), float).reshape(3, 3)
            return DeviceSetting("fsvr", alpha=alpha, continuous=bool(data.get("continuous", False)),
                                 vw1_over_vir=vw1_over_vir).validate()
        magnitude = np.asarray(data.get("magnitude_pu", [0, 0, 0]), float).reshape(3)
        angle = np.asarray(data.get("angle_deg", [0, 0, 0]), float).reshape(3)
        return DeviceSetting("upfc", magnitude_pu=magnitude, angle_deg=angle,
                             vw1_over_vir=vw1_over_vir).validate()
    except (KeyError, ValueError, TypeError) as exc:
        raise DeviceError(f"malformed {kind} setting {data!r:.120}: {exc}") from None


def parse_cli_setting(kind: Kind, text: str | None, continuous: bool = False) -> DeviceSetting:
    """CLI form: svr `0.0625,0.05,0.06875`; fsvr 9 numbers row by row; upfc `m1,m2,m3;θ1,θ2,θ3`."""
    if not text:
        return DeviceSetting(kind, continuous=continuous).validate()
    try:
        if kind == "upfc":
            mags, _, angles = text.partition(";")
            return setting_from_json({"kind": "upfc", "magnitude_pu": _floats(mags, 3),
                                      "angle_deg": _floats(angles, 3) if angles else [0, 0, 0]})
        if kind == "svr":
            return setting_from_json({"kind": "svr", "taps": _floats(text, 3)})
        return setting_from_json({"kind": "fsvr", "alpha": _floats(text, 9),
                                  "continuous": continuous})
    except ValueError as exc:
        raise DeviceError(f"--setting {text!r}: {exc}") from None


def _floats(text: str, n: int) -> list[float]:
    values = [float(v) for v in text.replace(" ", "").split(",") if v]
    if len(values) != n:
        raise ValueError(f"expected {n} comma-separated numbers, got {len(values)}")
    return values


def _chain_nodes(p: int) -> list[int]:
    """Nodes of output phase p's chain: input node, two chain nodes, output node."""
    return [p + 1, 4 + 2 * p, 5 + 2 * p, 10 + p]


def series_matrix(setting: DeviceSetting) -> np.ndarray:
    """The real B of V_out = (I + B)·V_in (module docstring)."""
    if setting.kind != "upfc":
        return np.asarray(setting.alpha, float)
    b = np.zeros((3, 3))
    for p in range(3):
        theta = np.radians(setting.angle_deg[p])
        b[p, p] = setting.magnitude_pu[p] * np.cos(theta)
        s = setting.magnitude_pu[p] * np.sin(theta) / np.sqrt(3.0)
        b[p, (p + 2) % 3] += s
        b[p, (p + 1) % 3] -= s
    b[np.abs(b) < 1e-12] = 0.0  # cos 90° is 6e-17, not a winding
    return b


def device_commands(slot: DeviceSlot, setting: DeviceSetting) -> list[str]:
    """OpenDSS commands that realise `setting` in `slot` (the slot's buses must exist)."""
    d = slot.name
    cmds = []
    for p in range(3):
        cmds.append(_switch(slot, f"{d}_in{p + 1}", f"{slot.bus_in}.{p + 1}", f"{d}.{p + 1}"))
        cmds.append(_switch(slot, f"{d}_out{p + 1}", f"{d}.{10 + p}", f"{slot.bus_out}.{p + 1}"))
    b = series_matrix(setting)
    for p in range(3):
        chain = _chain_nodes(p)
        for k in range(3):
            a, c = chain[k], chain[k + 1]
            coefficient = float(b[p, k])
            name = f"{d}_w{'abc'[p]}{k + 1}"
            if coefficient == 0.0:
                cmds.append(_switch(slot, name, f"{d}.{a}", f"{d}.{c}"))
                continue
            # winding voltage = V(first terminal) − V(second) ∥ V_k: put the chain's far node first
            lo, hi = (c, a) if coefficient > 0 else (a, c)
            cmds.append(
                f"new transformer.{name} phases=1 windings=2 xhl={_SERIES_X_PCT} %loadloss=0 "
                f"%noloadloss=0 %imag=0 ppm_antifloat=0 wdg=1 bus={d}.{k + 1}.0 "
                f"kv={slot.kv_ln:.10g} %r=0 wdg=2 bus={d}.{lo}.{hi} "
                f"kv={abs(coefficient) * slot.kv_ln:.10g} %r=0 "
                f"kvas=[{_series_kva(coefficient, slot)!r} {_series_kva(coefficient, slot)!r}]")
    return cmds


def _switch(slot: DeviceSlot, name: str, bus1: str, bus2: str) -> str:
    """A closed single-phase switch of `_series_ohm` (length 1: OpenDSS's switch=y would
    shorten it to 0.001 and make it 1000 times stiffer)."""
    ohm = _series_ohm(slot)
    return (f"new line.{name} phases=1 bus1={bus1} bus2={bus2} length=1 units=none "
            f"r1={ohm!r} r0={ohm!r} x1=0 x0=0 c1=0 c0=0")


def _series_ohm(slot: DeviceSlot) -> float:
    return _SERIES_Z_PU * slot.kv_ln ** 2


def magnitude_edits(slot: DeviceSlot, setting: DeviceSetting) -> list[str]:
    """Property edits for new |B| with the same wiring (no rebuild needed)."""
    b = series_matrix(setting)
    return [f"edit transformer.{slot.name}_w{'abc'[p]}{k + 1} wdg=2 kv={abs(b[p, k]) * slot.kv_ln:.10g} "
            f"kvas=[{_series_kva(b[p, k], slot)!r} {_series_kva(b[p, k], slot)!r}]"
            for p in range(3) for k in range(3) if b[p, k] != 0.0]


def _series_kva(coefficient: float, slot: DeviceSlot) -> float:
    """The rating at which the leakage referred to the chain winding is `_series_ohm`."""
    kv2 = abs(coefficient) * slot.kv_ln
    return float(_SERIES_X_PCT / 100 * kv2 ** 2 * 1000 / _series_ohm(slot))


def fsvr_as_upfc(alpha: np.ndarray, v_in: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(magnitude_pu, angle_deg) of the UPFC whose injection at input `v_in` equals the FSVR's
    A·V_in: solve c·V_p + s·q_p = (A·V_in)_p for real c, s per phase."""
    magnitude, angle = np.zeros(3), np.zeros(3)
    for p in range(3):
        q = (v_in[(p + 2) % 3] - v_in[(p + 1) % 3]) / np.sqrt(3.0)
        target = alpha[p] @ v_in
        basis = np.array([[v_in[p].real, q.real], [v_in[p].imag, q.imag]])
        c, s = np.linalg.solve(basis, [target.real, target.imag])
        magnitude[p], angle[p] = np.hypot(c, s), np.degrees(np.arctan2(s, c))
    return magnitude, angle


def expected_output(setting: DeviceSetting, v_in: np.ndarray) -> np.ndarray:
    """V_out the device must produce from V_in (pu phasors): the SPEC §3 definitions."""
    return (np.eye(3) + series_matrix(setting)) @ v_in
