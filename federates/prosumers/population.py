"""The prosumer population: N prosumers as numpy arrays, stepped one trading window at a time.

Sign convention: injections are positive into the grid. A member's net injection is
PV + battery discharge − load (kW); its reactive injection is −load·tan φ (the load draws vars).
Three-phase members (`abc`) split their injection equally over the phases.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from lemcosim.federates.common.errors import LemcosimError
from lemcosim.federates.prosumers.config import GroupConfig, PopulationConfig, StorageConfig
from lemcosim.federates.prosumers.dated import DatedSeries
from lemcosim.federates.prosumers.load_demandlib import is_bdew, load_year
from lemcosim.federates.prosumers.profiles import (
    GENERATORS,
    CloudProcess,
    clear_sky_pu,
    load_table,
    minute_of_day,
    residential_shape,
    resolve_profile,
)
from lemcosim.federates.prosumers.pv_pvlib import Weather, pv_year

PHASES = ("a", "b", "c")
_MAX_SHIFT_MIN = 45.0  # members of the residential generator peak within ±45 min of each other
ORIENTATION_STEP_DEG = 5.0


@dataclass
class Members:
    """Static description of every member (arrays of length N)."""

    ids: list[str]
    bus: np.ndarray
    phase: np.ndarray
    load_peak_kw: np.ndarray
    tan_phi: np.ndarray
    pv_kwp: np.ndarray
    storage_kwh: np.ndarray
    storage_kw: np.ndarray
    soc0: np.ndarray
    soc_min: np.ndarray
    soc_max: np.ndarray
    efficiency: np.ndarray
    storage_idle: np.ndarray
    load_profile: np.ndarray  # profile reference per member (str)
    pv_profile: np.ndarray
    annual_kwh: np.ndarray  # scales BDEW load profiles (kW per annual kWh)
    pv_tilt_deg: np.ndarray
    pv_azimuth_deg: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class WindowState:
    """What the population does in one window (per-member arrays, kW / kvar / pu)."""

    window: int
    load_kw: np.ndarray
    pv_kw: np.ndarray
    storage_kw: np.ndarray  # positive: discharging
    soc: np.ndarray
    net_kw: np.ndarray
    q_kvar: np.ndarray


class Population:
    def __init__(self, members: Members, config: PopulationConfig, window_s: float,
                 start: datetime) -> None:
        if len(members) == 0:
            raise LemcosimError("the prosumer population is empty")
        self.members = members
        self.config = config
        self.dt_s = window_s
        self.start = start
        n = len(members)
        self.soc = members.soc0.copy()
        rng = np.random.default_rng([config.seed, 1])
        self._noise_rng = rng
        self._noise = np.zeros(n)
        self._clouds = CloudProcess(config.cloudiness, window_s, np.random.default_rng([config.seed, 2]))
        self._load_sources = _Sources("load", members.load_profile,
                                      np.random.default_rng([config.seed, 3]), self._calendar())
        self._pv_sources = _Sources("pv", members.pv_profile, np.random.default_rng([config.seed, 4]),
                                    self._calendar(), _orientations(members))
        # BDEW profiles are kW per annual kWh, every other load profile pu of the peak load
        bdew = np.array([is_bdew(ref) for ref in members.load_profile], bool)
        self._load_scale = np.where(bdew, members.annual_kwh, members.load_peak_kw)
        self.bus_phase_keys, self._agg_member, self._agg_key, self._agg_weight = _aggregation(members)

    @classmethod
    def from_config(cls, config: PopulationConfig, window_s: float, start: datetime) -> Population:
        return cls(build_members(config), config, window_s, start)

    def _calendar(self) -> _Calendar:
        c = self.config
        weather = Weather(c.weather, c.latitude_deg, c.longitude_deg, c.seed)
        return _Calendar(self.start, self.dt_s, weather, c.holidays)

    def midpoint(self, window: int) -> datetime:
        return self.start + timedelta(seconds=(window + 0.5) * self.dt_s)

    def step(self, window: int) -> WindowState:
        m = self.members
        t = self.midpoint(window)
        rho = float(np.exp(-self.dt_s / 3600.0))
        self._noise = rho * self._noise + np.sqrt(1 - rho**2) * self._noise_rng.standard_normal(len(m))
        load_pu = self._load_sources.values(window, t, 1.0, self.config.latitude_deg)
        load_kw = self._load_scale * load_pu * np.maximum(0.0, 1.0 + self.config.load_noise * self._noise)
        sky = self._clouds.next_index()
        pv_pu = self._pv_sources.values(window, t, sky, self.config.latitude_deg)
        pv_kw = m.pv_kwp * pv_pu * self.config.pv_derate
        storage_kw = self._dispatch_storage(pv_kw - load_kw)
        net_kw = pv_kw + storage_kw - load_kw
        return WindowState(window, load_kw, pv_kw, storage_kw, self.soc.copy(), net_kw,
                           -load_kw * m.tan_phi)

    def _dispatch_storage(self, surplus_kw: np.ndarray) -> np.ndarray:
        """Self-consumption: charge from surplus, discharge into deficit, within power and SOC."""
        m = self.members
        dt_h = self.dt_s / 3600.0
        has = (m.storage_kwh > 0) & ~m.storage_idle
        cap = np.where(has, m.storage_kwh, 1.0)
        charge_room_kw = (m.soc_max - self.soc) * cap / (m.efficiency * dt_h)
        discharge_room_kw = (self.soc - m.soc_min) * cap * m.efficiency / dt_h
        charge = np.minimum.reduce([np.maximum(surplus_kw, 0.0), m.storage_kw, charge_room_kw])
        discharge = np.minimum.reduce([np.maximum(-surplus_kw, 0.0), m.storage_kw,
                                       discharge_room_kw])
        charge = np.where(has, np.maximum(charge, 0.0), 0.0)
        discharge = np.where(has, np.maximum(discharge, 0.0), 0.0)
        self.soc = self.soc + (charge * m.efficiency - discharge / m.efficiency) * dt_h / cap
        return discharge - charge

    def injections(self, state: WindowState, own: slice | None = None) -> dict[str, list[float]]:
        """Net injection per bus and phase: {"BUS.PHASE": [p_kw, q_kvar]}; with `own`, of
        those members only (every key still present, so a sum over parts is the whole)."""
        k = len(self.bus_phase_keys)
        weight = self._agg_weight
        if own is not None:
            weight = weight * ((self._agg_member >= own.start) & (self._agg_member < own.stop))
        p = np.bincount(self._agg_key, state.net_kw[self._agg_member] * weight, k)
        q = np.bincount(self._agg_key, state.q_kvar[self._agg_member] * weight, k)
        return {key: [float(pk), float(qk)] for key, pk, qk in zip(self.bus_phase_keys, p, q, strict=True)}

    def positions(self, state: WindowState, own: slice | None = None) -> dict[str, list]:
        """Each member's energy position over the window, kWh (positive: surplus to sell);
        with `own`, of those members only."""
        own = own or slice(0, len(self.members))
        e_kwh = state.net_kw[own] * self.dt_s / 3600.0
        return {"id": self.members.ids[own], "bus": self.members.bus[own].tolist(),
                "phase": self.members.phase[own].tolist(), "e_kwh": np.round(e_kwh, 9).tolist()}


def part_slice(n_members: int, part: int, parts: int) -> slice:
    """Members of part `part` of `parts`: contiguous, sizes differing by at most one, so the
    parts' positions in part order are the whole population's in its order."""
    bounds = np.linspace(0, n_members, parts + 1).round().astype(int)
    return slice(int(bounds[part]), int(bounds[part + 1]))


POSITION_COLUMNS = ("id", "bus", "phase", "e_kwh")  # a `{name}/positions` object, per member


def checked_positions(value: object, where: str) -> dict[str, list]:
    """The columns `POSITION_COLUMNS` of a published positions object ({} if nothing is published
    yet), each a list of one value per member, `e_kwh` finite numbers; other keys are ignored
    (`window` of positions_next). A wrong one (an external population) is a named error, not a
    market that trades on half a row."""
    if value is None or value == {}:
        return {}
    if not isinstance(value, dict):
        raise LemcosimError(f"{where}: expected an object with columns "
                            f"{', '.join(POSITION_COLUMNS)}, got {type(value).__name__}")
    missing = [c for c in POSITION_COLUMNS if c not in value]
    if missing:
        raise LemcosimError(f"{where}: missing column(s) {', '.join(missing)} (a positions object "
                            f"has {', '.join(POSITION_COLUMNS)})")
    lengths = {c: len(value[c]) if isinstance(value[c], list) else None for c in POSITION_COLUMNS}
    if None in lengths.values() or len(set(lengths.values())) > 1:
        raise LemcosimError(f"{where}: every column must be a list with one value per member "
                            f"(lengths {lengths})")
    try:  # one vectorised check (6,000 members a window); the culprit is looked for after
        numeric = np.asarray(value["e_kwh"] or [0.0])
        ok = numeric.dtype.kind in "if" and bool(np.isfinite(numeric).all())
    except ValueError:  # a nested list
        ok = False
    if not ok:
        bad = next(i for i, e in enumerate(value["e_kwh"]) if isinstance(e, bool)
                   or not isinstance(e, (int, float)) or not np.isfinite(e))
        raise LemcosimError(f"{where}: e_kwh of member {value['id'][bad]!r} is "
                            f"{value['e_kwh'][bad]!r}, not a finite number of kWh")
    return {c: value[c] for c in POSITION_COLUMNS}


def merge_positions(parts: list[dict[str, list]]) -> dict[str, list]:
    """The positions of a split population's parts, in part order, as one population's."""
    present = [p for p in parts if p]
    if not present:
        return {}
    return {column: [v for p in present for v in p[column]] for column in present[0]}


@dataclass(frozen=True)
class _Calendar:
    """What dated sources need to place windows in time."""

    start: datetime
    dt_s: float
    weather: Weather
    holidays: str | None

    @property
    def block(self) -> int:
        """Windows resampled at once from a dated source (a week), bounding memory over a year."""
        return max(1, int(7 * 86400 // self.dt_s))


class _Dated:
    """A dated source resampled block by block to the windows: a file's series, or a year
    generator's calendar years (the last two kept, so memory stays flat over a long run)."""

    def __init__(self, calendar: _Calendar, *, series: DatedSeries | None = None,
                 make_year: Callable[[int], DatedSeries] | None = None) -> None:
        self.calendar = calendar
        self.series = series
        self.make_year = make_year
        self.years: dict[int, DatedSeries] = {}
        self.first = 0
        self.values = np.zeros((0, 0))

    def __getstate__(self) -> dict:
        # a checkpoint (`lemcosim run --resume`) leaves out the generated years, rebuilt when next
        # needed (`make_year` is a pure function of the year): they were 16 of a 60-household
        # population's 16.3 MB, pickled and fsynced every checkpoint on the market's CPU
        return vars(self) | {"years": {}}

    def at(self, window: int) -> np.ndarray:
        if not self.first <= window < self.first + len(self.values):
            c = self.calendar
            begin = c.start + timedelta(seconds=window * c.dt_s)
            count = c.block
            if self.series is not None:  # a file ends where it ends: resample what it covers
                left = (self.series.ends[-1] - np.datetime64(begin, "s")).astype(float) / c.dt_s
                count = max(1, min(count, int(left + 1e-9)))
            end = c.start + timedelta(seconds=(window + count) * c.dt_s)
            series = self.series or self._years(begin, end)
            self.first = window
            self.values = series.window_means(c.start, c.dt_s, window, count)
        return self.values[window - self.first]

    def _years(self, begin: datetime, end: datetime) -> DatedSeries:
        """The generated calendar years covering [begin, end), joined."""
        wanted = range(begin.year, (end - timedelta(microseconds=1)).year + 1)
        for year in wanted:
            if year not in self.years:
                self.years[year] = self.make_year(year)
        for year in [y for y in self.years if y < begin.year - 1]:
            del self.years[year]
        parts = [self.years[y] for y in wanted]
        if len(parts) == 1:
            return parts[0]
        return DatedSeries(parts[0].source, np.concatenate([p.starts for p in parts]),
                           np.concatenate([p.ends for p in parts]),
                           np.vstack([p.values for p in parts]), parts[0].columns)


