"""SPEC §3 devices realised exactly inside the OpenDSS solution, and the IEC VUF."""

from __future__ import annotations

import numpy as np
import pytest

from lemcosim.federates.grid.devices import (
    DeviceError,
    DeviceSetting,
    expected_output,
    fsvr_as_upfc,
    parse_cli_setting,
    series_matrix,
    setting_from_json,
)
from lemcosim.federates.grid.model import GridModel
from lemcosim.federates.grid.vuf import sequence_components, vuf_pct
from lemcosim.networks.builder import run

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


@pytest.mark.parametrize("load_mult", [0.0, 1.0], ids=["no load", "full IEEE 13 load"])
def test_upfc_adds_its_series_phasor_exactly(load_mult):
    setting = DeviceSetting("upfc", magnitude_pu=np.array([0.05, 0.18, 0.02]),
                            angle_deg=np.array([10.0, -30.0, 90.0]))
    grid = GridModel("ieee13", device=setting, load_mult=load_mult)
    assert grid.solve().converged
    v_in, v_out = grid.device_voltages()
    # V_se_p = m_p(cos θ_p·V_p + sin θ_p·(V_p+2 − V_p+1)/√3); phase b: 0.18(cos 30°·V_b −
    # sin 30°·(V_a − V_c)/√3)
    q_b = (v_in[0] - v_in[2]) / np.sqrt(3)
    v_se_b = 0.18 * (np.cos(np.radians(30)) * v_in[1] - 0.5 * q_b)
    assert (v_out - v_in)[1] == pytest.approx(v_se_b, abs=1e-6)
    assert np.abs(v_out - expected_output(setting, v_in)).max() <= 1e-6
    if load_mult == 0:  # a balanced input (no load): q_b = j·V_b, so V_se_b = 0.18∠−30° · V_b
        assert (v_out - v_in)[1] == pytest.approx(0.18 * np.exp(-1j * np.radians(30)) * v_in[1],
                                                  abs=1e-6)


def test_upfc_reproduces_any_fsvr_injection():
    # the UPFC's bound 2·R_max = 0.2 pu is the FSVR's largest row injection at a balanced input:
    # (0.1, 0.1, −0.1)·(1, a², a) = 0.1(1 + a² − a) = −0.2a, |·| = 0.2; so fsvr_as_upfc of the
    # extreme rows stays within it, and the UPFC at that setting solves to the FSVR's state
    alpha = np.array([[0.1, 0.1, -0.1], [-0.1, 0.025, 0.1], [0.05, 0.05, 0.1]])
    fsvr = GridModel("ieee13", device=DeviceSetting("fsvr", alpha=alpha))
    flow = fsvr.solve()
    v_in, _ = fsvr.device_voltages()
    magnitude, angle = fsvr_as_upfc(alpha, v_in)
    assert magnitude[0] == pytest.approx(0.2, abs=2e-3) and magnitude.max() <= 0.2 + 2e-3
    upfc = GridModel("ieee13", device=DeviceSetting("upfc", magnitude_pu=np.minimum(magnitude, 0.2),
                                                   angle_deg=angle))
    same = upfc.solve()
    assert np.abs(same.v_pu - flow.v_pu).max() <= 2e-3 * 0.01 + 1e-6  # clipping by ≤ 2e-3 pu·|·|


@pytest.mark.parametrize("setting", [
    *[DeviceSetting("svr", alpha=np.diag([s * 0.00625, 0, -s * 0.00625])) for s in (1, 16)],
    *[DeviceSetting("fsvr", alpha=np.diag([lv, lv, lv]) * 0.025) for lv in range(-4, 5) if lv],
    *[DeviceSetting("fsvr", alpha=np.roll(np.eye(3), 1, axis=1) * lv * 0.025)
      for lv in range(-4, 5) if lv],
    DeviceSetting("fsvr", alpha=np.full((3, 3), 1e-3), continuous=True),
    DeviceSetting("fsvr", alpha=np.eye(3) * -1e-3, continuous=True),
    DeviceSetting("upfc", magnitude_pu=np.array([0.2, 0.001, 0.1]), angle_deg=np.array([0, 90, -135])),
], ids=lambda s: f"{s.kind}:{np.round(s.alpha.ravel(), 4).tolist() if s.kind != 'upfc' else 'm,θ'}")
def test_complex_power_into_the_device_equals_power_out(setting):
    """An ideal series device under full IEEE 13 load: S_in = S_out to 1e-6 relative (OpenDSS's
    default ppm_antifloat shunt made one SVR step draw 1730 A in while 338 A left)."""
    grid = GridModel("ieee13", device=setting)
    assert grid.solve().converged
    s_in, s_out = grid.device_powers_kva()
    assert abs(s_in.sum()) > 3000  # ≈ 3.5 MVA passes
    assert abs(s_in.sum() - s_out.sum()) <= 1e-6 * abs(s_in.sum())
    if np.count_nonzero(series_matrix(setting) - np.diag(np.diag(series_matrix(setting)))) == 0:
        # per-phase windings only: each phase's own power passes through
        assert np.abs(s_in - s_out).max() <= 1e-6 * abs(s_in.sum())
    v_in, v_out = grid.device_voltages()
    assert np.abs(v_out - expected_output(setting, v_in)).max() <= 1e-6


