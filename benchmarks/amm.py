"""AMM transactions per second with DSO approval, power flows per transaction, and how many of
them converged.

usage: python benchmarks/amm.py [NETWORK] [--transactions N]

A population as benchmarks/powerflow.py builds it (the quickstart households on IEEE 13, one
household per load and phase elsewhere) trades its energy positions of consecutive 15-minute
windows from 10:00 on the summer solstice, in a seeded random order, until N transactions; two
ESUs of the shipped size (500 kWh / 250 kW and 300 kWh / 150 kW, as in
configs/fragments/amm_ieee13.yaml) at the feeder's middle and last three-phase bus provide the
liquidity of one concentrated pool; the grid model (real OpenDSS, no HELICS) approves each trade
with loss compensation. Printed: transactions/s, power flows per transaction (goal ≤ 1) and how
many converged, and the market's time per transaction against a bare opendssdirect loop doing
the same solves with the minimal work (only the injections that changed are set, then solve,
voltages and losses), measured in the same run.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from powerflow import WINDOW_S, population  # noqa: E402

from lemcosim.federates.amm.market import AmmWindow, StorageUnit, Transaction  # noqa: E402
from lemcosim.federates.amm.pool import ConcentratedPool  # noqa: E402
from lemcosim.federates.grid.model import GridModel, Limits  # noqa: E402
from lemcosim.federates.grid.service import GridService  # noqa: E402
from lemcosim.federates.prosumers.population import Population  # noqa: E402
from lemcosim.networks.builder import dss  # noqa: E402

FIRST_WINDOW = 40  # 10:00


def transactions(network: str, n: int, seed: int = 3) -> list[Transaction]:
    pop = Population.from_config(population(network), WINDOW_S, datetime(2026, 6, 21))
    rng = np.random.default_rng(seed)
    out: list[Transaction] = []
    for w in range(FIRST_WINDOW + 96):
        state = pop.step(w)  # every window: batteries carry their state of charge
        if w < FIRST_WINDOW:
            continue
        pos = pop.positions(state)
        for i in rng.permutation(len(pos["id"])):
            e = float(pos["e_kwh"][i])
            if abs(e) > 1e-6:
                out.append(Transaction(f"t{len(out)}", str(pos["id"][i]), str(pos["bus"][i]),
                                       str(pos["phase"][i]), "sell" if e > 0 else "buy", abs(e)))
            if len(out) == n:
                return out
    return out


def market(network: str, approve: Callable[[dict], dict] | None = None,
           ) -> tuple[GridService, AmmWindow]:
    """The feeder's grid service after its window solve and an opened market window: two ESUs at
    the middle and last three-phase bus, 90 % of their deliverable energy in the pool."""
    grid = GridService(GridModel(network, limits=Limits(rule="no_worse")))
    grid.solve_window({})
    buses, _ = grid.model._vuf_groups
    buses = [b for b in buses if b != "sourcebus"]
    esus = [StorageUnit("es1", buses[len(buses) // 2], 500, 300, 250),
            StorageUnit("es2", buses[-1], 300, 180, 150)]
    window = AmmWindow(ConcentratedPool(rho_lo=0.08, rho_up=0.30, opening_price=0.155), esus,
                       WINDOW_S, approve=approve, loss_compensation=True,
                       bound_policy="utility", fit=0.08, retail=0.30,
                       base_losses_kw=grid.committed_flow.losses_kw)
    for esu in esus:
        window.add_liquidity(esu.name, 0.9 * esu.deliverable_kwh(WINDOW_S))
    return grid, window


def run_market(network: str, txs: list[Transaction]) -> tuple[float, int, int, AmmWindow,
                                                               list[dict]]:
    asked: list[dict] = []
    converged = 0

    def approve(injections: dict) -> dict:
        nonlocal converged
        asked.append(injections)
        answer = grid.answer_query({"injections": injections})
        converged += bool(answer["converged"])
        return answer

    grid, window = market(network, approve)
    solves_before = grid.model.solves
    start = time.perf_counter()
    for tx in txs:
        window.transact(tx)
    elapsed = time.perf_counter() - start
    return elapsed, grid.model.solves - solves_before, converged, window, asked


def bare_loop(network: str, injection_sets: list[dict]) -> tuple[float, int]:
    """One opendssdirect solve per injection set the market asked about, setting only what
    changed since the previous set (what a lean query must do at least)."""
    model = GridModel(network)
    model.set_injections({k: v for s in injection_sets for k, v in s.items()})
    engine = dss()
    applied: dict[str, list[float]] = {}
    converged = 0
    start = time.perf_counter()
    for injections in injection_sets:
        for key in applied.keys() - injections.keys():
            engine.Loads.Idx(model._elements[key])
            engine.Loads.kW(0.0)
            engine.Loads.kvar(0.0)
            del applied[key]
        for key, (p, q) in injections.items():
            if applied.get(key) != [p, q]:
                engine.Loads.Idx(model._elements[key])
                engine.Loads.kW(-p)
                engine.Loads.kvar(-q)
                applied[key] = [p, q]
        engine.Solution.Solve()
        converged += engine.Solution.Converged()
        engine.Circuit.AllBusVolts()
        engine.Circuit.Losses()
    return time.perf_counter() - start, converged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("network", nargs="?", default="ieee123")
    parser.add_argument("--transactions", type=int, default=300)
    args = parser.parse_args()
    txs = transactions(args.network, args.transactions)
    elapsed, solves, converged, window, asked = run_market(args.network, txs)
    bare, bare_ok = bare_loop(args.network, asked)
    n = len(txs)
    approved = sum(r.approved for r in window.approved)
    print(f"{args.network}: {n} transactions, {approved} approved")
    print(f"  market with approval: {n / elapsed:8.1f} transactions/s "
          f"({elapsed / n * 1e3:.2f} ms each)")
    print(f"  power flows per transaction: {solves / n:.3f}  (goal ≤ 1); converged: market "
          f"{converged}/{len(asked)}, bare {bare_ok}/{len(asked)}")
    print(f"  bare opendssdirect, same solves: {bare / max(len(asked), 1) * 1e3:.3f} ms each; "
          f"market/bare time ratio {elapsed / bare:.2f}x")


if __name__ == "__main__":
    main()
