"""AMM transactions per second with DSO approval, and power flows per transaction.

usage: python benchmarks/amm.py [NETWORK] [--transactions N]

One window of N random buy/sell transactions (seeded) by prosumers at the feeder's three-phase
buses, liquidity from two ESUs, approval and loss compensation by the grid model (real OpenDSS,
no HELICS). Printed: transactions/s, power flows per transaction (goal ≤ 1 on average), and the
ratio of the market's time per transaction to a bare opendssdirect loop doing one solve with the
same injections, measured in the same run.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from lemcosim.federates.amm.market import AmmWindow, StorageUnit, Transaction
from lemcosim.federates.amm.pool import ConcentratedPool
from lemcosim.federates.grid.model import GridModel, Limits
from lemcosim.federates.grid.service import GridService
from lemcosim.networks.builder import dss


def three_phase_buses(model: GridModel) -> list[str]:
    buses, _ = model._vuf_groups
    return [b for b in buses if b != "sourcebus"]


def run_market(network: str, n: int, seed: int = 3) -> tuple[float, int, AmmWindow, list[dict]]:
    grid = GridService(GridModel(network, limits=Limits(rule="no_worse")))
    grid.solve_window({})
    buses = three_phase_buses(grid.model)
    rng = np.random.default_rng(seed)
    esus = [StorageUnit("es1", buses[len(buses) // 2], 5000, 4000, 3000),
            StorageUnit("es2", buses[-1], 5000, 4000, 3000)]
    asked: list[dict] = []

    def approve(injections: dict) -> dict:
        asked.append(injections)
        return grid.answer_query({"injections": injections})

    window = AmmWindow(ConcentratedPool(rho_lo=0.08, rho_up=0.30, opening_price=0.155), esus,
                       900.0, approve=approve, loss_compensation=True,
                       base_losses_kw=grid.committed_flow.losses_kw)
    for esu in esus:
        window.add_liquidity(esu.name, 500.0)
    txs = [Transaction(f"t{i}", f"p{i}", str(rng.choice(buses)), str(rng.choice(list("abc"))),
                       "buy" if rng.random() < 0.5 else "sell", float(rng.uniform(0.5, 5)))
           for i in range(n)]
    solves_before = grid.model.solves
    start = time.perf_counter()
    for tx in txs:
        window.transact(tx)
    elapsed = time.perf_counter() - start
    return elapsed, grid.model.solves - solves_before, window, asked


def bare_loop(network: str, injection_sets: list[dict]) -> float:
    """One opendssdirect solve per injection set (the same sets the market asked about)."""
    model = GridModel(network)
    model.set_injections({k: v for s in injection_sets for k, v in s.items()})
    engine = dss()
    start = time.perf_counter()
    for injections in injection_sets:
        for key, (p, q) in injections.items():
            engine.Loads.Name(model._elements[key])
            engine.Loads.kW(-p)
            engine.Loads.kvar(-q)
        engine.Solution.Solve()
        engine.Circuit.AllBusVolts()
        engine.Circuit.Losses()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("network", nargs="?", default="ieee123")
    parser.add_argument("--transactions", type=int, default=300)
    args = parser.parse_args()
    elapsed, solves, window, asked = run_market(args.network, args.transactions)
    bare = bare_loop(args.network, asked)
    n = args.transactions
    approved = sum(r.approved for r in window.approved)
    print(f"{args.network}: {n} transactions, {approved} approved")
    print(f"  market with approval: {n / elapsed:8.1f} transactions/s "
          f"({elapsed / n * 1e3:.2f} ms each)")
    print(f"  power flows per transaction: {solves / n:.3f}  (goal ≤ 1)")
    print(f"  bare opendssdirect, same solves: {bare / max(len(asked), 1) * 1e3:.2f} ms each; "
          f"market/bare time ratio {elapsed / bare:.2f}x")


if __name__ == "__main__":
    main()
