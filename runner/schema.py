"""The scenario schema (pydantic): every key a scenario may have, with defaults and units.

Unknown keys are errors everywhere (`extra="forbid"`), so a typo never silently falls back to a
default. Each federate section may say `external: true` (the runner does not launch it) or
`enabled: false` (left out of the federation).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    field_validator,
    model_validator,
)

from lemcosim.federates.amm.config import AmmConfig
from lemcosim.federates.auction.config import AuctionConfig
from lemcosim.federates.common.clock import MIN_SUBSTEP_S, SERVER_OUTPUT_DELAY_S
from lemcosim.federates.fsvr_controller.config import FsvrControllerConfig
from lemcosim.federates.prosumers.config import PopulationConfig
from lemcosim.runner.hosts import HostConfig


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TimeConfig(Strict):
    """Trading windows: Δt = `window_s`; the run lasts `windows` windows or `duration_s` seconds."""

    window_s: PositiveFloat = 900.0
    windows: PositiveInt | None = None
    duration_s: PositiveFloat | None = None
    start: datetime = datetime(2026, 6, 21)
    substep_s: PositiveFloat = Field(1e-3, description="market sub-step δ inside a window, s")

    @model_validator(mode="after")
    def _one_length(self) -> TimeConfig:
        if self.windows is not None and self.duration_s is not None:
            raise ValueError("give `windows` or `duration_s`, not both")
        if self.duration_s is not None:
            n = self.duration_s / self.window_s
            if abs(n - round(n)) > 1e-9 or round(n) < 1:
                raise ValueError(
                    f"duration_s = {self.duration_s} is not a whole number of windows of "
                    f"window_s = {self.window_s}"
                )
            self.windows = int(round(n))
        if self.windows is None:
            self.windows = 96
        if self.substep_s * 4 > self.window_s:
            raise ValueError("substep_s must be far below window_s")
        if self.substep_s < MIN_SUBSTEP_S:
            raise ValueError(f"substep_s = {self.substep_s:g} s is below {MIN_SUBSTEP_S:g} s: the "
                             f"grid's answers come {SERVER_OUTPUT_DELAY_S:g} s after it acts "
                             "(federates/common/clock.py)")
        return self


class HelicsConfig(Strict):
    core_type: Literal["zmq", "tcp"] = "zmq"
    broker_port: int | None = Field(None, ge=1024, le=65000, description="None: a free port")
    log_level: Literal["error", "warning", "summary", "connections", "debug"] = "warning"
    timeout_s: PositiveFloat = Field(900.0, description="whole-run limit; the broker ends it after")
    external_timeout_s: PositiveFloat = Field(
        300.0, description="how long the federation waits for external federates to connect"
    )
    time_coordination: Literal["auto", "distributed", "global"] = Field(
        "auto", description="HELICS time coordination. distributed: each federate's core grants "
        "times (the fastest). global: the broker grants them (`--globaltime`), ~12 % slower per "
        "round trip on year_ieee13. auto: global when two interruptible federates can wake each "
        "other (the FSVR assist: grid and controller), whose zero-lookahead cycle HELICS 3.6.1's "
        "distributed coordination stalled in window 0 in 7 of 12 runs beside a busy core "
        "(docs/performance.md, The HELICS stall); distributed otherwise")
    stall_s: PositiveFloat = Field(
        20.0, description="a federation in which every federate has waited this long in a time "
        "request, none granted, is stalled by HELICS: the runner stops it and goes on from the "
        "last checkpoint (or from the start)")
    cpu_placement: Literal["auto", "off"] | dict[str, list[NonNegativeInt]] = Field(
        "auto", description="which CPUs each process may use (`taskset -c`, Linux). auto: the "
        "grid a market asks for approval gets a CPU of its own, the broker and every other "
        "federate share the rest (on 2 cores a window of year_ieee13 took 8.2 instead of 9.5 ms; "
        "docs/performance.md); nothing on one CPU, without such a market, on several hosts or "
        "without taskset. off: the scheduler decides. A mapping such as {grid: [1], broker: [0], "
        "amm: [0]} places the named processes (`broker` and launched federates; one host)")
    stall_restarts: NonNegativeInt = Field(
        3, description="restarts after a stall from the same checkpoint before the run fails "
        "(0: a stall runs into timeout_s); a restart that got further resets the count")

    @field_validator("cpu_placement", mode="before")
    @classmethod
    def _yaml_off(cls, value: Any) -> Any:
        # YAML 1.1 reads a bare `off` as false (and `on` as true)
        return {False: "off", True: "auto"}.get(value, value) if isinstance(value, bool) else value


class LogsConfig(Strict):
    flush_windows: PositiveInt = Field(
        96, description="windows per Parquet row group of each federate's log (a day of "
        "15-minute windows; a Parquet file per window cost each federate's writer more CPU than "
        "its model on year_ieee13); rows between are journalled, so a killed run keeps them "
        "either way (docs: README, Run folders and logs)")
    checkpoint_windows: NonNegativeInt = Field(
        96, description="every this many windows each federate checkpoints its state, so that "
        "`lemcosim run --resume RUN_DIR` continues a stopped run from there (0: never)")


class FederateSection(Strict):
    enabled: bool = True
    external: bool = Field(False, description="not launched by the runner; connects by itself")


class NetworkConfig(Strict):
    """The feeder: a shipped network name, a folder in our format, or an OpenDSS master file."""

    name: str | None = None
    dss: str | None = None
    regulators: Literal["published", "off", "control"] = "published"
    load_mult: PositiveFloat = 1.0

    @field_validator("regulators", mode="before")
    @classmethod
    def _yaml_off(cls, value: object) -> object:
        return "off" if value is False else value  # YAML 1.1 reads a bare `off` as false

    @model_validator(mode="after")
    def _one_source(self) -> NetworkConfig:
        if (self.name is None) == (self.dss is None):
            raise ValueError("give exactly one of `name` (network) or `dss` (OpenDSS master file)")
        return self


class ProsumersSection(FederateSection, PopulationConfig):
    """A prosumer population federate (see docs/prosumers.md for the population keys)."""

    split: PositiveInt = Field(
        1, description="run the population as this many federates NAME_0 … NAME_{n-1}, each "
        "publishing a contiguous share of the members (results equal the unsplit run)")


class AmmSection(FederateSection, AmmConfig):
    """The AMM market federate (docs/amm.md)."""


class FsvrControllerSection(FederateSection, FsvrControllerConfig):
    """The FSVR controller federate (docs/grid.md); `external: true` for your own controller."""


class AuctionSection(FederateSection, AuctionConfig):
    """The privacy-preserving double auction: KG, MO, DSO, PT and one CC per cluster
    (docs/privacy.md)."""


class GridLimits(Strict):
    """Operating limits a power-flow query checks (SPEC §3 defaults)."""

    v_min_pu: PositiveFloat = 0.95
    v_max_pu: PositiveFloat = 1.05
    vuf_max_pct: PositiveFloat = 2.0
    loading_max_pct: PositiveFloat = 100.0
    rule: Literal["absolute", "no_worse"] = Field(
        "absolute", description="no_worse: a value beyond its limit violates only if the query "
        "makes it worse than the committed window state")

    @model_validator(mode="after")
    def _ordered(self) -> GridLimits:
        if self.v_min_pu >= self.v_max_pu:
            raise ValueError(f"v_min_pu below v_max_pu, got v_min_pu {self.v_min_pu} and v_max_pu "
                             f"{self.v_max_pu}")
        return self


class GridDeviceConfig(Strict):
    """A regulator device in the feeder (SPEC §3); `setting` as in docs/grid.md."""

    kind: Literal["svr", "fsvr", "upfc"]
    at: str | None = Field(None, description="regulator or line; default: substation end")
    setting: dict[str, Any] = Field(default_factory=dict)
    vw1_over_vir: PositiveFloat = 0.025

    @model_validator(mode="after")
    def _valid_setting(self) -> GridDeviceConfig:
        from lemcosim.federates.grid.devices import DeviceError, setting_from_json

        try:
            setting_from_json({"kind": self.kind, **self.setting}, self.vw1_over_vir)
        except DeviceError as exc:
            raise ValueError(str(exc)) from None
        return self


class GridSection(FederateSection):
    """The grid federate: solves `network` each window from the prosumers' injections."""

    sources: list[str] | None = Field(
        None, description="federates whose {name}/injections are summed; default: all prosumers")
    limits: GridLimits = Field(default_factory=GridLimits)
    device: GridDeviceConfig | None = None
    log_queries: Literal["summary", "full"] = Field(
        "summary", description="summary: per window, the requests served and power flows solved; "
        "full: also every query answer (large logs)")


