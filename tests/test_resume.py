"""`lemcosim run --resume`: a run killed with SIGKILL mid-way and resumed logs what the
uninterrupted run logs.

Numbers agree to the power flow's tolerance, not bit for bit: the resumed grid rebuilds its
OpenDSS circuit, so its first solves start from another initial point than the uninterrupted
run's (the solver stops at 1e-8). Measured: voltages and loadings within 1e-8 relative; a
transaction's loss difference ΔLoss (a few Wh taken between two losses of ~100 kW) within
6e-7 kWh, and ρ_eff with it within 4e-6 relative. Every decision — approvals, rejection
reasons and their binding constraints, the order of events — is identical.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import alive, lemcosim

from lemcosim.analysis.load import load_run

pytestmark = pytest.mark.federation

RUN = ["quickstart", "--set", "time.windows=20", "--set", "logs.checkpoint_windows=4"]
KEYS = ["federate", "window", "substep", "entity", "quantity", "time_s"]
_NUMBER = re.compile(r"-?\d+\.\d+")


def _window_of(progress) -> int:
    try:
        return json.loads(progress.read_text())["window"]
    except (OSError, ValueError, KeyError):
        return -1


def _kill_mid_way(run_dir, after_window: int) -> None:
    """Start the run and SIGKILL the runner and every federate once the market is past
    `after_window`."""
    runner = subprocess.Popen([sys.executable, "-m", "lemcosim.runner.cli", "run", *RUN, "--out",
                               str(run_dir), "--no-progress"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    pids: dict[str, int] = {}
    try:
        deadline = time.monotonic() + 120
        while _window_of(run_dir / "logs" / "amm.progress") < after_window:
            assert runner.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "the run made no progress"
            time.sleep(0.05)
        pids = json.loads((run_dir / "logs" / "pids.json").read_text())
    finally:
        for pid in [runner.pid, *pids.values()]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        runner.wait(timeout=10)
    deadline = time.monotonic() + 10
    while any(alive(p) for p in pids.values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(p) for p in pids.values())


def _table(run_dir):
    df = load_run(run_dir)
    # how the market opened a window, not what it decided: the resumed run's first window opens
    # at its grant (the uninterrupted run opened it while waiting, from positions a window ahead)
    df = df[df["quantity"] != "opened_ahead"]
    df = df.sort_values(KEYS + ["text"], kind="stable").reset_index(drop=True)
    # numbers inside text (rejection reasons) carry the same solver tolerance as values
    df["text_shape"] = df["text"].fillna("").map(lambda t: _NUMBER.sub("#", t))
    df["text_numbers"] = df["text"].fillna("").map(lambda t: [float(x) for x in _NUMBER.findall(t)])
    return df


def test_a_killed_run_resumed_logs_what_the_uninterrupted_run_logs(tmp_path):
    whole = tmp_path / "whole"
    done = lemcosim("run", *RUN, "--out", str(whole), "--no-progress")
    assert done.returncode == 0, done.stderr

    cut = tmp_path / "cut"
    _kill_mid_way(cut, after_window=9)
    resumed = lemcosim("run", "--resume", str(cut), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    after = int(re.search(r"after window (\d+) of 20", resumed.stdout + resumed.stderr)[1])
    assert 7 <= after < 19 and (after + 1) % 4 == 0  # a checkpoint boundary past the start

    expected, got = _table(whole), _table(cut)
    assert len(got) == len(expected) > 1000
    for column in KEYS[:-1] + ["text_shape"]:
        assert got[column].astype(str).tolist() == expected[column].astype(str).tolist(), column
    assert np.allclose(got["time_s"], expected["time_s"], rtol=0, atol=1e-9)
    values, reference = got["value"].to_numpy(float), expected["value"].to_numpy(float)
    assert (np.isnan(values) == np.isnan(reference)).all()
    finite = ~np.isnan(reference)
    assert np.allclose(values[finite], reference[finite], rtol=1e-5, atol=1e-5)
    for numbers, ref in zip(got["text_numbers"], expected["text_numbers"], strict=True):
        assert numbers == pytest.approx(ref, rel=1e-6, abs=1e-6)
    # the approvals themselves are exactly those of the uninterrupted run
    approved = (got["quantity"] == "approved").to_numpy()
    assert (values[approved] == reference[approved]).all() and approved.sum() > 50


def test_resume_errors_are_named(tmp_path):
    done = lemcosim("run", "--resume", str(tmp_path / "nothing"), "--no-progress")
    assert done.returncode != 0 and "not a run folder" in done.stderr
    assert "Traceback" not in done.stderr
    short = tmp_path / "short"
    done = lemcosim("run", "quickstart", "--set", "time.windows=2", "--out", str(short), "--no-progress")
    assert done.returncode == 0, done.stderr
    done = lemcosim("run", "--resume", str(short), "--no-progress")
    assert done.returncode != 0 and "complete; nothing to resume" in done.stderr
    done = lemcosim("run", "quickstart", "--resume", str(short), "--no-progress")
    assert done.returncode != 0 and "give no SCENARIO" in done.stderr
