"""AMM liquidity pools (SPEC §4, thesis ch. 3): constant product and concentrated liquidity.

Tokens: E = 1 kWh delivered in the window, M = 1 unit of money, price ρ in M per E. A pool is a
plain dataclass; `buy`/`sell` return a `Swap` and mutate the pool only when asked to commit
(`quote` never mutates). Fees (φ, convention): a buyer pays (1 + φ)·M_i, a seller receives
(1 − φ)·M_i; the fee φ·M_i belongs to the L-token holders: the constant-product pool keeps it in
M_LP (k grows, as in Uniswap v2), the concentrated pool in `fees_m` beside its reserves (so ℒ
keeps describing the reserves exactly, as in Uniswap v3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

from lemcosim.federates.common.errors import LemcosimError

Side = Literal["buy", "sell"]
_EPS = 1e-12


class PoolError(LemcosimError):
    """A swap or liquidity addition the pool cannot serve (named: which, how much, why)."""


@dataclass(frozen=True)
class Swap:
    """One swap against the pool. `e_kwh` > 0 always; `m` is what the trader pays (buy) or
    receives (sell), fee included; `filled_kwh` < `e_kwh` when a price bound stopped it."""

    side: Side
    e_kwh: float
    filled_kwh: float
    m: float
    fee: float
    price_before: float
    price_after: float

    @property
    def rho(self) -> float:
        """Transaction price ρ_i = M_i / E_i of the filled part."""
        return self.m / self.filled_kwh if self.filled_kwh > 0 else float("nan")

    @property
    def remainder_kwh(self) -> float:
        return self.e_kwh - self.filled_kwh


def _check_amount(e_kwh: float, what: str) -> None:
    if not (isinstance(e_kwh, (int, float)) and math.isfinite(e_kwh)) or e_kwh <= 0:
        raise PoolError(f"{what}: energy must be a positive number of kWh, got {e_kwh!r}")


@dataclass
class ConstantProductPool:
    """E_LP · M_LP = k; ρ_LP = M_LP / E_LP."""

    e_lp: float = 0.0
    m_lp: float = 0.0
    fee: float = 0.0  # φ
    l_total: float = 0.0

    kind = "constant_product"

    @property
    def k(self) -> float:
        return self.e_lp * self.m_lp

    @property
    def price(self) -> float:
        if self.e_lp <= 0:
            raise PoolError("the pool holds no energy: it has no price yet")
        return self.m_lp / self.e_lp

    def deposit_for(self, e_kwh: float, price: float | None = None) -> float:
        """Money that must accompany `e_kwh` at the pool's price (or `price` when opening)."""
        return e_kwh * (self.price if self.l_total > 0 else price or 0.0)

    def add_liquidity(self, e_kwh: float, m: float) -> float:
        """Deposit E and M in the price ratio; returns the L-tokens minted."""
        _check_amount(e_kwh, "liquidity")
        if m <= 0:
            raise PoolError(f"liquidity: money must be positive, got {m!r}")
        if self.l_total <= 0:
            minted = math.sqrt(e_kwh * m)  # first provider
        else:
            if abs(m / e_kwh - self.price) > 1e-9 * max(1.0, self.price):
                raise PoolError(f"liquidity ratio M/E = {m / e_kwh:.6g} differs from ρ_LP = "
                                f"{self.price:.6g}")
            minted = self.l_total * e_kwh / self.e_lp  # pro rata
        self.e_lp += e_kwh
        self.m_lp += m
        self.l_total += minted
        return minted

    def quote(self, side: Side, e_kwh: float) -> Swap:
        _check_amount(e_kwh, side)
        before = self.price
        if side == "buy":
            if e_kwh >= self.e_lp - _EPS:
                raise PoolError(f"buy of {e_kwh:g} kWh: the pool holds only {self.e_lp:g} kWh")
            m_swap = self.k / (self.e_lp - e_kwh) - self.m_lp
            fee = self.fee * m_swap
            m_lp, e_lp, paid = self.m_lp + m_swap + fee, self.e_lp - e_kwh, m_swap + fee
        else:
            m_swap = self.m_lp - self.k / (self.e_lp + e_kwh)
            fee = self.fee * m_swap
            m_lp, e_lp, paid = self.m_lp - m_swap + fee, self.e_lp + e_kwh, m_swap - fee
        return Swap(side, e_kwh, e_kwh, paid, fee, before, m_lp / e_lp)

    def apply(self, swap: Swap) -> None:
        if swap.side == "buy":
            self.e_lp -= swap.filled_kwh
            self.m_lp += swap.m
        else:
            self.e_lp += swap.filled_kwh
            self.m_lp -= swap.m

    def copy(self) -> ConstantProductPool:
        return replace(self)

    def status(self) -> dict[str, float]:
        return {"E_LP": self.e_lp, "M_LP": self.m_lp, "k": self.k, "rho_LP": self.price,
                "L_total": self.l_total}


