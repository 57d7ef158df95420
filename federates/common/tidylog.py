"""Tidy, append-only event logs as streaming Parquet (schema and file names: logschema.py).

Rows are buffered by the federate, one tuple per row. At the end of each window `end_window`
hands the window's rows to the log's writer thread and returns at once (tens of microseconds):
the writing is off the federation's critical path, where the peers would otherwise wait for it.
The writer turns them into an Arrow batch and, once the batch holds `flush_every_windows` windows
(or 65,536 rows), writes it as one Parquet file (`part-<seq>.parquet`, one row group), to a
temporary name then renamed, so a run killed at any moment (even SIGKILL) keeps every completed
batch as a valid file; the windows before append their rows to the batch's Arrow IPC journal,
cheap and readable after a kill. Only then does the writer advance the progress file
(`<federate>.progress`): every window it reports complete is in the OS's hands. It rewrites that
file at most every `PROGRESS_EVERY_S` (a write and rename cost ~0.4 ms of system time, more than a
window's own work on a 2-core machine), and when idle, on `flush` and at the end it reports the
last window written. `flush` waits
until everything logged so far is (a checkpoint must agree with the log). The writer lags at most
`QUEUE_WINDOWS` windows behind: past that `end_window` waits for it, so memory stays bounded.
Parts are merged into segments of larger row groups as they accumulate: a year-long run leaves a
few hundred files, and the writer holds one batch plus one merge in memory (flat). A failed write
is raised in the federate, naming the file, at its next `end_window`, `flush` or `close`.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lemcosim.federates.common.errors import LemcosimError
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

__all__ = ["COLUMNS", "QUEUE_WINDOWS", "TidyLog"]

PROGRESS_EVERY_S = 0.1  # the progress file lags the log by at most this (a bar needs no more)
QUEUE_WINDOWS = 32  # windows handed over but not yet written; a merge of parts takes ~10 windows
_ROW_GROUP_ROWS = 65_536  # also the most rows a batch holds: its windows end early (memory)
# a logged row as the federate buffers it: the schema without `federate`
_ROW = pa.struct([f for f in SCHEMA if f.name != "federate"])
_WINDOW, _FLUSH, _CLOSE = "window", "flush", "close"  # what the writer is asked to do
_Action = tuple[Callable[[], object], Path]  # run by the writer after the rows; the file it writes


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
        self._rows: list[tuple] = []  # logged since the last hand-over (see _batch_of)
        # (what, rows, window, then) for the writer thread, started at the first hand-over;
        # `then`: (action, the file it writes) to run after the rows, or None
        self._queue: queue.Queue[tuple[str, list[tuple], int, _Action | None]] = queue.Queue(
            QUEUE_WINDOWS)
        self._writer: threading.Thread | None = None
        self._failure: tuple[Path, BaseException] | None = None  # the writer's first error
        # the writer's own state from here on (the federate's thread only reads it when idle)
        self._writing = self.path  # the file being written, named by an error
        self._batches: list[pa.RecordBatch] = []  # rows of the current batch written so far
        self._journal: tuple[object, pa.ipc.RecordBatchStreamWriter] | None = None
        self._windows_buffered = 0
        self._seq = max_seq(self.path) + 1  # a continued log (resume) goes on after its files
        self._pending: list[tuple[int, int]] = []  # (seq, rows) of parts not yet merged
        self._unreported: int | None = None  # the last window written, not yet in the progress
        self._reported_at = -PROGRESS_EVERY_S  # time.monotonic() of the last progress write
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
        number, text = split_value(value)  # now: a dict logged must not change in the queue
        # one tuple per row, typed by the writer: the federate's thread does the least
        self._rows.append((time_s, window, substep, str(entity), quantity, number, text,
                           unit or ""))

    def record_entity(self, time_s: float, window: int, entity: str, substep: int,
                      values: list[tuple[str, float | str, str]]) -> None:
        """Rows (quantity, value, unit) of one entity at one time: `record` for each, with the
        per-row work done once (a market logs ~12 rows per transaction, 6,000 of them a window
        at 6,000 prosumers: a float goes in as it is, half the cost of `split_value`)."""
        entity = str(entity)
        rows = self._rows
        for quantity, value, unit in values:
            if type(value) is float:
                rows.append((time_s, window, substep, entity, quantity, value, None, unit or ""))
            else:
                rows.append((time_s, window, substep, entity, quantity, *split_value(value),
                             unit or ""))

    def record_many(
        self, time_s: float, window: int, entity_values: dict[str, float], quantity: str, unit: str,
        substep: int = 0,
    ) -> None:
        for entity, value in entity_values.items():
            self.record(time_s, window, entity, quantity, value, unit, substep)

    def end_window(self, window: int) -> None:
        """A window is complete: hand its rows to the writer, which writes the batch as Parquet
        once it holds `flush_every_windows` windows (journals the rows otherwise) and then
        reports the window in the progress file."""
        self._raise_failure()
        self._hand_over(_WINDOW, window)

    def flush(self) -> None:
        """Make every row logged so far survive a kill before returning: the writer appends the
        buffered rows to the batch's journal after everything handed over before."""
        self._raise_failure()
        self._hand_over(_FLUSH)
        self._wait()

    def flush_then(self, action: Callable[[], object], target: Path) -> None:
        """Hand over the rows logged so far and `action`, which writes `target` (a checkpoint);
        return at once. The writer makes the rows survive a kill, as `flush` does, then runs it;
        a failed action is raised like a failed write, naming `target`."""
        self._raise_failure()
        self._hand_over(_FLUSH, action=(action, target))

    def close(self) -> None:
        """Write what is buffered and merge the remaining parts (end of the run); the writer
        thread ends."""
        self._hand_over(_CLOSE)
        writer, self._writer = self._writer, None
        writer.join()
        self._raise_failure()

    def truncate_at(self, time_s: float) -> None:
        """Keep only the rows logged before `time_s` (a resumed run goes on from there; by time,
        not window label, because a federate may log a window's summary in the next one): every
        file of the log is rewritten, one file at a time (memory stays bounded over a year), into
        one segment covering all batch numbers used so far, which supersedes them at once; the
        files it replaces are removed after."""
        self._wait()
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
        """Drop the rows buffered since the last hand-over (a resumed run's repeated set-up rows)."""
        self._rows = []

    def mark_progress(self, window: int, state: str = "running") -> None:
        """Tell the runner how far this federate got (read by the progress bar), once every row
        handed over before is written."""
        self._wait()
        self._write_progress(window, state)

    def _hand_over(self, what: str, window: int = -1, action: _Action | None = None) -> None:
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_loop, name=f"log-{self.federate}",
                                            daemon=True)
            self._writer.start()
        rows, self._rows = self._rows, []
        # waits while the writer is QUEUE_WINDOWS behind
        self._queue.put((what, rows, window, action))

    def _wait(self) -> None:
        """Until the writer has done everything handed over (at once when it has)."""
        self._queue.join()
        self._raise_failure()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            path, exc = self._failure
            raise LemcosimError(f"{self.federate}: writing its log failed at {path}: "
                                f"{type(exc).__name__}: {exc}") from exc

    # --- the writer thread -------------------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            try:  # a window written but not yet reported is reported once the writer is idle
                what, rows, window, action = self._queue.get(
                    timeout=None if self._unreported is None else PROGRESS_EVERY_S)
            except queue.Empty:
                if self._failure is None:
                    self._report(force=True)
                continue
            try:
                if self._failure is None:  # after a failure it only empties the queue
                    self._write(what, rows, window)
                    if action is not None:
                        self._writing = action[1]
                        action[0]()
            except BaseException as exc:  # noqa: BLE001 - raised in the federate's thread
                self._failure = (self._writing, exc)
            finally:
                self._queue.task_done()
            if what == _CLOSE:
                return

    def _write(self, what: str, rows: list[tuple], window: int) -> None:
        batch = self._batch_of(rows)
        if what == _WINDOW:
            self._windows_buffered += 1
            held = sum(b.num_rows for b in self._batches) + (batch.num_rows if batch else 0)
            if self._windows_buffered >= self.flush_every_windows or held >= _ROW_GROUP_ROWS:
                self._write_part(batch)
            else:
                self._append_journal(batch)
            self._unreported = window
            self._report(force=False)
        elif what == _FLUSH:
            self._append_journal(batch)
            self._report(force=True)
        else:
            self._write_part(batch)
            if len(self._pending) > 1:
                self._merge()
            self._report(force=True)

    def _report(self, force: bool) -> None:
        """Write the last window written to the progress file, if any is unreported and (unless
        `force`) the last report is `PROGRESS_EVERY_S` old."""
        now = time.monotonic()
        if self._unreported is None or (not force and now - self._reported_at < PROGRESS_EVERY_S):
            return
        self._write_progress(self._unreported, "running")
        self._unreported, self._reported_at = None, now

    def _batch_of(self, rows: list[tuple]) -> pa.RecordBatch | None:
        if not rows:
            return None
        try:  # Arrow converts the rows in C++ (3x faster than column by column in Python)
            rows_array = pa.array(rows, _ROW)
        except (pa.ArrowTypeError, pa.ArrowInvalid):  # numbers of other types: as Python's
            rows_array = pa.array([(float(t), int(w), int(s), *rest) for t, w, s, *rest in rows],
                                  _ROW)
        logged = pa.RecordBatch.from_struct_array(rows_array)
        return pa.record_batch(
            [pa.repeat(self.federate, len(rows)) if c == "federate" else logged[c]
             for c in COLUMNS], schema=SCHEMA)

    def _append_journal(self, batch: pa.RecordBatch | None) -> None:
        if batch is None:
            return
        self._batches.append(batch)
        self._writing = self.path / journal_name(self._seq)
        if self._journal is None:
            handle = open(self._writing, "wb")  # noqa: SIM115 - kept open
            self._journal = (handle, pa.ipc.new_stream(handle, SCHEMA))
        handle, writer = self._journal
        writer.write_batch(batch)
        handle.flush()  # in the OS's hands: survives the death of this process

    def _write_part(self, batch: pa.RecordBatch | None) -> None:
        self._windows_buffered = 0
        if batch is not None:
            self._batches.append(batch)
        if not self._batches:
            return
        table = pa.Table.from_batches(self._batches)
        self._batches = []
        seq = self._seq
        self._seq += 1
        self._write_atomically(table, self.path / part_name(seq))
        if self._journal is not None:  # the part supersedes it (readers skip it if still there)
            handle, writer = self._journal
            writer.close()
            handle.close()
            self._writing = self.path / journal_name(seq)
            self._writing.unlink()
            self._journal = None
        self._pending.append((seq, table.num_rows))
        if (len(self._pending) >= self.merge_parts
                or sum(n for _, n in self._pending) >= self.merge_rows):
            self._merge()

    def _merge(self) -> None:
        # The segment's name covers the parts' seq range: once it exists, readers ignore those
        # parts, so a kill between the rename and the deletions duplicates nothing.
        first, last = self._pending[0][0], self._pending[-1][0]
        parts = [self.path / part_name(seq) for seq, _ in self._pending]
        self._writing = self.path / segment_name(first, last)
        table = pa.concat_tables(pq.read_table(p, schema=SCHEMA) for p in parts)
        self._write_atomically(table, self._writing)
        for p in parts:
            p.unlink()
        self._pending.clear()
        del table
        # the merge's buffers back to the OS: the allocator would keep them, and the federate's
        # RSS would step up at merges over a long run, like a leak (~1.4 ms a merge)
        pa.default_memory_pool().release_unused()

    def _write_progress(self, window: int, state: str) -> None:
        self._writing = tmp = self.progress_path.with_suffix(".progress.tmp")
        tmp.write_text(json.dumps({"window": window, "state": state}))
        os.replace(tmp, self.progress_path)

    def _write_atomically(self, table: pa.Table, path: Path) -> None:
        self._writing = tmp = path.with_suffix(".tmp")
        pq.write_table(table, tmp, compression="zstd", row_group_size=_ROW_GROUP_ROWS)
        os.replace(tmp, path)


def _warm_up() -> None:
    # The first IPC and Parquet writes of a process cost ~0.3 s (lazy initialisation in Arrow):
    # pay it before the federation starts, not in a window where the peers would wait for us.
    empty = SCHEMA.empty_table()
    with pa.ipc.new_stream(pa.BufferOutputStream(), SCHEMA) as writer:
        writer.write_table(empty)
    pq.write_table(empty, pa.BufferOutputStream(), compression="zstd")
