"""ESU energy management: keep each storage unit's state of charge in a band so the pool stays
liquid, by trading with the utility at the start of each window (pure model; docs/amm.md).

A pool is liquid only while its ESUs can both deliver (buyers) and absorb (sellers). Prosumer
trading alone drains them: a community consumes more than it sells on most days, so without
management both quickstart ESUs reach SOC_min by window 48 and every later window skips its
liquidity. The policy, per ESU and window, from its state of charge s (pu of capacity):

- in the cheap hours [`cheap_from_h`, `cheap_to_h`) (local clock) it recharges toward
  `soc_cheap_pu`;
- otherwise below `soc_low_pu` it recharges back to `soc_low_pu`, above `soc_high_pu` it sells
  back down to `soc_high_pu`; inside the band it leaves the energy to the market.

The exchange is at most `exchange_power_pu`·P_max·Δt. Charging x kWh from the utility stores
x·η; selling y kWh takes y/η. The exchange enters the window's obligation ES_cont(n) as its first
term (−x or +y), so the market's energy and power limits, the approval power flows, the schedule
and the SOC update at delivery all see it. It is paid at `buy_price` / `sell_price` (M per kWh).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, model_validator

from lemcosim.federates.amm.market import AmmWindow, StorageUnit


class EsuPolicyConfig(BaseModel):
    """The `amm.esu_policy` section."""

    model_config = ConfigDict(extra="forbid")

    soc_low_pu: float = Field(0.35, ge=0, le=1, description="recharge from the utility below this")
    soc_high_pu: float = Field(0.8, ge=0, le=1, description="sell to the utility above this")
    cheap_from_h: float = Field(0.0, ge=0, le=24, description="cheap hours start (local clock)")
    cheap_to_h: float = Field(6.0, ge=0, le=24, description="cheap hours end; equal: none")
    soc_cheap_pu: float = Field(0.6, ge=0, le=1, description="recharge target in the cheap hours")
    exchange_power_pu: float = Field(0.5, gt=0, le=1, description="share of P_max for the exchange")
    buy_price: NonNegativeFloat = Field(0.15, description="M per kWh the ESU pays the utility")
    sell_price: NonNegativeFloat = Field(0.08, description="M per kWh the utility pays the ESU")

    @model_validator(mode="after")
    def _band(self) -> EsuPolicyConfig:
        if not self.soc_low_pu <= self.soc_cheap_pu <= self.soc_high_pu:
            raise ValueError(f"need soc_low_pu <= soc_cheap_pu <= soc_high_pu, got "
                             f"{self.soc_low_pu}, {self.soc_cheap_pu}, {self.soc_high_pu}")
        return self

    def cheap(self, hour: float) -> bool:
        lo, hi = self.cheap_from_h, self.cheap_to_h
        return lo <= hour < hi if lo <= hi else hour >= lo or hour < hi  # may wrap midnight


@dataclass(frozen=True)
class Exchange:
    """One ESU's exchange with the utility in a window: kWh at its terminals (+ bought)."""

    esu: str
    bought_kwh: float
    money: float  # M paid (+) or received (−)


def exchange_kwh(esu: StorageUnit, policy: EsuPolicyConfig, hour: float, dt_s: float) -> float:
    """kWh the ESU buys from (+) or sells to (−) the utility this window."""
    soc = esu.soc_kwh / esu.capacity_kwh
    soc_min = esu.soc_min_kwh / esu.capacity_kwh
    if policy.cheap(hour) and soc < policy.soc_cheap_pu:
        target = policy.soc_cheap_pu
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


def manage(book: AmmWindow, policy: EsuPolicyConfig, when: datetime) -> list[Exchange]:
    """Open the window's obligations with each ESU's utility exchange (before liquidity)."""
    hour = when.hour + when.minute / 60.0 + when.second / 3600.0
    done = []
    for name, esu in book.esus.items():
        kwh = exchange_kwh(esu, policy, hour, book.dt_s)
        book.es_cont[name] -= kwh  # buying is absorbing: a negative obligation
        price = policy.buy_price if kwh > 0 else policy.sell_price
        done.append(Exchange(name, kwh, kwh * price))
    return done
