"""A report table: a query over the logs (streamed to CSV in full, previewed in the report) or a
small frame computed in pandas."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pandas as pd


@dataclass
class Table:
    stem: str
    caption: str
    sql: str | None = None
    params: list | None = None
    frame: pd.DataFrame | None = None
    units: dict[str, str] | None = None

    def rows(self, run) -> int:
        if self.frame is not None:
            return len(self.frame)
        return int(run.con.execute(f"SELECT count(*) FROM ({self.sql})", self.params or []
                                   ).fetchone()[0])

    def preview(self, run, limit: int) -> pd.DataFrame:
        if self.frame is not None:
            return self.frame.head(limit)
        return run.sql(f"SELECT * FROM ({self.sql}) LIMIT {int(limit)}", self.params)

    def write_csv(self, run, path) -> None:
        if self.frame is not None:
            self.frame.to_csv(path, index=False)
            return
        target = str(path).replace("'", "''")
        run.con.execute(f"COPY ({self.sql}) TO '{target}' (HEADER, DELIMITER ',')",
                        self.params or [])


def frame_connection(df: pd.DataFrame) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection whose `logs` view is an in-memory frame of log rows (load_run)."""
    con = duckdb.connect()
    con.register("logs", df)
    return con
