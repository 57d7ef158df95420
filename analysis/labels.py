"""Column headers in the thesis' notation, with units: one table for every report and comparison.

M is the thesis' monetary unit (money tokens of the market); prices are in M per kWh.
"""

from __future__ import annotations

import pandas as pd

MONEY_NOTE = "M is the market's monetary unit (money tokens, thesis notation); prices in M/kWh."

# column → (label, unit)
LABELS: dict[str, tuple[str, str]] = {
    "window": ("window", ""),
    "time": ("time", ""),
    "transaction": ("transaction", ""),
    "approved": ("approved", ""),
    "side": ("side", ""),
    "prosumer": ("prosumer", ""),
    "bus": ("bus.phase", ""),
    "reason": ("reason", ""),
    "approval_rule": ("approval rule", ""),
    "e_kwh": ("E_i", "kWh"),
    "m": ("M_i", "M"),
    "rho": ("ρ_i", "M/kWh"),
    "rho_eff": ("ρ_i^eff", "M/kWh"),
    "rho_es": ("ρ_ES^i", "M/kWh"),
    "d_loss_kwh": ("ΔLoss_i", "kWh"),
    "price_after": ("ρ after", "M/kWh"),
    "utility_kwh": ("E utility", "kWh"),
    "v_min": ("V_min", "pu"),
    "v_max": ("V_max", "pu"),
    "vuf_max": ("VUF_max", "%"),
    "loading_max": ("loading_max", "%"),
    "v_min_at": ("V_min at", ""),
    "v_max_at": ("V_max at", ""),
    "vuf_max_at": ("VUF_max at", ""),
    "loading_max_at": ("loading_max at", ""),
    "E_LP": ("E_LP", "kWh"),
    "M_LP": ("M_LP", "M"),
    "L": ("ℒ", "√(kWh·M)"),
    "L_total": ("ℒ total", "√(kWh·M)"),
    "k": ("k", "kWh·M"),
    "rho_LP": ("ρ_LP", "M/kWh"),
    "fees_M": ("fees", "M"),
    "after addition": ("after addition", ""),
    "opening_price": ("ρ opening", "M/kWh"),
    "closing_price": ("ρ closing", "M/kWh"),
    "volume_kwh": ("E through the pool", "kWh"),
    "rejected": ("rejected", "count"),
    "kwh": ("aggregate", "kWh"),
    "level": ("price level", ""),
    "losses_kw": ("P_loss", "kW"),
    "loss_saving_pct": ("loss saving", "%"),
    "vuf_max_pct": ("VUF_max", "%"),
    "vuf_reduction_pct": ("VUF reduction", "%"),
    "objective": ("objective", ""),
    "flows": ("power flows", "count"),
    "lambda_max": ("λ_max", ""),
    "lambda_flows": ("λ power flows", "count"),
    "setting": ("setting", ""),
    "device:method": ("device:method", ""),
    "cluster": ("cluster", ""),
    "mcp": ("MCP", "M/kWh"),
    "mcv_kwh": ("MCV", "kWh"),
    "bcf": ("BCF", ""),
    "scf": ("SCF", ""),
    "bcfl": ("BCFL", ""),
    "area": ("price area", ""),
    "cycle_end_window": ("billing cycle ends in window", ""),
    "bill": ("bill", "M"),
    "own_record": ("own record", "M"),
    "difference": ("bill − own record", "M"),
}


def header(column: str, unit: str | None = None) -> str:
    """`label [unit]` of a column; α coefficients and per-ESU token columns by pattern."""
    if column.startswith("alpha_"):
        return f"α_{column[6:]} [pu]"
    for prefix, unit_of in (("L_ES(", "√(kWh·M)"), ("M_ES(", "M"), ("ES_cont(", "kWh")):
        if column.startswith(prefix):
            return f"{column} [{unit_of}]"
    label, known = LABELS.get(column, (column, ""))
    unit = unit if unit is not None else known
    return f"{label} [{unit}]" if unit else label


def with_headers(table: pd.DataFrame, units: dict[str, str] | None = None) -> pd.DataFrame:
    """The table with every column renamed to `label [unit]` (units from the logs if given)."""
    units = units or {}
    return table.rename(columns={c: header(c, units.get(c) or None) for c in table.columns})
