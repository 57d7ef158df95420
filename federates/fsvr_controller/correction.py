"""Voltage-correction scheme of the FSVR (SPEC §3, thesis 4.6): a local controller measures V_in
and picks the discrete A minimising ‖(I + A)·V_in − V_ref‖.

V_ref is a balanced positive-sequence set at nominal magnitude, aligned with the positive-sequence
component of V_in. Output phase p depends only on row p of A, so each row is searched exactly
over its 9³ = 729 level combinations, all rows at once with numpy.
"""

from __future__ import annotations

import itertools

import numpy as np

from lemcosim.federates.grid.vuf import sequence_components

_A = np.exp(2j * np.pi / 3)


def levels(vw1_over_vir: float = 0.025) -> np.ndarray:
    """The 9 hardware levels {−4…+4}·V_w1/V_ir."""
    return np.arange(-4, 5) * vw1_over_vir


def reference(v_in: np.ndarray, v_nom_pu: float = 1.0) -> np.ndarray:
    """Balanced set of magnitude v_nom aligned with the positive sequence of v_in."""
    _, v_pos, _ = sequence_components(np.asarray(v_in, complex))
    unit = v_pos / abs(v_pos)
    return v_nom_pu * unit * np.array([1.0, _A**2, _A])  # a, b (−120°), c (+120°)


def row_candidates(vw1_over_vir: float = 0.025) -> np.ndarray:
    """All 729 rows (α_p1, α_p2, α_p3) of level combinations, shape (729, 3)."""
    lv = levels(vw1_over_vir)
    return np.array(list(itertools.product(lv, lv, lv)))


def correct(v_in: np.ndarray, v_nom_pu: float = 1.0, vw1_over_vir: float = 0.025,
            v_ref: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(A, V_out): the discrete A minimising |V_out_p − V_ref_p| for every phase p, exactly."""
    v_in = np.asarray(v_in, complex)
    target = reference(v_in, v_nom_pu) if v_ref is None else np.asarray(v_ref, complex)
    rows = row_candidates(vw1_over_vir)
    outputs = v_in[None, :] + (rows @ v_in)[:, None]  # (729, 3): V_in_p + Σ_k α_k·V_in_k
    error = np.abs(outputs - target[None, :])
    best = error.argmin(axis=0)
    a = rows[best]  # row p = best candidate for output phase p
    return a, v_in + a @ v_in
