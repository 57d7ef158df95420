"""A federation that HELICS stops granting (every federate waits in a time request, no heartbeat
changes for `helics.stall_s`) is stopped by the runner and goes on from its last checkpoint, or
from the start; a stall that recurs without progress fails the run after
`helics.stall_restarts` restarts, naming what every federate waited for.

The stall is played by a lemcosim federate that freezes in window N as a stalled HELICS leaves
it (tests/federates/stalling_federate.py): the runner only ever sees heartbeats, and a real
HELICS stall could not be produced on demand once the FSVR assist uses global coordination."""

from __future__ import annotations

import sys

import pytest
from helpers import TESTS, assert_no_process_left, lemcosim, write_scenario

from lemcosim.analysis import load_run

pytestmark = pytest.mark.federation
STALLING = TESTS / "federates" / "stalling_federate.py"


def scenario(tmp_path, stall_at: int, *options: str):
    return write_scenario(tmp_path, f"""
        name: stalling
        description: a federate that freezes once in window {stall_at}, and the recorder
        time: {{window_s: 900, windows: 12}}
        helics: {{timeout_s: 120, stall_s: 1.5, stall_restarts: 2}}
        logs: {{checkpoint_windows: 4}}
        custom:
          stalling:
            exec: "{sys.executable} {STALLING} {{config}} {stall_at} {' '.join(options)}"
            publications: {{stalling/value: count}}
        recorder: {{}}
        """)


@pytest.mark.parametrize("stall_at, restart", [
    (6, "restarting after window 3"),  # checkpoints after windows 3 (at 4) and 7 (at 8)
    (2, "restarting from the start"),  # before the first checkpoint
])
def test_a_stalled_run_restarts_and_logs_every_window_once(tmp_path, stall_at, restart):
    run_dir = tmp_path / "run"
    proc = lemcosim("run", str(scenario(tmp_path, stall_at)), "--out", str(run_dir),
                    "--no-progress", timeout=150)
    assert proc.returncode == 0, proc.stderr
    said = proc.stdout + proc.stderr
    assert "HELICS granted no time for 1.5 s" in said and restart in said
    assert f"stalling (granted t = {stall_at * 900:g} s" in said
    assert_no_process_left(run_dir)
    df = load_run(run_dir)
    rows = df[(df.federate == "recorder") & (df.quantity == "value")]
    assert sorted(rows["window"].astype(int)) == list(range(12))  # each window once, none lost
    assert (rows["value"] == rows["window"].astype(float)).all()


def test_a_stall_that_recurs_without_progress_fails_the_run(tmp_path):
    run_dir = tmp_path / "run"
    proc = lemcosim("run", str(scenario(tmp_path, 6, "--always")), "--out", str(run_dir),
                    "--no-progress", timeout=150)
    assert proc.returncode == 1
    assert proc.stderr.count("restarting after window 3") + proc.stdout.count(
        "restarting after window 3") == 2
    assert "stalled again after 2 restarts that got no further" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert_no_process_left(run_dir)
