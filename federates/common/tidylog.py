"""Tidy, append-only event logs as streaming Parquet (schema and file names: logschema.py).

Rows are buffered in columns. `end_window` writes the batch of the last `flush_every_windows`
windows as one Parquet file (`part-<seq>.parquet`, one row group), to a temporary name then
renamed, so a run killed at any moment (even SIGKILL) keeps every completed batch as a valid file.
`flush` between batch ends (after each interrupt, or each window of a multi-window batch) appends
the rows to the batch's Arrow IPC journal, cheap and readable after a kill, so what was flushed
survives too. Parts are merged into segments of larger row groups as they accumulate: a year-long
run leaves a few hundred files, and the writer holds one batch plus one merge in memory (flat).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lemcosim.federates.common.logschema import (
    COLUMNS,
    SCHEMA,
    federate_dir,
    journal_name,
    live_files,
    live_journals,
    max_seq,
    part_name,
    read_journal,
    segment_name,
    split_value,
)

__all__ = ["COLUMNS", "TidyLog"]

_ROW_GROUP_ROWS = 65_536
_BUFFERED = ("time_s", "window", "substep", "entity", "quantity", "value", "text", "unit")


class TidyLog:
    """Buffered Parquet event log of one federate (`RUN_DIR/logs/<federate>/`)."""

    def __init__(self, logs_dir: Path | str, federate: str, flush_every_windows: int = 1,
                 merge_rows: int = 131_072, merge_parts: int = 256) -> None:
        self.logs_dir = Path(logs_dir)
        self.federate = federate
        self.path = federate_dir(self.logs_dir, federate)
        self.path.mkdir(parents=True, exist_ok=True)
        self.progress_path = self.logs_dir / f"{federate}.progress"
        self.flush_every_windows = max(1, int(flush_every_windows))
        self.merge_rows = merge_rows
        self.merge_parts = merge_parts
        self._cols: dict[str, list] = {c: [] for c in _BUFFERED}
        self._batches: list[pa.RecordBatch] = []  # flushed rows of the current batch
        self._journal: tuple[object, pa.ipc.RecordBatchStreamWriter] | None = None
        self._windows_buffered = 0
        self._seq = max_seq(self.path) + 1  # a continued log (resume) goes on after its files
        self._pending: list[tuple[int, int]] = []  # (seq, rows) of parts not yet merged
        _warm_up()

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
        number, text = split_value(value)
        cols = self._cols
        cols["time_s"].append(float(time_s))
        cols["window"].append(int(window))
        cols["substep"].append(int(substep))
        cols["entity"].append(str(entity))
        cols["quantity"].append(quantity)
        cols["value"].append(number)
        cols["text"].append(text)
        cols["unit"].append(unit or "")

    def record_many(
        self, time_s: float, window: int, entity_values: dict[str, float], quantity: str, unit: str,
        substep: int = 0,
    ) -> None:
        for entity, value in entity_values.items():
            self.record(time_s, window, entity, quantity, value, unit, substep)

    def end_window(self, window: int) -> None:
        """A window is complete: write the batch as Parquet once it holds `flush_every_windows`
        windows (journal the rows otherwise), then report progress."""
        self._windows_buffered += 1
        if self._windows_buffered >= self.flush_every_windows:
            self._write_part()
        else:
            self.flush()
        self.mark_progress(window)

    def flush(self) -> None:
        """Make the buffered rows survive a kill now: append them to the batch's journal."""
        batch = self._take_buffer()
        if batch is None:
            return
        self._batches.append(batch)
        if self._journal is None:
            handle = open(self.path / journal_name(self._seq), "wb")  # noqa: SIM115 - kept open
            self._journal = (handle, pa.ipc.new_stream(handle, SCHEMA))
        handle, writer = self._journal
        writer.write_batch(batch)
        handle.flush()  # in the OS's hands: survives the death of this process

    def close(self) -> None:
        """Write what is buffered and merge the remaining parts (end of the run)."""
        self._write_part()
        if len(self._pending) > 1:
            self._merge()

    def _take_buffer(self) -> pa.RecordBatch | None:
        rows = len(self._cols["time_s"])
        if not rows:
            return None
        batch = pa.record_batch(
            [pa.array([self.federate] * rows, pa.string()) if c == "federate"
             else pa.array(self._cols[c], SCHEMA.field(c).type) for c in COLUMNS],
            schema=SCHEMA,
        )
        for column in self._cols.values():
            column.clear()
        return batch

    def _write_part(self) -> None:
        self._windows_buffered = 0
        batch = self._take_buffer()
        if batch is not None:
            self._batches.append(batch)
        if not self._batches:
            return
        table = pa.Table.from_batches(self._batches)
        self._batches = []
        seq = self._seq
        self._seq += 1
        _write_atomically(table, self.path / part_name(seq))
        if self._journal is not None:  # the part supersedes it (readers skip it if still there)
            handle, writer = self._journal
            writer.close()
            handle.close()
            (self.path / journal_name(seq)).unlink()
            self._journal = None
        self._pending.append((seq, table.num_rows))
        if (len(self._pending) >= self.merge_parts
                or sum(n for _, n in self._pending) >= self.merge_rows):
            self._merge()

    def truncate_at(self, time_s: float) -> None:
        """Keep only the rows logged before `time_s` (a resumed run goes on from there; by time,
        not window label, because a federate may log a window's summary in the next one): every
        file of the log is rewritten, one file at a time (memory stays bounded over a year), into
        one segment covering all batch numbers used so far, which supersedes them at once; the
        files it replaces are removed after."""
        last = max_seq(self.path)
        if last < 0:
            return
        files, journals = live_files(self.path), live_journals(self.path)
        keep = self.path / segment_name(0, last)
        tmp = keep.with_suffix(".tmp")
        with pq.ParquetWriter(tmp, SCHEMA, compression="zstd") as writer:
            for path in files:
                for group in range(pq.ParquetFile(path).num_row_groups):
                    table = pq.ParquetFile(path).read_row_group(group)
                    writer.write_table(table.filter(pc.less(table["time_s"], time_s)))
            for path in journals:
                for batch in read_journal(path):
                    writer.write_table(pa.Table.from_batches([batch], schema=SCHEMA).filter(
                        pc.less(batch["time_s"], time_s)))
        os.replace(tmp, keep)
        for path in (*files, *journals):
            if path != keep:
                path.unlink(missing_ok=True)
        self._seq = last + 1

    def discard(self) -> None:
        """Drop the rows buffered since the last flush (a resumed run's repeated set-up rows)."""
        self._take_buffer()

    def mark_progress(self, window: int, state: str = "running") -> None:
        """Tell the runner how far this federate got (read by the progress bar)."""
        tmp = self.progress_path.with_suffix(".progress.tmp")
        tmp.write_text(json.dumps({"window": window, "state": state}))
        os.replace(tmp, self.progress_path)

    def _merge(self) -> None:
        # The segment's name covers the parts' seq range: once it exists, readers ignore those
        # parts, so a kill between the rename and the deletions duplicates nothing.
        first, last = self._pending[0][0], self._pending[-1][0]
        parts = [self.path / part_name(seq) for seq, _ in self._pending]
        table = pa.concat_tables(pq.read_table(p, schema=SCHEMA) for p in parts)
        _write_atomically(table, self.path / segment_name(first, last))
        for p in parts:
            p.unlink()
        self._pending.clear()


def _warm_up() -> None:
    # The first IPC and Parquet writes of a process cost ~0.3 s (lazy initialisation in Arrow):
    # pay it before the federation starts, not in a window where the peers would wait for us.
    empty = SCHEMA.empty_table()
    with pa.ipc.new_stream(pa.BufferOutputStream(), SCHEMA) as writer:
        writer.write_table(empty)
    pq.write_table(empty, pa.BufferOutputStream(), compression="zstd")


def _write_atomically(table: pa.Table, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp, compression="zstd", row_group_size=_ROW_GROUP_ROWS)
    os.replace(tmp, path)
