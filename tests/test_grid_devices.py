"""SPEC §3 devices realised exactly inside the OpenDSS solution, and the IEC VUF."""

from __future__ import annotations

import numpy as np
import pytest

from lemcosim.federates.grid.devices import (
    DeviceError,
    DeviceSetting,
    expected_output,
    parse_cli_setting,
    setting_from_json,
)
from lemcosim.federates.grid.model import GridModel
from lemcosim.federates.grid.vuf import sequence_components, vuf_pct

A_MATRICES = {
    "zero": np.zeros((3, 3)),
    "published taps": np.diag([0.0625, 0.05, 0.06875]),
    "full, mixed signs": np.array([[0.05, -0.025, 0.025], [0.0, 0.075, -0.05],
                                   [0.1, 0.025, -0.1]]),
    "off-diagonal only": np.array([[0.0, 0.025, -0.025], [-0.025, 0.0, 0.025],
                                   [0.025, -0.025, 0.0]]),
}


def polar(mag_deg: list[tuple[float, float]]) -> np.ndarray:
    return np.array([m * np.exp(1j * np.radians(d)) for m, d in mag_deg])


def test_vuf_of_hand_computed_phasors():
    # balanced set: V− = 0
    assert vuf_pct(polar([(1, 0), (1, -120), (1, 120)])) == pytest.approx(0.0, abs=1e-12)
    # Va = 1.1∠0, Vb = Vc = 1∠∓120: V+ = (1.1 + 2)/3 = 1.0333…, V− = (1.1 − 1)/3 = 0.0333…
    # (a²·Vb = 1∠120 and a·Vc = 1∠240 sum to −1) → VUF = 0.1/3.1 = 3.2258 %
    assert vuf_pct(polar([(1.1, 0), (1, -120), (1, 120)])) == pytest.approx(100 * 0.1 / 3.1)
    # negative-sequence set only (a, c, b order): V+ = 0 is undefined; a 10 % negative sequence
    # on a unit positive one gives exactly 10 %
    pos = polar([(1, 0), (1, -120), (1, 120)])
    neg = polar([(0.1, 30), (0.1, 150), (0.1, -90)])
    v0, vp, vn = sequence_components(pos + neg)
    assert abs(v0) == pytest.approx(0, abs=1e-12) and abs(vn) == pytest.approx(0.1)
    assert vuf_pct(pos + neg) == pytest.approx(10.0)
    # vectorised over buses
    assert vuf_pct(np.stack([pos, pos + neg])).tolist() == pytest.approx([0.0, 10.0])


@pytest.mark.parametrize("load_mult", [0.0, 1.0], ids=["no load", "full IEEE 13 load"])
@pytest.mark.parametrize("name", list(A_MATRICES))
def test_fsvr_output_is_exactly_i_plus_a_times_input(name, load_mult):
    """V_out = (I + A)·V_in of the solved V_in to ≤ 1e-6 pu (continuous mode for any A)."""
    setting = DeviceSetting("fsvr", alpha=A_MATRICES[name], continuous=True)
    grid = GridModel("ieee13", device=setting, load_mult=load_mult)
    assert grid.solve().converged
    v_in, v_out = grid.device_voltages()
    assert np.abs(v_out - expected_output(setting, v_in)).max() <= 1e-6


def test_fsvr_with_a_zero_reproduces_the_base_case():
    # inserted at the sending end of line 632-670, an FSVR with A = 0 is a plain wire
    base = GridModel("ieee13").solve()
    with_device = GridModel("ieee13", device=DeviceSetting("fsvr"), device_at="632670").solve()
    assert with_device.node_names == base.node_names
    assert np.abs(with_device.v_pu - base.v_pu).max() <= 1e-6
    assert with_device.losses_kw == pytest.approx(base.losses_kw, abs=1e-3)
    # replacing the substation regulator bank (650 → rg60) it equals the feeder with the bank at
    # neutral up to the bank's own 0.01 % reactance and load loss (≈ 1.2e-4 pu)
    neutral = GridModel("ieee13", regulators="off").solve()
    replaced = GridModel("ieee13", device=DeviceSetting("fsvr")).solve()
    assert np.abs(replaced.v_pu - neutral.v_pu).max() <= 2e-4


