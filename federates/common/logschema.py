"""The one schema of lemcosim's tidy event logs, and where a run folder keeps them.

Each federate writes `RUN_DIR/logs/<federate>/` as Parquet files with these columns (one row per
event). A numeric value goes to `value` (float64, `text` null); anything else to `text` (`value`
null), so reading back never turns strings into NaN or numbers into strings.

Files of one federate's folder (see tidylog.py for how they are written):
  part-<seq>.parquet         one window batch (one row group), written when the batch ends
  seg-<first>-<last>.parquet parts first..last merged into larger row groups
  journal-<seq>.arrows       Arrow IPC stream of the rows of batch <seq> flushed before it ended
                             (rows logged between window ends, e.g. by interrupts); left only by
                             a killed writer, readable up to its last complete record batch
A file whose seq is covered by a later-written file (a part inside a segment's range, a journal
with its part) is a leftover of a kill between two steps and is ignored by readers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa

SCHEMA = pa.schema([
    pa.field("time_s", pa.float64(), nullable=False),
    pa.field("window", pa.int32(), nullable=False),
    pa.field("substep", pa.int32(), nullable=False),
    pa.field("federate", pa.string(), nullable=False),
    pa.field("entity", pa.string(), nullable=False),
    pa.field("quantity", pa.string(), nullable=False),
    pa.field("value", pa.float64()),
    pa.field("text", pa.string()),
    pa.field("unit", pa.string(), nullable=False),
])
COLUMNS = tuple(SCHEMA.names)

_PART = re.compile(r"^part-(\d+)\.parquet$")
_SEGMENT = re.compile(r"^seg-(\d+)-(\d+)\.parquet$")
_JOURNAL = re.compile(r"^journal-(\d+)\.arrows$")


def federate_dir(logs_dir: Path, federate: str) -> Path:
    return Path(logs_dir) / federate


def part_name(seq: int) -> str:
    return f"part-{seq:08d}.parquet"


def segment_name(first: int, last: int) -> str:
    return f"seg-{first:08d}-{last:08d}.parquet"


def journal_name(seq: int) -> str:
    return f"journal-{seq:08d}.arrows"


def _scan(folder: Path) -> tuple[list[tuple[int, int, Path]], list[tuple[int, Path]]]:
    """(segments and parts as (first, last, path), journals as (seq, path)) of one folder."""
    files, journals = [], []
    for path in folder.iterdir():
        if m := _SEGMENT.match(path.name):
            files.append((int(m[1]), int(m[2]), path))
        elif m := _PART.match(path.name):
            files.append((int(m[1]), int(m[1]), path))
        elif m := _JOURNAL.match(path.name):
            journals.append((int(m[1]), path))
    return files, journals


def _covered(seq: int, ranges: list[tuple[int, int, Path]], itself: Path | None = None) -> bool:
    return any(first <= seq <= last and p != itself for first, last, p in ranges)


def live_files(folder: Path) -> list[Path]:
    """The Parquet files of one federate that hold its rows, in the order written."""
    files, _ = _scan(folder)
    segments = [f for f in files if f[2].name.startswith("seg-")]
    return [p for first, _, p in sorted(files) if not _covered(first, segments, p)]


def live_journals(folder: Path) -> list[Path]:
    """Journals of batches a killed writer never wrote as Parquet, in the order written."""
    files, journals = _scan(folder)
    return [p for seq, p in sorted(journals) if not _covered(seq, files)]


def max_seq(folder: Path) -> int:
    """The highest batch number used in a folder (-1 if none): a continued log goes on from it."""
    files, journals = _scan(folder)
    return max([last for _, last, _ in files] + [seq for seq, _ in journals], default=-1)


def log_folders(logs_dir: Path) -> dict[str, Path]:
    """Federate name → its log folder, for every federate that wrote a log."""
    return {p.name: p for p in sorted(Path(logs_dir).iterdir())
            if p.is_dir() and (live_files(p) or live_journals(p))}


def split_value(value: object) -> tuple[float | None, str | None]:
    """(value, text) of one logged value: numbers (and bools) numeric, the rest kept as text."""
    if value is None:
        return None, None
    if isinstance(value, str):
        return None, value
    if isinstance(value, (dict, list, tuple)):
        return None, json.dumps(value)
    try:
        number = float(value)  # int, float, bool, numpy scalars
    except (TypeError, ValueError):
        return None, str(value)
    return number, None


def read_journal(path: Path) -> list:
    """The complete record batches of a journal; a batch cut short by a kill is left out."""
    import pyarrow as pa

    batches = []
    with pa.OSFile(str(path)) as source:
        try:
            reader = pa.ipc.open_stream(source)
            while True:
                batches.append(reader.read_next_batch())
        except (StopIteration, pa.ArrowInvalid, OSError):
            pass
    return batches
