"""Streaming Parquet logs: types kept, lazy filtered reads, crash safety, flat memory, CSV export,
and a recorder that stores only what the scenario asks for."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tracemalloc

import pandas as pd
import pyarrow.parquet as pq
import pytest
from helpers import alive, assert_no_process_left, counter_scenario, lemcosim, write_scenario

from lemcosim.analysis.load import connect, load_run
from lemcosim.federates.common.errors import LemcosimError
from lemcosim.federates.common.logschema import COLUMNS
from lemcosim.federates.common.tidylog import TidyLog


def write_windows(log: TidyLog, windows: range, rows_per_window: int = 3) -> None:
    for w in windows:
        for i in range(rows_per_window):
            log.record(900.0 * w, w, f"bus{i}", "v_pu", 1.0 + i / 100, "pu", substep=1)
        log.end_window(w)


def test_values_keep_their_types_and_units(tmp_path):
    log = TidyLog(tmp_path / "logs", "amm")
    log.record(0.0, 0, "w0t1", "approved", True, "")
    log.record(0.0, 0, "w0t1", "rho", 0.25, "M/kWh")
    log.record(0.0, 0, "w0t1", "reason", "DSO: v_min 0.94 < 0.95 at 675.a", "")
    log.record(0.0, 0, "w0t1", "bus", "675", "")  # a bus name that looks like a number stays text
    log.record(0.0, 0, "w0t1", "setting", {"a1": 1.0}, "")
    log.close()
    df = load_run(tmp_path).set_index("quantity")
    assert df.loc["approved", "value"] == 1.0 and df.loc["rho", "value"] == 0.25
    assert df.loc["rho", "unit"] == "M/kWh" and pd.isna(df.loc["rho", "text"])
    assert df.loc["reason", "text"] == "DSO: v_min 0.94 < 0.95 at 675.a"
    assert pd.isna(df.loc["reason", "value"])
    assert df.loc["bus", "text"] == "675" and pd.isna(df.loc["bus", "value"])
    assert json.loads(df.loc["setting", "text"]) == {"a1": 1.0}
    assert list(load_run(tmp_path).columns) == list(COLUMNS)


def test_load_run_filters_by_federate_quantity_and_window_range(tmp_path):
    for name in ("grid", "amm"):
        log = TidyLog(tmp_path / "logs", name)
        for w in range(10):
            log.record(900.0 * w, w, "x", "v_pu", 1.0, "pu")
            log.record(900.0 * w, w, "x", "losses_kw", 2.0, "kW")
            log.end_window(w)
        log.close()
    df = load_run(tmp_path, federates=["grid"], quantities=["losses_kw"], windows=(3, 5))
    assert df[["federate", "quantity"]].drop_duplicates().values.tolist() == [["grid", "losses_kw"]]
    assert df["window"].tolist() == [3, 4, 5]  # inclusive range
    assert load_run(tmp_path, windows=range(8, 10))["window"].unique().tolist() == [8, 9]
    assert len(load_run(tmp_path)) == 2 * 10 * 2
    with pytest.raises(LemcosimError, match=r"no log of federate\(s\) mo .*logged: amm, grid"):
        load_run(tmp_path, federates=["mo"])
    with pytest.raises(LemcosimError, match="no logs"):
        (tmp_path / "empty" / "logs").mkdir(parents=True)
        load_run(tmp_path / "empty")


def test_each_window_batch_is_a_parquet_row_group_and_parts_merge_into_segments(tmp_path):
    log = TidyLog(tmp_path / "logs", "grid", flush_every_windows=4, merge_parts=5)
    folder = tmp_path / "logs" / "grid"
    write_windows(log, range(7))
    log.flush()  # the writer thread caught up (and had no rows left to journal)
    # windows 0–3 are one part (one row group); windows 4–6 wait in the journal
    assert sorted(p.name for p in folder.iterdir()) == ["journal-00000001.arrows",
                                                        "part-00000000.parquet"]
    part = pq.ParquetFile(folder / "part-00000000.parquet")
    assert part.metadata.num_row_groups == 1 and part.metadata.num_rows == 4 * 3
    assert sorted(load_run(tmp_path)["window"].unique()) == list(range(7))  # journal included
    write_windows(log, range(7, 40))  # 10 parts → 2 segments of 5 parts each
    log.close()
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["seg-00000000-00000004.parquet", "seg-00000005-00000009.parquet"]
    df = load_run(tmp_path)
    assert df["window"].tolist() == [w for w in range(40) for _ in range(3)]  # order kept


def test_leftovers_of_a_kill_between_two_steps_are_never_read_twice(tmp_path):
    log = TidyLog(tmp_path / "logs", "grid", merge_parts=2)
    folder = tmp_path / "logs" / "grid"
    write_windows(log, range(1))
    log.flush()  # the writer thread caught up
    shutil.copy(folder / "part-00000000.parquet", tmp_path / "kept.parquet")
    write_windows(log, range(1, 2))  # parts 0 and 1 merge into seg-0-1
    log.flush()
    # a kill after the segment's rename but before the parts were deleted
    shutil.copy(tmp_path / "kept.parquet", folder / "part-00000000.parquet")
    # a kill while the next batch's journal was being written: its last batch is cut short
    log.record(1800.0, 2, "bus0", "v_pu", 1.02, "pu")
    log.flush()
    log.record(1800.0, 2, "bus1", "v_pu", 1.03, "pu")
    log.flush()
    journal = folder / "journal-00000002.arrows"
    journal.write_bytes(journal.read_bytes()[:-40])
    df = load_run(tmp_path)
    assert df["window"].tolist() == [0, 0, 0, 1, 1, 1, 2]  # no duplicates; the torn batch lost
    assert connect(tmp_path).execute("SELECT count(*) FROM logs").fetchone()[0] == 7


def test_writer_memory_is_flat_over_many_windows(tmp_path):
    log = TidyLog(tmp_path / "logs", "grid", merge_rows=3_000)

    def peak_bytes(windows: range) -> int:
        tracemalloc.start()
        write_windows(log, windows, rows_per_window=50)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak

    first = peak_bytes(range(0, 200))  # 10,000 rows, several merges
    later = peak_bytes(range(200, 2200))  # 100,000 rows: ten times as many
    assert later < 1.5 * first + 1_000_000
    log.close()
    assert len(list((tmp_path / "logs" / "grid").iterdir())) <= 2200 * 50 // 3_000 + 2


@pytest.mark.federation
def test_sigkilled_federation_keeps_every_completed_window(tmp_path, run_dir):
    scenario = counter_scenario(tmp_path, 200, "--sleep-per-window", "0.05")
    runner = subprocess.Popen([sys.executable, "-m", "lemcosim.runner.cli", "run", str(scenario),
                               "--out", str(run_dir), "--no-progress"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        progress = run_dir / "logs" / "recorder.progress"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if progress.exists() and json.loads(progress.read_text())["window"] >= 8:
                break
            time.sleep(0.02)
        completed = json.loads(progress.read_text())["window"]
        # no goodbye for anyone: the runner and every process it started die at once
        pids = json.loads((run_dir / "logs" / "pids.json").read_text())
        for pid in [runner.pid, *pids.values()]:
            if alive(pid):
                os.killpg(pid, signal.SIGKILL)
        runner.wait(timeout=10)
    finally:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
            runner.wait()
    assert_no_process_left(run_dir)
    df = load_run(run_dir)
    windows = df[(df.federate == "recorder") & (df.quantity == "value")]
    assert (windows["value"] == windows["window"]).all()  # the counter publishes its window
    got = windows["window"].tolist()
    # the recorder's progress passed window `completed` once the values of windows < it were logged
    assert completed <= len(got) < 200
    assert got == list(range(len(got)))  # complete and in order up to the kill

    out = tmp_path / "csv"
    proc = lemcosim("export", str(run_dir), "--csv", str(out))
    assert proc.returncode == 0, proc.stderr
    exported = pd.read_csv(out / "recorder.csv")
    assert list(exported.columns) == list(COLUMNS)
    assert exported["window"].tolist() == got


def test_export_filters_and_names_bad_windows(tmp_path):
    log = TidyLog(tmp_path / "logs", "amm")
    for w in range(4):
        log.record(900.0 * w, w, "w0t1", "reason", "DSO: a, b", "")
        log.record(900.0 * w, w, "pool", "price", 0.2 + w, "M/kWh")
        log.end_window(w)
    log.close()
    out = tmp_path / "csv"
    proc = lemcosim("export", str(tmp_path), "--csv", str(out), "--quantity", "reason",
                    "--windows", "1:2")
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out / "amm.csv", keep_default_na=False)
    assert table["window"].tolist() == [1, 2] and set(table["text"]) == {"DSO: a, b"}
    bad = lemcosim("export", str(tmp_path), "--csv", str(out), "--windows", "one:2")
    assert bad.returncode == 2 and "--windows 'one:2': expected FIRST:LAST" in bad.stderr


def test_recorder_stores_what_the_scenario_asks_and_no_federate_logs_twice(tmp_path):
    from lemcosim.runner.compose import plan_federates
    from lemcosim.runner.validate import load_scenario

    text = """
        name: rec
        time: {windows: 2}
        prosumers: {groups: [{count: 2, buses: ["671"]}]}
        custom:
          counter:
            exec: "python counter.py {config}"
            publications: {counter/value: count}
        recorder: {}
        """
    by_default = plan_federates(load_scenario(str(write_scenario(tmp_path, text)), [])[0])
    # the prosumers federate logs its own publications: by default only the custom one is recorded
    assert by_default[-1].params["keys"] == ["counter/value"]
    asked = load_scenario(str(write_scenario(tmp_path, text.replace(
        "recorder: {}", "recorder: {subscribe: [prosumers/total_net_kw]}"), "asked.yaml")), [])[0]
    assert plan_federates(asked)[-1].params["keys"] == ["prosumers/total_net_kw"]
