"""The grid federate in a real HELICS federation: prosumers → grid → recorder, plus a client that
queries the power-flow endpoint and sends a device command."""

from __future__ import annotations

import json
import sys

import pytest
from helpers import TESTS, assert_no_process_left, lemcosim, write_scenario

from lemcosim.analysis import load_run
from lemcosim.federates.common.clock import SERVER_OUTPUT_DELAY_S

pytestmark = pytest.mark.federation
CLIENT = TESTS / "federates" / "query_client.py"


def test_prosumers_feed_the_grid_which_answers_queries(tmp_path, run_dir):
    answers = tmp_path / "answers.json"
    scenario = write_scenario(tmp_path, f"""
        name: grid-federation
        time: {{window_s: 900, windows: 4, start: 2026-06-21T10:00:00}}
        helics: {{timeout_s: 120, external_timeout_s: 60}}
        network: {{name: ieee13}}
        prosumers:
          seed: 1
          groups: [{{count: 30, buses: ["671", "675"], pv_share: 1.0}}]
        grid:
          device: {{kind: fsvr}}
        custom:
          client:
            exec: "{sys.executable} {CLIENT} {{config}} {answers}"
            endpoints: [client/ep]
        recorder: {{subscribe: [grid/losses_kw]}}
        """)
    proc = lemcosim("run", str(scenario), "--out", str(run_dir), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert_no_process_left(run_dir)

    df = load_run(run_dir)
    grid = df[df.federate == "grid"]
    losses = grid[grid.quantity == "losses_kw"].set_index("window")["value"]
    assert sorted(losses.index) == [0, 1, 2, 3]
    # the grid solved the prosumers' injections: the recorder saw the same losses it logged
    recorded = df[(df.federate == "recorder") & (df.quantity == "losses_kw")]
    assert recorded.set_index("window")["value"].sort_index().tolist() == pytest.approx(
        losses.sort_index().tolist())
    assert set(grid[grid.quantity == "v_pu"].entity) >= {"671.a", "675.c", "652.a"}

    got = json.loads(answers.read_text())
    queries = [a for a in got if str(a["answer"]["id"]).startswith("q")]
    assert [a["answer"]["id"] for a in queries] == ["q0", "q1", "q2", "q3"]
    # answered in the sub-step it was asked (T_w + 2δ, stamped + ε: the grid's output delay of
    # 1 µs), without touching the committed window
    for a in queries:
        assert a["time"] == pytest.approx(a["window"] * 900 + 2e-3 + SERVER_OUTPUT_DELAY_S)
    assert queries[0]["answer"]["losses_kw"] == pytest.approx(losses[0], rel=1e-6)  # no extra
    assert queries[3]["answer"]["losses_kw"] > losses[3]  # 600 kW more load
    control = next(a["answer"] for a in got if a["answer"]["id"] == "c1")
    assert not control["accepted"] and "alpha_a1 = 0.03" in control["reason"]


def test_prosumer_at_an_unknown_bus_is_a_named_scenario_error(tmp_path):
    scenario = write_scenario(tmp_path, """
        name: bad-bus
        time: {windows: 2}
        network: {name: ieee13}
        prosumers: {groups: [{count: 3, buses: ["671", "999"]}]}
        grid: {}
        """)
    for command, *options in (["validate"], ["compose", "--out", str(tmp_path / "out")]):
        proc = lemcosim(command, str(scenario), *options)  # validate rejects what compose would
        assert proc.returncode == 2
        assert "key prosumers.groups.0.buses.1: given '999'; expected a bus of network ieee13" \
            in proc.stderr
