"""Where a window's CPU goes and how long each thread waits for a core, per thread of every
process of the federation (/proc/PID/task/TID/schedstat), as a user runs it.

usage: python benchmarks/threads.py [SCENARIO] [--windows N] [--set KEY=VALUE ...]

Runs `lemcosim run SCENARIO` (default year_ieee13, 700 windows) and reads every thread's CPU
time, run-queue wait (runnable but not running: on 2 cores, waiting for another thread to leave
a core) and number of times it was scheduled, at the market's window 100 and 50 windows before
the end. Prints per window, per thread (name and TID; the main thread's TID is the process's
PID, HELICS' and zmq's threads are "python" and "ZMQbg/IO/0"): CPU ms, run-queue wait ms, and
the wait per scheduling. A market–grid round trip wakes about eight HELICS and zmq threads in
three processes; each such wake waits its thread's share of the run queue.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runs import run_command  # noqa: E402
from year import amm_window, federation_pids  # noqa: E402


def snapshot(pids: dict[str, int]) -> dict[tuple[str, str], tuple[str, int, int, int]]:
    """(process, TID) → (thread name, CPU ns, run-queue wait ns, times scheduled)."""
    threads = {}
    for name, pid in pids.items():
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                comm = (task / "comm").read_text().strip()
                cpu_ns, wait_ns, slices = map(int, (task / "schedstat").read_text().split())
            except (OSError, ValueError):
                continue  # a thread that ended
            threads[(name, task.name)] = (comm, cpu_ns, wait_ns, slices)
    return threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default="year_ieee13")
    parser.add_argument("--windows", type=int, default=700)
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args()
    if args.windows < 200:
        sys.exit("--windows: at least 200 (measured from window 100 to 50 before the end)")
    out = Path(tempfile.mkdtemp(prefix="lemcosim-threads-")) / "run"
    proc = subprocess.Popen(run_command(args.scenario, out, args.overrides, args.windows),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    pids: dict[str, int] = {}
    first = last = None
    start_window, end_window = 100, args.windows - 50
    while proc.poll() is None:
        pids = pids or federation_pids(out)
        window = amm_window(out)
        if pids and first is None and window >= start_window:
            first = (window, time.perf_counter(), snapshot(pids))
        if first is not None and last is None and window >= end_window:
            last = (window, time.perf_counter(), snapshot(pids))
        time.sleep(0.02)
    _, err = proc.communicate()
    if proc.returncode != 0 or first is None or last is None:
        sys.exit(f"{args.scenario} failed or ended before window {end_window}:\n{err[-2000:]}")
    n = last[0] - first[0]
    print(f"{args.scenario}: windows {first[0]}…{last[0]}, {(last[1] - first[1]) / n * 1e3:.2f} "
          "ms per window (wall)")
    print(f"{'process':10s} {'thread':16s} {'TID':>8s} {'CPU ms':>8s} {'wait ms':>8s} "
          f"{'scheduled':>9s} {'wait/sched µs':>13s}")
    rows = []
    for key, (comm, cpu, wait, slices) in last[2].items():
        if key in first[2]:
            _, cpu0, wait0, slices0 = first[2][key]
            rows.append((key[0], comm, key[1], (cpu - cpu0) / n / 1e6, (wait - wait0) / n / 1e6,
                         (slices - slices0) / n))
    for proc_name, comm, tid, cpu_ms, wait_ms, scheduled in sorted(rows, key=lambda r: -r[3]):
        if cpu_ms >= 0.01 or wait_ms >= 0.01:
            per = wait_ms / scheduled * 1e3 if scheduled else float("nan")
            print(f"{proc_name:10s} {comm:16s} {tid:>8s} {cpu_ms:8.2f} {wait_ms:8.2f} "
                  f"{scheduled:9.1f} {per:13.0f}")
    print(f"total per window: CPU {sum(r[3] for r in rows):.2f} ms, run-queue wait "
          f"{sum(r[4] for r in rows):.2f} ms (summed over threads)")


if __name__ == "__main__":
    main()
