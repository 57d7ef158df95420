"""Each federate's last time request and grant, for the runner's fault attribution.

A federate writes `logs/<name>.heartbeat` (a few bytes, memory-mapped: an update is a memory write,
no system call, so every HELICS time request can afford one) before and after each time request.
When a federation stops advancing, the runner reads them: the federates waiting in a time request
are blocked by another one; a federate that was granted a time and never asked for the next is the
one that stopped (hung, stopped or busy).
"""

from __future__ import annotations

import mmap
import struct
import time
from dataclasses import dataclass
from pathlib import Path

# sequence number, state (0 granted: computing, 1 requesting: waiting for a grant, 2 pacing:
# waiting for its readers before it requests), granted time, requested time, wall-clock time of
# the last change
_LAYOUT = struct.Struct("<Qqddd")
GRANTED, REQUESTING, PACING = 0, 1, 2


class Heartbeat:
    """The writer (one per federate process)."""

    def __init__(self, path: Path) -> None:
        with open(path, "wb") as fh:
            fh.write(bytes(_LAYOUT.size))
        self._fh = open(path, "r+b")  # noqa: SIM115 - lives as long as the federate
        self._mm = mmap.mmap(self._fh.fileno(), _LAYOUT.size)
        self._seq = 0
        self._granted_s = 0.0
        self._requested_s = 0.0

    def requesting(self, target_s: float) -> None:
        self._requested_s = target_s
        self._write(REQUESTING)

    def pacing(self, target_s: float) -> None:
        """Waiting for the federates that read it to catch up before requesting `target_s`."""
        self._requested_s = target_s
        self._write(PACING)

    def granted(self, time_s: float) -> None:
        self._granted_s = time_s
        self._write(GRANTED)

    def _write(self, state: int) -> None:
        self._seq += 1
        _LAYOUT.pack_into(self._mm, 0, self._seq, state, self._granted_s, self._requested_s,
                          time.time())


@dataclass(frozen=True)
class Beat:
    """What the runner reads: the federate's state at its last time call."""

    seq: int
    requesting: bool
    pacing: bool
    granted_s: float
    requested_s: float
    wall_s: float


def read_beat(path: Path) -> Beat | None:
    """The last heartbeat in `path`, or None (no file yet, or not a lemcosim federate)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if len(data) < _LAYOUT.size:
        return None
    seq, state, granted_s, requested_s, wall_s = _LAYOUT.unpack_from(data)
    if seq == 0:
        return None
    return Beat(seq, state == REQUESTING, state == PACING, granted_s, requested_s, wall_s)
