"""What a trading window costs in the federation, split and set against floors measured in the
same run.

usage: python benchmarks/cosim.py [SCENARIO] [--windows N] [--prosumers N ...] [--core zmq|tcp]
                                  [--set KEY=VALUE ...]

Runs `lemcosim run SCENARIO` (default year_ieee13, first N windows, default 192 = two days) with
LEMCOSIM_PROFILE=1: every federate logs per window its wall time, the part spent waiting in
HELICS, in log I/O, the rest (its own work), its time requests, messages and RSS. Printed per
window (window 0, the start-up, left out): transactions, HELICS round trips, messages, power
flows (and how many did not converge, and how many answered an intent the market decided with:
the others are the window solves and the batches' intents past a mismatch); per federate work /
HELICS wait / I/O and RSS at the first, middle and last window; the HELICS cost of a round trip
(the market's round-trip time less the grid's time serving it and the part of its window solve
after the request left; and the two hand-offs alone, from wall-clock stamps of both federates)
against a bare 2-federate ping-pong on the same core and CPUs, with the run's message sizes and
with 1-byte messages, and the grid's time per power flow against a bare opendssdirect solve
(benchmarks/floors.py), both measured in this run; the window's wall time extrapolated to a year
of 35,040 windows (an extrapolation, not a run). `--prosumers 60 600 6000` repeats the run with
the population scaled (every group's count × N/60) and prints the per-transaction cost curve.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from floors import floor_placement, opendss_floor, pingpong_floor  # noqa: E402
from runs import run_command  # noqa: E402

from lemcosim.analysis import load_run  # noqa: E402
from lemcosim.runner.validate import load_scenario  # noqa: E402

YEAR_WINDOWS = 35_040
FLOOR_MAX = 2000  # round trips of the ping-pong floors; at most this many solves of the OpenDSS one


def run(scenario: str, windows: int, out: Path, overrides: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(run_command(scenario, out, overrides, windows), capture_output=True,
                          text=True, env=dict(os.environ, LEMCOSIM_PROFILE="1"))
    if proc.returncode != 0:
        raise SystemExit(f"run failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


def population_overrides(scenario: str, prosumers: int) -> list[str]:
    """--set values scaling every prosumer group's count by prosumers / (their sum)."""
    groups = load_scenario(scenario)[0].prosumers.groups
    total = sum(g.count for g in groups)
    counts = [max(1, round(g.count * prosumers / total)) for g in groups]
    counts[0] += prosumers - sum(counts)
    return [f"prosumers.groups.{i}.count={c}" for i, c in enumerate(counts)]


def measure(run_dir: Path) -> dict:
    """Per-window means over windows ≥ 1 of every profile counter, per federate."""
    df = load_run(run_dir, quantities=None)
    prof = df[(df.entity == "profile") & (df.window >= 1)]
    per_fed = prof.pivot_table(index=["federate", "window"], columns="quantity", values="value")
    grid = df[(df.federate == "grid") & (df.entity == "feeder") & (df.window >= 1) & df.quantity.isin(
        ["power_flows", "power_flows_failed", "query_requests", "control_requests"])]
    grid = grid.pivot_table(index="window", columns="quantity", values="value", aggfunc="sum")
    return {"per_fed": per_fed, "grid": grid}


def step_after_request_s(amm, grid) -> pd.Series:
    """Per window, seconds of the grid's window step that ran after the market's first request
    of the window had left (wall clocks of one host; both act at the grid's sub-step of the same
    window): the batch is served once that step is done, so that part of the market's wait is
    the grid's work, not HELICS's. Empty without the stamps."""
    if "first_request_at_s" not in amm or "step_ended_at_s" not in grid:
        return pd.Series(dtype=float)
    both = grid[["step_started_at_s", "step_ended_at_s"]].join(
        amm["first_request_at_s"], how="inner").dropna()
    return (both.step_ended_at_s - np.maximum(both.step_started_at_s, both.first_request_at_s)
            ).clip(lower=0.0)


def helics_round_trip_per_window_s(amm, grid, inside: pd.Series) -> pd.Series:
    """Per window with round trips, the market's mean round trip less the grid's serving and
    its window step after the request left (`inside`, from `step_after_request_s`)."""
    trips = amm["round_trips"][amm["round_trips"] > 0]
    net = (amm["round_trip_s"] - grid["serve_s"].reindex(amm.index).fillna(0.0)
           - inside.reindex(amm.index).fillna(0.0))
    return (net[trips.index] / trips).dropna()


