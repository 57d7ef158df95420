"""A trading year on IEEE 13 (`year_ieee13`) as a user runs it, against floors measured in the
same run.

usage: python benchmarks/year.py [--windows N] [--out DIR] [--floor-max N] [--set KEY=VALUE]

Runs `lemcosim run year_ieee13` (all 35,040 windows, or the first N) and prints: wall time,
cost per window, peak RSS of every federate (VmHWM, sampled from /proc while it runs), log bytes
per window, the share of approved energy settled through the pool by month, and the ratio of
the wall time to a floor: a bare opendssdirect loop doing as many power flows as the grid did
plus a bare 2-federate HELICS ping-pong doing as many round trips as the market's queries
(benchmarks/floors.py). `--floor-max` measures at most N of each and scales linearly (said so).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from floors import opendss_floor, pingpong_floor  # noqa: E402

from lemcosim.analysis import load_run  # noqa: E402


def peak_rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def amm_window(out: Path) -> int:
    """The window the market is in (its progress file), −1 before it starts."""
    try:
        return int(json.loads((out / "logs" / "amm.progress").read_text())["window"])
    except (OSError, ValueError, KeyError):
        return -1


def run_year(out: Path, windows: int, overrides: list[str]) -> tuple[float, float, dict[str, int]]:
    """Run the scenario: wall seconds, seconds until the market finished its first window
    (start-up: processes, imports, the first week of profiles), each federate's peak RSS (kB)."""
    cmd = [sys.executable, "-m", "lemcosim.runner.cli", "run", "year_ieee13", "--out", str(out),
           "--no-progress", "--set", f"time.windows={windows}"]
    for override in overrides:
        cmd += ["--set", override]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peaks: dict[str, int] = {}
    first_window_s = float("nan")
    pids_file = out / "logs" / "pids.json"
    while proc.poll() is None:
        if first_window_s != first_window_s and amm_window(out) >= 1:
            first_window_s = time.perf_counter() - start
        if pids_file.exists():
            try:
                pids = json.loads(pids_file.read_text())
            except json.JSONDecodeError:
                pids = {}
            for name, pid in pids.items():
                kb = peak_rss_kb(pid)
                if kb is not None:
                    peaks[name] = max(peaks.get(name, 0), kb)
        time.sleep(0.2)
    wall = time.perf_counter() - start
    _, err = proc.communicate()
    if proc.returncode != 0:
        sys.exit(f"year_ieee13 failed:\n{err}")
    return wall, first_window_s, peaks


def pool_share_by_month(out: Path) -> pd.DataFrame:
    """Approved energy through the pool and with the utility, per calendar month."""
    clock = yaml.safe_load((out / "scenario.yaml").read_text())["time"]  # the resolved scenario
    start, window_s = datetime.fromisoformat(str(clock["start"])), float(clock["window_s"])
    df = load_run(out, federates=["amm"], entities=["market"],
                  quantities=["volume_kwh", "utility_kwh"])
    per_window = df.pivot_table(index="window", columns="quantity", values="value", aggfunc="sum")
    months = {int(w): (start + timedelta(seconds=int(w) * window_s)).strftime("%Y-%m")
              for w in per_window.index}
    table = per_window.groupby([months[int(w)] for w in per_window.index]).sum()
    table = table.rename(columns={"volume_kwh": "pool_kwh"})
    table["pool_share"] = table["pool_kwh"] / (table["pool_kwh"] + table["utility_kwh"])
    skipped = load_run(out, federates=["amm"], quantities=["liquidity_skipped"])
    skipping = pd.Series([months[int(w)] for w in skipped.window.unique()], dtype=object)
    table["windows_skipping_liquidity"] = [int((skipping == m).sum()) for m in table.index]
    return table


def counts(out: Path) -> tuple[int, int]:
    """(power flows the grid solved, market round trips), from the grid's log: its per-window
    counters `power_flows` and `query_requests`, or else one row per answer and per window solve."""
    grid = load_run(out, federates=["grid"],
                    quantities=["power_flows", "query_requests", "converged", "query_answer"])
    total = grid.groupby("quantity")["value"].agg(["sum", "size"])
    if "power_flows" in total.index:
        return int(total.loc["power_flows", "sum"]), int(total.loc["query_requests", "sum"])
    queries = int(total["size"].get("query_answer", 0))
    return int(total["size"].get("converged", 0)) + queries, queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=35040)
    parser.add_argument("--out", type=Path, default=None, help="run folder (default: a temporary one)")
    parser.add_argument("--floor-max", type=int, default=None,
                        help="measure at most N solves and round trips for the floor, scale linearly")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="passed to lemcosim run, e.g. --set time.start=2026-07-01T00:00:00")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="year_ieee13_")) / "run"
    wall, first_window_s, peaks = run_year(out, args.windows, args.overrides)
    log_bytes = sum(f.stat().st_size for f in (out / "logs").rglob("*") if f.is_file())
    solves, round_trips = counts(out)
    n_solves, n_trips = solves, round_trips
    if args.floor_max:
        n_solves, n_trips = min(solves, args.floor_max), min(round_trips, args.floor_max)
    dss_s, converged = opendss_floor("ieee13", n_solves)
    ping_s = pingpong_floor(n_trips) if n_trips else 0.0
    if n_solves < solves or n_trips < round_trips:
        scale_note = f" (measured {n_solves} solves / {n_trips} round trips, scaled linearly)"
        dss_s *= solves / max(n_solves, 1)
        ping_s *= round_trips / max(n_trips, 1)
    else:
        scale_note = ""
    floor = dss_s + ping_s
    print(f"year_ieee13, {args.windows} windows of 900 s, run folder {out}")
    print(f"wall time            {wall:10.1f} s   ({wall / args.windows * 1e3:.1f} ms per window)")
    if args.windows > 1:
        steady = (wall - first_window_s) / (args.windows - 1)
        print(f"after the 1st window {wall - first_window_s:10.1f} s   ({steady * 1e3:.1f} ms per "
              f"window; start-up and window 0: {first_window_s:.1f} s)")
    print(f"power flows          {solves:10d}     round trips {round_trips} "
          f"({round_trips / args.windows:.1f} per window)")
    print(f"floor                {floor:10.1f} s   = opendssdirect {dss_s:.1f} s ({converged}/"
          f"{n_solves} converged) + HELICS ping-pong {ping_s:.1f} s{scale_note}")
    print(f"ratio to the floor   {wall / floor if floor else float('nan'):10.2f} x")
    if args.windows > 1 and floor:
        later = floor * (args.windows - 1) / args.windows  # the floor's share of windows 1…N−1
        print(f"  after start-up     {(wall - first_window_s) / later:10.2f} x   (windows 1…N−1 "
              "against their share of the floor)")
    print(f"log bytes per window {log_bytes / args.windows:10.0f}     ({log_bytes / 1e6:.1f} MB)")
    for name, kb in sorted(peaks.items()):
        print(f"peak RSS {name:<12s}{kb / 1024:10.1f} MB")
    print()
    print(pool_share_by_month(out).to_string(float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
