"""Configuration of a prosumer population (the `prosumers:` section of a scenario).

A population is built from `groups` (N prosumers placed round-robin over buses and phases, sizes
drawn from ranges with the population's seed) and/or a `members` CSV that lists prosumers one by
one. Profiles are per-unit shapes: load in units of each prosumer's peak load `load_peak_kw`, PV in
units of its rated power `pv_kwp`. See docs/prosumers.md.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveInt, model_validator

from lemcosim.federates.prosumers.profiles import GENERATORS

Phase = Literal["a", "b", "c", "abc"]
# a fixed value, or [low, high] drawn uniformly per prosumer with the population's seed
ValueOrRange = NonNegativeFloat | tuple[NonNegativeFloat, NonNegativeFloat]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_range(value: ValueOrRange, name: str) -> None:
    if isinstance(value, tuple) and value[0] > value[1]:
        raise ValueError(f"{name} range [{value[0]}, {value[1]}] has low > high")


class StorageConfig(_Strict):
    """Home batteries of a group."""

    share: float = Field(0.0, ge=0, le=1, description="fraction of the group with a battery")
    capacity_kwh: ValueOrRange = 10.0
    power_kw: ValueOrRange = 5.0
    soc0: float = Field(0.5, ge=0, le=1, description="initial state of charge, per unit")
    soc_min: float = Field(0.1, ge=0, le=1)
    soc_max: float = Field(1.0, ge=0, le=1)
    efficiency: float = Field(0.95, gt=0, le=1, description="one-way (charge and discharge each)")
    policy: Literal["self_consumption", "idle"] = Field(
        "self_consumption",
        description="self_consumption: charge from own surplus, discharge into own deficit; "
        "idle: hold the state of charge (a market schedules it)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> StorageConfig:
        _check_range(self.capacity_kwh, "capacity_kwh")
        _check_range(self.power_kw, "power_kw")
        if not self.soc_min <= self.soc0 <= self.soc_max:
            raise ValueError(f"need soc_min <= soc0 <= soc_max, got {self.soc_min}, "
                             f"{self.soc0}, {self.soc_max}")
        return self


class GroupConfig(_Strict):
    """`count` prosumers: prosumer k sits at buses[k mod B], phase phases[(k // B) mod P]."""

    name: str = Field("p", description="id prefix: members are NAME0, NAME1, …")
    count: PositiveInt
    buses: list[str] = Field(min_length=1, description="bus names as the network names them")
    phases: list[Phase] = Field(default_factory=lambda: ["a", "b", "c"], min_length=1)
    load_peak_kw: ValueOrRange = (2.0, 5.0)
    load_profile: str = Field("residential", description="generator name, shipped set or file")
    annual_kwh: ValueOrRange = Field((2500.0, 5000.0), description="yearly consumption, kWh: "
                                     "scales the BDEW profiles (bdew_*) instead of load_peak_kw")
    power_factor: float = Field(0.95, gt=0, le=1, description="lagging power factor of the load")
    pv_share: float = Field(0.5, ge=0, le=1, description="fraction of the group with PV")
    pv_kwp: ValueOrRange = (3.0, 8.0)
    pv_profile: str = Field("clear_sky", description="generator name, shipped set or file")
    pv_tilt_deg: ValueOrRange = Field(30.0, description="panel tilt from horizontal (pvlib PV)")
    pv_azimuth_deg: ValueOrRange = Field(180.0, description="panel azimuth, 180 = south (pvlib PV)")
    storage: StorageConfig | None = None

    @model_validator(mode="after")
    def _ranges(self) -> GroupConfig:
        _check_range(self.load_peak_kw, "load_peak_kw")
        _check_range(self.pv_kwp, "pv_kwp")
        for key, kind in (("load_profile", "load"), ("pv_profile", "pv")):
            made = GENERATORS.get(getattr(self, key), kind)
            if made != kind:
                raise ValueError(f"{key} {getattr(self, key)!r} generates {made}, not {kind}")
        _check_range(self.annual_kwh, "annual_kwh")
        _check_range(self.pv_tilt_deg, "pv_tilt_deg")
        _check_range(self.pv_azimuth_deg, "pv_azimuth_deg")
        for name, value, top in (("pv_tilt_deg", self.pv_tilt_deg, 90.0),
                                 ("pv_azimuth_deg", self.pv_azimuth_deg, 360.0)):
            if max(value if isinstance(value, tuple) else (value,)) > top:
                raise ValueError(f"{name} must lie within [0, {top:g}]")
        return self


class PopulationConfig(_Strict):
    seed: int = Field(0, description="seed of every random draw of the population")
    groups: list[GroupConfig] = Field(default_factory=list)
    members: str | None = Field(None, description="CSV: id,bus,phase,load_peak_kw[,pv_kwp,…]")
    latitude_deg: float = Field(48.0, ge=-66, le=66, description="site latitude: clear-sky PV "
                                "and pvlib PV with seeded weather")
    longitude_deg: float = Field(10.0, ge=-180, le=180, description="site longitude: pvlib PV "
                                 "with seeded weather (clock: UTC + round(longitude/15) h)")
    cloudiness: float = Field(0.2, ge=0, le=1, description="depth of the seeded cloud noise")
    pv_derate: float = Field(0.85, gt=0, le=1, description="PV performance ratio")
    weather: str = Field("tmy3_greensboro", description="weather of the pvlib PV generator: a "
                         "TMY3 file pvlib ships (pv_pvlib.WEATHER_FILES) or `seeded`")
    holidays: str | None = Field("DE", description="country whose holidays the BDEW load "
                                 "profiles treat as Sundays (ISO code; null: none)")
    load_noise: float = Field(0.1, ge=0, le=1, description="std of per-prosumer load noise, pu")
    log_members: bool = Field(False, description="log each prosumer's energy position")

    @model_validator(mode="after")
    def _someone(self) -> PopulationConfig:
        if not self.groups and self.members is None:
            raise ValueError("a population needs `groups` or a `members` file")
        return self
