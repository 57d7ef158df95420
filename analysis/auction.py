"""Auction tables and figures: clearing per cluster and window, bills, aggregate curves, MCP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from lemcosim.analysis import plots

_RESULTS = ["mcp", "mcv_kwh", "bcf", "scf", "bcfl", "area"]


def clearing_table(df: pd.DataFrame) -> pd.DataFrame:
    rows = df[(df["federate"] == "mo") & df["quantity"].isin(_RESULTS)]
    if rows.empty:
        return pd.DataFrame()
    table = rows.pivot_table(index=["window", "entity"], columns="quantity", values="value",
                             aggfunc="last").reset_index().rename(columns={"entity": "cluster"})
    table.columns.name = None
    return table[["window", "cluster"] + [c for c in _RESULTS if c in table.columns]]


def bills_table(df: pd.DataFrame) -> pd.DataFrame:
    rows = df[(df["federate"] == "pt") & df["quantity"].isin(["bill", "own_record"])]
    if rows.empty:
        return pd.DataFrame()
    table = rows.pivot_table(index=["window", "entity"], columns="quantity", values="value",
                             aggfunc="last").reset_index().rename(
        columns={"entity": "prosumer", "window": "cycle_end_window"})
    table.columns.name = None
    table["difference"] = table["bill"] - table["own_record"]
    return table


def tables(df: pd.DataFrame) -> Iterator[tuple[str, str, pd.DataFrame]]:
    clearing = clearing_table(df)
    if not clearing.empty:
        yield ("auction_clearing", "Auction: MCP, MCV, BCF, SCF, BCFL and price area per cluster "
               "and window", clearing)
    bills = bills_table(df)
    if not bills.empty:
        yield ("auction_bills", "Auction: billing-cycle bills (decrypted sums) against each "
               "prosumer's own plaintext record", bills)


def figures(df: pd.DataFrame, out: Path) -> Iterator[tuple[Path, str]]:
    clearing = clearing_table(df)
    if clearing.empty:
        return
    fig, ax = plt.subplots(figsize=(8, 4))
    for cluster, rows in clearing.groupby("cluster"):
        ax.step(rows["window"], rows["mcp"], where="mid", label=str(cluster))
    path = plots.finish(fig, ax, out / "auction_mcp.png",
                        "Market clearing price per cluster (price areas when a line binds)",
                        "trading window", "MCP, M per kWh")
    yield path, "Auction clearing price per cluster"

    agg = df[(df["federate"] == "mo") & df["quantity"].str.startswith("aggregate_", na=False)]
    if agg.empty:
        return
    window = int(agg["window"].min())
    sel = agg[agg["window"] == window]
    fig, ax = plt.subplots(figsize=(8, 4))
    for (cluster, quantity), rows in sel.groupby(["entity", sel["quantity"].str.rsplit("_", n=1).str[0]]):
        levels = rows["quantity"].str.rsplit("_", n=1).str[1].astype(int)
        ax.step(levels, rows["value"], where="mid", label=f"{cluster} {quantity[10:]}")
    path = plots.finish(fig, ax, out / "auction_curves.png",
                        f"Aggregate bid curves per cluster, window {window}", "price level p",
                        "aggregate quantity, kWh")
    yield path, f"Aggregate bid curves (window {window})"
