"""Voltage unbalance factor (IEC 61000-2-12 / IEC definition): VUF = |V−| / |V+| · 100 %."""

from __future__ import annotations

import numpy as np

_A = np.exp(2j * np.pi / 3)
_A2 = _A**2
_TO_POS_NEG = np.array([[1.0, 1.0], [_A, _A2], [_A2, _A]])


def sequence_components(v_abc: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fortescue transform of phasors (..., 3) → (V0, V+, V−), each (...)."""
    va, vb, vc = v_abc[..., 0], v_abc[..., 1], v_abc[..., 2]
    v0 = (va + vb + vc) / 3
    v_pos = (va + _A * vb + _A2 * vc) / 3
    v_neg = (va + _A2 * vb + _A * vc) / 3
    return v0, v_pos, v_neg


def vuf_pct(v_abc: np.ndarray) -> np.ndarray:
    """VUF in % for phasors (..., 3) of phases a, b, c."""
    # 3·V+ and 3·V− of `sequence_components` in one product (the factor 3 cancels in the ratio;
    # no zero sequence): every approval answer computes this
    seq = np.asarray(v_abc, dtype=complex) @ _TO_POS_NEG
    return 100.0 * np.abs(seq[..., 1]) / np.abs(seq[..., 0])