class RecorderSection(FederateSection):
    subscribe: list[str] = Field(
        default_factory=list,
        description="publication keys to log; empty: the publications of custom and external "
        "federates (lemcosim's own federates log what they publish themselves)",
    )


class CustomFederateSection(FederateSection):
    """A researcher's own federate, launched by the runner (`exec`, `{config}` = its HELICS JSON)."""

    exec: str | None = None
    publications: dict[str, str] = Field(default_factory=dict, description="key -> unit")
    subscriptions: list[str] = Field(default_factory=list)
    endpoints: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _launchable(self) -> CustomFederateSection:
        if not self.external and not self.exec:
            raise ValueError("a custom federate needs `exec` unless it is `external: true`")
        return self


class Scenario(Strict):
    name: str
    description: str = ""
    time: TimeConfig = Field(default_factory=TimeConfig)
    helics: HelicsConfig = Field(default_factory=HelicsConfig)
    logs: LogsConfig = Field(default_factory=LogsConfig)
    network: NetworkConfig | None = None
    prosumers: ProsumersSection | None = None
    grid: GridSection | None = None
    amm: AmmSection | None = None
    fsvr_controller: FsvrControllerSection | None = None
    auction: AuctionSection | None = None
    recorder: RecorderSection | None = None
    custom: dict[str, CustomFederateSection] = Field(default_factory=dict)
    hosts: dict[str, HostConfig] = Field(
        default_factory=dict, description="multi-host run: host name -> address and federates")

    @model_validator(mode="after")
    def _grid_needs_network(self) -> Scenario:
        if self.grid is not None and self.grid.enabled and self.network is None:
            raise ValueError("a `grid` federate needs a `network` section")
        if self.amm is not None and self.amm.enabled and self.amm.approval and (
                self.grid is None or not self.grid.enabled):
            raise ValueError("`amm.approval` needs a `grid` federate (or set amm.approval: false)")
        if self.auction is not None and self.auction.enabled and (
                self.network is None or self.prosumers is None):
            raise ValueError("an `auction` needs a `network` (the DSO's PTDFs) and `prosumers`")
        ctl = self.fsvr_controller
        if self.amm is not None and self.amm.enabled and self.amm.fsvr_assist is not None and (
                ctl is None or not ctl.enabled or ctl.mode != "assist"):
            raise ValueError("`amm.fsvr_assist` needs an `fsvr_controller` with mode: assist")
        if ctl is not None and ctl.enabled and (
                self.grid is None or self.grid.device is None or self.grid.device.kind != "fsvr"):
            raise ValueError("`fsvr_controller` needs `grid.device.kind: fsvr`")
        return self

    @property
    def windows(self) -> int:
        assert self.time.windows is not None
        return self.time.windows
