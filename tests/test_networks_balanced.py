"""The balanced feeders (IEEE 33, CIGRE LV residential) against their published base cases."""

from __future__ import annotations

import pytest
from test_networks_published import angle_gap_deg, solve_base_case

from lemcosim.networks.builder import dss

# CIGRE LV residential feeder (TB 575, 2014): bus voltages (pu, deg) of the independent pandapower
# 3.5.6 implementation `pandapower.networks.create_cigre_network_lv()` after `pp.runpp(net)`
# (defaults: Newton-Raphson, ideal 20 kV ext_grid at 1.0 pu, 0°). The run had all three feeders
# energised; each hangs on its own transformer from the ideal slack, so the residential voltages
# do not depend on the others: with the commercial and industrial transformers and loads out of
# service the same run gives identical residential voltages (largest gap 3e-15 pu).
# Angles include the Dyn1 transformer's 30° lag of the 0.4 kV side.
CIGRE_LV = {
    "r0": (1.0, 0.0), "r1": (0.98089, -31.692), "r2": (0.97224, -31.771),
    "r3": (0.9636, -31.852), "r4": (0.95557, -31.928), "r5": (0.94976, -31.983),
    "r6": (0.94396, -32.039), "r7": (0.94048, -32.072), "r8": (0.93699, -32.106),
    "r9": (0.93351, -32.14), "r10": (0.9315, -32.16), "r11": (0.96123, -31.821),
    "r12": (0.94553, -31.801), "r13": (0.93551, -31.671), "r14": (0.92548, -31.539),
    "r15": (0.9169, -31.423), "r16": (0.93506, -31.921), "r17": (0.92779, -32.063),
    "r18": (0.9238, -32.056),
}
# same pandapower run: res_line.pl_mw summed over the 17 residential cables (10.785 kW) plus
# res_trafo.pl_mw of transformer R0-R1 (3.589 kW)
CIGRE_LV_LOSS_KW = 10.785 + 3.589


def source_p_kw() -> float:
    """Active power delivered by the slack of the circuit just solved."""
    return -dss().Circuit.TotalPower()[0]


def test_ieee33_matches_baran_and_wu():
    # Baran & Wu 1989: total loss 202.7 kW, minimum voltage 0.9131 pu at bus 18
    voltages, losses_kw = solve_base_case("ieee33")
    assert losses_kw == pytest.approx(202.7, rel=0.01)
    lowest = min(voltages, key=lambda b: voltages[b]["a"]["v_pu"])
    assert lowest == "18"
    assert voltages["18"]["a"]["v_pu"] == pytest.approx(0.9131, abs=0.001)
    # balanced: the three phases agree
    assert {round(voltages["18"][p]["v_pu"], 9) for p in "abc"} == {round(voltages["18"]["a"]["v_pu"], 9)}
    # constant power held below 0.95 pu (load_vmin_pu: 0.8): the source delivers the published
    # 3715 kW of load plus the loss. With OpenDSS's default vminpu = 0.95 the loads below it turn
    # into impedances and the feeder draws about 86 kW less than 3715 kW + loss.
    assert source_p_kw() == pytest.approx(3715.0 + losses_kw, abs=1.0)


def test_cigre_lv_residential_matches_the_benchmark():
    voltages, losses_kw = solve_base_case("cigre_lv")
    for bus, (v_pu, angle_deg) in CIGRE_LV.items():
        for phase, shift in zip("abc", (0.0, -120.0, 120.0), strict=True):
            solved = voltages[bus][phase]
            assert solved["v_pu"] == pytest.approx(v_pu, abs=0.005), (bus, phase)
            assert angle_gap_deg(solved["angle_deg"], angle_deg + shift) <= 0.5, (bus, phase)
    assert losses_kw == pytest.approx(CIGRE_LV_LOSS_KW, rel=0.01)
    # loads of 200 + 15 + 52 + 55 + 35 + 47 = 404 kVA at power factor 0.95 = 383.8 kW, held
    # constant although R15 sits at 0.917 pu
    assert source_p_kw() == pytest.approx(404 * 0.95 + losses_kw, abs=0.1)
