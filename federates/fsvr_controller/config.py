"""Configuration of the FSVR controller federate (the `fsvr_controller:` section)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat


class FsvrControllerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["correction"] = Field(
        "correction", description="voltage-correction scheme: per window, the discrete A that "
        "brings the measured V_in closest to a balanced nominal set")
    grid: str = Field("grid", description="the grid federate whose FSVR it drives")
    v_nom_pu: PositiveFloat = 1.0
    vw1_over_vir: PositiveFloat = 0.025