def test_fsvr_with_the_published_taps_matches_the_published_regulators():
    # the feeder's regulators have a 0.01 % reactance the ideal FSVR lacks: agreement to 1e-3 pu
    published = GridModel("ieee13").solve()
    fsvr = GridModel("ieee13", device=DeviceSetting("svr", alpha=np.diag([0.0625, 0.05, 0.06875])))
    flow = fsvr.solve()
    assert np.abs(flow.magnitude() - published.magnitude()).max() < 1e-3


def test_upfc_adds_its_series_phasor_exactly():
    setting = DeviceSetting("upfc", magnitude_pu=np.array([0.05, 0.08, 0.02]),
                            angle_deg=np.array([10.0, -30.0, 90.0]))
    grid = GridModel("ieee13", device=setting)
    assert grid.solve().converged
    v_in, v_out = grid.device_voltages()
    # phase b: V_se = 0.08∠(−30 − 120)°
    assert (v_out - v_in)[1] == pytest.approx(0.08 * np.exp(1j * np.radians(-150)), abs=1e-9)
    assert np.abs(v_out - expected_output(setting, v_in)).max() <= 1e-6


def test_changing_magnitudes_edits_in_place_and_stays_exact():
    a1 = np.array([[0.05, 0.025, 0], [0, 0.05, 0], [0, 0, 0.075]])
    grid = GridModel("ieee13", device=DeviceSetting("fsvr", alpha=a1, continuous=True))
    grid.solve()
    for a in (a1 * 1.2, np.array([[0.05, -0.025, 0], [0, 0.05, 0], [0, 0, 0]])):  # edit, rewire
        grid.set_device(DeviceSetting("fsvr", alpha=a, continuous=True))
        assert grid.solve().converged
        v_in, v_out = grid.device_voltages()
        assert np.abs(v_out - (np.eye(3) + a) @ v_in).max() <= 1e-6


@pytest.mark.parametrize("setting, message", [
    ({"kind": "fsvr", "alpha": [0.03] + [0] * 8}, "alpha_a1 = 0.03 is not one of the 9 levels"),
    ({"kind": "fsvr", "alpha": [0] * 8 + [0.125]}, "alpha_c3 = 0.125"),
    ({"kind": "fsvr", "alpha": [0.2] + [0] * 8, "continuous": True}, "within ±R_max = ±0.1"),
    ({"kind": "svr", "taps": [0.003, 0, 0]}, "are not steps of 0.00625"),
    ({"kind": "svr", "taps": [0.10625, 0, 0]}, "within ±16 steps"),
    ({"kind": "upfc", "magnitude_pu": [0.2, 0, 0]}, "must lie in [0, R_max = 0.1] pu"),
    ({"kind": "statcom"}, "needs kind svr, fsvr or upfc"),
    ({"kind": "fsvr", "alpha": [1, 2]}, "malformed fsvr setting"),
])
def test_settings_outside_the_hardware_are_named_errors(setting, message):
    with pytest.raises(DeviceError, match=message.replace("[", r"\[").replace("]", r"\]")
                       .replace("(", r"\(").replace("+", r"\+")):
        setting_from_json(setting)


def test_discrete_fsvr_levels_are_multiples_of_vw1_over_vir():
    # V_w1/V_ir = 0.025, V_w2 = 3·V_w1: levels −4…+4 → −0.10 … +0.10, R_max = 0.1
    ok = setting_from_json({"kind": "fsvr", "alpha": [0.1, -0.075, 0.05, 0, 0.025, 0, 0, 0, -0.1]})
    assert ok.r_max == pytest.approx(0.1)
    assert parse_cli_setting("svr", "0.0625,0.05,0.06875").alpha[2, 2] == 0.06875
    with pytest.raises(DeviceError, match="expected 9 comma-separated numbers"):
        parse_cli_setting("fsvr", "0.1,0.1")
