"""The balanced feeders (IEEE 33, CIGRE LV residential) against their published base cases."""

from __future__ import annotations

import pytest
from test_networks_published import angle_gap_deg, solve_base_case

# CIGRE LV residential feeder (TB 575, 2014): bus voltages (pu, deg) of the independent pandapower
# 3.5.6 implementation `create_cigre_network_lv()` after `runpp` (ideal 20 kV slack at 1.0 pu;
# the commercial and industrial feeders hang on their own transformers and do not affect these).
CIGRE_LV = {
    "r0": (1.0, 0.0), "r1": (0.98089, -31.692), "r2": (0.97224, -31.771),
    "r3": (0.9636, -31.852), "r4": (0.95557, -31.928), "r5": (0.94976, -31.983),
    "r6": (0.94396, -32.039), "r7": (0.94048, -32.072), "r8": (0.93699, -32.106),
    "r9": (0.93351, -32.14), "r10": (0.9315, -32.16), "r11": (0.96123, -31.821),
    "r12": (0.94553, -31.801), "r13": (0.93551, -31.671), "r14": (0.92548, -31.539),
    "r15": (0.9169, -31.423), "r16": (0.93506, -31.921), "r17": (0.92779, -32.063),
    "r18": (0.9238, -32.056),
}
CIGRE_LV_LOSS_KW = 10.785 + 3.589  # pandapower: residential cables + transformer R0-R1


def test_ieee33_matches_baran_and_wu():
    # Baran & Wu 1989: total loss 202.7 kW, minimum voltage 0.9131 pu at bus 18
    voltages, losses_kw = solve_base_case("ieee33")
    assert losses_kw == pytest.approx(202.7, rel=0.01)
    lowest = min(voltages, key=lambda b: voltages[b]["a"]["v_pu"])
    assert lowest == "18"
    assert voltages["18"]["a"]["v_pu"] == pytest.approx(0.9131, abs=0.001)
    # balanced: the three phases agree
    assert {round(voltages["18"][p]["v_pu"], 9) for p in "abc"} == {round(voltages["18"]["a"]["v_pu"], 9)}


def test_cigre_lv_residential_matches_the_benchmark():
    voltages, losses_kw = solve_base_case("cigre_lv")
    for bus, (v_pu, angle_deg) in CIGRE_LV.items():
        for phase, shift in zip("abc", (0.0, -120.0, 120.0), strict=True):
            solved = voltages[bus][phase]
            assert solved["v_pu"] == pytest.approx(v_pu, abs=0.005), (bus, phase)
            assert angle_gap_deg(solved["angle_deg"], angle_deg + shift) <= 0.5, (bus, phase)
    assert losses_kw == pytest.approx(CIGRE_LV_LOSS_KW, rel=0.01)
