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

from lemcosim.federates.fsvr_controller.optimise import Objective, Space, local_solver, optimise
from lemcosim.federates.grid.model import GridModel


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


if __name__ == "__main__":
    main()