def first_round_trip_hops_ms(amm, grid) -> tuple[float, float, float] | None:
    """Medians over windows of the first round trip's two hand-offs (ms): from the market's
    request to the grid's first serve after it, the grid's window step inside that
    (`step_after_request_s`), and from the grid's first answer after the request to the market
    holding it. Serves are matched by wall clock: a batch the grid serves after its window's
    profile row lands in the next row."""
    needed = (amm, "first_request_at_s"), (amm, "first_answer_at_s"), (
        grid, "serve_started_at_s"), (grid, "answer_sent_at_s"), (grid, "step_ended_at_s")
    if any(column not in frame for frame, column in needed):
        return None
    market = amm[["first_request_at_s", "first_answer_at_s"]].dropna()
    sent = market.first_request_at_s.to_numpy()

    def first_after(column: str) -> np.ndarray:
        times = np.sort(grid[column].dropna().to_numpy())
        k = np.searchsorted(times, sent)
        return np.where(k < len(times), times[np.minimum(k, len(times) - 1)], np.nan)

    return (float(np.nanmedian(first_after("serve_started_at_s") - sent) * 1e3),
            float(step_after_request_s(amm, grid).median() * 1e3),
            float(np.nanmedian(market.first_answer_at_s.to_numpy() - first_after("answer_sent_at_s"))
                  * 1e3))


def message_sizes(amm: pd.DataFrame) -> tuple[int, int]:
    """Mean bytes of the market's requests and of the answers it received (the floor's sizes)."""
    if "bytes_sent" not in amm or not amm["messages_sent"].sum():
        return 1, 1
    return (round(amm["bytes_sent"].sum() / amm["messages_sent"].sum()),
            round(amm["bytes_received"].sum() / max(amm["messages_received"].sum(), 1)))


