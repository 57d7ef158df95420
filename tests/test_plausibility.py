"""A power flow that converges to a collapsed state is reported as not converged, with the reason."""

from __future__ import annotations

import json

from helpers import lemcosim

from lemcosim.federates.grid.model import GridModel
from lemcosim.federates.grid.plausibility import collapse_reason


def test_a_voltage_below_half_a_per_unit_is_a_collapse():
    assert "V_min 0.49 pu < 0.5 pu" in collapse_reason(0.49, 10.0, 1000.0, 1000.0)
    assert collapse_reason(0.51, 10.0, 1000.0, 1000.0) is None


def test_losses_above_an_unserved_load_are_a_collapse():
    # 300 kW lost while the loads draw 200 of the 1000 kW they ask for
    assert "losses 300 kW exceed the load served 200 kW" in collapse_reason(0.9, 300.0, 200.0, 1000.0)
    # an unloaded feeder: 95.7 kW no-load losses (IEEE 34 regulators and transformers), 0 kW load
    assert collapse_reason(1.05, 95.7, 0.0, 0.0) is None


def test_ieee13_at_a_billion_times_its_load_is_not_converged():
    # OpenDSS returns V_min ~ 3.5e-15 pu and 21.1 MW of losses for 0.02 kW served
    flow = GridModel("ieee13", load_mult=1e9).solve()
    assert not flow.converged
    assert "voltage collapse" in flow.reason


def test_shipped_feeders_unloaded_and_at_their_published_load_are_plausible():
    for network in ("ieee13", "ieee34", "ieee123", "ieee33", "cigre_lv"):
        for load_mult in (0.0, 1e-6, 1.0):
            flow = GridModel(network, load_mult=load_mult).solve()
            assert flow.converged, (network, load_mult, flow.reason)


def test_cli_reports_the_collapse_and_exits_non_zero():
    proc = lemcosim("powerflow", "ieee13", "--load-mult", "1e9", "--json", timeout=120)
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["converged"] is False
    assert "ieee13: voltage collapse: V_min" in proc.stderr
    table = lemcosim("powerflow", "ieee13", "--load-mult", "1e9", timeout=120)
    assert table.returncode == 1 and "voltage collapse" in table.stdout
