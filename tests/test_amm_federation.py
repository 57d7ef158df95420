"""The AMM market in a real federation: prosumers → AMM ⇄ grid (queries) → grid re-solve."""

from __future__ import annotations

import pytest
from helpers import assert_no_process_left, lemcosim, write_scenario

from lemcosim.analysis import load_run

pytestmark = pytest.mark.federation


def test_amm_trades_are_approved_by_the_grid_and_scheduled(tmp_path, run_dir):
    scenario = write_scenario(tmp_path, """
        name: amm-federation
        time: {window_s: 900, windows: 3, start: 2026-06-21T10:00:00}
        helics: {timeout_s: 120, external_timeout_s: 60}
        network: {name: ieee13}
        prosumers:
          seed: 2
          groups: [{count: 24, buses: ["671", "675", "634"], pv_share: 0.6}]
        grid: {limits: {rule: no_worse}}
        amm:
          esus:
            - {name: es675, bus: "675", capacity_kwh: 500, power_kw: 250}
            - {name: es671, bus: "671", capacity_kwh: 300, power_kw: 150}
          loss_compensation: true
        """)
    proc = lemcosim("run", str(scenario), "--out", str(run_dir), "--no-progress", "--analyze")
    assert proc.returncode == 0, proc.stderr
    assert_no_process_left(run_dir)
    df = load_run(run_dir)
    amm = df[df.federate == "amm"]
    # stage 1: the token status after each of the two liquidity additions, every window
    status = amm[amm.entity.str.startswith("add")]
    assert set(status.entity) == {"add1:es675", "add2:es671"}
    assert set(status[status.entity == "add2:es671"].quantity) >= {"E_LP", "M_LP", "L", "rho_LP"}
    # stage 2: every transaction decided, each with its grid extremes; rejections say why
    decided = amm[(amm.quantity == "approved") & amm.entity.str.fullmatch(r"w\d+t\d+")]
    assert len(decided) >= 3 and decided.value.isin([0.0, 1.0]).all()
    rejected = decided[decided.value == 0.0].entity
    reasons = amm[(amm.quantity == "reason") & amm.entity.isin(rejected)]
    assert len(reasons) == len(rejected) and reasons.text.str.startswith("DSO:").all()
    # batched approval: one round trip for the window's transactions, one more after each refusal
    # (the transactions after it are decided again); each evaluated transaction is one power flow
    grid = df[(df.federate == "grid") & (df.entity == "feeder")].pivot_table(
        index="window", columns="quantity", values="value")
    refused = decided[decided.value == 0.0].groupby("window").size()
    refused = refused.reindex(grid.index, fill_value=0)
    assert (grid.query_requests >= 1).all()
    assert (grid.query_requests <= 1 + refused).all()
    evaluated = amm[amm.quantity == "v_min"].groupby("window").size()
    assert (grid.power_flows == evaluated.reindex(grid.index, fill_value=0) + 2).all()
    # the first batch goes at δ, served right after the grid's window solve; answers read at 2δ
    assert decided.substep.min() >= 2
    # the grid solved each window twice: the base state at δ, then with the market's schedule
    grid_losses = df[(df.federate == "grid") & (df.quantity == "losses_kw")]
    assert (grid_losses.groupby("window").size() == 2).all()
    assert (grid_losses.groupby("window").substep.min() == 1).all()
    for name in ("amm_token_status.csv", "amm_transactions.csv", "amm_prices.png"):
        assert (run_dir / "analysis" / name).stat().st_size > 0, name


def test_the_prosumers_stay_within_two_windows_of_the_market(tmp_path, run_dir, monkeypatch):
    # the prosumers federate has no inputs: unpaced, HELICS would let it publish every window at
    # once (issue 13: window 18,792 while the others were at 1,908) and its readers would queue it
    scenario = write_scenario(tmp_path, """
        name: pace
        time: {window_s: 900, windows: 8, start: 2026-06-21T10:00:00}
        helics: {timeout_s: 120, external_timeout_s: 60}
        network: {name: ieee13}
        prosumers: {seed: 2, groups: [{count: 6, buses: ["671", "675", "634"], pv_share: 0.6}]}
        grid: {limits: {rule: no_worse}}
        amm:
          esus: [{name: es675, bus: "675", capacity_kwh: 500, power_kw: 250}]
        """)
    monkeypatch.setenv("LEMCOSIM_PROFILE", "1")
    proc = lemcosim("run", str(scenario), "--out", str(run_dir), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    df = load_run(run_dir, federates=["prosumers", "amm"])
    lead = df[(df.entity == "profile") & (df.quantity == "pace_lead_windows")]
    # from window 2 on it asks for window w only once every reader was granted T_{w−2}
    assert sorted(lead.window) == list(range(2, 8))
    assert (lead.value <= 2).all()
    # with the positions published a window ahead, the market opens windows 1–7 while it waits
    # for their grant (work deferred into the time request; window 0 opens at its grant), and
    # logs each one's liquidity at T_w + δ as if opened then (identical decisions: the quickstart
    # and ch3 references, tests/test_quickstart.py)
    amm = df[df.federate == "amm"]
    ahead = amm[(amm.entity == "market") & (amm.quantity == "opened_ahead")].set_index("window")
    assert ahead.value.to_dict() == {0: 0.0} | dict.fromkeys(range(1, 8), 1.0)
    liquidity = amm[amm.entity.str.startswith("add1:")]
    assert set(liquidity.window) == set(range(8))
    assert (liquidity.time_s == liquidity.window * 900 + 0.001).all()
    assert (liquidity.substep == 1).all()
    # the profile counts the batch answers each window decided with (benchmarks/cosim.py sets
    # them against the power flows): one per transaction the grid decided, whose extremes it logs
    used = amm[(amm.entity == "profile") & (amm.quantity == "approvals_used")].set_index("window")
    by_grid = amm[amm.quantity == "v_min"].groupby("window").size()
    assert len(by_grid) > 0
    assert used.value.reindex(by_grid.index, fill_value=0).tolist() == by_grid.tolist()
