"""Configuration of the AMM market federate (the `amm:` section of a scenario); docs/amm.md."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveFloat, model_validator

from lemcosim.federates.amm.esu_policy import EsuPolicyConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PoolConfig(_Strict):
    kind: Literal["constant_product", "concentrated"] = "concentrated"
    fee: float = Field(0.0, ge=0, lt=1, description="φ, share of each swap's money kept for L-holders")
    fit: PositiveFloat = Field(0.08, description="feed-in tariff, M per kWh: ρ_lo")
    retail: PositiveFloat = Field(0.30, description="retail tariff, M per kWh: ρ_up")
    rho_eq: PositiveFloat | None = Field(None, description="opening price; default √(fit·retail)")
    reopen: Literal["fixed", "last_close"] = Field(
        "fixed", description="each window opens at rho_eq, or at the previous window's closing "
        "price (kept inside (fit, retail))")
    bound_policy: Literal["reject", "utility"] = Field(
        "reject", description="a swap crossing ρ_lo/ρ_up: reject it, or settle the remainder "
        "with the utility at FIT/retail")

    @model_validator(mode="after")
    def _prices(self) -> PoolConfig:
        if self.fit >= self.retail:
            raise ValueError(f"fit {self.fit} must be below retail {self.retail}")
        if self.rho_eq is not None and not self.fit < self.rho_eq < self.retail:
            raise ValueError(f"rho_eq {self.rho_eq} must lie strictly between fit and retail")
        return self

    @property
    def opening_price(self) -> float:
        return self.rho_eq or math.sqrt(self.fit * self.retail)


class EsuConfig(_Strict):
    name: str
    bus: str
    phases: str = "abc"
    capacity_kwh: PositiveFloat
    power_kw: PositiveFloat
    soc0_pu: float = Field(0.5, ge=0, le=1)
    soc_min_pu: float = Field(0.1, ge=0, le=1)
    efficiency: float = Field(0.95, gt=0, le=1)
    commit_pu: float = Field(0.9, gt=0, le=1, description="share of what it can deliver that it "
                             "commits as liquidity each window (the rest is headroom for the "
                             "loss energy it supplies)")

    @model_validator(mode="after")
    def _soc(self) -> EsuConfig:
        if self.soc_min_pu > self.soc0_pu:
            raise ValueError(f"ESU {self.name}: soc0_pu {self.soc0_pu} below soc_min_pu {self.soc_min_pu}")
        return self


class StrategyConfig(_Strict):
    """How prosumers turn their energy positions into trade intents."""

    kind: Literal["price_taker", "limit"] = "price_taker"
    buy_limit: PositiveFloat | None = Field(None, description="limit strategy; default retail")
    sell_limit: PositiveFloat | None = Field(None, description="limit strategy; default fit")
    min_trade_kwh: NonNegativeFloat = Field(0.01, description="smaller positions do not trade")
    order: Literal["random", "as_listed"] = Field("random", description="arrival order per window")


class ScriptedTransaction(_Strict):
    """A transaction of a case study, submitted in this order every window."""

    prosumer: str
    bus: str
    phase: str = "abc"
    side: Literal["buy", "sell"]
    e_kwh: float = Field(description="kWh; zero or negative ones are logged as rejected")
    limit_price: PositiveFloat | None = None


class AmmConfig(_Strict):
    pool: PoolConfig = Field(default_factory=PoolConfig)
    esus: list[EsuConfig] = Field(min_length=1)
    strategy: StrategyConfig = Field(default_factory=StrategyConfig)
    approval: bool = Field(True, description="every transaction is checked by the grid's query")
    loss_compensation: bool = False
    source: str | None = Field("prosumers", description="the prosumer federate whose positions "
                               "trade; null with `transactions` (a scripted case study)")
    transactions: list[ScriptedTransaction] | None = Field(
        None, description="scripted transactions instead of prosumer positions")
    grid: str = Field("grid", description="the grid federate that approves")
    seed: int = 0
    max_trades: int | None = Field(None, gt=0, description="per window, after ordering")
    pool_per_phase: bool = Field(
        False, description="one pool per phase: single-phase trades in their phase's pool, "
        "three-phase ones split in three; each ESU gives a third to each pool")
    fsvr_assist: str | None = Field(
        None, description="FSVR controller (mode assist) asked for a setting when the grid "
        "rejects a transaction; approved if one makes it feasible")
    esu_policy: EsuPolicyConfig | None = Field(
        None, description="ESU energy management: utility exchange keeping SOC in a band")
    assist_max_substeps: int = Field(5000, gt=0, description="how long to wait for its answer")
    log_answer_detail: bool = Field(
        True, description="log each transaction's grid answer detail: its voltage, VUF and "
        "loading extremes with where, and the approval rule (the per-transaction tables of "
        "ch. 3); false for long studies: decisions, prices, ΔLoss and reasons are still logged")
    after_refusal: Literal["continue", "stop"] = Field(
        "continue", description="batched approval: the grid goes on past a refused intent "
        "(one round trip per window, results equal within the power flow's tolerance), or stops "
        "there (one more round trip per refusal, the solves of one query per transaction bit "
        "for bit); docs/amm.md")

    @model_validator(mode="after")
    def _consistent(self) -> AmmConfig:
        if self.loss_compensation and not self.approval:
            raise ValueError("loss_compensation needs approval (it uses the approval power flows)")
        if self.fsvr_assist is not None and not self.approval:
            raise ValueError("fsvr_assist needs approval")
        if self.transactions is None and self.source is None:
            raise ValueError("give `source` (a prosumer federate) or scripted `transactions`")
        names = [e.name for e in self.esus]
        if len(set(names)) != len(names):
            raise ValueError(f"ESU names must be unique, got {names}")
        return self
