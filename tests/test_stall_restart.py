"""A federation that HELICS stops granting (every federate waits in a time request, no heartbeat
changes for `helics.stall_s`) is stopped by the runner and goes on from its last checkpoint, or
from the start; a stall that recurs without progress fails the run after
`helics.stall_restarts` restarts, naming what every federate waited for.

The stall is played by a lemcosim federate that freezes in window N as a stalled HELICS leaves
it (tests/federates/stalling_federate.py): the runner only ever sees heartbeats, and a real
HELICS stall could not be produced on demand once the FSVR assist uses global coordination."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import TESTS, assert_no_process_left, lemcosim, write_scenario

from lemcosim.analysis import load_run
from lemcosim.federates.common.heartbeat import Heartbeat
from lemcosim.runner.launch import StallWatch, process_state

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


def test_the_watch_sees_a_stall_only_when_every_federate_waits_unchanged(tmp_path):
    (tmp_path / "logs").mkdir()
    beats = {name: Heartbeat(tmp_path / "logs" / f"{name}.heartbeat") for name in ("amm", "grid")}
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        watch = StallWatch(tmp_path, ["amm", "grid"], [sleeper.pid], stall_s=2.0)
        beats["amm"].requesting(1.0)
        beats["grid"].granted(0.5)  # computing: nobody is stalled
        assert watch.stalled(now=0.0) is None and watch.stalled(now=10.0) is None
        beats["grid"].requesting(900.0)
        assert watch.stalled(now=10.0) is None  # the grid's wait starts now
        assert watch.stalled(now=11.9) is None
        assert watch.stalled(now=12.0) == ("amm (granted t = 0 s, requests t = 1 s); "
                                           "grid (granted t = 0.5 s, requests t = 900 s)")
        beats["amm"].requesting(1.0)  # a new request: waiting again from now
        assert watch.stalled(now=13.0) is None and watch.stalled(now=15.0) is not None
        os.kill(sleeper.pid, signal.SIGSTOP)  # a stopped process is no HELICS stall
        deadline = time.monotonic() + 5
        while process_state(sleeper.pid) != "T" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert watch.stalled(now=100.0) is None
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.federation
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


@pytest.mark.federation
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
