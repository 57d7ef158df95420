"""A year of rooftop PV from pvlib and a typical-year weather file that pvlib ships.

Per calendar year and per orientation (tilt, azimuth), vectorised over the year (numpy/pandas):

1. weather: a TMY3 file from pvlib's data folder (hourly GHI, air temperature, wind; values are
   means over the hour ending at the stamp, local standard time); the site is the file's station.
   Or `seeded`: a seeded weather model at the population's latitude and longitude (below);
2. solar position (pvlib SPA) and Ineichen clear-sky GHI (Linke turbidity from pvlib's table) at
   the midpoints of `resolution_s` steps;
3. weather-driven GHI: the hour's clear-sky index k = GHI_hour / mean clear-sky GHI over the hour
   (clipped to [0, 1.5]) times the clear-sky GHI of each step — the hour's measured energy is
   kept and the sun's path inside the hour is smooth; Erbs splits it into DNI and DHI;
4. plane of array: Hay–Davies transposition for each orientation, albedo 0.2;
5. cell temperature (SAPM, open-rack glass/polymer) and PVWatts DC power with γ = −0.4 %/K:
   kW per kWp. Inverter, wiring and soiling losses are the population's `pv_derate`.

The scenario's clock is read as the station's local standard time (for `seeded`: UTC offset
round(longitude/15) h).

The seeded weather model (documented assumptions, not a climate): a day's mean clear-sky index
K_d = 0.25 + 0.7·σ(x_d + 0.8·c_d) with x_d an AR(1) process over days (ρ = 0.6, unit variance),
σ the logistic function and c_d = cos(2π(doy − 172)/365.25) (sign flipped south of the equator:
sunnier summers); each hour k_h = K_d + 0.25·(1 − K_d)·e_h, e_h an AR(1) process over hours
(ρ = 0.6), clipped to [0.05, 1.05] (clear days steady, broken-cloud days variable). Air
temperature 10 + 9·c_d + 4·cos(2π(h − 15)/24) °C, wind 3 m/s. Seeded by (population seed, year).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from lemcosim.federates.common.errors import LemcosimError
from lemcosim.federates.prosumers.dated import DatedSeries

# TMY3 files pvlib ships in pvlib/data (the name a scenario gives → file)
WEATHER_FILES = {
    "tmy3_greensboro": "723170TYA.CSV",  # Greensboro NC, 36.1° N: mid-latitude
    "tmy3_sand_point": "703165TY.csv",  # Sand Point AK, 55.3° N: long summer days
}
SEEDED = "seeded"
GAMMA_PDC_PER_K = -0.004
ALBEDO = 0.2
_MAX_CLEARSKY_INDEX = 1.5


@dataclass(frozen=True)
class Site:
    name: str
    latitude_deg: float
    longitude_deg: float
    altitude_m: float
    utc_offset_h: float


@dataclass(frozen=True)
class Weather:
    """Which weather: a shipped TMY3 name, or `seeded` at a site with a seed."""

    name: str
    latitude_deg: float = 48.0
    longitude_deg: float = 10.0
    seed: int = 0


@lru_cache(maxsize=4)
def typical_year(weather: str) -> tuple[Site, pd.DataFrame]:
    """The station and its 8760 hourly rows (ghi W/m², temp_air °C, wind_speed m/s), indexed by
    the hour of the year 0…8759 (row h covers hour h of a non-leap year)."""
    import pvlib

    if weather not in WEATHER_FILES:
        raise LemcosimError(f"unknown weather {weather!r}: give one of "
                            f"{', '.join([*WEATHER_FILES, SEEDED])}")
    path = Path(pvlib.__file__).parent / "data" / WEATHER_FILES[weather]
    data, meta = pvlib.iotools.read_tmy3(str(path), coerce_year=1990, map_variables=True)
    site = Site(weather, float(meta["latitude"]), float(meta["longitude"]),
                float(meta["altitude"]), float(meta["TZ"]))
    frame = data[["ghi", "temp_air", "wind_speed"]].astype(float).reset_index(drop=True)
    if len(frame) != 8760:
        raise LemcosimError(f"{path}: expected 8760 hourly rows, found {len(frame)}")
    return site, frame


def _hours_of(year: int, table: pd.DataFrame) -> pd.DataFrame:
    """The typical year laid on `year`: a leap year repeats 28 February for the 29th."""
    if not calendar.isleap(year):
        return table
    feb28 = table.iloc[58 * 24:59 * 24]
    return pd.concat([table.iloc[:59 * 24], feb28, table.iloc[59 * 24:]], ignore_index=True)


def _ar1(n: int, rho: float, rng: np.random.Generator) -> np.ndarray:
    """A stationary AR(1) series of unit variance (vectorised: a first-order filter)."""
    from scipy.signal import lfilter

    white = rng.standard_normal(n)
    white[0] /= np.sqrt(1 - rho**2)  # start in the stationary distribution
    return lfilter([np.sqrt(1 - rho**2)], [1.0, -rho], white)


def seeded_hours(year: int, weather: Weather, n_hours: int) -> pd.DataFrame:
    """The seeded model's hourly clear-sky index, air temperature and wind (module docstring)."""
    rng = np.random.default_rng([weather.seed, year])
    days = n_hours // 24
    season = np.cos(2 * np.pi * (np.arange(1, days + 1) - 172) / 365.25)
    season *= 1.0 if weather.latitude_deg >= 0 else -1.0
    k_day = np.repeat(0.25 + 0.7 / (1 + np.exp(-(_ar1(days, 0.6, rng) + 0.8 * season))), 24)
    index = np.clip(k_day + 0.25 * (1 - k_day) * _ar1(n_hours, 0.6, rng), 0.05, 1.05)
    hour = np.arange(n_hours) % 24 + 0.5
    temp = 10 + 9 * np.repeat(season, 24) + 4 * np.cos(2 * np.pi * (hour - 15) / 24)
    return pd.DataFrame({"index": index, "temp_air": temp, "wind_speed": np.full(n_hours, 3.0)})