def test_a_setting_solves_to_the_same_state_whatever_was_solved_before():
    settings = [DeviceSetting("fsvr", alpha=a, continuous=True) for a in (
        np.diag([0.00625, 0, 0]), np.full((3, 3), 1e-3), np.zeros((3, 3)),
        np.array([[0.025, 0.05, -0.075], [-0.05, 0, -0.025], [0.05, 0.05, 0.1]]),
        np.diag([0.1, 0.1, 0.1]))]
    results = []
    for order in ([0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [2, 4, 0, 3, 1]):
        grid = GridModel("ieee13", device=DeviceSetting("fsvr"))
        flows = {}
        for i in order:
            grid.set_device(settings[i])
            flows[i] = grid.solve()
        results.append(flows)
    for flows in results[1:]:
        for i in range(len(settings)):
            assert flows[i].losses_kw == pytest.approx(results[0][i].losses_kw, rel=1e-6)
            assert np.abs(flows[i].v_pu - results[0][i].v_pu).max() <= 1e-6


def test_as_a_goes_to_zero_the_feeder_converges_to_the_a_zero_case():
    # losses and voltages are smooth in A: the deviation from A = 0 shrinks in proportion to |A|
    direction = np.array([[0.5, 1, -1], [-1, 0.25, 0.5], [1, -0.5, 1]])
    grid = GridModel("ieee13", device=DeviceSetting("fsvr"))
    zero = grid.solve()
    deviations = []
    for eps in (1e-2, 1e-3, 1e-4, 1e-5):
        grid.set_device(DeviceSetting("fsvr", alpha=eps * direction, continuous=True))
        flow = grid.solve()
        deviations.append((abs(flow.losses_kw - zero.losses_kw), np.abs(flow.v_pu - zero.v_pu).max()))
    for (dp1, dv1), (dp2, dv2) in zip(deviations, deviations[1:], strict=False):
        assert dp2 <= 0.2 * dp1 and dv2 <= 0.2 * dv1  # ≈ 10× smaller per decade
    assert deviations[-1][0] < 0.01 and deviations[-1][1] < 1e-4  # 1e-5·A: < 10 W, < 1e-4 pu


@pytest.mark.parametrize("taps", [[0.0625, 0.05, 0.06875], [-0.1, 0.00625, 0.1]])
def test_an_svr_tap_matches_opendss_own_regulator_transformer(taps):
    """Independent construction: the IEEE 13 regulator bank (OpenDSS transformers reg1–3, 650 →
    rg60) made ideal (no leakage, loss, magnetising or antifloat shunt) at tap 1 + α."""
    svr = GridModel("ieee13", device=DeviceSetting("svr", alpha=np.diag(taps))).solve()
    bank = GridModel("ieee13", regulators="off")
    run([f"edit transformer.reg{p + 1} xhl=1e-6 %loadloss=0 %noloadloss=0 %imag=0 "
         f"ppm_antifloat=0 wdg=2 tap={1 + taps[p]!r}" for p in range(3)], "ideal regulators")
    reference = bank.solve()
    by_name = dict(zip(reference.node_names, reference.v_pu, strict=True))
    assert np.abs(svr.v_pu - np.array([by_name[n] for n in svr.node_names])).max() <= 1e-5
    assert svr.losses_kw == pytest.approx(reference.losses_kw, rel=1e-5)


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
    ({"kind": "upfc", "magnitude_pu": [0.25, 0, 0]}, "must lie in [0, 2·R_max = 0.2] pu"),
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
