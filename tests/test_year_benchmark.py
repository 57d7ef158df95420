"""benchmarks/year.py: its memory figures from hand-made RSS samples, and a smoke run of 30 windows
of the real year_ieee13 federation that writes year_benchmark.json. Speed is never asserted."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "year.py"
_spec = importlib.util.spec_from_file_location("year_benchmark", BENCHMARK)
year = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = year  # its dataclasses look their module up while being defined
_spec.loader.exec_module(year)


def samples(windows: int, rss_mb) -> list:
    """One sample per completed window w+1 = 1…N, RSS from rss_mb(w) per process (MB)."""
    return [year.Sample(float(w), w, {k: round(f(w) * 1024) for k, f in rss_mb.items()})
            for w in range(windows)]


def test_a_slow_leak_is_measured_and_a_flat_process_with_a_shutdown_peak_is_not():
    # 'leaky' grows 2 MB per 1000 windows from 100 MB; 'flat' stays at 50 MB until its last
    # window, where its shutdown adds 30 MB (excluded: no steady state). Second half of 1000
    # windows: completed windows 500…999.
    s = samples(1000, {"leaky": lambda w: 100 + 0.002 * w,
                       "flat": lambda w: 50 + (30 if w == 999 else 0)})
    slopes = year.second_half_slopes(s, 1000)
    assert slopes["leaky"] == pytest.approx(2.0, abs=0.01)  # rounding to whole kB
    assert slopes["flat"] == pytest.approx(0.0, abs=1e-9)
    assert year.memory_flat(slopes) is False  # 2 > FLAT_MB_PER_1000_WINDOWS = 1
    assert year.memory_flat({"flat": slopes["flat"]}) is True
    assert year.memory_flat({"gone": float("nan")}) is None


def merging(base_mb, merges=(9000,), width=300, extra_mb=60.0):
    """RSS base_mb(w) plus extra_mb while a log merge runs (completed windows [m, m + width))."""
    return lambda w: base_mb(w) + (extra_mb if any(m <= w + 1 < m + width for m in merges) else 0)


def test_the_plateau_slope_ignores_a_log_merge_and_still_sees_a_leak():
    # 10,000 windows: the second half is completed windows 5000…9998, in 4 bins of ~1250
    # (10 bins would hold < PLATEAU_BIN_WINDOWS = 1000 each). 'steady' stays at 200 MB but for a
    # merge holding 60 MB more over windows 9000–9299; 'leaky' does the same on top of 2 MB
    # per 1000 windows.
    s = samples(10_000, {"steady": merging(lambda w: 200.0),
                         "leaky": merging(lambda w: 100 + 0.002 * w)})
    raw = year.second_half_slopes(s, 10_000)
    assert raw["steady"] > year.FLAT_MB_PER_1000_WINDOWS  # the merge read as growth
    plateau = year.plateau_slopes(s, 10_000)
    assert plateau["steady"] == pytest.approx(0.0, abs=1e-9)  # every bin's lowest: 200 MB
    assert plateau["leaky"] == pytest.approx(2.0, abs=0.01)  # each bin's lowest at its start
    judged = year.verdict_slopes(raw, plateau)
    assert judged == plateau
    assert year.memory_flat(judged) is False
    assert year.memory_flat({"steady": judged["steady"]}) is True


def test_a_short_run_has_no_plateau_slope_and_is_judged_on_the_raw_one():
    # 1000 windows: a half of 499 windows holds no bin of 1000, so no plateau slope
    s = samples(1000, {"leaky": lambda w: 100 + 0.002 * w})
    raw = year.second_half_slopes(s, 1000)
    plateau = year.plateau_slopes(s, 1000)
    assert math.isnan(plateau["leaky"])
    assert year.verdict_slopes(raw, plateau) == raw


def test_a_saved_report_is_judged_again_without_a_run(tmp_path, capsys):
    s = samples(10_000, {"grid": merging(lambda w: 200.0)})
    path = tmp_path / "year_benchmark.json"
    path.write_text(json.dumps({
        "scenario": "year_ieee13", "windows": 10_000, "peak_rss_kb": {"grid": 260 * 1024},
        "rss": {"samples": [{"t_s": x.t_s, "windows_done": x.window + 1, "rss_kb": x.rss_kb}
                            for x in s]}}))
    year.report_again(path)
    out = capsys.readouterr().out
    assert "memory flat: yes" in out and "plateau" in out


def test_a_stopped_runs_sample_journal_is_judged_over_the_windows_it_completed(tmp_path, capsys):
    # a run stopped after 12,000 of its windows (killed mid-write: the last line is cut): judged
    # as a 12,000-window run, second half 6,000…11,998; 'leaky' grows 2 MB per 1000 windows
    s = samples(12_000, {"grid": merging(lambda w: 200.0), "amm": lambda w: 100 + 0.002 * w})
    lines = [json.dumps(year._sample_json(x)) for x in s]
    (tmp_path / "rss_samples.jsonl").write_text("\n".join(lines) + "\n" + lines[-1][:20])
    year.report_again(tmp_path)
    out = capsys.readouterr().out
    assert "12000 windows completed" in out and "memory flat: no" in out
    plateau_row = next(line for line in out.splitlines() if "plateau" in line and "MB/1000" in line)
    assert [float(x) for x in plateau_row.split()[-2:]] == pytest.approx([2.0, 0.0], abs=0.01)


def test_marks_take_the_first_sample_once_the_share_of_windows_is_done():
    # 40 windows sampled after windows 1, 3, 5, …, 39 done (w = 0, 2, …, 38) and 40 (w = 39):
    # 10 % = 4 windows → first sample with ≥ 4 done is 5; 25 % = 10 → 11; 50 % = 20 → 21;
    # 75 % = 30 → 31; 100 % = 40 → 40.
    s = [x for x in samples(40, {"a": lambda w: 1.0}) if x.window % 2 == 0 or x.window == 39]
    marks = year.rss_marks(s, 40)
    assert [(label, m.window + 1) for label, m in marks] == [
        ("1st window", 1), ("10 %", 5), ("25 %", 11), ("50 %", 21), ("75 %", 31), ("100 %", 40)]


def test_rss_is_read_from_proc_for_a_live_process_and_empty_for_a_gone_one():
    import os

    mine = year.proc_status_kb(os.getpid())
    assert 0 < mine["VmRSS"] <= mine["VmHWM"]
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert year.proc_status_kb(child.pid) == {}


@pytest.mark.slow  # 68 s on the shared 2-core machine (load 7): 33 s of it the year's profiles
@pytest.mark.federation
def test_smoke_30_windows_prints_and_writes_every_figure(tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.run([sys.executable, str(BENCHMARK), "--windows", "30", "--out", str(run_dir)],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert "memory flat: " in proc.stdout and "RSS (MB)" in proc.stdout
    report = json.loads((run_dir / "year_benchmark.json").read_text())
    assert report["windows"] == 30 and report["window_s"] == 900.0
    assert report["wall_s"] > report["first_window_s"] > 0
    assert report["floor"]["opendss_converged"] == report["floor"]["opendss_measured_solves"] > 0
    assert report["log_bytes"] > 0
    federates = {"amm", "grid", "prosumers", "broker", "runner"}
    assert federates <= set(report["peak_rss_kb"])
    marks = report["rss"]["marks"]
    assert [m["at"] for m in marks] == ["1st window", "10 %", "25 %", "50 %", "75 %", "100 %"]
    assert all(m["windows_done"] >= due for m, due in zip(marks, [1, 3, 8, 15, 23, 30], strict=True))
    assert federates <= set(marks[0]["rss_kb"])  # everything alive once the market traded
    journal = [json.loads(line) for line in (run_dir / "rss_samples.jsonl").read_text().splitlines()]
    assert journal == report["rss"]["samples"]  # the journal kept every sample as it went
    for m in marks:
        for name, kb in m["rss_kb"].items():
            assert 0 < kb <= report["peak_rss_kb"][name], (m["at"], name)
    # 30 windows of 1 January 2026 (00:00–07:30): one month, all of it through the pool or not
    (month,) = report["pool_share_by_month"]
    assert month["month"] == "2026-01" and month["windows"] == 30
    assert 0 <= month["pool_share"] <= 1
