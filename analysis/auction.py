"""Auction tables (thesis tables 6.2–6.15: aggregates, clearing per cluster and window, bills)
and the data of its figures, as DuckDB queries over the MO's and PT's logs."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from lemcosim.analysis.tables import Table, frame_connection

_RESULTS = ["mcp", "mcv_kwh", "bcf", "scf", "bcfl", "area"]
_UNITS = {"mcp": "M/kWh", "mcv_kwh": "kWh", "bill": "M", "own_record": "M", "difference": "M"}


def clearing_query() -> str:
    cols = ", ".join(f"any_value(value) FILTER (quantity = '{q}') AS \"{q}\"" for q in _RESULTS)
    return f"""SELECT "window", entity AS cluster, {cols} FROM logs
        WHERE federate = 'mo' AND quantity IN ({', '.join(f"'{q}'" for q in _RESULTS)})
          AND entity <> 'market'
        GROUP BY "window", entity ORDER BY "window", entity"""


def bills_query() -> str:
    return """SELECT "window" AS cycle_end_window, entity AS prosumer,
            any_value(value) FILTER (quantity = 'bill') AS bill,
            any_value(value) FILTER (quantity = 'own_record') AS own_record,
            bill - own_record AS difference
        FROM logs WHERE federate = 'pt' AND quantity IN ('bill', 'own_record')
        GROUP BY "window", entity ORDER BY "window", entity"""


def aggregates_query() -> str:
    return """SELECT "window", entity AS cluster, split_part(quantity, '_', 2) AS side,
            CAST(split_part(quantity, '_', 3) AS INTEGER) AS level, value AS kwh
        FROM logs WHERE federate = 'mo' AND quantity LIKE 'aggregate\\_%' ESCAPE '\\'
        ORDER BY "window", cluster, side, level"""


def clearing_table(df: pd.DataFrame) -> pd.DataFrame:
    return frame_connection(df).execute(clearing_query()).df()


def bills_table(df: pd.DataFrame) -> pd.DataFrame:
    return frame_connection(df).execute(bills_query()).df()


def aggregate_curves(run, window: int) -> pd.DataFrame:
    return run.sql(f'SELECT * FROM ({aggregates_query()}) WHERE "window" = ?', [window])


def price_of_levels(scenario: dict, levels: int) -> np.ndarray:
    """Price of each bid level: P levels evenly from the feed-in tariff to the retail price
    (the scenario's auction section, or its defaults)."""
    from lemcosim.federates.auction.bids import price_levels
    from lemcosim.federates.auction.config import AuctionConfig

    given = scenario.get("auction") or {}
    defaults = AuctionConfig.model_fields
    fit = float(given.get("fit", defaults["fit"].default))
    retail = float(given.get("retail", defaults["retail"].default))
    return price_levels(fit, retail, int(given.get("levels", levels)))


def tables(run) -> Iterator[Table]:
    if run.has("mo", "mcp"):
        yield Table("auction_clearing", "Clearing per cluster and window (thesis tables 6.9ff): "
                    "market clearing price MCP, volume MCV, buyer and seller clearing factors "
                    "BCF, SCF, BCFL and price area.", sql=clearing_query(), units=_UNITS)
    if run.has("mo"):
        yield Table("auction_aggregates", "Decrypted aggregate demand (buy) and supply (sell) per "
                    "cluster, window and price level (thesis tables 6.2ff).",
                    sql=aggregates_query(), units={"kwh": "kWh"})
    if run.has("pt", "bill"):
        yield Table("auction_bills", "Billing-cycle bills decrypted from the encrypted settlement "
                    "against each prosumer's own plaintext record (thesis tables 6.13–6.15).",
                    sql=bills_query(), units=_UNITS)
