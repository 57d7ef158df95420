"""Cost of the grid federate's work per window and per query against a bare opendssdirect loop
doing the same minimal work, with every timed power flow counted and checked for convergence.

usage: python benchmarks/powerflow.py [NETWORK] [--windows N] [--batch K]

Injections are what a shipped population produces: on IEEE 13 the quickstart population
(configs/fragments/population_ieee13.yaml), elsewhere one household per load and phase of the
feeder (the prosumer model's default household: 2–5 kW peak load, half with 3–8 kWp PV), over
N consecutive 15-minute windows from midnight of the summer solstice. A query adds one 5 kWh
trade (±20 kW) at a bus phase of the population to the window's state.
- bare window: set every injection that changed, solve, read voltages and losses;
- bare query: set the one traded injection, solve, read voltages and losses, set it back;
- batched approval: a window's BATCH trades (as many as year_ieee13's market sends in one
  round trip) evaluated in order, each on the state with every trade before it; bare: add the
  trade to its injection, solve, read voltages and losses; restore the window's state once;
- the grid service does the same plus VUF, line loadings, violations, publications, answers.
Printed: ms per window, per query and per batched intent for each, their ratio, and how many of
the timed power flows converged (a benchmark that times failed solves measures nothing).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from lemcosim.federates.common.approval import ApprovalChain, Intent
from lemcosim.federates.grid.model import GridModel, Limits
from lemcosim.federates.grid.service import GridService
from lemcosim.federates.prosumers.config import PopulationConfig
from lemcosim.federates.prosumers.population import Population
from lemcosim.networks.builder import dss
from lemcosim.networks.loader import load_network

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
WINDOW_S = 900.0
TRADE_KW = 20.0  # 5 kWh in a 15-minute window
BATCH_TRADE_KW = 2.0  # 0.5 kWh: a household's typical trade, so that most of a batch is approved


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


def bare_circuit(network: str, first: dict) -> tuple[Any, Callable[[str, float, float], None]]:
    """The grid model's circuit with its injection elements (`first`'s keys), and a setter that
    writes one injection straight through opendssdirect."""
    GridModel(network).set_injections(first)  # same circuit, same injection elements
    engine = dss()
    names = {k: "inj_" + k.replace(".", "_") for k in first}

    def set_load(key: str, p: float, q: float) -> None:
        engine.Loads.Name(names[key])
        engine.Loads.kW(-p)
        engine.Loads.kvar(-q)

    return engine, set_load


def bare_solve(engine: Any) -> bool:
    """Solve, read voltages and losses: the least a query needs. True if it converged."""
    engine.Solution.Solve()
    converged = bool(engine.Solution.Converged())
    engine.Circuit.AllBusVolts()
    engine.Circuit.Losses()
    return converged


def time_bare(network: str, windows: list[dict], queries: list[tuple[str, float]]
              ) -> tuple[float, float, int]:
    """The same solves written directly against opendssdirect (the floor we compare with)."""
    engine, set_load = bare_circuit(network, windows[0])
    applied: dict[str, list[float]] = {}
    converged = 0

    def solve() -> None:
        nonlocal converged
        converged += bare_solve(engine)

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


def batches(windows: list[dict], size: int, seed: int = 2) -> list[list[tuple[str, float]]]:
    """`size` trades per window at bus phases of the population, each buying or selling 0.5 kWh."""
    rng = np.random.default_rng(seed)
    keys = sorted(windows[0])
    return [[(keys[rng.integers(len(keys))], BATCH_TRADE_KW * rng.choice([-1.0, 1.0]))
             for _ in range(size)] for _ in windows]


def time_service_batched(network: str, windows: list[dict],
                         batch_of: list[list[tuple[str, float]]]) -> tuple[float, int, int, int]:
    """(s per intent, converged, approved, intents) of GridService.answer_sequence, under the
    approval rule of year_ieee13 (no_worse: the published IEEE 13 is beyond its limits)."""
    service = GridService(GridModel(network, limits=Limits(rule="no_worse")))
    elapsed, converged, approved, intents = 0.0, 0, 0, 0
    for inj, batch in zip(windows, batch_of, strict=True):
        service.solve_window(inj)
        request = {"chain": ApprovalChain(WINDOW_S, ()).to_json(),
                   "intents": [Intent(f"i{i}", {key: p_kw}, ()).to_json()
                               for i, (key, p_kw) in enumerate(batch)]}
        start = time.perf_counter()
        answers = service.answer_sequence(request)["answers"]
        elapsed += time.perf_counter() - start
        converged += sum(bool(a.get("converged")) for a in answers)
        approved += sum(bool(a.get("feasible")) for a in answers)
        intents += len(batch)
    return elapsed / intents, converged, approved, intents


def time_bare_batched(network: str, windows: list[dict],
                      batch_of: list[list[tuple[str, float]]]) -> tuple[float, int]:
    """The same chains against opendssdirect: every trade kept (the approved-state floor)."""
    engine, set_load = bare_circuit(network, windows[0])
    elapsed, converged, intents = 0.0, 0, 0
    for inj, batch in zip(windows, batch_of, strict=True):
        for key, (p, q) in inj.items():
            set_load(key, p, q)
        engine.Solution.Solve()
        start = time.perf_counter()
        held = {key: list(pq) for key, pq in inj.items()}
        for key, p_kw in batch:
            held[key][0] += p_kw
            set_load(key, *held[key])
            converged += bare_solve(engine)
        for key in {key for key, _ in batch}:
            set_load(key, *inj[key])
        elapsed += time.perf_counter() - start
        intents += len(batch)
    return elapsed / intents, converged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("network", nargs="?", default="ieee123")
    parser.add_argument("--windows", type=int, default=96)
    parser.add_argument("--batch", type=int, default=60,
                        help="trades per batched approval (year_ieee13: about 60 per window)")
    args = parser.parse_args()
    windows = injections_per_window(args.network, args.windows)
    queries = trades(windows)
    bare_w, bare_q, bare_ok = time_bare(args.network, windows, queries)
    ours_w, ours_q, ours_ok, ours_n = time_service(args.network, windows, queries)
    batch_of = batches(windows, args.batch)
    bare_b, bare_b_ok = time_bare_batched(args.network, windows, batch_of)
    ours_b, ours_b_ok, ours_b_approved, n_b = time_service_batched(args.network, windows, batch_of)
    n = args.windows
    print(f"{args.network}: {len(windows[0])} injected bus phases, {n} windows, {n} queries")
    print(f"  converged: bare {bare_ok}/{3 * n} timed power flows, grid service {ours_ok}/{ours_n}")
    print(f"  per window: grid service {ours_w * 1e3:7.3f} ms   bare opendssdirect "
          f"{bare_w * 1e3:7.3f} ms   ratio {ours_w / bare_w:5.2f}x")
    print(f"  per query:  grid service {ours_q * 1e3:7.3f} ms   bare opendssdirect "
          f"{bare_q * 1e3:7.3f} ms   ratio {ours_q / bare_q:5.2f}x")
    print(f"  batched approval, {args.batch} intents per window: converged bare {bare_b_ok}/{n_b}, "
          f"grid service {ours_b_ok}/{n_b} ({ours_b_approved} approved)")
    print(f"  per intent: grid service {ours_b * 1e3:7.3f} ms   bare opendssdirect "
          f"{bare_b * 1e3:7.3f} ms   ratio {ours_b / bare_b:5.2f}x")


if __name__ == "__main__":
    main()
