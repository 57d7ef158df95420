"""Cost of the grid federate's work per window and per query against a bare opendssdirect loop
doing the same minimal work, with every timed power flow counted and checked for convergence.

usage: python benchmarks/powerflow.py [NETWORK] [--windows N]

Injections are what a shipped population produces: on IEEE 13 the quickstart population
(configs/fragments/population_ieee13.yaml), elsewhere one household per load and phase of the
feeder (the prosumer model's default household: 2–5 kW peak load, half with 3–8 kWp PV), over
N consecutive 15-minute windows from midnight of the summer solstice. A query adds one 5 kWh
trade (±20 kW) at a bus phase of the population to the window's state.
- bare window: set every injection that changed, solve, read voltages and losses;
- bare query: set the one traded injection, solve, read voltages and losses, set it back;
- the grid service does the same plus VUF, line loadings, violations, publications, answers.
Printed: ms per window and per query for each, their ratio, and how many of the timed power
flows converged (a benchmark that times failed solves measures nothing).
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import yaml

from lemcosim.federates.grid.model import GridModel
from lemcosim.federates.grid.service import GridService
from lemcosim.federates.prosumers.config import PopulationConfig
from lemcosim.federates.prosumers.population import Population
from lemcosim.networks.builder import dss
from lemcosim.networks.loader import load_network

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
WINDOW_S = 900.0
TRADE_KW = 20.0  # 5 kWh in a 15-minute window


def population(network: str) -> PopulationConfig:
    if network == "ieee13":
        section = yaml.safe_load((CONFIGS / "fragments" / "population_ieee13.yaml").read_text())
        return PopulationConfig.model_validate(section["prosumers"])
    groups = []
    for phase in "abc":
        buses = sorted({ld.bus for ld in load_network(network).loads if phase in ld.phases})
        if buses:
            groups.append({"name": f"h{phase}", "count": len(buses), "buses": buses,
                           "phases": [phase]})
    return PopulationConfig.model_validate({"seed": 1, "groups": groups})


def injections_per_window(network: str, windows: int) -> list[dict]:
    pop = Population.from_config(population(network), WINDOW_S, datetime(2026, 6, 21))
    return [pop.injections(pop.step(w)) for w in range(windows)]


def trades(windows: list[dict], seed: int = 1) -> list[tuple[str, float]]:
    """One trade per window: a bus phase of the population, buying or selling 5 kWh."""
    rng = np.random.default_rng(seed)
    keys = sorted(windows[0])
    return [(keys[rng.integers(len(keys))], TRADE_KW * rng.choice([-1.0, 1.0]))
            for _ in windows]


def time_service(network: str, windows: list[dict], queries: list[tuple[str, float]]
                 ) -> tuple[float, float, int, int]:
    service = GridService(GridModel(network))
    service.solve_window(windows[0])  # creates the injection elements once
    converged = 0
    start = time.perf_counter()
    for inj in windows:
        report = service.solve_window(inj)
        report.publications()
        report.rows()
        converged += report.flow.converged
    per_window = (time.perf_counter() - start) / len(windows)
    per_query = 0.0
    for inj, (key, p_kw) in zip(windows, queries, strict=True):
        service.solve_window(inj)
        start = time.perf_counter()
        answer = service.answer_query({"id": 0, "injections": {key: [p_kw, 0.0]}})
        per_query += time.perf_counter() - start
        converged += bool(answer["converged"])
    return per_window, per_query / len(windows), converged, 2 * len(windows)


def time_bare(network: str, windows: list[dict], queries: list[tuple[str, float]]
              ) -> tuple[float, float, int]:
    """The same solves written directly against opendssdirect (the floor we compare with)."""
    GridModel(network).set_injections(windows[0])  # same circuit, same injection elements
    engine = dss()
    names = {k: "inj_" + k.replace(".", "_") for k in windows[0]}
    applied: dict[str, list[float]] = {}
    converged = 0

    def set_load(key: str, p: float, q: float) -> None:
        engine.Loads.Name(names[key])
        engine.Loads.kW(-p)
        engine.Loads.kvar(-q)

    def solve() -> None:
        nonlocal converged
        engine.Solution.Solve()
        converged += engine.Solution.Converged()
        engine.Circuit.AllBusVolts()
        engine.Circuit.Losses()

    def window(inj: dict) -> None:
        for key, (p, q) in inj.items():
            if applied.get(key) != [p, q]:
                set_load(key, p, q)
                applied[key] = [p, q]
        solve()

    start = time.perf_counter()
    for inj in windows:
        window(inj)
    per_window = (time.perf_counter() - start) / len(windows)
    per_query = 0.0
    for inj, (key, p_kw) in zip(windows, queries, strict=True):
        window(inj)
        p, q = applied[key]
        start = time.perf_counter()
        set_load(key, p + p_kw, q)
        solve()
        set_load(key, p, q)
        per_query += time.perf_counter() - start
    return per_window, per_query / len(windows), converged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("network", nargs="?", default="ieee123")
    parser.add_argument("--windows", type=int, default=96)
    args = parser.parse_args()
    windows = injections_per_window(args.network, args.windows)
    queries = trades(windows)
    bare_w, bare_q, bare_ok = time_bare(args.network, windows, queries)
    ours_w, ours_q, ours_ok, ours_n = time_service(args.network, windows, queries)
    n = args.windows
    print(f"{args.network}: {len(windows[0])} injected bus phases, {n} windows, {n} queries")
    print(f"  converged: bare {bare_ok}/{3 * n} timed power flows, grid service {ours_ok}/{ours_n}")
    print(f"  per window: grid service {ours_w * 1e3:7.3f} ms   bare opendssdirect "
          f"{bare_w * 1e3:7.3f} ms   ratio {ours_w / bare_w:5.2f}x")
    print(f"  per query:  grid service {ours_q * 1e3:7.3f} ms   bare opendssdirect "
          f"{bare_q * 1e3:7.3f} ms   ratio {ours_q / bare_q:5.2f}x")


if __name__ == "__main__":
    main()
