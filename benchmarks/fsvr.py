"""Optimiser quality against power flows: GWO vs the sensitivity search (and coordinate search),
SVR and FSVR on IEEE 13 and IEEE 34, with the time per power flow measured in the same run.

usage: python benchmarks/fsvr.py [--objective vuf|loss|weighted] [--gwo-iterations N]

For each feeder and device it prints the best objective (with the voltage-band penalty) that each
method reaches, its power flows, and the ratio of flows GWO needed to reach the sensitivity
search's final value (or "never").
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


def flows_to_reach(history: list[tuple[int, float]], target: float) -> int | None:
    return next((flows for flows, best in history if best <= target + 1e-9), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objective", default="vuf", choices=["vuf", "loss", "weighted"])
    parser.add_argument("--gwo-iterations", type=int, default=30)
    args = parser.parse_args()
    for network in ("ieee13", "ieee34"):
        for device in ("svr", "fsvr"):
            space = Space(device)
            results = {}
            for method in ("sensitivity", "coordinate", "gwo"):
                model = GridModel(network, device=space.setting(space.neutral()))
                options = {"iterations": args.gwo_iterations} if method == "gwo" else {}
                start = time.perf_counter()
                results[method] = optimise(local_solver(model), space, Objective(args.objective),
                                           method, **options)
                results[method].seconds = time.perf_counter() - start  # type: ignore[attr-defined]
            target = results["sensitivity"].value
            print(f"{network} {device} ({args.objective}):")
            for method, r in results.items():
                per_flow_ms = r.seconds / r.flows * 1e3  # type: ignore[attr-defined]
                print(f"  {method:11s} best {r.value:10.4f} after {r.flows:4d} power flows "
                      f"({per_flow_ms:.2f} ms each)")
            reached = flows_to_reach(results["gwo"].history, target)
            ratio = f"{reached / results['sensitivity'].flows:.1f}x" if reached else "never"
            print(f"  GWO flows to reach the sensitivity result: {ratio}")
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
