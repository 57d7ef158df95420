"""The default scenario, installed as a user installs it (non-editable) and run from elsewhere."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import assert_no_process_left, lemcosim
from reference_results import assert_same_results

from lemcosim.analysis import load_run

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.federation


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """`pip install .` (not editable, no deps: they are this environment's) into a fresh folder.

    The build backend comes from PyPI (pip's build isolation), as on a user's machine."""
    target = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
         "--target", str(target), str(REPO)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return target


def run_installed(target: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(target))
    return subprocess.run([sys.executable, "-m", "lemcosim.runner.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=240)


def test_shipped_scenarios_are_listed_with_a_description():
    proc = lemcosim("scenarios")
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("quickstart"))
    assert "prosumers" in line


def test_quickstart_runs_from_a_plain_install_in_another_folder(installed, tmp_path, run_dir):
    where = subprocess.run([sys.executable, "-c", "import lemcosim.configs as c; print(c.__file__)"],
                           env=dict(os.environ, PYTHONPATH=str(installed)), cwd=tmp_path,
                           capture_output=True, text=True, timeout=60)
    assert where.stdout.startswith(str(installed)), where.stdout + where.stderr  # not the checkout

    proc = run_installed(installed, tmp_path, "run", "quickstart", "--out", str(run_dir),
                         "--no-progress", "--analyze")
    assert proc.returncode == 0, proc.stderr
    assert_no_process_left(run_dir)

    df = load_run(run_dir)
    net = df[(df.federate == "prosumers") & (df.quantity == "net_kw")]
    assert sorted(net.window.astype(int)) == list(range(96))  # one day of 15-minute windows
    recorded = df[(df.federate == "recorder") & (df.quantity == "total_net_kw")]
    # what the recorder received over HELICS is what the population computed, window by window
    assert recorded.set_index("window")["value"].sort_index().to_numpy() == pytest.approx(
        net.set_index("window")["value"].sort_index().to_numpy())
    # per bus·phase injections add up to the population total in every window
    per_phase = df[(df.federate == "prosumers") & (df.quantity == "p_kw")]
    assert per_phase.groupby("window")["value"].sum().to_numpy() == pytest.approx(
        net.set_index("window")["value"].sort_index().to_numpy())
    # report.html needs the installed package's templates (package data)
    for name in ("summary.csv", "summary.md", "prosumers_net_kw.png", "report.md", "report.html"):
        assert (run_dir / "analysis" / name).stat().st_size > 0, name
    # batched approval decides as one query per transaction did (tests/data/reference_*), its
    # numbers within the power flow's tolerance (the grid goes on past refusals)
    assert_same_results(run_dir, "quickstart", exact=False)


def test_batches_that_stop_at_each_refusal_give_one_query_per_transaction_bit_for_bit(run_dir):
    proc = lemcosim("run", "quickstart", "--out", str(run_dir), "--no-progress",
                    "--set", "amm.after_refusal=stop")
    assert proc.returncode == 0, proc.stderr
    assert_same_results(run_dir, "quickstart")
    # by default each transaction logs its grid answer's extremes (amm.log_answer_detail)
    tx = load_run(run_dir, federates=["amm"], quantities=["v_min", "v_min_at", "approval_rule"])
    assert set(tx.quantity) == {"v_min", "v_min_at", "approval_rule"}


def test_storage_limits_inside_a_batch_decide_as_ending_the_batch_at_each_did(run_dir):
    # ESUs of 10 and 6 kW: 27 sellers in 64 windows hit a storage limit (with loss compensation,
    # ΔLoss moves ES_cont and the market's fork knows none). The market ended its batch at each
    # one before commit 14d4096; tests/data/reference_quickstart_storage.json is this run on its
    # parent, ed5651f. The fork now decides those limits without ΔLoss and goes on.
    proc = lemcosim("run", "quickstart", "--out", str(run_dir), "--no-progress",
                    "--set", "time.windows=64", "--set", "amm.after_refusal=stop",
                    "--set", "amm.esus.0.power_kw=10", "--set", "amm.esus.1.power_kw=6")
    assert proc.returncode == 0, proc.stderr
    assert_same_results(run_dir, "quickstart_storage")  # bit for bit
    df = load_run(run_dir)
    reasons = df[(df.federate == "amm") & (df.quantity == "reason")].text
    assert reasons.str.contains("would have to").sum() == 27
    # 577 batches before (one more after each storage limit a batch reached), 556 now
    queries = df[(df.federate == "grid") & (df.quantity == "query_requests")].value.sum()
    assert queries == 556
