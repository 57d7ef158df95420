"""Dated time series: mean power per interval, resampled to trading windows with energy conserved.

A dated series is a step function: row i holds the mean power of [t_i, t_{i+1}) (the last row
lasts as long as the one before it). Any resolution and any length; steps may be irregular. A
window's value is the series' mean over the window, computed exactly from the cumulative energy
E(t) = ∫ p dt, which is piecewise linear for a step function:

    p̄_w = (E(T_w + Δt) − E(T_w)) / Δt,

so energy is conserved whatever the two resolutions are (hourly → 15 min repeats the hour's value;
5 min → 15 min averages three values).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from lemcosim.federates.common.errors import LemcosimError


@dataclass(frozen=True)
class DatedSeries:
    """`starts` (T,) interval starts, ascending; `ends` (T,); `values` (T, C) mean power per
    interval, one column per shape; `source` names the file or generator in errors."""

    source: str
    starts: np.ndarray  # datetime64[s]
    ends: np.ndarray
    values: np.ndarray
    columns: tuple[str, ...]

    @property
    def shapes(self) -> np.ndarray:
        """The values, under the name a daily ProfileTable gives them (checks read either)."""
        return self.values

    def _edges_s(self) -> np.ndarray:
        origin = self.starts[0]
        return np.concatenate([(self.starts - origin), self.ends[-1:] - origin]).astype(float)

    def _window_edges_s(self, start: datetime, dt_s: float, first: int, count: int) -> np.ndarray:
        t0 = float((np.datetime64(start, "s") - self.starts[0]).astype(float)) + first * dt_s
        return t0 + dt_s * np.arange(count + 1)

    def check_covers(self, start: datetime, dt_s: float, first: int, count: int) -> None:
        """A named error unless the series covers windows first … first+count−1."""
        edges_s = self._edges_s()
        window_edges = self._window_edges_s(start, dt_s, first, count)
        if window_edges[0] < edges_s[0] - 1e-6 or window_edges[-1] > edges_s[-1] + 1e-6:
            need_from = np.datetime64(start, "s") + np.timedelta64(int(first * dt_s), "s")
            need_to = need_from + np.timedelta64(int(count * dt_s), "s")
            raise LemcosimError(
                f"{self.source}: covers {self.starts[0]} to {self.ends[-1]}, but the run needs "
                f"{need_from} to {need_to}")

    def window_means(self, start: datetime, dt_s: float, first: int, count: int) -> np.ndarray:
        """Mean of every column over windows first … first+count−1 of `dt_s` from `start`: (count, C)."""
        self.check_covers(start, dt_s, first, count)
        edges_s = self._edges_s()
        window_edges = self._window_edges_s(start, dt_s, first, count)
        durations = np.diff(edges_s)
        cumulative = np.vstack([np.zeros((1, self.values.shape[1])),
                                np.cumsum(self.values * durations[:, None], axis=0)])
        at_edges = np.column_stack([np.interp(window_edges, edges_s, cumulative[:, c])
                                    for c in range(cumulative.shape[1])])
        return np.diff(at_edges, axis=0) / dt_s


def dated_from_frame(frame: pd.DataFrame, stamps: pd.Series, source: str) -> DatedSeries:
    """A dated series from parsed timestamps and numeric shape columns (checked, named errors)."""
    if stamps.dt.tz is not None:  # wall-clock time of the zone: the simulation has no zones
        stamps = stamps.dt.tz_localize(None)
    starts = stamps.to_numpy("datetime64[s]")
    if len(starts) < 2:
        raise LemcosimError(f"{source}: a dated profile needs at least two rows")
    steps = np.diff(starts)
    if (steps <= np.timedelta64(0, "s")).any():
        row = int(np.flatnonzero(steps <= np.timedelta64(0, "s"))[0]) + 2
        raise LemcosimError(f"{source}: timestamps must ascend strictly (data row {row}: "
                            f"{starts[row - 1]} after {starts[row - 2]})")
    values = frame.apply(pd.to_numeric, errors="coerce").to_numpy(float)
    if not np.isfinite(values).all():
        row = int(np.argwhere(~np.isfinite(values))[0][0])
        raise LemcosimError(f"{source}: non-numeric or missing value in data row {row + 1}")
    if (values < 0).any():
        row = int(np.argwhere(values < 0)[0][0])
        raise LemcosimError(f"{source}: negative value in data row {row + 1}: profiles are "
                            "powers in per unit")
    ends = np.concatenate([starts[1:], starts[-1:] + steps[-1]])
    return DatedSeries(source, starts, ends, values, tuple(str(c) for c in frame.columns))


def parse_stamps(column: pd.Series, source: str) -> pd.Series | None:
    """Timestamps (a date and a time) or None if the column holds times of day (HH:MM)."""
    text = column.astype(str).str.strip()
    if text.str.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?").all():
        return None
    try:
        return pd.Series(pd.to_datetime(text, format="ISO8601"))
    except (ValueError, TypeError) as exc:
        raise LemcosimError(f"{source}: column `time` holds neither HH:MM times of day nor ISO "
                            f"timestamps ({exc})") from None


def read_frame(path: Path) -> pd.DataFrame:
    """A profile file (CSV or Parquet) with a `time` column and at least one shape column."""
    try:
        if path.suffix.lower() == ".parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, comment="#")
    except FileNotFoundError:
        raise LemcosimError(f"{path}: profile file not found") from None
    except ImportError as exc:
        raise LemcosimError(f"{path}: reading Parquet needs pyarrow ({exc})") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError,
            ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise LemcosimError(f"{path}: not a readable profile table: {exc}") from None
    if "time" not in frame.columns or frame.shape[1] < 2:
        raise LemcosimError(f"{path}: needs a `time` column and at least one shape column")
    if frame.empty:
        raise LemcosimError(f"{path}: no data rows")
    return frame


def read_dated(path: Path) -> DatedSeries:
    """A dated profile file: CSV or Parquet, `time` column of timestamps, one column per shape."""
    frame = read_frame(path)
    stamps = parse_stamps(frame["time"], str(path))
    if stamps is None:
        raise LemcosimError(f"{path}: column `time` holds times of day, not dated timestamps")
    return dated_from_frame(frame.drop(columns="time"), stamps, str(path))