# year generators as module-level functions (bound with partial): a population's state must
# pickle for the window checkpoints of `lemcosim run --resume`, and lambdas do not
def _bdew_year(holidays: str | None, year: int) -> DatedSeries:
    return load_year(year, holidays)


def _pv_year(pairs: np.ndarray, weather: Weather, step_s: float, year: int) -> DatedSeries:
    return pv_year(year, pairs, weather, step_s)


class _Sources:
    """The profile sources members use, evaluated once per window for all members at once."""

    def __init__(self, kind: str, refs: np.ndarray, rng: np.random.Generator, calendar: _Calendar,
                 orientations: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        self.refs = refs
        self.groups: list[tuple[str, object, np.ndarray, np.ndarray]] = []
        for ref in sorted(set(refs.tolist())):
            members = np.flatnonzero(refs == ref)
            if GENERATORS.get(ref, kind) != kind:
                raise LemcosimError(f"{ref!r} generates {GENERATORS[ref]}: it cannot be a "
                                    f"{kind}_profile")
            if is_bdew(ref):
                source = _Dated(calendar, make_year=partial(_bdew_year, calendar.holidays))
                column = load_year(calendar.start.year, calendar.holidays).columns.index(ref)
                self.groups.append(("dated", source, members, np.full(len(members), column)))
            elif ref == "pvlib":
                unique, column = orientations
                pairs, local = np.unique(unique[column[members]], axis=0, return_inverse=True)
                step = calendar.dt_s if calendar.dt_s < 900 and 3600 % calendar.dt_s == 0 else 900
                source = _Dated(calendar, make_year=partial(_pv_year, pairs, calendar.weather, step))
                self.groups.append(("dated", source, members, local.ravel()))
            elif isinstance(resolved := resolve_profile(ref), Path):
                table = load_table(resolved)
                if isinstance(table, DatedSeries):
                    column = np.arange(len(members)) % len(table.columns)  # member → column
                    self.groups.append(("dated", _Dated(calendar, series=table), members, column))
                else:
                    column = np.arange(len(members)) % table.columns
                    self.groups.append(("table", table, members, column))
            else:
                shift = rng.uniform(-_MAX_SHIFT_MIN, _MAX_SHIFT_MIN, len(members))  # minutes
                self.groups.append((resolved, None, members, shift))

    def values(self, window: int, t: datetime, sky_index: float, latitude_deg: float) -> np.ndarray:
        out = np.zeros(len(self.refs))
        minute = minute_of_day(t)
        for kind, source, members, param in self.groups:
            if kind == "dated":
                out[members] = source.at(window)[param]
            elif kind == "table":
                out[members] = source.at(minute)[param]
            elif kind == "residential":
                out[members] = residential_shape(minute + param)
            else:  # clear_sky
                out[members] = clear_sky_pu(t, latitude_deg) * sky_index
        return out


def _orientations(members: Members) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (tilt, azimuth) pairs rounded to 5° (PV is computed once per pair) and each
    member's pair: a year of 6,000 roofs costs at most a few hundred transpositions, not 6,000."""
    pairs = np.column_stack([members.pv_tilt_deg, members.pv_azimuth_deg % 360.0])
    rounded = np.round(pairs / ORIENTATION_STEP_DEG) * ORIENTATION_STEP_DEG
    unique, column = np.unique(rounded, axis=0, return_inverse=True)
    return unique, column.ravel()


def _aggregation(members: Members) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Sparse member → BUS.PHASE map: (keys, member index, key index, weight)."""
    member_idx: list[int] = []
    keys: list[str] = []
    weights: list[float] = []
    for i, (bus, phase) in enumerate(zip(members.bus, members.phase, strict=True)):
        phases = PHASES if phase == "abc" else (phase,)
        for ph in phases:
            member_idx.append(i)
            keys.append(f"{bus}.{ph}")
            weights.append(1.0 / len(phases))
    unique, key_idx = np.unique(np.array(keys), return_inverse=True)
    return unique.tolist(), np.array(member_idx), key_idx, np.array(weights)


# ---------------------------------------------------------------------------------------------
# Building the members from groups and a members file


def build_members(config: PopulationConfig) -> Members:
    rng = np.random.default_rng([config.seed, 0])
    year_rng = np.random.default_rng([config.seed, 5])  # own stream: earlier draws stay as they were
    parts = [_group_members(g, rng, year_rng) for g in config.groups]
    if config.members is not None:
        parts.append(_file_members(Path(config.members)))
    merged = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    ids = merged.pop("ids").tolist()
    seen: set[str] = set()
    for member_id in ids:
        if member_id in seen:
            raise LemcosimError(f"prosumer id {member_id!r} appears twice in the population")
        seen.add(member_id)
    return Members(ids=ids, **merged)


def _draw(value: float | tuple[float, float], n: int, rng: np.random.Generator) -> np.ndarray:
    if isinstance(value, tuple):
        return rng.uniform(value[0], value[1], n)
    return np.full(n, float(value))


def _storage_arrays(storage: StorageConfig, has: np.ndarray, rng: np.random.Generator) -> dict:
    n = len(has)
    return {
        "storage_kwh": np.where(has, _draw(storage.capacity_kwh, n, rng), 0.0),
        "storage_kw": np.where(has, _draw(storage.power_kw, n, rng), 0.0),
        "soc0": np.full(n, storage.soc0),
        "soc_min": np.full(n, storage.soc_min),
        "soc_max": np.full(n, storage.soc_max),
        "efficiency": np.full(n, storage.efficiency),
        "storage_idle": np.full(n, storage.policy == "idle"),
    }


def _group_members(g: GroupConfig, rng: np.random.Generator, year_rng: np.random.Generator
                   ) -> dict[str, np.ndarray]:
    n = g.count
    k = np.arange(n)
    buses = [b.lower() for b in g.buses]
    has_pv = rng.random(n) < g.pv_share
    storage = g.storage or StorageConfig()
    has_storage = rng.random(n) < storage.share
    return {
        "ids": np.array([f"{g.name}{i}" for i in k]),
        "bus": np.array(buses)[k % len(buses)],
        "phase": np.array(g.phases)[(k // len(buses)) % len(g.phases)],
        "load_peak_kw": _draw(g.load_peak_kw, n, rng),
        "tan_phi": np.full(n, np.tan(np.arccos(g.power_factor))),
        "pv_kwp": np.where(has_pv, _draw(g.pv_kwp, n, rng), 0.0),
        "load_profile": np.full(n, g.load_profile, dtype=object),
        "pv_profile": np.full(n, g.pv_profile, dtype=object),
        **_storage_arrays(storage, has_storage, rng),
        "annual_kwh": _draw(g.annual_kwh, n, year_rng),
        "pv_tilt_deg": _draw(g.pv_tilt_deg, n, year_rng),
        "pv_azimuth_deg": _draw(g.pv_azimuth_deg, n, year_rng),
    }


_MEMBER_COLUMNS = {"id", "bus", "phase", "load_peak_kw"}
_OPTIONAL_NUMERIC = {"pv_kwp": 0.0, "storage_kwh": 0.0, "storage_kw": 0.0, "power_factor": 0.95,
                     "annual_kwh": 3500.0, "pv_tilt_deg": 30.0, "pv_azimuth_deg": 180.0}


def _file_members(path: Path) -> dict[str, np.ndarray]:
    """Prosumers listed one per row (see docs/prosumers.md for the columns)."""
    try:
        frame = pd.read_csv(path, comment="#", dtype={"id": str, "bus": str, "phase": str})
    except FileNotFoundError:
        raise LemcosimError(f"{path}: members file not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise LemcosimError(f"{path}: not a readable CSV: {exc}") from None
    missing = _MEMBER_COLUMNS - set(frame.columns)
    if missing:
        raise LemcosimError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    unknown = set(frame.columns) - _MEMBER_COLUMNS - set(_OPTIONAL_NUMERIC) - {
        "load_profile", "pv_profile"}
    if unknown:
        raise LemcosimError(f"{path}: unknown column(s) {', '.join(sorted(unknown))}")
    for column, default in _OPTIONAL_NUMERIC.items():
        frame[column] = frame[column] if column in frame else default
    for column in ["load_peak_kw", *_OPTIONAL_NUMERIC]:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() | (values < 0)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise LemcosimError(f"{path}: row {row + 1} (id {frame['id'][row]}): {column} = "
                                f"{frame[column].astype(str)[row]} is not a non-negative number")
        frame[column] = values
    bad_phase = ~frame["phase"].str.lower().isin(["a", "b", "c", "abc"])
    if bad_phase.any():
        row = int(np.flatnonzero(bad_phase)[0])
        raise LemcosimError(f"{path}: row {row + 1} (id {frame['id'][row]}): phase "
                            f"{frame['phase'][row]!r} is not one of a, b, c, abc")
    pf = frame["power_factor"].to_numpy(float)
    if ((pf <= 0) | (pf > 1)).any():
        raise LemcosimError(f"{path}: power_factor must lie in (0, 1]")
    n = len(frame)
    storage = StorageConfig()
    return {
        "ids": frame["id"].to_numpy(str),
        "bus": frame["bus"].str.lower().to_numpy(str),
        "phase": frame["phase"].str.lower().to_numpy(str),
        "load_peak_kw": frame["load_peak_kw"].to_numpy(float),
        "tan_phi": np.tan(np.arccos(pf)),
        "pv_kwp": frame["pv_kwp"].to_numpy(float),
        "load_profile": frame.get("load_profile", pd.Series(["residential"] * n)).to_numpy(object),
        "pv_profile": frame.get("pv_profile", pd.Series(["clear_sky"] * n)).to_numpy(object),
        **_storage_arrays(storage, np.ones(n, bool), np.random.default_rng(0)),
        "storage_kwh": frame["storage_kwh"].to_numpy(float),
        "storage_kw": frame["storage_kw"].to_numpy(float),
        "annual_kwh": frame["annual_kwh"].to_numpy(float),
        "pv_tilt_deg": frame["pv_tilt_deg"].to_numpy(float),
        "pv_azimuth_deg": frame["pv_azimuth_deg"].to_numpy(float),
    }
