"""Per-unit profiles: a residential load generator, clear-sky PV with cloud noise, and tables.

Every profile answers "what fraction of its rating does member i draw/produce at time t". Times are
window midpoints (the window's mean power is taken at its middle: our convention), local solar time.

A profile is named in a scenario as
- `residential` (load) or `clear_sky` (PV): the built-in seeded daily generators below;
- `pvlib` (PV, pv_pvlib.py) or `bdew_h0`, `bdew_h0_dyn`, … (load, load_demandlib.py): dated
  year generators;
- the stem of a shipped table in `federates/prosumers/profiles/` (e.g. `residential_load`);
- a CSV or Parquet path: column `time` and one column per shape, in per unit. Times of day (HH:MM)
  make a daily table that wraps at midnight; timestamps make a dated series (dated.py) resampled
  to the windows with energy conserved. Member i uses shape column (i mod number of shapes).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from lemcosim.federates.common.errors import LemcosimError
from lemcosim.federates.prosumers.dated import DatedSeries, dated_from_frame, parse_stamps, read_frame
from lemcosim.federates.prosumers.load_demandlib import BDEW_TYPES, PREFIX

SHIPPED_DIR = Path(__file__).resolve().parent / "profiles"
MINUTES_PER_DAY = 1440.0


def minute_of_day(t: datetime) -> float:
    return t.hour * 60.0 + t.minute + t.second / 60.0


# ---------------------------------------------------------------------------------------------
# Residential load: a base load with a morning and a strong evening peak (the familiar shape of
# European household load profiles); each member is shifted in time so peaks do not align.
_BUMPS = ((7.5, 1.2, 0.45), (13.0, 2.5, 0.2), (19.5, 1.8, 0.8))  # (hour, width h, height pu)
_BASE_PU = 0.22


def _residential_raw(minute: np.ndarray) -> np.ndarray:
    hour = np.asarray(minute, dtype=float) / 60.0
    shape = np.full_like(hour, _BASE_PU)
    for centre, width, height in _BUMPS:
        distance = (hour - centre + 12.0) % 24.0 - 12.0  # circular: the evening peak wraps
        shape += height * np.exp(-0.5 * (distance / width) ** 2)
    return shape


_RESIDENTIAL_PEAK = float(_residential_raw(np.arange(0.0, MINUTES_PER_DAY, 1.0)).max())


def residential_shape(minute: np.ndarray) -> np.ndarray:
    """Residential load in pu of its daily peak (max 1) at `minute` of the day."""
    return _residential_raw(minute) / _RESIDENTIAL_PEAK


# ---------------------------------------------------------------------------------------------
# Clear-sky PV: solar geometry (Cooper's declination) and the Haurwitz global horizontal
# irradiance GHI = 1098·cos Z·exp(−0.057 / cos Z) W/m², per unit of 1000 W/m².


def clear_sky_pu(t: datetime, latitude_deg: float) -> float:
    """Clear-sky GHI at local solar time `t` in pu of 1 kW/m² (0 at night)."""
    day = t.timetuple().tm_yday
    declination = np.radians(23.45) * np.sin(2 * np.pi * (284 + day) / 365.0)
    hour_angle = np.radians(15.0 * (minute_of_day(t) / 60.0 - 12.0))
    lat = np.radians(latitude_deg)
    cos_z = np.sin(lat) * np.sin(declination) + np.cos(lat) * np.cos(declination) * np.cos(hour_angle)
    if cos_z <= 0.0:
        return 0.0
    return float(1.098 * cos_z * np.exp(-0.057 / cos_z))


@dataclass
class CloudProcess:
    """Seeded AR(1) cloud cover shared by the population (one sky over a feeder).

    clear-sky index k = 1 − cloudiness·(1 + tanh x)/2, x an AR(1) process with 30 min memory.
    """

    cloudiness: float
    dt_s: float
    rng: np.random.Generator
    state: float = 0.0

    def next_index(self) -> float:
        rho = float(np.exp(-self.dt_s / 1800.0))
        self.state = rho * self.state + np.sqrt(1 - rho**2) * float(self.rng.standard_normal())
        return 1.0 - self.cloudiness * 0.5 * (1.0 + np.tanh(1.5 * self.state))


# ---------------------------------------------------------------------------------------------
# Tables


@dataclass(frozen=True)
class ProfileTable:
    """Shapes sampled over one day: `minutes` (T,) ascending in [0, 1440), `shapes` (T, C)."""

    source: str
    minutes: np.ndarray
    shapes: np.ndarray

    @property
    def columns(self) -> int:
        return self.shapes.shape[1]

    def at(self, minute: float) -> np.ndarray:
        """Every shape at `minute` of the day, linearly interpolated, wrapping at midnight."""
        m = np.concatenate([self.minutes, [self.minutes[0] + MINUTES_PER_DAY]])
        s = np.vstack([self.shapes, self.shapes[:1]])
        x = minute % MINUTES_PER_DAY
        if x < m[0]:
            x += MINUTES_PER_DAY
        j = int(np.clip(np.searchsorted(m, x, side="right") - 1, 0, len(m) - 2))
        w = (x - m[j]) / (m[j + 1] - m[j])
        return (1 - w) * s[j] + w * s[j + 1]


def load_table(path: Path) -> ProfileTable | DatedSeries:
    """Read a profile file: times of day (HH:MM) make a daily table, timestamps a dated series
    (dated.py); every problem names the file."""
    frame = read_frame(path)
    stamps = parse_stamps(frame["time"], str(path))
    if stamps is not None:
        return dated_from_frame(frame.drop(columns="time"), stamps, str(path))
    parts = frame["time"].astype(str).str.split(":", expand=True).astype(float)
    minutes = (parts[0] * 60 + parts[1]).to_numpy()
    shapes = frame.drop(columns="time").apply(pd.to_numeric, errors="coerce").to_numpy(float)
    if np.isnan(shapes).any():
        row = int(np.argwhere(np.isnan(shapes))[0][0])
        raise LemcosimError(f"{path}: non-numeric or missing value in data row {row + 1}")
    if (shapes < 0).any():
        raise LemcosimError(f"{path}: profiles are per unit and must not be negative")
    if np.any(np.diff(minutes) <= 0) or minutes[0] < 0 or minutes[-1] >= MINUTES_PER_DAY:
        raise LemcosimError(f"{path}: times must ascend strictly within one day (00:00–23:59)")
    return ProfileTable(str(path), minutes, shapes)


GENERATORS = {"residential": "load", "clear_sky": "pv", "pvlib": "pv",
              **{PREFIX + t: "load" for t in BDEW_TYPES}}


def resolve_profile(ref: str) -> str | Path:
    """A generator name stays a name; a shipped stem or a file becomes its path."""
    if ref in GENERATORS:
        return ref
    shipped = SHIPPED_DIR / f"{ref}.csv"
    if shipped.exists():
        return shipped
    path = Path(ref)
    if path.suffix.lower() in {".csv", ".parquet"}:
        return path
    known = sorted(list(GENERATORS) + [p.stem for p in SHIPPED_DIR.glob("*.csv")])
    raise LemcosimError(f"unknown profile {ref!r}: give one of {', '.join(known)} or a CSV/Parquet "
                        "file")
