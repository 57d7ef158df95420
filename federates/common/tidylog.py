"""Tidy, append-only event logs: one CSV row per event, flushed once per trading window.

Each federate writes `RUN_DIR/logs/<federate>.csv`. Rows are buffered during a window and written
with one `write` + `fsync` at the window's end, so a run killed mid-way leaves every completed window
readable and at most the current window missing.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

COLUMNS = ("time_s", "window", "substep", "federate", "entity", "quantity", "value", "unit")


class TidyLog:
    """Buffered CSV event log of one federate."""

    def __init__(self, logs_dir: Path | str, federate: str) -> None:
        self.logs_dir = Path(logs_dir)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.federate = federate
        self.path = self.logs_dir / f"{federate}.csv"
        self.progress_path = self.logs_dir / f"{federate}.progress"
        self._rows: list[tuple] = []
        if not self.path.exists() or self.path.stat().st_size == 0:
            self._write_text(",".join(COLUMNS) + "\n")

    def record(
        self,
        time_s: float,
        window: int,
        entity: str,
        quantity: str,
        value: float | str,
        unit: str = "",
        substep: int = 0,
    ) -> None:
        self._rows.append((time_s, window, substep, self.federate, entity, quantity, value, unit))

    def record_many(
        self, time_s: float, window: int, entity_values: dict[str, float], quantity: str, unit: str,
        substep: int = 0,
    ) -> None:
        for entity, value in entity_values.items():
            self._rows.append((time_s, window, substep, self.federate, entity, quantity, value, unit))

    def flush(self) -> None:
        if not self._rows:
            return
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(self._rows)
        self._rows.clear()
        self._write_text(buf.getvalue())

    def mark_progress(self, window: int, state: str = "running") -> None:
        """Tell the runner how far this federate got (read by the progress bar)."""
        tmp = self.progress_path.with_suffix(".progress.tmp")
        tmp.write_text(json.dumps({"window": window, "state": state}))
        os.replace(tmp, self.progress_path)

    def _write_text(self, text: str) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
