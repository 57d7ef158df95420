"""A year of load from the BDEW standard load profiles (demandlib).

demandlib builds the German BDEW profiles in 15-minute steps for a calendar year: three seasons
(winter, summer, transition), three day types (workday, Saturday, Sunday) and holidays treated as
Sundays; `h0_dyn` adds the household profile's dynamisation over the days of the year. Scaled to
1 kWh per year, a column is the mean power in kW per annual kWh; a member draws
annual_kwh × that × its own seeded noise (population.py).

Profile names in a scenario: `bdew_h0`, `bdew_h0_dyn` (households), `bdew_g0` … `bdew_g6`
(trade), `bdew_l0` … `bdew_l2` (farms). Holidays come from the `holidays` package for the
population's country (`holidays: DE` by default, `null` for none).
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np

from lemcosim.federates.common.errors import LemcosimError
from lemcosim.federates.prosumers.dated import DatedSeries

BDEW_TYPES = ("h0", "h0_dyn", "g0", "g1", "g2", "g3", "g4", "g5", "g6", "l0", "l1", "l2")
PREFIX = "bdew_"
STEP_S = 900


def is_bdew(ref: str) -> bool:
    return ref.startswith(PREFIX) and ref[len(PREFIX):] in BDEW_TYPES


@lru_cache(maxsize=4)
def load_year(year: int, country: str | None) -> DatedSeries:
    """Every BDEW type for `year` in kW per annual kWh (15-minute steps), holidays of `country`."""
    import holidays
    from demandlib import bdew

    days: dict = {}
    if country:
        try:
            days = dict(holidays.country_holidays(country, years=year))
        except NotImplementedError:
            raise LemcosimError(f"prosumers.holidays: no holiday calendar for {country!r} "
                                "(give an ISO country code such as DE, US, FR)") from None
    # demandlib 0.2 calls warnings.simplefilter("error") for the whole process: keep that inside
    with warnings.catch_warnings():
        slp = bdew.ElecSlp(year, holidays=days)
        frame = slp.get_scaled_power_profiles(dict.fromkeys(BDEW_TYPES, 1.0))[list(BDEW_TYPES)]
    starts = frame.index.to_numpy("datetime64[s]")
    return DatedSeries(f"demandlib BDEW {year}", starts, starts + np.timedelta64(STEP_S, "s"),
                       frame.to_numpy(float), tuple(PREFIX + t for t in BDEW_TYPES))
