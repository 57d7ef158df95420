"""One run folder opened for analysis: its scenario, its clock and a DuckDB view of its logs.

Every table, KPI and figure queries the logs through `RunData.sql` and receives small, aggregated
frames: nothing reads a whole year of logs into pandas.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from lemcosim.analysis.load import connect, run_metadata

# the grid solves several times a window (base state, approvals) and logs counters at the end:
# the rows logged with the window's last losses_kw are its committed state
LAST_SOLVE = """
    SELECT l.* FROM logs l JOIN (
        SELECT "window", max(time_s) AS t FROM logs
        WHERE federate = '{grid}' AND quantity = 'losses_kw' GROUP BY "window") s
      ON l."window" = s."window" AND l.time_s = s.t
    WHERE l.federate = '{grid}'"""


# SPEC §3 defaults, for run folders whose scenario.yaml does not spell the limits out
_SPEC_LIMITS = {"v_min_pu": 0.95, "v_max_pu": 1.05, "vuf_max_pct": 2.0, "loading_max_pct": 100.0}


@dataclass
class RunData:
    path: Path
    name: str
    scenario: dict[str, Any]
    window_s: float
    windows: int
    start: datetime
    con: Any = field(repr=False)

    @classmethod
    def open(cls, run_dir: str | Path) -> RunData:
        run_dir = Path(run_dir)
        meta = run_metadata(run_dir)
        scenario = meta.get("scenario") or {}
        time = scenario.get("time") or {}
        window_s = float(time.get("window_s", 900.0))
        start = pd.Timestamp(time.get("start", "2026-06-21T00:00:00")).to_pydatetime()
        con = connect(run_dir)
        windows = int(con.execute('SELECT coalesce(max("window"), -1) + 1 FROM logs').fetchone()[0])
        return cls(run_dir, str(scenario.get("name", run_dir.name)), scenario, window_s, windows,
                   start, con)

    def sql(self, query: str, params: list | None = None) -> pd.DataFrame:
        return self.con.execute(query, params or []).df()

    def federates(self) -> set[str]:
        return set(self.sql("SELECT DISTINCT federate FROM logs")["federate"])

    def has(self, federate: str, quantity: str | None = None) -> bool:
        query = "SELECT 1 FROM logs WHERE federate = ?" + (" AND quantity = ?" if quantity else "")
        return bool(self.con.execute(query + " LIMIT 1",
                                     [federate] + ([quantity] if quantity else [])).fetchall())

    def time_of(self, windows) -> pd.DatetimeIndex:
        """Start time of each window (the scenario's clock)."""
        return pd.DatetimeIndex([self.start + timedelta(seconds=float(w) * self.window_s)
                                 for w in windows])

    @property
    def window_h(self) -> float:
        return self.window_s / 3600.0

    def grid_limits(self) -> dict[str, float]:
        """The voltage, VUF and loading limits the grid federate checked (scenario or defaults)."""
        given = ((self.scenario.get("grid") or {}).get("limits")) or {}
        return {**_SPEC_LIMITS, **{k: float(v) for k, v in given.items() if k in _SPEC_LIMITS}}
