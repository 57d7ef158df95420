"""Which HELICS time coordination a composed federation gets (`helics.time_coordination`).

Distributed coordination is the faster one; the broker's global coordination is chosen where two
interruptible federates can wake each other (the FSVR assist: the controller queries the grid,
both woken by messages), a cycle that HELICS 3.6.1's distributed coordination stalled in window 0
in 7 of 12 runs of ch5_ieee13_all_buyer_fsvr beside a busy core, and global coordination in none
of 12 (docs/performance.md, "The HELICS stall")."""

from __future__ import annotations

import pandas as pd
import pytest
from helpers import HELICS_BOUND_90S, assert_no_process_left, lemcosim

from lemcosim.analysis import load_run
from lemcosim.runner.compose import compose, global_time_coordination, interruptible, plan_federates
from lemcosim.runner.validate import load_scenario


def broker_exec(tmp_path, ref: str, *overrides: str) -> str:
    scenario, _ = load_scenario(ref, list(overrides))
    return compose(scenario, scenario.model_dump(mode="json"), tmp_path).broker_exec


@pytest.mark.parametrize("ref, interruptible_servers, coordination", [
    ("ch5_ieee13_all_buyer_fsvr", ["grid", "fsvr_controller"], "global"),
    ("ch5_ieee13_all_buyer_no_fsvr", ["grid"], "distributed"),
    ("year_ieee13", ["grid"], "distributed"),
    # the recorder is woken by values but has no endpoint: it cannot wake the grid
    ("quickstart", ["grid"], "distributed"),
])
def test_auto_picks_global_coordination_only_for_a_cycle_of_interruptible_servers(
        ref, interruptible_servers, coordination):
    scenario, _ = load_scenario(ref, [])
    plans = plan_federates(scenario)
    assert [p.name for p in plans if interruptible(p) and p.endpoints] == interruptible_servers
    assert global_time_coordination(scenario, plans) == (coordination == "global")


def test_the_broker_gets_globaltime_by_choice_or_by_auto(tmp_path):
    assert "--globaltime" in broker_exec(tmp_path / "a", "ch5_ieee13_all_buyer_fsvr")
    assert "--globaltime" not in broker_exec(tmp_path / "b", "ch5_ieee13_all_buyer_fsvr",
                                             "helics.time_coordination=distributed")
    assert "--globaltime" in broker_exec(tmp_path / "c", "quickstart",
                                         "helics.time_coordination=global")
    assert "--globaltime" not in broker_exec(tmp_path / "d", "quickstart")


@pytest.mark.federation
def test_global_coordination_logs_what_distributed_coordination_logs(tmp_path):
    """The choice is about HELICS's bookkeeping, never the results: the FSVR assist's every row
    (assist queries, approvals, losses, the setting) is the same under both. A distributed run
    that stalls is restarted from the start within the test's bound (helics.stall_s = 3 s)."""
    frames = {}
    for coordination in ("global", "distributed"):
        run_dir = tmp_path / coordination
        proc = lemcosim("run", "ch5_ieee13_all_buyer_fsvr", *HELICS_BOUND_90S, "--set",
                        f"helics.time_coordination={coordination}", "--set", "helics.stall_s=3",
                        "--out", str(run_dir), "--no-progress", timeout=240)
        assert proc.returncode == 0, proc.stderr
        assert ("--globaltime" in (run_dir / "runner.json").read_text()) == (
            coordination == "global")
        assert_no_process_left(run_dir)
        frames[coordination] = load_run(run_dir).reset_index(drop=True)
    assert len(frames["global"]) > 300
    assert (frames["global"]["quantity"] == "assist_feasible").any()
    pd.testing.assert_frame_equal(frames["global"], frames["distributed"])
