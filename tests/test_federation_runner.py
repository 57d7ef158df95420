"""The runner on real HELICS federations: run, crash, external federate, helics run, kill mid-way.

Each federation here is small (a scripted HELICS federate and the recorder), bounded by timeouts,
on a fresh loopback port chosen by the runner, and checked for leftover processes by PID.
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
from helpers import (
    SCRIPTED,
    assert_no_process_left,
    counter_scenario,
    lemcosim,
    run_with_external,
)

from lemcosim.analysis import load_run

pytestmark = pytest.mark.federation


def recorded_windows(run_dir: Path) -> list[int]:
    df = load_run(run_dir)
    rows = df[(df.federate == "recorder") & (df.quantity == "value")]
    assert (rows["value"] == rows["window"].astype(float)).all()  # the counter publishes its window
    return sorted(rows["window"].astype(int).tolist())


def test_run_completes_and_logs_one_row_set_per_window(tmp_path, run_dir):
    proc = lemcosim("run", str(counter_scenario(tmp_path, 8)), "--out", str(run_dir), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert recorded_windows(run_dir) == list(range(8))
    df = load_run(run_dir)
    assert {"time_s", "window", "federate", "entity", "quantity", "value", "unit"} <= set(df.columns)
    for name in ("runner.json", "scenario.yaml", "versions.json", "federates/counter.json"):
        assert (run_dir / name).exists(), name
    versions = json.loads((run_dir / "versions.json").read_text())
    assert {"lemcosim", "helics", "opendss_engine", "phe"} <= set(versions)


def test_failing_federate_is_named_and_nothing_is_left_running(tmp_path, run_dir):
    scenario = counter_scenario(tmp_path, 8, "--fail-at-window", "3")
    started = time.monotonic()
    proc = lemcosim("run", str(scenario), "--out", str(run_dir), "--no-progress")
    assert proc.returncode == 1
    assert "federate 'counter' failed" in proc.stderr
    assert "scripted failure at window 3" in proc.stderr  # the tail of its stderr
    assert "Traceback" not in proc.stderr.split("---")[0]  # the runner's own message is clean
    assert time.monotonic() - started < 60
    assert_no_process_left(run_dir)
    assert recorded_windows(run_dir) == [0, 1, 2]


def test_external_federate_connects_and_the_run_completes(tmp_path, run_dir):
    scenario = counter_scenario(tmp_path, 5, external=True)
    runner, external = run_with_external([str(scenario)], run_dir, "counter",
                                         [sys.executable, str(SCRIPTED)])
    assert runner.returncode == 0, runner.stderr
    assert "external federate 'counter': connect to broker tcp://127.0.0.1:" in runner.stderr
    assert str(run_dir / "federates" / "counter.json") in runner.stderr
    assert external.returncode == 0, external.stderr
    assert recorded_windows(run_dir) == list(range(5))


def test_composed_output_runs_under_helics_run(tmp_path):
    out = tmp_path / "composed"
    proc = lemcosim("compose", str(counter_scenario(tmp_path, 4)), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert f"helics run --path {out.resolve() / 'runner.json'}" in proc.stdout
    runner = json.loads((out / "runner.json").read_text())
    assert [f["name"] for f in runner["federates"]] == ["broker", "counter", "recorder"]
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    helics = Path(sys.executable).parent / "helics"
    run = subprocess.run([str(helics), "run", "--path", str(out / "runner.json")], env=env,
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert recorded_windows(out) == list(range(4))


def test_run_killed_mid_way_leaves_logs_readable_up_to_the_last_window(tmp_path, run_dir):
    scenario = counter_scenario(tmp_path, 60, "--sleep-per-window", "0.1")
    runner = subprocess.Popen(
        [sys.executable, "-m", "lemcosim.runner.cli", "run", str(scenario), "--out", str(run_dir),
         "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # the recorder's progress passes window w once its log holds the counter's windows < w
        progress = run_dir / "logs" / "recorder.progress"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if progress.exists() and json.loads(progress.read_text())["window"] >= 5:
                break
            time.sleep(0.05)
        runner.send_signal(signal.SIGTERM)
        runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    assert runner.returncode != 0
    assert_no_process_left(run_dir)
    windows = recorded_windows(run_dir)
    assert 5 <= len(windows) < 60
    assert windows == list(range(len(windows)))  # complete and in order up to the kill


def test_a_run_folder_is_never_reused(tmp_path):
    out = tmp_path / "used"
    (out / "logs").mkdir(parents=True)
    (out / "logs" / "grid.csv").write_text("time_s\n")
    proc = lemcosim("run", str(counter_scenario(tmp_path, 2)), "--out", str(out), "--no-progress")
    assert proc.returncode == 2
    assert "already holds a run" in proc.stderr and "Traceback" not in proc.stderr
