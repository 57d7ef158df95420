"""Reading a run folder's tidy Parquet logs lazily: filtered to what an analysis needs.

`load_run(RUN_DIR, federates=, quantities=, windows=)` reads only the matching files and row groups
into pandas; `connect(RUN_DIR)` gives a DuckDB connection with a `logs` view over every file, for
aggregations of long runs that must not pass through pandas.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from lemcosim.federates.common.errors import LemcosimError
from lemcosim.federates.common.logschema import (
    COLUMNS,
    SCHEMA,
    live_files,
    live_journals,
    log_folders,
    read_journal,
)


def log_files(run_dir: str | Path, federates: Iterable[str] | None = None) -> list[Path]:
    """Every live Parquet file of the run's logs (of the named federates only, if given)."""
    return [f for folder in _folders(run_dir, federates) for f in live_files(folder)]


def logged_federates(run_dir: str | Path, federates: Iterable[str] | None = None) -> list[str]:
    """The federates with rows in the run's logs: Parquet files, or only journals (a killed run
    whose windows since the last row group are journalled)."""
    return sorted(folder.name for folder in _folders(run_dir, federates)
                  if live_files(folder) or live_journals(folder))


def journal_rows(run_dir: str | Path, federates: Iterable[str] | None = None) -> pa.Table:
    """Rows a killed federate flushed to its journal but never wrote as Parquet."""
    batches = []
    for folder in _folders(run_dir, federates):
        for path in live_journals(folder):
            batches += read_journal(path)
    return pa.Table.from_batches(batches, schema=SCHEMA)


def _folders(run_dir: str | Path, federates: Iterable[str] | None) -> list[Path]:
    logs = Path(run_dir) / "logs"
    if not logs.is_dir():
        raise LemcosimError(f"{run_dir}: not a run folder (no {logs})")
    folders = log_folders(logs)
    if not folders:
        legacy = " (it holds CSV logs of an older lemcosim)" if any(logs.glob("*.csv")) else ""
        raise LemcosimError(f"{run_dir}: no logs (expected {logs}/<federate>/*.parquet){legacy}")
    if federates is not None:
        federates = list(federates)
        unknown = sorted(set(federates) - set(folders))
        if unknown:
            raise LemcosimError(f"{run_dir}: no log of federate(s) {', '.join(unknown)} "
                                f"(logged: {', '.join(folders)})")
        folders = {name: folders[name] for name in federates}
    return list(folders.values())


def dataset(run_dir: str | Path, federates: Iterable[str] | None = None) -> ds.Dataset:
    """The run's logs as one lazy pyarrow dataset (nothing is read until it is scanned)."""
    return ds.dataset([str(p) for p in log_files(run_dir, federates)], schema=SCHEMA,
                      format="parquet")


def log_filter(quantities: Iterable[str] | None = None,
               windows: tuple[int, int] | range | None = None,
               entities: Iterable[str] | None = None) -> ds.Expression | None:
    """A pyarrow filter on quantity, entity and an inclusive window range (first, last)."""
    parts = []
    if quantities is not None:
        parts.append(ds.field("quantity").isin(list(quantities)))
    if entities is not None:
        parts.append(ds.field("entity").isin([str(e) for e in entities]))
    if windows is not None:
        first, last = (windows.start, windows.stop - 1) if isinstance(windows, range) else windows
        parts.append((ds.field("window") >= int(first)) & (ds.field("window") <= int(last)))
    expr = None
    for part in parts:
        expr = part if expr is None else expr & part
    return expr


def load_run(run_dir: str | Path, federates: Iterable[str] | None = None,
             quantities: Iterable[str] | None = None,
             windows: tuple[int, int] | range | None = None,
             entities: Iterable[str] | None = None) -> pd.DataFrame:
    """The run's log rows as a DataFrame, read lazily and filtered before anything is loaded.

    Columns: time_s, window, substep, federate, entity, quantity, value (float, NaN for text
    rows), text (the string of text rows, None for numeric ones), unit. `windows` is an inclusive
    (first, last) pair or a range.
    """
    expr = log_filter(quantities, windows, entities)
    table = dataset(run_dir, federates).to_table(filter=expr)
    journal = journal_rows(run_dir, federates)
    if journal.num_rows:
        table = pa.concat_tables([table, journal if expr is None else journal.filter(expr)])
    return table.to_pandas()[list(COLUMNS)]  # in the order written (files sorted by seq)


def connect(run_dir: str | Path, federates: Iterable[str] | None = None):
    """A DuckDB connection with the view `logs` over the run's Parquet files (lazy, streaming)."""
    import duckdb

    files = [str(p) for p in log_files(run_dir, federates)]
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    con.execute("SET memory_limit = '512MB'")
    listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    journal = journal_rows(run_dir, federates)
    parquet = f"SELECT * FROM read_parquet([{listing}])" if files else None
    if journal.num_rows or parquet is None:
        con.register("journal_rows", journal)
        parquet = f"{parquet} UNION ALL BY NAME " if parquet else ""
        con.execute(f"CREATE VIEW logs AS {parquet}SELECT * FROM journal_rows")
    else:
        con.execute(f"CREATE VIEW logs AS {parquet}")
    return con


def run_metadata(run_dir: str | Path) -> dict:
    """Resolved scenario and versions stored beside the logs."""
    import yaml

    run_dir = Path(run_dir)
    meta: dict = {}
    scenario = run_dir / "scenario.yaml"
    if scenario.exists():
        meta["scenario"] = yaml.safe_load(scenario.read_text())
    versions = run_dir / "versions.json"
    if versions.exists():
        meta["versions"] = json.loads(versions.read_text())
    return meta
