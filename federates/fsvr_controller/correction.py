"""Voltage-correction scheme of the FSVR (SPEC §3, thesis 4.6): the discrete A that brings the
voltages closest to a balanced nominal set, searched exactly row by row.

Output phase p depends only on row p of A, so each row is chosen over all 9³ = 729 level
combinations — the zero row among them. A row is preferred to another only if it is better by more
than `tol_pu`; among rows within `tol_pu` of the best, the one with the least Σ|α| wins. So the
chosen A is never worse than A = 0 (the zero row has the least Σ|α| of all), and rows that only
add the input's near-zero zero-sequence voltage — (0.1, 0.1, 0.1) adds 0.3·V0_in — are never
picked for a gain below `tol_pu`.

Two targets:

- `correct` (the thesis' local scheme): ‖(I + A)·V_in − V_ref‖ at the device output, V_ref the
  balanced set of magnitude v_nom aligned with the positive sequence of V_in. At a stiff
  substation V_in is already balanced and nominal, so this leaves the feeder as it is.
- `correct_feeder`: the same exact row search, with the feeder's measured voltages as the target.
  A setting change shifts output phase p by δ_p = (row_p − a_now,p)·V_in; a node k on phase p
  then moves by g_k·δ_p, with g_k measured (`FeederView.measured`: one probe setting). Per row,
  first the least total distance outside the voltage band over the nodes of that phase, then the
  least rms deviation of the three-phase buses' phase p from a balanced nominal set aligned with
  each bus's positive sequence (which lowers their unbalance), then the least Σ|α|.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from lemcosim.federates.grid.vuf import sequence_components

_A = np.exp(2j * np.pi / 3)
_ROTATION = np.array([1.0, _A**2, _A])  # a, b (−120°), c (+120°)
TOL_PU = 1e-4  # a row must be better by more than this to be worth more winding switched in


def levels(vw1_over_vir: float = 0.025) -> np.ndarray:
    """The 9 hardware levels {−4…+4}·V_w1/V_ir."""
    return np.arange(-4, 5) * vw1_over_vir


def reference(v_in: np.ndarray, v_nom_pu: float = 1.0) -> np.ndarray:
    """Balanced set of magnitude v_nom aligned with the positive sequence of v_in."""
    _, v_pos, _ = sequence_components(np.asarray(v_in, complex))
    return v_nom_pu * v_pos / abs(v_pos) * _ROTATION


def row_candidates(vw1_over_vir: float = 0.025) -> np.ndarray:
    """All 729 rows (α_p1, α_p2, α_p3) of level combinations, the zero row included, (729, 3)."""
    lv = levels(vw1_over_vir)
    return np.array(list(itertools.product(lv, lv, lv)))


def pick_row(rows: np.ndarray, *costs: np.ndarray, tol_pu: float = TOL_PU) -> int:
    """Index of the row least in `costs` taken in order, each within `tol_pu` of its best counting
    as a tie, then of least Σ|α|, then of least last cost."""
    keep = np.ones(len(rows), bool)
    for cost in costs:
        keep &= cost <= cost[keep].min() + tol_pu
    idx = np.flatnonzero(keep)
    return int(idx[np.lexsort((costs[-1][idx], np.abs(rows[idx]).sum(axis=1)))[0]])


def correct(v_in: np.ndarray, v_nom_pu: float = 1.0, vw1_over_vir: float = 0.025,
            v_ref: np.ndarray | None = None, tol_pu: float = TOL_PU) -> tuple[np.ndarray, np.ndarray]:
    """(A, V_out): per phase p the row minimising |V_out_p − V_ref_p| (ties as `pick_row`)."""
    v_in = np.asarray(v_in, complex)
    target = reference(v_in, v_nom_pu) if v_ref is None else np.asarray(v_ref, complex)
    rows = row_candidates(vw1_over_vir)
    outputs = v_in[None, :] + (rows @ v_in)[:, None]  # (729, 3): V_in_p + Σ_k α_k·V_in_k
    error = np.abs(outputs - target[None, :])
    a = np.array([rows[pick_row(rows, error[:, p], tol_pu=tol_pu)] for p in range(3)])
    return a, v_in + a @ v_in


@dataclass(frozen=True)
class FeederView:
    """The feeder as the controller measured it at the setting in force.

    names: "bus.phase" per node; v_pu: their phasors (pu); gain: each node's phasor change per
    unit phasor change of the device output phase feeding it (≈ 1 downstream, 0 upstream)."""

    names: tuple[str, ...]
    v_pu: np.ndarray
    gain: np.ndarray

    @property
    def phase(self) -> np.ndarray:
        return np.array(["abc".index(n.rpartition(".")[2]) for n in self.names])

    @classmethod
    def measured(cls, names: tuple[str, ...], v_now: np.ndarray, v_probe: np.ndarray,
                 shift_out: np.ndarray) -> FeederView:
        """From two solved states: now, and with the output phases shifted by `shift_out` (3,)."""
        view = cls(tuple(names), np.asarray(v_now, complex), np.zeros(len(names), complex))
        gain = (np.asarray(v_probe, complex) - view.v_pu) / np.asarray(shift_out, complex)[view.phase]
        return cls(view.names, view.v_pu, gain)

    def balanced_targets(self, v_nom_pu: float = 1.0) -> np.ndarray:
        """Per node: its three-phase bus's balanced nominal set (aligned with the bus's positive
        sequence); NaN for nodes of one- and two-phase buses."""
        target = np.full(len(self.names), np.nan + 0j)
        by_bus: dict[str, dict[str, int]] = {}
        for i, name in enumerate(self.names):
            bus, _, ph = name.rpartition(".")
            by_bus.setdefault(bus, {})[ph] = i
        for nodes in by_bus.values():
            if len(nodes) == 3:
                idx = [nodes[p] for p in "abc"]
                target[idx] = reference(self.v_pu[idx], v_nom_pu)
        return target


def correct_feeder(v_in: np.ndarray, a_now: np.ndarray, view: FeederView,
                   band_pu: tuple[float, float] = (0.95, 1.05), v_nom_pu: float = 1.0,
                   vw1_over_vir: float = 0.025, tol_pu: float = TOL_PU) -> np.ndarray:
    """The discrete A for the measured feeder `view` (see the module docstring), exactly per row."""
    v_in = np.asarray(v_in, complex)
    rows = row_candidates(vw1_over_vir)
    shift_now = np.asarray(a_now, float).reshape(3, 3) @ v_in
    target = view.balanced_targets(v_nom_pu)
    lo, hi = band_pu
    a = np.zeros((3, 3))
    for p in range(3):
        on = view.phase == p
        v = view.v_pu[on][None, :] + view.gain[on][None, :] * (rows @ v_in - shift_now[p])[:, None]
        mag = np.abs(v)
        outside = (np.maximum(lo - mag, 0.0) + np.maximum(mag - hi, 0.0)).sum(axis=1)
        balanced = ~np.isnan(target[on])
        deviation = (np.sqrt((np.abs(v[:, balanced] - target[on][balanced]) ** 2).mean(axis=1))
                     if balanced.any() else np.zeros(len(rows)))
        a[p] = rows[pick_row(rows, outside, deviation, tol_pu=tol_pu)]
    return a