@dataclass
class ConcentratedPool:
    """Liquidity ℒ concentrated on [ρ_lo, ρ_up]: (E_LP + E*)(M_LP + M*) = ℒ²,
    E* = ℒ/√ρ_up, M* = ℒ·√ρ_lo; ρ_LP = (M_LP + M*)/(E_LP + E*)."""

    rho_lo: float
    rho_up: float
    e_lp: float = 0.0
    m_lp: float = 0.0
    liquidity: float = 0.0  # ℒ, also the number of L-tokens
    fee: float = 0.0
    opening_price: float | None = None  # ρ_eq while the pool is empty
    fees_m: float = 0.0  # collected fees, owed to L-holders pro rata

    kind = "concentrated"

    def __post_init__(self) -> None:
        if not 0 < self.rho_lo < self.rho_up:
            raise PoolError(f"price range needs 0 < ρ_lo < ρ_up, got [{self.rho_lo}, {self.rho_up}]")

    @property
    def l_total(self) -> float:
        return self.liquidity

    @property
    def e_star(self) -> float:
        return self.liquidity / math.sqrt(self.rho_up)

    @property
    def m_star(self) -> float:
        return self.liquidity * math.sqrt(self.rho_lo)

    @property
    def price(self) -> float:
        if self.liquidity <= 0:
            if self.opening_price is None:
                raise PoolError("the pool holds no liquidity: it has no price yet")
            return self.opening_price
        return (self.m_lp + self.m_star) / (self.e_lp + self.e_star)

    def _per_liquidity(self, price: float) -> tuple[float, float]:
        """Real reserves per unit ℒ at `price`: (1/√ρ − 1/√ρ_up, √ρ − √ρ_lo)."""
        return 1 / math.sqrt(price) - 1 / math.sqrt(self.rho_up), math.sqrt(price) - math.sqrt(self.rho_lo)

    def deposit_for(self, e_kwh: float, price: float | None = None) -> float:
        p = self.price if self.liquidity > 0 else (price or self.opening_price)
        if p is None or not self.rho_lo < p < self.rho_up:
            raise PoolError(f"opening price {p} must lie strictly inside [{self.rho_lo}, {self.rho_up}]")
        per_e, per_m = self._per_liquidity(p)
        return e_kwh * per_m / per_e

    def add_liquidity(self, e_kwh: float, m: float) -> float:
        _check_amount(e_kwh, "liquidity")
        p = self.price
        per_e, per_m = self._per_liquidity(p)
        minted = e_kwh / per_e
        if abs(m - minted * per_m) > 1e-9 * max(1.0, m):
            raise PoolError(f"liquidity: at ρ = {p:.6g} {e_kwh:g} kWh need {minted * per_m:.6g} M, "
                            f"got {m:.6g}")
        self.e_lp += e_kwh
        self.m_lp += m
        self.liquidity += minted
        return minted

    def quote(self, side: Side, e_kwh: float) -> Swap:
        """A swap; at a price bound it fills what the pool holds and reports the remainder."""
        _check_amount(e_kwh, side)
        before = self.price
        l2, e_star, m_star = self.liquidity**2, self.e_star, self.m_star
        if side == "buy":
            filled = min(e_kwh, self.e_lp)  # at ρ_up the pool holds no energy
            e_lp = self.e_lp - filled
            m_lp_swap = l2 / (e_lp + e_star) - m_star
            m_swap = m_lp_swap - self.m_lp
            fee = self.fee * m_swap
            paid, m_lp = m_swap + fee, m_lp_swap
        else:
            # selling e moves M_LP down to 0 at ρ_lo: the pool absorbs at most ℒ²/M* − E* − E_LP
            capacity = l2 / m_star - e_star - self.e_lp if m_star > 0 else math.inf
            filled = min(e_kwh, max(capacity, 0.0))
            e_lp = self.e_lp + filled
            m_lp_swap = max(l2 / (e_lp + e_star) - m_star, 0.0)
            m_swap = self.m_lp - m_lp_swap
            fee = self.fee * m_swap
            paid, m_lp = m_swap - fee, m_lp_swap
        if filled <= _EPS:
            bound = "ρ_up (no energy left)" if side == "buy" else "ρ_lo (no money left)"
            raise PoolError(f"{side} of {e_kwh:g} kWh: the pool is at its bound {bound}")
        after = (m_lp + m_star) / (e_lp + e_star)
        return Swap(side, e_kwh, filled, paid, fee, before, after)

    def apply(self, swap: Swap) -> None:
        if swap.side == "buy":
            self.e_lp = max(self.e_lp - swap.filled_kwh, 0.0)
            self.m_lp += swap.m - swap.fee
        else:
            self.e_lp += swap.filled_kwh
            self.m_lp = max(self.m_lp - swap.m - swap.fee, 0.0)
        self.fees_m += swap.fee

    def copy(self) -> ConcentratedPool:
        return replace(self)

    def status(self) -> dict[str, float]:
        return {"E_LP": self.e_lp, "M_LP": self.m_lp, "L": self.liquidity, "rho_LP": self.price,
                "L_total": self.liquidity, "fees_M": self.fees_m}


Pool = ConstantProductPool | ConcentratedPool
