"""The figures `lemcosim analyze` draws, each from the log rows it needs (skipped when absent)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd

from lemcosim.analysis import amm, auction, fsvr, plots

Figure = Callable[[pd.DataFrame, Path], Iterator[tuple[Path, str]]]


def _select(df: pd.DataFrame, federate_type_quantity: str) -> pd.DataFrame:
    # the recorder echoes other federates' publications: plot the source federates' own logs
    return df[(df["quantity"] == federate_type_quantity) & df["value"].notna()
              & (df["federate"] != "recorder")]


def prosumer_net_injection(df: pd.DataFrame, out: Path) -> Iterator[tuple[Path, str]]:
    rows = _select(df, "net_kw")
    if rows.empty:
        return
    per_window = rows.pivot_table(index="window", columns="federate", values="value", aggfunc="sum")
    yield (plots.line_per_window(per_window, "Net injection of the prosumer population",
                                 "net injection, kW (positive into the grid)",
                                 out / "prosumers_net_kw.png"),
           "Prosumer population net injection per window")


def grid_voltage_heat_map(df: pd.DataFrame, out: Path) -> Iterator[tuple[Path, str]]:
    rows = _select(df, "v_pu")
    if rows.empty:
        return
    matrix = rows.pivot_table(index="entity", columns="window", values="value", aggfunc="last")
    yield (plots.heat_map(matrix, "Voltage magnitude per bus·phase and window", "pu",
                          out / "grid_voltage_heatmap.png"),
           "Voltage heat map (bus·phase × window)")


def grid_losses(df: pd.DataFrame, out: Path) -> Iterator[tuple[Path, str]]:
    rows = _select(df, "losses_kw")
    if rows.empty:
        return
    per_window = rows.pivot_table(index="window", columns="federate", values="value", aggfunc="last")
    yield (plots.line_per_window(per_window, "Feeder losses", "losses, kW",
                                 out / "grid_losses.png"),
           "Loss curve")


FIGURES: list[Figure] = [prosumer_net_injection, grid_voltage_heat_map, grid_losses,
                         amm.price_variation, fsvr.convergence, auction.figures]
TABLES = [amm.tables, fsvr.tables, auction.tables]
