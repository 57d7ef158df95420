"""Cost of the grid federate's work per window and per query against a bare opendssdirect loop.

usage: python benchmarks/powerflow.py [NETWORK] [--windows N]

Both sides solve the same feeder with the same injections (a random ±kW at every bus phase,
seeded). The bare loop only sets the injection loads, solves, and reads voltages and losses; the
grid service also computes VUF, line loadings, violations and the publication payloads. Printed:
ms per window and per query for each, and the ratios from this one run (goal ≤ 1.5×).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from lemcosim.federates.grid.model import GridModel
from lemcosim.federates.grid.service import GridService
from lemcosim.networks.builder import dss


def injections_per_window(keys: list[str], windows: int, seed: int = 1) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{k: [float(p), 0.2 * float(p)] for k, p in zip(keys, rng.uniform(-20, 20, len(keys)),
                                                          strict=True)}
            for _ in range(windows)]


def time_service(network: str, windows: list[dict]) -> tuple[float, float, int]:
    service = GridService(GridModel(network))
    service.solve_window(windows[0])  # creates the injection elements once
    start = time.perf_counter()
    for inj in windows:
        report = service.solve_window(inj)
        report.publications()
        report.rows()
    per_window = (time.perf_counter() - start) / len(windows)
    key = next(iter(windows[0]))
    start = time.perf_counter()
    for i in range(len(windows)):
        service.answer_query({"id": i, "injections": {key: [-50.0, 0.0]}})
    per_query = (time.perf_counter() - start) / len(windows)
    return per_window, per_query, service.model.solves


def time_bare(network: str, windows: list[dict]) -> tuple[float, float]:
    """The same solves written directly against opendssdirect (the floor we compare with)."""
    GridModel(network).set_injections(windows[0])  # same circuit, same injection elements
    engine = dss()
    names = {k: "inj_" + k.replace(".", "_") for k in windows[0]}

    def solve(inj: dict) -> None:
        for key, (p, q) in inj.items():
            engine.Loads.Name(names[key])
            engine.Loads.kW(-p)
            engine.Loads.kvar(-q)
        engine.Solution.Solve()
        engine.Circuit.AllBusVolts()
        engine.Circuit.Losses()

    start = time.perf_counter()
    for inj in windows:
        solve(inj)
    per_window = (time.perf_counter() - start) / len(windows)
    key = next(iter(windows[0]))
    start = time.perf_counter()
    for inj in windows:  # a query = a solve with one more injection, then restore
        solve({**inj, key: [inj[key][0] - 50.0, inj[key][1]]})
    per_query = (time.perf_counter() - start) / len(windows)
    return per_window, per_query


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("network", nargs="?", default="ieee123")
    parser.add_argument("--windows", type=int, default=200)
    args = parser.parse_args()
    keys = GridModel(args.network).bus_phases()
    keys = [k for k in keys if not k.startswith(("sourcebus.", "150.", "149."))]
    windows = injections_per_window(keys, args.windows)
    bare_w, bare_q = time_bare(args.network, windows)
    ours_w, ours_q, solves = time_service(args.network, windows)
    print(f"{args.network}: {len(keys)} injected bus phases, {args.windows} windows")
    print(f"  per window: grid service {ours_w * 1e3:7.2f} ms   bare opendssdirect "
          f"{bare_w * 1e3:7.2f} ms   ratio {ours_w / bare_w:5.2f}x")
    print(f"  per query:  grid service {ours_q * 1e3:7.2f} ms   bare opendssdirect "
          f"{bare_q * 1e3:7.2f} ms   ratio {ours_q / bare_q:5.2f}x")
    print(f"  power flows per query: {(solves - args.windows - 1) / args.windows:.2f}")


if __name__ == "__main__":
    main()
