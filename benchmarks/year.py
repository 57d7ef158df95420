"""A trading year on IEEE 13 (`year_ieee13`) as a user runs it, against floors measured in the
same run, and whether memory stays flat over it.

usage: python benchmarks/year.py [--windows N] [--out DIR] [--floor-max N] [--set KEY=VALUE]
       python benchmarks/year.py --report RUN_DIR/year_benchmark.json

Runs `lemcosim run year_ieee13` (all 35,040 windows, or the first N) and prints: wall time,
cost per window, peak RSS of every process (VmHWM), log bytes per window, the share of approved
energy settled through the pool by month (`lemcosim.analysis.pool_share_by_month`), and the
ratio of the wall time to a floor: a bare opendssdirect loop doing as many power flows as the
grid did plus a bare 2-federate HELICS ping-pong doing as many round trips as the market's queries,
on the CPUs the run placed the market, the grid and the broker on (benchmarks/floors.py).
`--floor-max` measures at most N of each and scales linearly (said so).

Memory: every 0.2 s it reads each process's current RSS (VmRSS in /proc/PID/status; the
federates, the broker and the runner) with the market's progress (logs/amm.progress: the last
window it completed), and prints the RSS after the first window and at 10, 25, 50, 75 and 100 %
of the windows, two slopes of RSS over the second half of the windows (up to the last, whose
shutdown is no steady state) in MB per 1000 windows, and a verdict. The raw slope fits every
sample; the plateau slope fits the lowest RSS of each tenth of that half (at least
PLATEAU_BIN_WINDOWS windows each): the federates' log writers merge their parts every ~1000
windows and hold ~30-60 MB while they do, a transient the raw slope reads as growth or shrinkage
depending on where the half starts, while a leak raises every plateau alike. Memory is flat if
no process's plateau slope (the raw one where fewer than three tenths exist) exceeds
FLAT_MB_PER_1000_WINDOWS. Everything printed also goes to RUN_DIR/year_benchmark.json, with every
RSS sample; `--report RUN_DIR/year_benchmark.json` prints the memory part of a saved run again
(with this version's verdict) without running anything. While it runs, every sample also goes
to RUN_DIR/rss_samples.jsonl (flushed every JOURNAL_FLUSH_S), so that a run stopped before its
end (hours at 6,000 prosumers) keeps its memory record: `--report RUN_DIR` judges it over the
windows the market completed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from floors import floor_placement, opendss_floor, pingpong_floor  # noqa: E402
from runs import run_command  # noqa: E402

from lemcosim.analysis import load_run, pool_share_by_month  # noqa: E402

SAMPLE_S = 0.2
JOURNAL_FLUSH_S = 30.0
# Flat: over the second half of the run, no process's RSS grows faster than 1 MB per 1000 windows
# (1 kB per window, 35 MB over a whole year). Issue 13 measured 210 MB per 1000 windows in the
# AMM and recorder when a federate ran ahead of the market; a leak of one small record per window
# crosses it. On a short run the slope is dominated by allocator steps (a 1 MB step within 100
# windows reads as 10 MB per 1000): judge memory on runs of some thousands of windows.
FLAT_MB_PER_1000_WINDOWS = 1.0
SHORT_RUN_WINDOWS = 10_000
# The plateau slope: the second half in tenths of at least this many windows (the log writers
# merge about every 960 windows, so a tenth of a long run holds a plateau between merges)
PLATEAU_BINS = 10
PLATEAU_BIN_WINDOWS = 1000
MARKS = [("1st window", 0.0), ("10 %", 0.10), ("25 %", 0.25), ("50 %", 0.50), ("75 %", 0.75),
         ("100 %", 1.0)]


def proc_status_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (kB) of a live process, {} if it is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    return {k: int(v.split()[0]) for k, _, v in (line.partition(":") for line in lines)
            if k in ("VmRSS", "VmHWM")}


def federation_pids(out: Path) -> dict[str, int]:
    """Federate (and broker) name → PID, from the runner's logs/pids.json; {} before it is
    written (or while it is being written)."""
    try:
        return json.loads((out / "logs" / "pids.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def amm_window(out: Path) -> int:
    """The last window the market completed (its progress file), −1 before it starts."""
    try:
        return int(json.loads((out / "logs" / "amm.progress").read_text())["window"])
    except (OSError, ValueError, KeyError):
        return -1


@dataclass
class Sample:
    t_s: float
    window: int  # the last window the market completed
    rss_kb: dict[str, int]


@dataclass
class Watch:
    """What the benchmark saw of the run while it went."""
    samples: list[Sample] = field(default_factory=list)
    peak_kb: dict[str, int] = field(default_factory=dict)
    first_window_s: float = float("nan")  # until the market completed window 0

    journal: TextIO | None = None  # one JSON line per sample (RUN_DIR/rss_samples.jsonl)

    def sample(self, t_s: float, window: int, pids: dict[str, int]) -> None:
        rss = {}
        for name, pid in pids.items():
            status = proc_status_kb(pid)
            if "VmRSS" in status:
                rss[name] = status["VmRSS"]
                self.peak_kb[name] = max(self.peak_kb.get(name, 0), status.get("VmHWM", 0))
        if window >= 0 and math.isnan(self.first_window_s):
            self.first_window_s = t_s
        if window >= 0 and rss:
            self.samples.append(Sample(t_s, window, rss))
            if self.journal is not None:
                self.journal.write(json.dumps(_sample_json(self.samples[-1])) + "\n")


def run_year(out: Path, windows: int, overrides: list[str]) -> tuple[float, Watch]:
    """Run the scenario, sampling its processes every SAMPLE_S: the wall seconds and the samples."""
    start = time.perf_counter()
    proc = subprocess.Popen(run_command("year_ieee13", out, overrides, windows),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pids = {"runner": proc.pid}
    while not out.is_dir() and proc.poll() is None:  # the runner makes the run folder
        time.sleep(SAMPLE_S)
    # a runner that failed before making it leaves nothing to journal: its error is reported below
    with (open(out / "rss_samples.jsonl", "w") if out.is_dir() else contextlib.nullcontext()
          ) as journal:
        watch = Watch(journal=journal)
        flushed = start
        while proc.poll() is None:
            if len(pids) == 1:
                pids |= federation_pids(out)
            now = time.perf_counter()
            watch.sample(now - start, amm_window(out), pids)
            if now - flushed >= JOURNAL_FLUSH_S:
                journal.flush()
                flushed = now
            time.sleep(SAMPLE_S)
    wall = time.perf_counter() - start
    _, err = proc.communicate()
    if proc.returncode != 0:
        sys.exit(f"year_ieee13 failed:\n{err}")
    return wall, watch


def rss_marks(samples: list[Sample], windows: int) -> list[tuple[str, Sample]]:
    """For each mark f, the first sample once the market completed ⌈f·N⌉ windows (at least 1).
    At 100 % the federates may already be shutting down (writing their logs' last segments)."""
    marks = []
    for label, f in MARKS:
        due = max(1, math.ceil(f * windows))
        hit = next((s for s in samples if s.window + 1 >= due), None)
        if hit is not None:
            marks.append((label, hit))
    return marks


def second_half_slopes(samples: list[Sample], windows: int) -> dict[str, float]:
    """Per process: least-squares slope of RSS over the market's completed windows, from half the
    windows up to before the last (the federates' shutdown, which writes the logs' last segments,
    is no steady state: its peak is in VmHWM), in MB per 1000 windows; NaN with fewer than two
    distinct windows sampled."""
    half = [s for s in samples if windows / 2 <= s.window + 1 < windows]
    names = sorted({n for s in half for n in s.rss_kb})
    slopes = {}
    for name in names:
        x = np.array([s.window for s in half if name in s.rss_kb], dtype=float)
        y = np.array([s.rss_kb[name] for s in half if name in s.rss_kb], dtype=float) / 1024
        slopes[name] = (float(np.polyfit(x, y, 1)[0] * 1000) if len(np.unique(x)) >= 2
                        else float("nan"))
    return slopes


def plateau_slopes(samples: list[Sample], windows: int) -> dict[str, float]:
    """Per process: least-squares slope, in MB per 1000 windows, of the lowest RSS in each bin of
    the second half (as `second_half_slopes`), against the bin's middle window. The half is cut
    into PLATEAU_BINS bins of equal windows, fewer where a bin would hold less than
    PLATEAU_BIN_WINDOWS; NaN with fewer than three bins sampled. Transient peaks (a log merge)
    leave a bin's lowest RSS alone; steady growth raises it in every bin."""
    first, last = math.ceil(windows / 2), windows - 1  # completed windows w + 1 in [first, last)
    bins = min(PLATEAU_BINS, (last - first) // PLATEAU_BIN_WINDOWS)
    slopes: dict[str, float] = {}
    if bins < 3:
        return {name: float("nan") for s in samples for name in s.rss_kb}
    edges = np.linspace(first, last, bins + 1)
    half = [s for s in samples if first <= s.window + 1 < last]
    for name in sorted({n for s in half for n in s.rss_kb}):
        done = np.array([s.window + 1 for s in half if name in s.rss_kb], dtype=float)
        rss_mb = np.array([s.rss_kb[name] for s in half if name in s.rss_kb], dtype=float) / 1024
        which = np.clip(np.searchsorted(edges, done, side="right") - 1, 0, bins - 1)
        sampled = np.unique(which)
        if len(sampled) < 3:
            slopes[name] = float("nan")
            continue
        floors = [rss_mb[which == b].min() for b in sampled]
        middles = (edges[sampled] + edges[sampled + 1]) / 2
        slopes[name] = float(np.polyfit(middles, floors, 1)[0] * 1000)
    return slopes


def verdict_slopes(raw: dict[str, float], plateau: dict[str, float]) -> dict[str, float]:
    """The slope the verdict judges per process: the plateau slope, the raw one where it is NaN."""
    nan = float("nan")
    return {name: v if math.isnan(plateau.get(name, nan)) else plateau[name]
            for name, v in raw.items()}


def memory_flat(slopes: dict[str, float]) -> bool | None:
    """True if no slope exceeds the threshold, None if none could be measured."""
    known = [v for v in slopes.values() if not math.isnan(v)]
    return all(v <= FLAT_MB_PER_1000_WINDOWS for v in known) if known else None


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


def _num(v):
    """A JSON value: numpy scalars as Python numbers, NaN as null."""
    v = v.item() if isinstance(v, np.generic) else v
    return None if isinstance(v, float) and math.isnan(v) else v


def print_memory(samples: list[Sample], peak_kb: dict[str, int], n: int) -> dict:
    """Print RSS at the marks, both slopes and the verdict; return them for the JSON report."""
    marks = rss_marks(samples, n) if samples else []
    raw = second_half_slopes(samples, n)
    plateau = plateau_slopes(samples, n)
    flat = memory_flat(verdict_slopes(raw, plateau))
    names = sorted(raw) or sorted(peak_kb)
    for name, kb in sorted(peak_kb.items()):
        print(f"peak RSS {name:<12s}{kb / 1024:10.1f} MB")
    print()
    print(f"RSS (MB)    {'window':>7s}  " + "".join(f"{name:>10s}" for name in names))
    for label, s in marks:
        cells = "".join(f"{s.rss_kb[k] / 1024:10.1f}" if k in s.rss_kb else f"{'-':>10s}"
                        for k in names)
        print(f"{label:<11s} {s.window + 1:7d}  {cells}")
    # a process sampled in no window of the second half (a short, fast run) has no slope
    for label, slopes in (("raw", raw), ("plateau", plateau)):
        print(f"{'MB/1000 w':<11s} {label:>7s}  "
              + "".join(f"{slopes.get(k, float('nan')):10.2f}" for k in names))
    verdict = {True: "yes", False: "no", None: "not measured"}[flat]
    print(f"memory flat: {verdict} (threshold {FLAT_MB_PER_1000_WINDOWS:g} MB per 1000 windows, "
          f"every process, on the plateau slope: the lowest RSS of each tenth of the second half; "
          f"{len(samples)} samples)")
    if n < SHORT_RUN_WINDOWS:
        print(f"  (a run of fewer than {SHORT_RUN_WINDOWS} windows: allocator and log-merge steps "
              "dominate the slope; judge memory on a longer run)")
    return {"marks": [{"at": label, "windows_done": s.window + 1, "t_s": s.t_s,
                       "rss_kb": s.rss_kb} for label, s in marks],
            "slope_mb_per_1000_windows_second_half": {k: _num(v) for k, v in raw.items()},
            "slope_mb_per_1000_windows_plateau": {k: _num(v) for k, v in plateau.items()},
            "flat": flat, "threshold_mb_per_1000_windows": FLAT_MB_PER_1000_WINDOWS}


def _sample_json(s: Sample) -> dict:
    return {"t_s": round(s.t_s, 3), "windows_done": s.window + 1, "rss_kb": s.rss_kb}


def _sample_of(row: dict) -> Sample:
    return Sample(row["t_s"], row["windows_done"] - 1, row["rss_kb"])


def report_again(path: Path) -> None:
    """The memory part of a saved year_benchmark.json, judged by this version; or, given a run
    folder, of its sample journal, over the windows the market completed (a stopped run)."""
    if path.is_dir():
        lines = (path / "rss_samples.jsonl").read_text().splitlines()
        samples = [_sample_of(json.loads(line)) for line in lines if line.endswith("}")]
        if not samples:
            sys.exit(f"{path / 'rss_samples.jsonl'}: no samples")
        done = samples[-1].window + 1
        print(f"{path}: {done} windows completed, from its sample journal (peak RSS not kept)")
        print_memory(samples, {}, done)
        return
    report = json.loads(path.read_text())
    samples = [_sample_of(s) for s in report["rss"]["samples"]]
    print(f"{report['scenario']}, {report['windows']} windows, {path}")
    print_memory(samples, report["peak_rss_kb"], report["windows"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=35040)
    parser.add_argument("--out", type=Path, default=None, help="run folder (default: a temporary one)")
    parser.add_argument("--floor-max", type=int, default=None,
                        help="measure at most N solves and round trips for the floor, scale linearly")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="passed to lemcosim run, e.g. --set time.start=2026-07-01T00:00:00")
    parser.add_argument("--report", type=Path, default=None, metavar="JSON",
                        help="print the memory figures of a saved year_benchmark.json (or of a run folder's "
                             "sample journal), run nothing")
    args = parser.parse_args()
    if args.report:
        report_again(args.report)
        return
    out = args.out or Path(tempfile.mkdtemp(prefix="year_ieee13_")) / "run"
    n = args.windows
    wall, watch = run_year(out, n, args.overrides)
    window_s = float(yaml.safe_load((out / "scenario.yaml").read_text())["time"]["window_s"])
    log_bytes = sum(f.stat().st_size for f in (out / "logs").rglob("*") if f.is_file())
    solves, round_trips = counts(out)
    n_solves, n_trips = solves, round_trips
    if args.floor_max:
        n_solves, n_trips = min(solves, args.floor_max), min(round_trips, args.floor_max)
    dss_measured_s, converged = opendss_floor("ieee13", n_solves)
    ping_measured_s = pingpong_floor(n_trips, placement=floor_placement(out)) if n_trips else 0.0
    dss_s = dss_measured_s * solves / max(n_solves, 1)
    ping_s = ping_measured_s * round_trips / max(n_trips, 1)
    scaled = n_solves < solves or n_trips < round_trips
    scale_note = (f" (measured {n_solves} solves / {n_trips} round trips, scaled linearly)"
                  if scaled else "")
    floor = dss_s + ping_s
    first_s = watch.first_window_s
    steady_ms = (wall - first_s) / (n - 1) * 1e3 if n > 1 else float("nan")
    ratio = wall / floor if floor else float("nan")
    later_ratio = ((wall - first_s) / (floor * (n - 1) / n)) if n > 1 and floor else float("nan")

    print(f"year_ieee13, {n} windows of {window_s:g} s, run folder {out}")
    print(f"wall time            {wall:10.1f} s   ({wall / n * 1e3:.1f} ms per window)")
    if n > 1:
        print(f"after the 1st window {wall - first_s:10.1f} s   ({steady_ms:.1f} ms per "
              f"window; start-up and window 0: {first_s:.1f} s)")
    print(f"power flows          {solves:10d}     round trips {round_trips} "
          f"({round_trips / n:.1f} per window)")
    print(f"floor                {floor:10.1f} s   = opendssdirect {dss_s:.1f} s ({converged}/"
          f"{n_solves} converged) + HELICS ping-pong {ping_s:.1f} s{scale_note}")
    print(f"ratio to the floor   {ratio:10.2f} x")
    if n > 1 and floor:
        print(f"  after start-up     {later_ratio:10.2f} x   (windows 1…N−1 against their share "
              "of the floor)")
    print(f"log bytes per window {log_bytes / n:10.0f}     ({log_bytes / 1e6:.1f} MB)")
    memory = print_memory(watch.samples, watch.peak_kb, n)
    print()
    by_month = pool_share_by_month(out)
    print(by_month.to_string(float_format=lambda v: f"{v:.3f}"))

    report = {
        "scenario": "year_ieee13", "windows": n, "window_s": window_s, "overrides": args.overrides,
        "run_dir": str(out), "wall_s": wall, "first_window_s": _num(first_s),
        "ms_per_window": wall / n * 1e3, "ms_per_window_after_first": _num(steady_ms),
        "power_flows": solves, "round_trips": round_trips,
        "floor": {"opendss_s": dss_s, "opendss_converged": converged, "opendss_measured_solves":
                  n_solves, "pingpong_s": ping_s, "pingpong_measured_round_trips": n_trips,
                  "scaled_linearly": scaled, "total_s": floor},
        "ratio_to_floor": _num(ratio), "ratio_to_floor_after_first": _num(later_ratio),
        "log_bytes": log_bytes, "log_bytes_per_window": log_bytes / n,
        "peak_rss_kb": watch.peak_kb,
        "rss": {"sample_s": SAMPLE_S, **memory,
                "samples": [_sample_json(s) for s in watch.samples]},
        "pool_share_by_month": [{k: _num(v) for k, v in row.items()}
                                for row in by_month.reset_index().to_dict("records")],
    }
    path = out / "year_benchmark.json"
    path.write_text(json.dumps(report, indent=1))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
