"""AMM tables and figures (thesis tables 3.1/3.6/3.11, per-transaction tables, price variation)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from lemcosim.analysis import plots

_TX_COLUMNS = ["side", "prosumer", "bus", "e_kwh", "m", "rho", "rho_eff", "rho_es", "d_loss_kwh",
               "price_after", "utility_kwh", "v_min", "v_max", "vuf_max", "loading_max", "reason",
               "approval_rule"]


def _amm_rows(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["federate"] == "amm"]


def token_status(df: pd.DataFrame) -> pd.DataFrame:
    """Token status after each liquidity addition of each window (E_LP, M_LP, k or ℒ, ρ_LP, …)."""
    rows = _amm_rows(df)
    rows = rows[rows["entity"].str.match(r"^(?:[abc]:)?add\d+:", na=False)]  # a: … per-phase pools
    if rows.empty:
        return pd.DataFrame()
    table = rows.pivot_table(index=["window", "entity"], columns="quantity", values="value",
                             aggfunc="last").reset_index()
    table.columns.name = None
    return table.rename(columns={"entity": "after addition"})


def transactions(df: pd.DataFrame) -> pd.DataFrame:
    """One row per transaction: prices ρ_i, ρ_i^eff, ρ_ES^i, ΔLoss_i, decision and reason."""
    rows = _amm_rows(df)
    decided = rows[(rows["quantity"] == "approved")
                   & rows["entity"].str.fullmatch(r"w\d+t\d+[abc]?", na=False)]
    if decided.empty:
        return pd.DataFrame()
    tx = rows[rows["entity"].isin(decided["entity"])].copy()
    tx["cell"] = tx["value"].where(tx["value"].notna(), tx["text"])
    table = tx.pivot_table(index=["window", "entity"], columns="quantity", values="cell",
                           aggfunc="last").reset_index()
    table.columns.name = None
    table["approved"] = table["approved"].astype(float).astype(bool)
    table["order"] = table["entity"].str.extract(r"t(\d+)[abc]?$")[0].astype(int)
    table = table.sort_values(["window", "order"]).drop(columns="order")
    alphas = sorted(c for c in table.columns if c.startswith("alpha_"))  # FSVR-assisted (ch. 5)
    keep = ["window", "entity", "approved"] + [c for c in _TX_COLUMNS if c in table.columns] + alphas
    return table[keep].rename(columns={"entity": "transaction"})


def tables(df: pd.DataFrame) -> Iterator[tuple[str, str, pd.DataFrame]]:
    status = token_status(df)
    if not status.empty:
        yield "amm_token_status", "AMM token status after each liquidity addition", status
    tx = transactions(df)
    if not tx.empty:
        yield "amm_transactions", "AMM transactions (rejected ones with their reason)", tx


def price_variation(df: pd.DataFrame, out: Path) -> Iterator[tuple[Path, str]]:
    """ρ_i, ρ_i^eff and ρ_ES^i per approved transaction of the busiest window."""
    tx = transactions(df)
    if tx.empty or not tx["approved"].any():
        return
    approved = tx[tx["approved"]]
    window = approved.groupby("window").size().idxmax()
    sel = approved[approved["window"] == window].reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(8, 4))
    for column, label in (("rho", "ρ_i (pool)"), ("rho_eff", "ρ_i^eff (with losses)"),
                          ("rho_es", "ρ_ES^i (storage)")):
        if column in sel:
            ax.plot(sel.index + 1, pd.to_numeric(sel[column], errors="coerce"), marker="o",
                    label=label)
    path = plots.finish(fig, ax, out / "amm_prices.png", "Price variation with each transaction",
                        f"approved transaction of window {window}", "price, M per kWh")
    yield path, f"AMM price variation per transaction (window {window})"
