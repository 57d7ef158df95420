"""How often HELICS stalls the FSVR-assist federation, by time coordination, beside a busy core.

usage: python benchmarks/helics_stall.py [--runs N] [--scenario NAME] [--idle] [--set KEY=VALUE ...]

Runs SCENARIO (default ch5_ieee13_all_buyer_fsvr: market, grid and the FSVR controller in
assist mode, two interruptible federates that wake each other) N times (default 12) under each
of `helics.time_coordination: distributed` and `global`, with the runner's stall restart off
(`helics.stall_restarts=0`) and a 20 s whole-run limit, while one busy-looping process of ours
takes a core (`--idle`: without it). Prints how many runs finished and how many the runner found
stalled (every federate waiting in a time request, HELICS granting none): the evidence behind
`auto` choosing global coordination for this federation (docs/performance.md, "The HELICS
stall"), and the check to repeat when a HELICS release fixes the distributed coordinator.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runs import run_command  # noqa: E402

STALL = "every running federate waits in a time request"


def one_run(scenario: str, coordination: str, out: Path, overrides: list[str]) -> str:
    """'finished', 'stalled' or 'failed: <last line>'."""
    proc = subprocess.run(
        run_command(scenario, out, [f"helics.time_coordination={coordination}",
                                    "helics.stall_restarts=0", "helics.timeout_s=20", *overrides]),
        capture_output=True, text=True, timeout=120)
    if proc.returncode == 0:
        return "finished"
    if STALL in proc.stderr:
        return "stalled"
    return "failed: " + (proc.stderr.strip().splitlines() or ["?"])[-1][:200]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=12)
    parser.add_argument("--scenario", default="ch5_ieee13_all_buyer_fsvr")
    parser.add_argument("--idle", action="store_true", help="no busy core beside the runs")
    parser.add_argument("--set", action="append", default=[], dest="overrides",
                        help="a scenario override for every run, e.g. helics.cpu_placement=off")
    args = parser.parse_args()
    busy = None if args.idle else subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for coordination in ("distributed", "global"):
                outcomes = [one_run(args.scenario, coordination, Path(tmp) / f"{coordination}{k}",
                                    args.overrides)
                            for k in range(args.runs)]
                stalled = outcomes.count("stalled")
                finished = outcomes.count("finished")
                print(f"{args.scenario}, {coordination} coordination, "
                      f"{'idle' if args.idle else 'one busy core'}: {finished} of {args.runs} "
                      f"finished, {stalled} stalled", flush=True)
                for other in sorted({o for o in outcomes if o.startswith("failed")}):
                    print(f"  {other}")
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()


if __name__ == "__main__":
    main()
