"""Faults of a real federation are named exactly: the federate that stopped advancing, a stopped
broker, a port in use; and a second signal during cleanup still ends every child.

Every federation here is tiny (4 prosumers trading with an AMM on IEEE 13, the grid approving,
the recorder; or the scripted federate), bounded by timeouts, and checked for leftover processes
by PID.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import alive, assert_no_process_left, lemcosim, scripted_exec, write_scenario

from lemcosim.federates.common.heartbeat import read_beat

pytestmark = pytest.mark.federation

TIMEOUT_S = 25  # helics.timeout_s of the stalled runs: the whole-run limit that must be named


def grid_scenario(tmp_path: Path, port: int | None = None) -> Path:
    broker_port = f", broker_port: {port}" if port else ""
    return write_scenario(tmp_path, f"""
        name: stall
        time: {{window_s: 900, windows: 2000}}
        helics: {{timeout_s: {TIMEOUT_S}, external_timeout_s: 20{broker_port}}}
        network: {{name: ieee13}}
        prosumers: {{groups: [{{count: 4, buses: ["671", "675"], phases: [a, b]}}]}}
        grid: {{}}
        amm:
          esus: [{{name: es1, bus: "633", capacity_kwh: 200, power_kw: 100}}]
        recorder: {{}}
        """)


def start_run(scenario: Path, run_dir: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lemcosim.runner.cli", "run", str(scenario),
                             "--out", str(run_dir), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def pids(run_dir: Path) -> dict[str, int]:
    wait_for(lambda: (run_dir / "logs" / "pids.json").exists())
    return json.loads((run_dir / "logs" / "pids.json").read_text())


def advancing(run_dir: Path, name: str) -> bool:
    beat = read_beat(run_dir / "logs" / f"{name}.heartbeat")
    return beat is not None and beat.granted_s > 900.0  # past window 0


def finish(runner: subprocess.Popen, timeout_s: float = 90.0) -> str:
    try:
        _, err = runner.communicate(timeout=timeout_s)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    return err


@pytest.mark.parametrize("stopped,other", [("grid", "amm"), ("amm", "grid")])
def test_a_stopped_federate_is_named_and_the_others_wait_for_it(tmp_path, run_dir, stopped, other):
    # the AMM asks the grid to approve each trade: either one stopped holds up the other
    runner = start_run(grid_scenario(tmp_path), run_dir)
    try:
        pid = pids(run_dir)[stopped]
        wait_for(lambda: advancing(run_dir, stopped))
        os.kill(pid, signal.SIGSTOP)
        err = finish(runner)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 1
    assert f"timeout: the run exceeded helics.timeout_s = {TIMEOUT_S} s (the whole-run limit)" in err
    assert f"stopped advancing: {stopped} is stopped (process state T: SIGSTOP?); last granted t" \
        in err
    waiting = next(line for line in err.splitlines() if line.startswith("waiting in a time request"))
    assert f"{other} (requests t = " in waiting
    # the prosumers wait (for a grant, or paced, for their readers) or have finished: never blamed
    stopped_line = next(line for line in err.splitlines() if line.startswith("stopped advancing"))
    assert "prosumers" not in stopped_line
    assert "failed" not in err  # no federate is blamed for what the stopped one caused
    assert_no_process_left(run_dir)


def test_a_stopped_broker_is_reported_as_such(tmp_path, run_dir):
    runner = start_run(grid_scenario(tmp_path), run_dir)
    try:
        broker = pids(run_dir)["broker"]
        wait_for(lambda: advancing(run_dir, "grid"))
        os.kill(broker, signal.SIGSTOP)
        err = finish(runner)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 1
    assert f"the broker (PID {broker}) is stopped (process state T" in err
    assert "still running: \n" not in err and "still running: []" not in err
    assert_no_process_left(run_dir)


def test_a_second_run_on_a_port_in_use_is_refused_before_launch(tmp_path, run_dir):
    from lemcosim.runner.compose import free_port

    port = free_port()
    first = start_run(grid_scenario(tmp_path, port), run_dir)
    try:
        wait_for(lambda: advancing(run_dir, "grid"))
        second = lemcosim("run", str(grid_scenario(tmp_path, port)), "--out",
                          str(tmp_path / "second"), "--no-progress", timeout=120)
    finally:
        first.send_signal(signal.SIGINT)
        finish(first)
    assert second.returncode == 2
    assert f"broker port {port} on 127.0.0.1 is in use" in second.stderr
    assert not (tmp_path / "second" / "logs" / "pids.json").exists()  # nothing was launched
    assert first.returncode == 130  # interrupted by SIGINT
    assert_no_process_left(run_dir)


def test_a_second_sigterm_during_cleanup_still_ends_every_child_and_exits_143(tmp_path, run_dir):
    # the scripted federate computes for 30 s in its first window and ignores SIGTERM: cleanup
    # must wait out its grace period (5 s) and then kill it; a second SIGTERM in that period makes
    # the runner kill it at once, never leaving it behind
    scenario = write_scenario(tmp_path, f"""
        name: stubborn
        time: {{window_s: 900, windows: 4}}
        helics: {{timeout_s: 120, external_timeout_s: 60}}
        custom:
          counter:
            exec: "{scripted_exec('--ignore-sigterm', '--sleep-per-window', '30')}"
            publications: {{counter/value: count}}
        recorder: {{}}
        """)
    runner = start_run(scenario, run_dir)
    try:
        children = pids(run_dir)
        wait_for(lambda: read_beat(run_dir / "logs" / "recorder.heartbeat") is not None)
        time.sleep(0.5)  # the counter is in its first window's computation
        runner.send_signal(signal.SIGTERM)
        time.sleep(1.0)  # cleanup has begun: the recorder and broker end, the counter ignores it
        assert alive(children["counter"])
        runner.send_signal(signal.SIGTERM)
        started = time.monotonic()
        err = finish(runner, 30)
        assert time.monotonic() - started < 4.0  # did not wait out the rest of the grace period
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 143
    assert "interrupted (SIGTERM); every federate was stopped" in err
    for name, pid in children.items():
        assert not alive(pid), f"{name} (PID {pid}) left behind"


def test_the_timeout_report_tells_hung_from_waiting_crashed_and_finished(tmp_path, monkeypatch):
    # real processes (sleep) stand for the federates; their heartbeats are written here
    from types import SimpleNamespace

    from lemcosim.federates.common.heartbeat import Heartbeat
    from lemcosim.runner import launch

    logs = tmp_path / "logs"
    logs.mkdir()

    def child(name: str, *argv: str) -> launch.Child:
        return launch.Child(name, subprocess.Popen(argv, start_new_session=True), logs / f"{name}.err")

    children = [child("broker", "sleep", "60"), child("grid", "sleep", "60"),
                child("amm", "sleep", "60"), child("prosumers", "sleep", "60"),
                child("recorder", "true")]
    try:
        Heartbeat(logs / "grid.heartbeat").granted(1800.001)  # window 2, then nothing more
        amm = Heartbeat(logs / "amm.heartbeat")
        amm.granted(1800.0)
        amm.requesting(1800.002)
        os.kill(children[3].proc.pid, signal.SIGKILL)
        for c in children[3:]:
            c.proc.wait(timeout=10)
        monkeypatch.setattr(launch, "STALL_S", 0.0)  # every heartbeat counts as stale
        scenario = SimpleNamespace(time=SimpleNamespace(window_s=900.0),
                                   helics=SimpleNamespace(timeout_s=60.0))
        outcome = launch._timed_out(SimpleNamespace(run_dir=tmp_path), scenario, children, 60.4)
    finally:
        launch._end(children)
    lines = outcome.message.splitlines()
    assert lines[0] == "timeout: the run exceeded helics.timeout_s = 60 s (the whole-run limit) " \
                       "after 60 s"
    assert lines[1].startswith("stopped advancing: grid hangs: granted t = 1800 s (window 2), and ")
    assert lines[1].endswith("s later it has not asked for the next time")
    assert lines[2].startswith("waiting in a time request: amm (requests t = 1800 s since ")
    assert lines[3] == "crashed (exited on their own): prosumers (killed by SIGKILL)"
    assert lines[4] == "finished: recorder"
    assert outcome.failed == "grid"
    assert all(c.proc.poll() is not None for c in children)
