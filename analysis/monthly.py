"""The market by calendar month: the share of approved energy settled through the AMM pool, and
how often (and how long at a stretch) an ESU had no liquidity to commit.

A window belongs to the month in which it starts (scenario clock: `time.start` + w·Δt). The
query runs in DuckDB over the run's Parquet logs, so a year of 15-minute windows never passes
through pandas; the result has one row per month.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from lemcosim.analysis.run import RunData
from lemcosim.analysis.tables import Table

# Per window: energy through the pool (`volume_kwh`) and beyond a price bound with the utility
# (`utility_kwh`), both of entity `market`, and how many ESUs logged `liquidity_skipped`. Then per
# month the longest stretch of consecutive windows in which an ESU skipped (gaps and islands:
# consecutive windows share `window - rank`).
_QUERY = """
WITH per_window AS (
    SELECT "window",
           coalesce(sum(value) FILTER (entity = 'market' AND quantity = 'volume_kwh'), 0) AS pool_kwh,
           coalesce(sum(value) FILTER (entity = 'market' AND quantity = 'utility_kwh'), 0)
               AS utility_kwh,
           count(*) FILTER (quantity = 'liquidity_skipped') AS esus_skipping
    FROM logs
    WHERE federate = 'amm' AND quantity IN ('volume_kwh', 'utility_kwh', 'liquidity_skipped')
    GROUP BY "window"),
dated AS (
    SELECT *, strftime(TIMESTAMP '{start}' + to_microseconds(CAST(round("window" * {window_us}) AS BIGINT)),
                       '%Y-%m') AS month
    FROM per_window),
stretches AS (
    SELECT month, count(*) AS length
    FROM (SELECT month, "window" - row_number() OVER (PARTITION BY month ORDER BY "window") AS island
          FROM dated WHERE esus_skipping > 0)
    GROUP BY month, island)
SELECT d.month, count(*) AS windows, sum(pool_kwh) AS pool_kwh, sum(utility_kwh) AS utility_kwh,
       sum(pool_kwh) / nullif(sum(pool_kwh) + sum(utility_kwh), 0) AS pool_share,
       count(*) FILTER (esus_skipping > 0) AS windows_skipping_liquidity,
       coalesce((SELECT max(length) FROM stretches s WHERE s.month = d.month), 0)
           AS longest_skip_windows
FROM dated d GROUP BY d.month ORDER BY d.month"""

_UNITS = {"windows": "count", "pool_kwh": "kWh", "utility_kwh": "kWh", "pool_share": "pu",
          "windows_skipping_liquidity": "count", "longest_skip_windows": "count"}


def _query(run: RunData) -> str:
    # literals, not parameters: the report also runs the query inside COPY, which takes none
    return _QUERY.format(start=run.start.isoformat(sep=" "), window_us=run.window_s * 1e6)


def pool_share_by_month(run: RunData | str | Path) -> pd.DataFrame:
    """One row per calendar month (index `month`, 'YYYY-MM'): windows, `pool_kwh` (approved energy
    through the pool), `utility_kwh` (approved energy settled with the utility beyond a price
    bound), `pool_share` = pool / (pool + utility) (NaN in a month without approved energy),
    `windows_skipping_liquidity` (windows in which at least one ESU committed none) and
    `longest_skip_windows` (the longest run of such consecutive windows inside the month).
    Empty if the run has no AMM."""
    run = run if isinstance(run, RunData) else RunData.open(run)
    if not run.has("amm"):
        return pd.DataFrame(columns=list(_UNITS)).rename_axis("month")
    return run.sql(_query(run)).set_index("month")


def tables(run: RunData) -> Iterator[Table]:
    """The report's table of an AMM run that spans more than one calendar month."""
    if not run.has("amm", "volume_kwh"):
        return
    last = run.time_of([max(run.windows - 1, 0)])[0]
    if (last.year, last.month) == (run.start.year, run.start.month):
        return
    yield Table("amm_pool_share_by_month", "Market by calendar month: approved energy through the "
                "pool and with the utility beyond a price bound, the pool's share, and windows in "
                "which an ESU had no liquidity to commit (in all, and the longest stretch).",
                sql=_query(run), units=_UNITS)
