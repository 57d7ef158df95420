"""Optimiser quality against power flows: Grey Wolf Optimisation against the sensitivity search at
equal budgets, SVR and FSVR on IEEE 13 and IEEE 34 (the ch4 scenarios' feeders and bands), with the
time per power flow measured in the same run; then the cost of an FSVR-assisted approval.

usage: python benchmarks/fsvr.py [--objective vuf|loss] [--networks ieee13,ieee34]
                                 [--devices svr,fsvr] [--seeds N]

The sensitivity search runs first and spends B power flows; GWO then gets budgets of B/2, B and 2B
(its iterations = budget // population, so a falls from 2 to 0 over each budget). Printed per
feeder and device: the best merit (the objective when feasible; 1e6 + a penalty when not), whether
it is feasible, and the power flows — GWO as the median and the worst over `--seeds` seeds.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from lemcosim.federates.fsvr_controller.optimise import (
    Objective,
    Space,
    feasible_setting,
    local_solver,
    optimise,
)
from lemcosim.federates.grid.model import GridModel, Limits

# the ch4 scenarios' bands and study buses
FEEDERS = {"ieee13": (Limits(v_min_pu=0.95), "671"), "ieee34": (Limits(v_min_pu=0.90), "814")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objective", default="vuf", choices=["vuf", "loss"])
    parser.add_argument("--networks", default="ieee13,ieee34")
    parser.add_argument("--devices", default="svr,fsvr")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    for network in args.networks.split(","):
        limits, bus = FEEDERS[network]
        objective = Objective(args.objective, vuf_bus=bus)
        for device in args.devices.split(","):
            space = Space(device)
            model = GridModel(network, device=space.setting(space.neutral()), limits=limits)
            solver = local_solver(model)
            start = time.perf_counter()
            strong = optimise(solver, space, objective, "sensitivity")
            per_flow_ms = (time.perf_counter() - start) / strong.flows * 1e3
            print(f"{network} {device} ({args.objective}{' at ' + bus if args.objective == 'vuf' else ''})"
                  f": {per_flow_ms:.1f} ms per power flow")
            print(f"  sensitivity     budget {strong.flows:4d}: best {strong.value:10.4f} "
                  f"feasible={strong.feasible}")
            for factor in (0.5, 1, 2):
                budget = max(12, int(factor * strong.flows))
                runs = [optimise(solver, space, objective, "gwo", population=12, iterations=10_000,
                                 seed=seed, max_flows=budget) for seed in range(args.seeds)]
                values = np.array([r.value for r in runs])
                feasible = sum(r.feasible for r in runs)
                print(f"  gwo ×{factor:<3}        budget {budget:4d}: median {np.median(values):10.4f} "
                      f"worst {values.max():10.4f} feasible {feasible}/{len(runs)} "
                      f"(flows used ≤ {max(r.flows for r in runs)})")
    assisted_approval_cost()


def assisted_approval_cost() -> None:
    """FSVR-assisted approval on IEEE 13: a buy the feeder rejects with its published taps, and
    the power flows and time the controller needs to find a setting that admits it."""
    limits = Limits(v_min_pu=0.95, v_max_pu=1.05, vuf_max_pct=2.0, loading_max_pct=200,
                    rule="no_worse")  # as in configs/fragments/ch5_ieee13.yaml
    model = GridModel("ieee13", device=Space("fsvr").setting(np.diag([0.05, 0.05, 0.075]).ravel()),
                      limits=limits)
    model.solve()
    reference = model.solve()
    # a 100 kWh buy at 675 supplied by a battery at 632 (the first trade of ch5 all_buyer)
    injections = {f"{bus}.{p}": [sign * 400.0 / 3, 0.0] for bus, sign in (("675", -1), ("632", 1))
                  for p in "abc"}
    model.set_injections(injections)
    rejected = model.solve().violations(limits, reference)
    base_solver = local_solver(model)
    start = time.perf_counter()
    result = feasible_setting(base_solver, Space("fsvr"),
                              Objective("weighted", require_feasible=True))
    elapsed = time.perf_counter() - start
    print("FSVR-assisted approval, IEEE 13, 400 kW from 632 to 675: rejected for "
          f"{[v['constraint'] for v in rejected]}; assist found feasible={result.summary.feasible} "
          f"after {result.flows} power flows, {elapsed * 1e3:.0f} ms in-process "
          f"({elapsed / result.flows * 1e3:.2f} ms per flow; over HELICS add one sub-step each)")


if __name__ == "__main__":
    main()
