"""Headline KPIs of a run, each one DuckDB aggregate over the logs (a year costs seconds).

A KPI is reported only when the run logged what it needs: a grid-only run has no market KPIs.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from lemcosim.analysis.run import LAST_SOLVE, RunData


@dataclass(frozen=True)
class Kpi:
    group: str
    name: str
    value: float | str
    unit: str
    note: str = ""


def kpis(run: RunData) -> list[Kpi]:
    out: list[Kpi] = []
    feds = run.federates()
    if "amm" in feds:
        out += _amm(run)
    if "grid" in feds:
        out += _grid(run)
    if "mo" in feds:
        out += _auction(run)
    return out


def kpi_frame(items: list[Kpi]) -> pd.DataFrame:
    return pd.DataFrame([{"group": k.group, "KPI": k.name, "value": k.value, "unit": k.unit,
                          "definition": k.note} for k in items])


def _one(run: RunData, query: str, params: list | None = None) -> float:
    value = run.con.execute(query, params or []).fetchone()[0]
    return float(value) if value is not None else 0.0


# a DSO refusal names each violated constraint (one rejection may count for several); any
# other reason is counted by its wording with the numbers masked (they differ per transaction)
_CAUSES = r"""
    WITH r AS (
      SELECT text, list_distinct(regexp_extract_all(text, '\b(v_min|v_max|vuf_max|loading_max)\b'))
             AS found
      FROM ({source}) WHERE text IS NOT NULL)
    SELECT cause, count(*) AS n FROM (
      SELECT unnest(CASE WHEN starts_with(text, 'DSO:') AND len(found) > 0 THEN found
                         ELSE [left(regexp_replace(text, '[-+]?\d[\d.e+-]*', '#', 'g'), 60)]
                    END) AS cause
      FROM r)
    GROUP BY cause ORDER BY n DESC, cause"""


def rejection_causes(reasons: pd.Series) -> pd.Series:
    """Rejections per binding constraint or other cause, of a series of reason texts."""
    from lemcosim.analysis.tables import frame_connection

    con = frame_connection(pd.DataFrame({"text": reasons.astype(object)}))
    table = con.execute(_CAUSES.format(source="SELECT text FROM logs")).df()
    return table.set_index("cause")["n"].astype(int)


def _amm(run: RunData) -> list[Kpi]:
    market = run.sql("""
        SELECT quantity, sum(value) AS total FROM logs
        WHERE federate = 'amm' AND entity = 'market'
          AND quantity IN ('volume_kwh', 'utility_kwh', 'approved', 'rejected')
        GROUP BY quantity""").set_index("quantity")["total"]
    approved, rejected = market.get("approved", 0.0), market.get("rejected", 0.0)
    out = [
        Kpi("AMM", "energy traded through the pool", market.get("volume_kwh", 0.0), "kWh",
            "Σ E_i − E_utility,i over approved transactions"),
        Kpi("AMM", "energy settled with the utility", market.get("utility_kwh", 0.0), "kWh",
            "approved transactions' part the pool could not serve"),
        Kpi("AMM", "transactions approved", 100.0 * approved / max(approved + rejected, 1.0), "%",
            f"{approved:.0f} of {approved + rejected:.0f}"),
    ]
    exchange = _one(run, """SELECT sum(value) FROM logs WHERE federate = 'amm'
                            AND quantity = 'utility_exchange_kwh'""")
    if run.has("amm", "utility_exchange_kwh"):
        out.append(Kpi("AMM", "ESU energy bought from the utility", exchange, "kWh",
                       "ESU energy management (state of charge kept for the pool)"))
    revenue = _one(run, """
        SELECT sum(c.value * p.value) FROM logs c JOIN logs p
          ON c."window" = p."window" AND p.federate = 'amm' AND p.entity = 'market'
         AND p.quantity = 'closing_price'
        WHERE c.federate = 'amm' AND c.quantity = 'es_cont_kwh'""")
    out.append(Kpi("AMM", "ESU revenue", revenue, "M",
                   "Σ over windows of each ESU's energy delivered through the pool × the closing "
                   "price"))
    causes = run.sql(_CAUSES.format(source="""SELECT text FROM logs WHERE federate = 'amm'
        AND quantity = 'reason' AND entity <> 'market'""")).set_index("cause")["n"]
    for cause, count in causes.head(6).items():
        out.append(Kpi("AMM", f"rejections: {cause}", float(count), "count",
                       "binding constraint of the DSO's refusal, or the market's reason"))
    return out


def _grid(run: RunData) -> list[Kpi]:
    limits = run.grid_limits()
    solved = LAST_SOLVE.format(grid="grid")
    band = run.sql(f"""
        SELECT "window", min(value) AS v_min, max(value) AS v_max FROM ({solved})
        WHERE quantity = 'v_pu' GROUP BY "window" """)
    out = []
    if not band.empty:
        outside = ((band.v_min < limits["v_min_pu"]) | (band.v_max > limits["v_max_pu"])).sum()
        out += [
            Kpi("grid", "time outside the voltage band", outside * run.window_h, "h",
                f"windows with any bus·phase outside [{limits['v_min_pu']}, "
                f"{limits['v_max_pu']}] pu × window length"),
            Kpi("grid", "lowest voltage", float(band.v_min.min()), "pu", "committed window states"),
            Kpi("grid", "highest voltage", float(band.v_max.max()), "pu", "committed window states"),
        ]
    vuf = run.sql(f"""SELECT value FROM ({solved}) WHERE quantity = 'max_vuf_pct'""")["value"]
    if not vuf.empty:
        out += [
            Kpi("grid", "time above the VUF limit", (vuf > limits["vuf_max_pct"]).sum()
                * run.window_h, "h", f"windows with max VUF > {limits['vuf_max_pct']} %"),
            Kpi("grid", "highest VUF", float(vuf.max()), "%", "committed window states"),
        ]
    losses = run.sql(f"""SELECT value FROM ({solved}) WHERE quantity = 'losses_kw'""")["value"]
    if not losses.empty:
        out.append(Kpi("grid", "feeder losses", float(losses.sum()) * run.window_h, "kWh",
                       "Σ P_loss × window length (committed window states)"))
    return out


def _auction(run: RunData) -> list[Kpi]:
    out = []
    areas = run.sql("""
        WITH c AS (
          PIVOT (SELECT "window", entity, quantity, value FROM logs
                 WHERE federate = 'mo' AND quantity IN ('mcp', 'mcv_kwh', 'area')
                   AND entity <> 'market')
          ON quantity USING any_value(value))
        SELECT area, sum(mcv_kwh) AS mcv, sum(mcp * mcv_kwh) / nullif(sum(mcv_kwh), 0) AS mcp_w,
               avg(mcp) AS mcp_mean
        FROM c GROUP BY area ORDER BY area""")
    for row in areas.itertuples():
        label = f"area {row.area:g}"
        mcp = row.mcp_w if pd.notna(row.mcp_w) else row.mcp_mean
        out += [Kpi("auction", f"MCP, {label}", float(mcp), "M/kWh",
                    "volume-weighted over windows and clusters"),
                Kpi("auction", f"MCV, {label}", float(row.mcv), "kWh", "Σ over windows")]
    bills = run.sql("""
        WITH b AS (PIVOT (SELECT "window", entity, quantity, value FROM logs
                          WHERE federate = 'pt' AND quantity IN ('bill', 'own_record'))
                   ON quantity USING any_value(value))
        SELECT sum(bill) AS total, max(abs(bill - own_record)) AS worst, count(*) AS n FROM b""")
    if not bills.empty and bills.n.iloc[0] > 0:
        out += [Kpi("auction", "bills, total", float(bills.total.iloc[0]), "M",
                    f"{int(bills.n.iloc[0])} decrypted billing-cycle bills"),
                Kpi("auction", "largest |bill − own record|", float(bills.worst.iloc[0]), "M",
                    "encrypted settlement against each prosumer's plaintext record")]
    return out
