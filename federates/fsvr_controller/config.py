"""Configuration of the FSVR controller federate (the `fsvr_controller:` section)."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, field_validator

from lemcosim.federates.grid.devices import DeviceError, DeviceSetting


class StudyObjective(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["loss", "vuf", "weighted"] = "loss"
    vuf_bus: str | None = Field(None, description="VUF at this bus; default the feeder maximum")
    w_loss_per_kw: PositiveFloat = 1.0
    w_vuf_per_pct: PositiveFloat = 10.0
    constraints: list[Literal["v_min", "v_max", "vuf_max", "loading_max"]] = Field(
        default_factory=lambda: ["v_min", "v_max"], description="grid limits (grid.limits) every "
        "optimum and the loadability search must meet; default the voltage band (thesis 4.7)")


class GwoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    population: int = Field(12, ge=3)
    iterations: int = Field(30, ge=1, description="at most; fewer if max_flows runs out first")
    seed: int = 0
    max_flows: int | None = Field(
        None, ge=1, description="power-flow budget; default: as many as the study's first method "
        "used for the same device (equal budgets)")


class StudyConfig(BaseModel):
    """Thesis 4.7: optimal settings, loss saving, VUF reduction, loadability per device."""

    model_config = ConfigDict(extra="forbid")

    devices: list[Literal["svr", "fsvr", "upfc"]] = Field(
        default_factory=lambda: ["svr", "fsvr", "upfc"], min_length=1)
    methods: list[Literal["sensitivity", "coordinate", "gwo"]] = Field(
        default_factory=lambda: ["sensitivity", "gwo"], min_length=1,
        description="the first also runs the loadability search")
    objective: StudyObjective = Field(default_factory=StudyObjective)
    gwo: GwoOptions = Field(default_factory=GwoOptions)
    loadability: bool = True
    lambda_max_search: PositiveFloat = Field(3.0, description="upper end of the λ bisection")
    lambda_tol: PositiveFloat = 0.02
    fsvr_continuous: bool = Field(
        False, description="search the FSVR's coefficients continuously within ±R_max instead of "
        "its nine levels: then SVR ⊂ FSVR ⊂ UPFC as sets and UPFC ≥ FSVR ≥ SVR by construction")
    published_svr_taps: list[float] | None = Field(
        None, min_length=3, max_length=3, description="the feeder's published regulator taps at "
        "the device location (α per phase): an extra row with the SVR held there")

    @field_validator("published_svr_taps")
    @classmethod
    def _svr_steps(cls, taps: list[float] | None) -> list[float] | None:
        if taps is not None:
            try:
                DeviceSetting("svr", alpha=np.diag(taps)).validate()
            except DeviceError as exc:
                raise ValueError(str(exc)) from None
        return taps


class AssistConfig(BaseModel):
    """Assist mode: a feasible FSVR setting for a market's provisional transaction."""

    model_config = ConfigDict(extra="forbid")

    w_loss_per_kw: PositiveFloat = 1.0
    w_vuf_per_pct: PositiveFloat = 10.0
    iterations: int = Field(6, ge=1, description="sensitivity-search relinearisations")


class FsvrControllerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["correction", "study", "assist"] = Field(
        "correction", description="correction: per window, the discrete A that brings the "
        "measured V_in closest to a balanced nominal set; study: the chapter-4 study in window 0 "
        "through the grid's power-flow queries; assist: answers a market's requests for a "
        "setting that makes a transaction feasible")
    study: StudyConfig = Field(default_factory=StudyConfig)
    assist: AssistConfig = Field(default_factory=AssistConfig)
    target: Literal["feeder", "device_output"] = Field(
        "feeder", description="correction mode: feeder — measure the feeder's voltages (two "
        "power-flow queries per window) and bring them inside the grid's voltage band and towards "
        "balanced nominal sets; device_output — the thesis' local scheme on the device's own "
        "output, from its input phasors only")
    grid: str = Field("grid", description="the grid federate whose FSVR it drives")
    v_nom_pu: PositiveFloat = 1.0
    vw1_over_vir: PositiveFloat = 0.025