def report(run_dir: Path, wall_s: float, windows: int, core: str, network: str) -> dict:
    m = measure(run_dir)
    per_fed, grid = m["per_fed"], m["grid"]
    n = len(grid)
    amm = per_fed.loc["amm"] if "amm" in per_fed.index.get_level_values(0) else None
    # medians: a federate's first measured window may hold another's start-up (lockstep)
    mean = per_fed.groupby(level=0).median()
    round_trips = float(amm["round_trips"].sum()) if amm is not None else 0.0
    transactions = float(amm["transactions"].sum()) if amm is not None else 0.0
    flows = float(grid["power_flows"].sum())
    failed = float(grid["power_flows_failed"].sum())
    messages = float(per_fed["messages_sent"].sum()) if "messages_sent" in per_fed else 0.0
    print(f"{run_dir.name}: {windows} windows, {n} measured (window 0, the start-up, left out), "
          f"run wall time {wall_s:.1f} s")
    used = float(amm["approvals_used"].sum()) if amm is not None and "approvals_used" in amm else 0.0
    print(f"  per window: {transactions / n:6.1f} transactions  {round_trips / n:6.2f} round trips  "
          f"{messages / n:6.2f} messages  {flows / n:6.2f} power flows "
          f"({failed:.0f} of {flows:.0f} did not converge)")
    if used:  # batched approval (the profile counts the answers the market used)
        print(f"  of the power flows per window, {used / n:.2f} answered an intent the market "
              f"decided with ({used / flows:.0%}; the window solves and those past a mismatch "
              "are the rest)")
    print("  per window (median), ms  work   HELICS wait    I/O    wall   time requests   "
          "RSS MB first/max/last, trend over the 2nd half per 1000 windows")
    for fed, row in mean.iterrows():
        rss = per_fed.loc[fed]["rss_mb"]
        half = rss.iloc[len(rss) // 2:]
        trend = np.polyfit(half.index.to_numpy(float), half.to_numpy(), 1)[0] * 1000 if len(
            half) > 2 else float("nan")
        print(f"  {fed:20s} {row.work_s * 1e3:7.2f} {row.helics_wait_s * 1e3:11.2f} "
              f"{row.io_s * 1e3:7.2f} {row.wall_s * 1e3:7.2f} {row.time_requests:12.1f}      "
              f"{rss.iloc[0]:6.1f} {rss.max():6.1f} {rss.iloc[-1]:6.1f} {trend:+7.1f} MB")
    out = {"transactions": transactions / n, "round_trips": round_trips / n}
    if round_trips:
        grid_fed = per_fed.loc["grid"]
        serve = float(grid_fed["serve_s"].sum())
        inside = step_after_request_s(amm, grid_fed)
        solve_inside = float(inside.sum())
        helics_rt = (float(amm["round_trip_s"].sum()) - serve - solve_inside) / round_trips
        helics_rt_median = helics_round_trip_per_window_s(amm, grid_fed, inside).median()
        k = FLOOR_MAX  # a floor of a few hundred round trips varies by ±10 % from run to run
        placement = floor_placement(run_dir)
        sizes = message_sizes(amm)
        ping = pingpong_floor(k, core=core, placement=placement) / k
        ping_sized = pingpong_floor(k, core=core, placement=placement, payload_bytes=sizes) / k
        where = (f"placed as the run: market and broker on CPU {placement['ping']}, grid on "
                 f"{placement['pong']}" if placement else "unplaced, as the run")
        print(f"  bare ping-pong ({core}, {where}): {ping_sized * 1e3:.3f} ms per round trip "
              f"with the run's message sizes ({sizes[0] / 1e3:.1f} kB request, "
              f"{sizes[1] / 1e3:.1f} kB answer), {ping * 1e3:.3f} ms with 1-byte messages"
              + (f"; unplaced {pingpong_floor(k, core=core) / k * 1e3:.3f} ms" if placement
                 else ""))
        print(f"  HELICS per round trip {helics_rt * 1e3:.3f} ms mean, {helics_rt_median * 1e3:.3f}"
              f" ms median over windows (market's round trip less the grid's serving, "
              f"{serve / round_trips * 1e3:.3f} ms, and its window solve after the request left, "
              f"{solve_inside / round_trips * 1e3:.3f} ms): mean {helics_rt / ping_sized:.2f}x, "
              f"median {helics_rt_median / ping_sized:.2f}x the sized ping-pong; "
              f"{helics_rt / ping:.2f}x, {helics_rt_median / ping:.2f}x the 1-byte one")
        out |= {"helics_rt_ms": helics_rt * 1e3, "helics_rt_median_ms": helics_rt_median * 1e3,
                "pingpong_ms": ping * 1e3, "pingpong_sized_ms": ping_sized * 1e3}
        hops = first_round_trip_hops_ms(amm, grid_fed)
        if hops is not None:
            handoffs = hops[0] - hops[1] + hops[2]
            print(f"  HELICS hand-offs of the window's first round trip (wall clocks, medians): "
                  f"request sent → grid serving {hops[0]:.3f} ms less its window solve after the "
                  f"request left {hops[1]:.3f} ms, + answer sent → market has it {hops[2]:.3f} ms"
                  f" = {handoffs:.3f} ms: {handoffs / (ping_sized * 1e3):.2f}x the sized "
                  f"ping-pong, {handoffs / (ping * 1e3):.2f}x the 1-byte one (the rest of the "
                  f"line above is both sides' encoding, decoding and bookkeeping)")
            out["handoffs_ms"] = handoffs
    if flows:
        grid_work = float(per_fed.loc["grid"]["work_s"].sum())
        k = int(min(flows, FLOOR_MAX))
        dss_s, converged = opendss_floor(network, k)
        print(f"  grid work per power flow {grid_work / flows * 1e3:.3f} ms vs bare opendssdirect "
              f"{dss_s / k * 1e3:.3f} ms ({converged}/{k} converged): "
              f"{grid_work / flows / (dss_s / k):.2f}x")
    # the federates run in lockstep: the market's window is the federation's
    steady = float(mean.loc["amm", "wall_s"] if amm is not None else mean["wall_s"].max())
    print(f"  a window takes {steady * 1e3:.1f} ms (median): a year of {YEAR_WINDOWS} windows "
          f"extrapolates to {steady * YEAR_WINDOWS / 60:.1f} min (an extrapolation, not a run)")
    out["window_ms"] = steady * 1e3
    if transactions:
        out["amm_per_tx_ms"] = float(amm["work_s"].sum()) / transactions * 1e3
        print(f"  market work per transaction {out['amm_per_tx_ms']:.3f} ms")
    if flows:
        out["grid_per_flow_ms"] = float(per_fed.loc["grid"]["work_s"].sum()) / flows * 1e3
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default="year_ieee13")
    parser.add_argument("--windows", type=int, default=192)
    parser.add_argument("--prosumers", type=int, nargs="*", default=[])
    parser.add_argument("--core", choices=("zmq", "tcp"), default="zmq")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args()
    scenario = load_scenario(args.scenario)[0]
    network = scenario.network.name or "ieee13"
    overrides = [*args.overrides, f"helics.core_type={args.core}"]
    curve = []
    with tempfile.TemporaryDirectory(prefix="lemcosim-cosim-") as tmp:
        for n in args.prosumers or [None]:
            extra = population_overrides(args.scenario, n) if n else []
            out = Path(tmp) / f"{args.scenario}-{n or 'as-shipped'}"
            wall = run(args.scenario, args.windows, out, overrides + extra)
            curve.append((n, report(out, wall, args.windows, args.core, network)))
    if len(curve) > 1:
        print("prosumers  transactions/window  round trips/window  market ms/transaction  "
              "grid ms/power flow  window ms")
        nan = float("nan")
        for n, r in curve:
            print(f"{n:9d} {r['transactions']:20.1f} {r['round_trips']:19.2f} "
                  f"{r.get('amm_per_tx_ms', nan):22.3f} {r.get('grid_per_flow_ms', nan):19.3f} "
                  f"{r['window_ms']:10.1f}")


if __name__ == "__main__":
    main()
