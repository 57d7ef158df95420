"""ESU energy management: keep each storage unit's state of charge in a band so the pool stays
liquid, by trading with the utility at the start of each window (pure model; docs/amm.md).

A pool is liquid only while its ESUs can both deliver (buyers) and absorb (sellers). Prosumer
trading alone drains them: a community consumes more than it sells on most days, so without
management both quickstart ESUs reach SOC_min by window 48 and every later window skips its
liquidity. The policy, per ESU and window, from its state of charge s (pu of capacity):

- in the cheap hours [`cheap_from_h`, `cheap_to_h`) (local clock) it recharges toward
  `soc_cheap_pu`;
- in the expensive hours [`expensive_from_h`, `expensive_to_h`) (none by default) it sells down
  toward `soc_expensive_pu`;
- otherwise below `soc_low_pu` it recharges back to `soc_low_pu`, above `soc_high_pu` it sells
  back down to `soc_high_pu`; inside the band it leaves the energy to the market.

The exchange is at most `exchange_power_pu`·P_max·Δt. Charging x kWh from the utility stores
x·η; selling y kWh takes y/η. It is a contract with the utility, not a market trade: it is settled
on the state of charge at the window's start (so the liquidity the ESU commits reflects it), the
inverter keeps P_max − |x|/Δt for the market in that window, and the market publishes it as an
injection before its first query, so the grid commits it in the window's base state: the DSO
judges the trades against the feeder with the exchange (docs/amm.md). It is paid at `buy_price` /
`sell_price` (M per kWh).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, model_validator

from lemcosim.federates.amm.market import StorageUnit


class EsuPolicyConfig(BaseModel):
    """The `amm.esu_policy` section."""

    model_config = ConfigDict(extra="forbid")

    soc_low_pu: float = Field(0.35, ge=0, le=1, description="recharge from the utility below this")
    soc_high_pu: float = Field(0.8, ge=0, le=1, description="sell to the utility above this")
    cheap_from_h: float = Field(0.0, ge=0, le=24, description="cheap hours start (local clock)")
    cheap_to_h: float = Field(6.0, ge=0, le=24, description="cheap hours end; equal: none")
    soc_cheap_pu: float = Field(0.6, ge=0, le=1, description="recharge target in the cheap hours")
    expensive_from_h: float = Field(17.0, ge=0, le=24, description="expensive hours start")
    expensive_to_h: float = Field(17.0, ge=0, le=24, description="expensive hours end; equal: none")
    soc_expensive_pu: float = Field(0.5, ge=0, le=1, description="sell-down target in them")
    exchange_power_pu: float = Field(0.5, gt=0, lt=1, description="share of P_max for the exchange")
    buy_price: NonNegativeFloat = Field(0.15, description="M per kWh the ESU pays the utility")
    sell_price: NonNegativeFloat = Field(0.08, description="M per kWh the utility pays the ESU")

    @model_validator(mode="after")
    def _band(self) -> EsuPolicyConfig:
        for key in ("soc_cheap_pu", "soc_expensive_pu"):
            if not self.soc_low_pu <= getattr(self, key) <= self.soc_high_pu:
                raise ValueError(f"need soc_low_pu <= {key} <= soc_high_pu, got "
                                 f"{self.soc_low_pu}, {getattr(self, key)}, {self.soc_high_pu}")
        return self

    def cheap(self, hour: float) -> bool:
        return _within(hour, self.cheap_from_h, self.cheap_to_h)

    def expensive(self, hour: float) -> bool:
        return _within(hour, self.expensive_from_h, self.expensive_to_h)


def _within(hour: float, lo: float, hi: float) -> bool:
    """hour in [lo, hi) of the clock, wrapping midnight when lo > hi; empty when lo = hi."""
    return lo <= hour < hi if lo <= hi else hour >= lo or hour < hi


@dataclass(frozen=True)
class Exchange:
    """One ESU's exchange with the utility in a window: kWh at its terminals (+ bought)."""

    esu: str
    bus: str
    phases: str
    bought_kwh: float
    money: float  # M paid (+) or received (−)


def exchange_kwh(esu: StorageUnit, policy: EsuPolicyConfig, hour: float, dt_s: float) -> float:
    """kWh the ESU buys from (+) or sells to (−) the utility this window."""
    soc = esu.soc_kwh / esu.capacity_kwh
    soc_min = esu.soc_min_kwh / esu.capacity_kwh
    if policy.cheap(hour) and soc < policy.soc_cheap_pu:
        target = policy.soc_cheap_pu
    elif policy.expensive(hour) and soc > policy.soc_expensive_pu:
        target = policy.soc_expensive_pu
    elif soc < policy.soc_low_pu:
        target = policy.soc_low_pu
    elif soc > policy.soc_high_pu:
        target = max(policy.soc_high_pu, soc_min)
    else:
        return 0.0
    limit = policy.exchange_power_pu * esu.power_kw * dt_s / 3600.0
    if target > soc:
        return min((target - soc) * esu.capacity_kwh / esu.efficiency, limit)
    return -min((soc - target) * esu.capacity_kwh * esu.efficiency, limit)


class EsuManager:
    """Applies the policy to the market's ESUs window after window (remembers their rated power)."""

    def __init__(self, policy: EsuPolicyConfig) -> None:
        self.policy = policy
        self.rated_kw: dict[str, float] = {}

    def start_window(self, esus: list[StorageUnit], when: datetime, dt_s: float) -> list[Exchange]:
        """Settle each ESU's exchange on its SOC and leave the rest of its power to the market."""
        hour = when.hour + when.minute / 60.0 + when.second / 3600.0
        done = []
        for esu in esus:
            esu.power_kw = self.rated_kw.setdefault(esu.name, esu.power_kw)
            kwh = exchange_kwh(esu, self.policy, hour, dt_s)
            esu.soc_kwh += kwh * esu.efficiency if kwh > 0 else kwh / esu.efficiency
            esu.power_kw -= abs(kwh) * 3600.0 / dt_s
            price = self.policy.buy_price if kwh > 0 else self.policy.sell_price
            done.append(Exchange(esu.name, esu.bus, esu.phases, kwh, kwh * price))
        return done


def exchange_injections(done: list[Exchange], dt_s: float) -> dict[str, list[float]]:
    """The exchanges as grid injections, kW per BUS.PHASE (buying is a load: negative)."""
    out: dict[str, list[float]] = {}
    for x in done:
        if x.bought_kwh == 0.0:
            continue
        for phase in x.phases:
            acc = out.setdefault(f"{x.bus}.{phase}", [0.0, 0.0])
            acc[0] -= x.bought_kwh * 3600.0 / dt_s / len(x.phases)
    return out