def pv_year(year: int, orientations: np.ndarray, weather: Weather, resolution_s: float = 900.0
            ) -> DatedSeries:
    """DC power in kW per kWp for each orientation row (tilt_deg, azimuth_deg) over `year`."""
    import pvlib

    n_hours = (366 if calendar.isleap(year) else 365) * 24
    if weather.name == SEEDED:
        site = Site(SEEDED, weather.latitude_deg, weather.longitude_deg, 0.0,
                    float(round(weather.longitude_deg / 15)))
        hours = seeded_hours(year, weather, n_hours)
    else:
        site, table = typical_year(weather.name)
        hours = _hours_of(year, table)
    per_hour = int(round(3600 / resolution_s))
    if per_hour < 1 or abs(per_hour * resolution_s - 3600) > 1e-6:
        raise LemcosimError(f"PV resolution {resolution_s} s must divide an hour")
    zone = f"Etc/GMT{-int(site.utc_offset_h):+d}" if site.utc_offset_h else "UTC"
    starts = pd.date_range(f"{year}-01-01", periods=len(hours) * per_hour,
                           freq=pd.Timedelta(seconds=resolution_s))
    mid = (starts + pd.Timedelta(seconds=resolution_s / 2)).tz_localize(zone)
    location = pvlib.location.Location(site.latitude_deg, site.longitude_deg, tz=zone,
                                       altitude=site.altitude_m)
    sun = location.get_solarposition(mid)
    clear = location.get_clearsky(mid, model="ineichen", solar_position=sun)["ghi"].to_numpy()
    if "index" in hours:
        index = hours["index"].to_numpy()
    else:
        clear_hour = clear.reshape(-1, per_hour).mean(axis=1)
        ghi_hour = hours["ghi"].to_numpy()
        index = np.divide(ghi_hour, clear_hour, out=np.zeros_like(ghi_hour), where=clear_hour > 1.0)
    ghi = clear * np.repeat(np.clip(index, 0.0, _MAX_CLEARSKY_INDEX), per_hour)
    zenith = sun["zenith"].to_numpy()
    split = pvlib.irradiance.erbs(ghi, zenith, mid)
    dni_extra = pvlib.irradiance.get_extra_radiation(mid).to_numpy()
    temp_air = np.repeat(hours["temp_air"].to_numpy(), per_hour)
    wind = np.repeat(hours["wind_speed"].to_numpy(), per_hour)
    sapm = pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"]["open_rack_glass_polymer"]
    columns = []
    for tilt, azimuth in orientations:
        poa = pvlib.irradiance.get_total_irradiance(
            tilt, azimuth, sun["apparent_zenith"].to_numpy(), sun["azimuth"].to_numpy(),
            np.asarray(split["dni"]), ghi, np.asarray(split["dhi"]), dni_extra=dni_extra,
            model="haydavies", albedo=ALBEDO)["poa_global"]
        poa = np.nan_to_num(np.asarray(poa, float), nan=0.0).clip(min=0.0)
        cell = pvlib.temperature.sapm_cell(poa, temp_air, wind, **sapm)
        columns.append(pvlib.pvsystem.pvwatts_dc(poa, cell, 1.0, GAMMA_PDC_PER_K))
    values = np.column_stack(columns).clip(min=0.0)
    starts64 = starts.to_numpy("datetime64[s]")
    ends64 = starts64 + np.timedelta64(int(resolution_s), "s")
    names = tuple(f"tilt{t:g}_az{a:g}" for t, a in orientations)
    return DatedSeries(f"pvlib PV ({weather.name}, {year})", starts64, ends64, values, names)
