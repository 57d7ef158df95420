"""Voltage regulators of SPEC §3 (SVR, FSVR, UPFC): settings, hardware limits, OpenDSS realisation.

All three sit in series between an input bus and an output bus (`DeviceSlot`). SVR and FSVR are
the same exact construction: per output phase p a chain of three series windings, one per input
phase k, each a single-phase transformer whose primary is across input phase k (to ground) and
whose secondary, rated |α_pk| times the primary, sits in the chain; so V_out = (I + A)·V_in holds
inside the OpenDSS solution. Negative α swaps the secondary's terminals; α = 0 is a switch.
The UPFC is an ideal series voltage source per phase, V_out_p = V_in_p + V_se_p.

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
_SERIES_X_PCT = 1e-4  # series windings: near-ideal (exactness ~1e-9 pu, see tests)
_SERIES_KVA = 1e5


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
    upfc: `magnitude_pu` (3, pu of the phase base, ≤ R_max) and `angle_deg` (3, relative to the
    phase's nominal angle 0/−120/+120° in the circuit frame).
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
            if np.any(self.magnitude_pu < 0) or np.any(self.magnitude_pu > self.r_max + 1e-12):
                raise DeviceError(f"UPFC series magnitudes {self.magnitude_pu.tolist()} must lie in "
                                  f"[0, R_max = {self.r_max:g}] pu")
        return self

    @property
    def wiring(self) -> tuple:
        """What forces a rebuild when it changes (signs and zeros of α; the device kind)."""
        return (self.kind, tuple(np.sign(np.round(self.alpha, 12)).astype(int).ravel()))

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


def device_commands(slot: DeviceSlot, setting: DeviceSetting) -> list[str]:
    """OpenDSS commands that realise `setting` in `slot` (the slot's buses must exist)."""
    d = slot.name
    cmds = []
    for p in range(3):
        cmds.append(f"new line.{d}_in{p + 1} phases=1 bus1={slot.bus_in}.{p + 1} bus2={d}.{p + 1} "
                    "switch=y r1=1e-6 r0=1e-6 x1=0 x0=0 c1=0 c0=0")
        cmds.append(f"new line.{d}_out{p + 1} phases=1 bus1={d}.{10 + p} bus2={slot.bus_out}.{p + 1} "
                    "switch=y r1=1e-6 r0=1e-6 x1=0 x0=0 c1=0 c0=0")
    if setting.kind == "upfc":
        for p in range(3):
            v_se_kv = setting.magnitude_pu[p] * slot.kv_ln
            angle = setting.angle_deg[p] + (0.0, -120.0, 120.0)[p]
            # series source first node → second node: V(node 10+p) − V(node p+1) = V_se
            cmds.append(f"new vsource.{d}_se{p + 1} phases=1 bus1={d}.{10 + p} bus2={d}.{p + 1} "
                        f"basekv={max(v_se_kv, 1e-9):.10g} pu=1 angle={angle:.10g} "
                        "r1=1e-9 x1=1e-9 r0=1e-9 x0=1e-9")
        return cmds
    for p in range(3):
        chain = _chain_nodes(p)
        for k in range(3):
            a, b = chain[k], chain[k + 1]
            alpha = float(setting.alpha[p, k])
            name = f"{d}_w{'abc'[p]}{k + 1}"
            if alpha == 0.0:
                cmds.append(f"new line.{name} phases=1 bus1={d}.{a} bus2={d}.{b} switch=y "
                            "r1=1e-6 r0=1e-6 x1=0 x0=0 c1=0 c0=0")
                continue
            # winding voltage = V(first terminal) − V(second) ∥ V_k: put the chain's far node first
            lo, hi = (b, a) if alpha > 0 else (a, b)
            cmds.append(
                f"new transformer.{name} phases=1 windings=2 xhl={_SERIES_X_PCT} %loadloss=0 "
                f"%noloadloss=0 %imag=0 wdg=1 bus={d}.{k + 1}.0 kv={slot.kv_ln:.10g} "
                f"kva={_SERIES_KVA} %r=0 wdg=2 bus={d}.{lo}.{hi} kv={abs(alpha) * slot.kv_ln:.10g} "
                f"kva={_SERIES_KVA} %r=0")
    return cmds


def magnitude_edits(slot: DeviceSlot, setting: DeviceSetting) -> list[str]:
    """Property edits for a new |α| with the same wiring (no rebuild needed)."""
    d = slot.name
    if setting.kind == "upfc":
        return [f"vsource.{d}_se{p + 1}.basekv={max(setting.magnitude_pu[p] * slot.kv_ln, 1e-9):.10g} "
                f"angle={setting.angle_deg[p] + (0.0, -120.0, 120.0)[p]:.10g}" for p in range(3)]
    return [f"transformer.{d}_w{'abc'[p]}{k + 1}.wdg=2 kv={abs(setting.alpha[p, k]) * slot.kv_ln:.10g}"
            for p in range(3) for k in range(3) if setting.alpha[p, k] != 0.0]


def upfc_series_pu(setting: DeviceSetting) -> np.ndarray:
    """Complex V_se per phase, pu of the phase base."""
    angles = np.radians(setting.angle_deg + np.array([0.0, -120.0, 120.0]))
    return setting.magnitude_pu * np.exp(1j * angles)


def expected_output(setting: DeviceSetting, v_in: np.ndarray) -> np.ndarray:
    """V_out the device must produce from V_in (pu phasors): the SPEC §3 definitions."""
    if setting.kind == "upfc":
        return v_in + upfc_series_pu(setting)
    return (np.eye(3) + setting.alpha) @ v_in

