"""`lemcosim export RUN_DIR --csv OUT`: the Parquet logs as plain CSV, streamed by DuckDB."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from lemcosim.analysis.load import connect, logged_federates
from lemcosim.federates.common.logschema import COLUMNS


def export_csv(run_dir: Path, out: Path, federates: Iterable[str] | None = None,
               quantities: Iterable[str] | None = None,
               windows: tuple[int, int] | None = None) -> list[Path]:
    """Write OUT/<federate>.csv (columns as in the logs, text rows with an empty value)."""
    names = logged_federates(run_dir, federates)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names:
        con = connect(run_dir, [name])
        where, params = ["TRUE"], []
        if quantities is not None:
            quantities = list(quantities)
            where.append(f"quantity IN ({', '.join('?' for _ in quantities)})")
            params += quantities
        if windows is not None:
            where.append('"window" BETWEEN ? AND ?')
            params += list(windows)
        path = out / f"{name}.csv"
        columns = ", ".join(f'"{c}"' for c in COLUMNS)
        query = f"SELECT {columns} FROM logs WHERE {' AND '.join(where)}"
        # COPY streams row groups to the file: memory stays flat for a year of logs
        con.execute(f"COPY ({query}) TO '{_quoted(path)}' (HEADER, DELIMITER ',')", params)
        con.close()
        written.append(path)
    return written


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")
