"""Window-boundary checkpoints of a federate's state, for `lemcosim run --resume RUN_DIR`.

At a window boundary a federate pickles its model state (`dumps`), and its log's writer thread,
once the rows logged before are on disk, writes it to
`RUN_DIR/logs/checkpoints/<federate>/w<w>.pkl` (`write`: temporary name, fsync, rename: a SIGKILL
leaves either the whole checkpoint or none). A run resumes after the last window that *every*
federate checkpointed, so each keeps its last `KEEP` checkpoints: the federates of a stopped run
are at most a checkpoint apart (a writer lags at most `tidylog.QUEUE_WINDOWS` windows).

Checkpoints are pickles of our own models, written and read by the same run folder's owner;
never resume a run folder you did not create (unpickling runs code). They may hold secret key
material (the auction's key generator): protect a run folder like the keys themselves.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

from lemcosim.federates.common.errors import LemcosimError

KEEP = 4


def checkpoint_dir(logs_dir: Path, federate: str) -> Path:
    return Path(logs_dir) / "checkpoints" / federate


def path_of(logs_dir: Path, federate: str, window: int) -> Path:
    return checkpoint_dir(logs_dir, federate) / f"w{window:08d}.pkl"


def dumps(state: Any) -> bytes:
    """The state as a checkpoint holds it (taken now: the model goes on changing)."""
    return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)


def write(logs_dir: Path, federate: str, window: int, payload: bytes) -> Path:
    """Write the state after `window` (as `dumps` pickled it) atomically and drop checkpoints
    older than the last KEEP."""
    path = path_of(logs_dir, federate, window)
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    for old in windows(logs_dir, federate)[:-KEEP]:
        (folder / f"w{old:08d}.pkl").unlink(missing_ok=True)
    return path


def windows(logs_dir: Path, federate: str) -> list[int]:
    """Windows with a complete checkpoint, ascending."""
    folder = checkpoint_dir(logs_dir, federate)
    if not folder.is_dir():
        return []
    return sorted(int(p.stem[1:]) for p in folder.glob("w*.pkl"))


def load(logs_dir: Path, federate: str, window: int) -> Any:
    path = path_of(logs_dir, federate, window)
    try:
        with open(path, "rb") as fh:
            return pickle.load(fh)
    except FileNotFoundError:
        raise LemcosimError(f"{federate}: no checkpoint of window {window} ({path})") from None
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
        raise LemcosimError(f"{federate}: checkpoint {path} is unreadable ({exc})") from None


def resume_window(logs_dir: Path, federates: list[str]) -> int:
    """The last window that every federate checkpointed; a named error when there is none."""
    common: set[int] | None = None
    for name in federates:
        done = set(windows(logs_dir, name))
        if not done:
            raise LemcosimError(f"cannot resume: federate {name!r} has no checkpoint in "
                                f"{checkpoint_dir(logs_dir, name)} (it completed no window)")
        common = done if common is None else common & done
    if not common:
        raise LemcosimError("cannot resume: the federates' checkpoints share no window "
                            f"({', '.join(f'{n}: {windows(logs_dir, n)}' for n in federates)})")
    return max(common)
