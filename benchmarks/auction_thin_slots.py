"""What suppressing thin aggregate slots costs in clearing accuracy (docs/privacy.md).

usage: python benchmarks/auction_thin_slots.py [--case ch6_cigre_lv_congested] [--k-min 3 5]
                                               [--windows 24]

Runs the case as a federation with `auction.thin_slots: report` (the MO sees every slot) and
`suppress` (KG zeroes slots with 1..k_min−1 non-zero contributors), per k_min, with 512-bit test
keys (the cost measured is in the clearing, not in the cryptography), and prints the thin slots,
the energy traded (Σ over windows and price areas of MCV) and how many cluster prices moved.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from lemcosim.analysis import load_run

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runs import run_command  # noqa: E402


def run(case: str, out: Path, windows: int, k_min: int, mode: str) -> pd.DataFrame:
    sets = {"time.windows": windows, "auction.cycle_windows": windows,
            "auction.keys_per_cycle": 1, "auction.key_bits": 512,
            "auction.allow_short_keys": "true", "auction.k_min": k_min,
            "auction.thin_slots": mode}
    subprocess.run(run_command(case, out, [f"{k}={v}" for k, v in sets.items()]), check=True,
                   capture_output=True)
    return load_run(out)


def summary(df: pd.DataFrame) -> tuple[float, float, pd.Series]:
    kg = df[(df.federate == "kg") & (df.quantity == "thin_slots")]
    mo = df[df.federate == "mo"].pivot_table(index=["window", "entity"], columns="quantity",
                                             values="value")
    clusters = mo.dropna(subset=["area"])
    traded = clusters.groupby(["window", "area"]).mcv_kwh.first().sum()
    return kg.value.sum(), traded, clusters.mcp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="ch6_cigre_lv_congested")
    parser.add_argument("--k-min", type=int, nargs="+", default=[3, 5])
    parser.add_argument("--windows", type=int, default=24)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for k_min in args.k_min:
            runs = {mode: summary(run(args.case, Path(tmp) / f"{mode}_{k_min}", args.windows,
                                      k_min, mode))
                    for mode in ("report", "suppress")}
            (thin, traded, mcp), (_, kept, mcp_s) = runs["report"], runs["suppress"]
            moved = (mcp - mcp_s).abs()
            print(f"{args.case}, {args.windows} windows, k_min {k_min}: {thin:.0f} thin slots; "
                  f"traded {traded:.3f} kWh (report) vs {kept:.3f} kWh (suppress), "
                  f"{traded - kept:+.3f} kWh ({(traded - kept) / traded:.2%}); cluster prices "
                  f"moved in {(moved > 1e-9).sum()} of {len(moved)} cluster-windows "
                  f"(max {moved.max():.4f} M/kWh)")


if __name__ == "__main__":
    main()
