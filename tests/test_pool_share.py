"""The share of approved energy settled through the AMM pool by calendar month
(`lemcosim.analysis.pool_share_by_month`): hand-made logs, then the shipped year in daily windows
on a real federation, where the ESUs' energy management must keep the pool liquid in every month."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from helpers import assert_no_process_left, lemcosim
from synthetic_logs import Rows

from lemcosim.analysis import load_run, pool_share_by_month
from lemcosim.analysis.report import analyze

DAY_S = 86400.0


def amm_run(path: Path, start: str, pool, utility, skipped: dict[int, list[str]]) -> Path:
    """A run folder holding only an AMM log: per daily window the market's volume and utility
    energy, one transaction (its own utility_kwh must not count twice) and the ESUs that skipped."""
    (path / "logs").mkdir(parents=True)
    (path / "scenario.yaml").write_text(yaml.safe_dump(
        {"name": path.name, "time": {"window_s": DAY_S, "windows": len(pool), "start": start}}))
    rows = Rows()
    for w, (p, u) in enumerate(zip(pool, utility, strict=True)):
        t = w * DAY_S
        rows.add(w, "market", "volume_kwh", p, unit="kWh", time_s=t)
        rows.add(w, "market", "utility_kwh", u, unit="kWh", time_s=t)
        rows.add(w, f"w{w}t0", "utility_kwh", u, unit="kWh", time_s=t)
        for esu in skipped.get(w, []):
            rows.add(w, esu, "liquidity_skipped", 0.0, unit="kWh", time_s=t)
    rows.write(path / "logs", "amm")
    return path


def test_months_split_at_midnight_and_skips_count_per_month(tmp_path):
    # windows 0…5 start on 30 Jan … 4 Feb 2026. January: pool 10+20 = 30, utility 10 → 0.75.
    # February: pool 30+0+5+5 = 40, utility 10+0+5+0 = 15 → 40/55. Skips in windows 1 (es1),
    # 2 (both), 3 (es2), 5 (es1): the stretch 1–3 crosses the month, so January counts 1 window
    # (longest 1) and February 3 windows (2, 3, 5; longest 2: windows 2–3).
    run = amm_run(tmp_path / "run", "2026-01-30T00:00:00", [10, 20, 30, 0, 5, 5], [10, 0, 10, 0, 5, 0],
                  {1: ["es1"], 2: ["es1", "es2"], 3: ["es2"], 5: ["es1"]})
    table = pool_share_by_month(run)
    assert table.index.tolist() == ["2026-01", "2026-02"]
    assert table.windows.tolist() == [2, 4]
    assert table.pool_kwh.tolist() == pytest.approx([30, 40])
    assert table.utility_kwh.tolist() == pytest.approx([10, 15])
    assert table.pool_share.tolist() == pytest.approx([0.75, 40 / 55])
    assert table.windows_skipping_liquidity.tolist() == [1, 3]
    assert table.longest_skip_windows.tolist() == [1, 2]


def test_a_window_belongs_to_the_month_it_starts_in(tmp_path):
    # 15-minute windows from 31 Jan 23:30: windows 0, 1 start in January, window 2 at 00:00 1 Feb
    run = tmp_path / "run"
    amm_run(run, "2026-01-31T23:30:00", [1, 2, 4], [0, 0, 0], {})
    scenario = yaml.safe_load((run / "scenario.yaml").read_text())
    scenario["time"]["window_s"] = 900.0
    (run / "scenario.yaml").write_text(yaml.safe_dump(scenario))
    table = pool_share_by_month(run)
    assert table.pool_kwh.to_dict() == {"2026-01": 3.0, "2026-02": 4.0}


def test_the_report_has_the_monthly_table_only_for_runs_over_several_months(tmp_path):
    several = amm_run(tmp_path / "several", "2026-01-30T00:00:00", [1, 1, 1], [0, 0, 0], {})
    one = amm_run(tmp_path / "one", "2026-01-01T00:00:00", [1, 1, 1], [0, 0, 0], {})
    assert "amm_pool_share_by_month.csv" in {p.name for p in analyze(several)}
    assert "amm_pool_share_by_month.csv" not in {p.name for p in analyze(one)}
    csv = (several / "analysis" / "amm_pool_share_by_month.csv").read_text().splitlines()
    assert csv[0] == ("month,windows,pool_kwh,utility_kwh,pool_share,windows_skipping_liquidity,"
                      "longest_skip_windows")
    assert csv[1:] == ["2026-01,2,2.0,0.0,1.0,0,0", "2026-02,1,1.0,0.0,1.0,0,0"]


# The shipped year in daily windows: 365 windows, 60 households, both ESUs. The profiles resample
# to a day (energy conserved), and every window starts at midnight, inside the ESUs' cheap hours
# (0–6 h), so the policy recharges them toward 60 % each morning. Measured on this machine
# (2026-11-25): pool share 0.70 (Jan), 0.77 (Feb), 0.92 (Mar), 0.99 (Apr), ≥ 0.99 May–Sep,
# 0.91 (Oct), 0.74 (Nov), 0.71 (Dec); no window skipped liquidity. With `--set amm.esu_policy=null`
# the same run settles 0.03 of January's energy through the pool and < 0.001 in each month
# February–July and November–December (the price sits at a bound), though no ESU ever logs
# `liquidity_skipped`: the share is what tells a dry pool. The bound leaves 0.10 below the worst
# month for changes that move prices but must not dry the pool out.
MIN_POOL_SHARE = 0.6
MAX_SKIP_WINDOWS = 1  # no ESU may go two days in a row without liquidity to commit


@pytest.mark.federation
def test_the_year_in_daily_windows_trades_through_the_pool_in_every_month(tmp_path):
    run_dir = tmp_path / "run"
    started = time.monotonic()
    proc = lemcosim("run", "year_ieee13", "--out", str(run_dir), "--no-progress",
                    "--set", f"time.window_s={DAY_S:.0f}", "--set", "time.windows=365", timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert_no_process_left(run_dir)
    table = pool_share_by_month(run_dir)
    shown = f"({time.monotonic() - started:.0f} s)\n{table.to_string()}"
    assert table.index.tolist() == [f"2026-{m:02d}" for m in range(1, 13)], shown
    assert table.windows.tolist() == [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], shown
    assert (table.pool_share >= MIN_POOL_SHARE).all(), shown
    assert (table.longest_skip_windows <= MAX_SKIP_WINDOWS).all(), shown
    # summer (PV) fills the pool better than winter: June–August at least 0.95
    assert (table.loc["2026-06":"2026-08", "pool_share"] >= 0.95).all(), shown
    # the ESUs' energy management follows the seasons: both recharge from the utility in January
    # (measured +1,727 and +2,879 kWh) and sell the PV surplus to it in July (−867, −1,446 kWh)
    exchange = load_run(run_dir, federates=["amm"], quantities=["utility_exchange_kwh"])
    january = exchange[exchange.window < 31].groupby("entity").value.sum()
    july = exchange[exchange.window.between(181, 211)].groupby("entity").value.sum()  # 1–31 Jul
    assert sorted(january.index) == sorted(july.index) == ["es671", "es675"]
    assert (january > 0).all() and (july < 0).all(), (january, july)
    # a year logs each transaction's decision and prices, not the grid answer's extremes
    # (amm.log_answer_detail: false in year_ieee13: 8 rows fewer per transaction)
    tx = load_run(run_dir, federates=["amm"], windows=(0, 0))
    tx = tx[tx.entity.str.match(r"w\d+t\d+$")]
    assert {"approved", "e_kwh", "rho", "d_loss_kwh"} <= set(tx.quantity)
    assert not {"v_min", "v_min_at", "approval_rule"} & set(tx.quantity)
