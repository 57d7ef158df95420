"""AMM tables (thesis tables 3.1/3.6/3.11 token status, 3.3ff transactions with ρ, ρ_eff, ρ_ES,
5.4ff constraint extremes, 5.7ff α per transaction, market per window), as DuckDB queries.

`token_status(df)` and `transactions(df)` take a frame from `load_run` (tests, notebooks);
the report runs the same queries over the run's Parquet logs.
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd

from lemcosim.analysis.tables import Table, frame_connection

_TX_NUMBERS = ["e_kwh", "m", "rho", "rho_eff", "rho_es", "d_loss_kwh", "price_after", "utility_kwh",
               "v_min", "v_max", "vuf_max", "loading_max"]
_TX_TEXTS = ["side", "prosumer", "bus", "reason", "approval_rule"]
_TX_UNITS = {"v_min": "pu", "v_max": "pu", "vuf_max": "%", "loading_max": "%"}
_TX_ENTITY = r"w\d+t\d+[abc]?"


def _alpha_columns(con) -> list[str]:
    return [r[0] for r in con.execute(r"""SELECT DISTINCT quantity FROM logs WHERE federate = 'amm'
        AND quantity LIKE 'alpha\_%' ESCAPE '\' ORDER BY 1""").fetchall()]


def transactions_query(where: str = "", alphas: list[str] | None = None,
                       extremes_at: bool = False) -> str:
    """One row per transaction (window, transaction, approved, side, prosumer, bus, E_i, M_i, ρ_i,
    ρ_i^eff, ρ_ES^i, ΔLoss_i, …, reason, α…) in the order the market handled them."""
    texts = _TX_TEXTS + ([f"{q}_at" for q in ("v_min", "v_max", "vuf_max", "loading_max")]
                         if extremes_at else [])
    cols = [f"any_value(text) FILTER (quantity = '{q}') AS \"{q}\"" for q in texts[:3]]
    cols += [f"any_value(value) FILTER (quantity = '{q}') AS \"{q}\"" for q in _TX_NUMBERS]
    cols += [f"any_value(text) FILTER (quantity = '{q}') AS \"{q}\"" for q in texts[3:]]
    cols += [f"any_value(value) FILTER (quantity = '{q}') AS \"{q}\"" for q in alphas or []]
    return f"""
        SELECT "window", entity AS "transaction",
               coalesce(max(value) FILTER (quantity = 'approved'), 0) = 1 AS approved,
               {', '.join(cols)}
        FROM logs WHERE federate = 'amm' AND regexp_full_match(entity, '{_TX_ENTITY}') {where}
        GROUP BY "window", entity
        ORDER BY "window", CAST(regexp_extract(entity, 't(\\d+)', 1) AS INTEGER), entity"""


def transactions(df: pd.DataFrame) -> pd.DataFrame:
    """The transactions table of a `load_run` frame; columns the run never logged are dropped."""
    con = frame_connection(df)
    table = con.execute(transactions_query(alphas=_alpha_columns(con))).df()
    return table.dropna(axis=1, how="all") if not table.empty else pd.DataFrame()


_TOKEN_ENTITY = r"^(?:[abc]:)?add\d+:"


def token_status_query(con) -> str | None:
    quantities = [r[0] for r in con.execute(f"""SELECT DISTINCT quantity FROM logs
        WHERE federate = 'amm' AND regexp_matches(entity, '{_TOKEN_ENTITY}') ORDER BY 1""").fetchall()]
    if not quantities:
        return None
    cols = ", ".join(f"any_value(value) FILTER (quantity = '{q}') AS \"{q}\"" for q in quantities)
    return f"""SELECT "window", entity AS "after addition", {cols} FROM logs
        WHERE federate = 'amm' AND regexp_matches(entity, '{_TOKEN_ENTITY}')
        GROUP BY "window", entity ORDER BY "window", min(time_s), entity"""


def token_status(df: pd.DataFrame) -> pd.DataFrame:
    """Token status after each liquidity addition of each window (E_LP, M_LP, k or ℒ, ρ_LP, …)."""
    con = frame_connection(df)
    query = token_status_query(con)
    return con.execute(query).df() if query else pd.DataFrame()


_MARKET = ["opening_price", "closing_price", "volume_kwh", "utility_kwh", "approved", "rejected"]
_MARKET_UNITS = {"opening_price": "M/kWh", "closing_price": "M/kWh", "volume_kwh": "kWh",
                 "utility_kwh": "kWh", "approved": "count", "rejected": "count"}


def tables(run) -> Iterator[Table]:
    con = run.con
    query = token_status_query(con)
    if query:
        yield Table("amm_token_status", "Token status after each liquidity addition (thesis "
                    "tables 3.1, 3.6, 3.11, 5.1): pool reserves E_LP, M_LP, liquidity and price.",
                    sql=query)
    if not run.has("amm", "approved"):
        return
    alphas = _alpha_columns(con)
    yield Table("amm_transactions", "Transactions in the order handled (thesis tables 3.3ff, "
                "5.4ff): energy, pool price ρ_i, effective price ρ_i^eff, storage price ρ_ES^i, "
                "loss change, grid extremes and the reason of each rejection"
                + (", with the FSVR coefficients α of assisted approvals (5.7ff)." if alphas
                   else "."),
                sql=transactions_query(alphas=alphas), units=_TX_UNITS)
    if run.has("amm", "v_min"):
        extremes = ", ".join(f'"{q}", "{q}_at"' for q in ("v_min", "v_max", "vuf_max", "loading_max"))
        yield Table("amm_extremes", "Extreme constraint values each transaction would cause "
                    "(thesis tables 5.4ff): lowest and highest voltage, largest VUF and line "
                    "loading over the feeder, and where.",
                    sql=f"""SELECT "window", "transaction", approved, {extremes}
                            FROM ({transactions_query(extremes_at=True)})""", units=_TX_UNITS)
    if alphas:
        yield Table("amm_alpha", "FSVR coefficients α committed with each FSVR-assisted approval "
                    "(thesis tables 5.7ff; pu, V_out,p = V_in,p + Σ_k α_pk V_in,k).",
                    sql=f"""SELECT "window", "transaction", {', '.join(f'"{a}"' for a in alphas)}
                            FROM ({transactions_query(alphas=alphas)}) WHERE "{alphas[0]}"
                            IS NOT NULL""")
    if run.windows > 1:
        cols = ", ".join(f"any_value(value) FILTER (quantity = '{q}') AS \"{q}\"" for q in _MARKET)
        yield Table("amm_market", "Market per window: opening and closing pool price, energy "
                    "through the pool and with the utility, approvals and rejections.",
                    sql=f"""SELECT "window", {cols} FROM logs WHERE federate = 'amm'
                            AND entity = 'market' GROUP BY "window" ORDER BY "window" """,
                    units=_MARKET_UNITS)
