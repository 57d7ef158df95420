"""One trading window of the AMM market (SPEC §4): liquidity by storage units, then sequential
transactions with optional DSO approval and loss compensation. Pure: the grid is a callback.

Conventions (documented in docs/amm.md):
- ESU n holds L-tokens L_ES(n); its share s_n = L_ES(n)/ΣL. Each provisional swap moves its
  delivery obligation by ES_i(n) = s_n·E_i (a buy draws energy out of the pool: ESUs inject; a
  sell puts energy in: ESUs absorb, ES_i(n) = −s_n·E_i); ES_cont(n) is the running sum.
- Approval injections: the initiator ±E_i/Δt at its bus·phase (seller +, buyer −), every ESU
  ES_cont(n)/Δt split evenly over its phases, plus every approved transaction before it.
- Loss compensation: ΔLoss_i = (PLoss_i − PLoss_{i−1})·Δt (kWh). The initiator pays ΔLoss_i·ρ_LP^i
  at the post-trade pool price (is credited when negative); the ESUs supply ΔLoss_i pro rata to
  L and receive that money. ρ_i^eff = (M_i ± ΔLoss_i·ρ_LP^i)/E_i (+ buy, − sell) and
  ρ_ES^i = (M_i ± ΔLoss_i·ρ_LP^i)/(E_i ± ΔLoss_i).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from lemcosim.federates.amm.pool import Pool, PoolError, Side, Swap
from lemcosim.federates.common.approval import (
    ApprovalChain,
    Intent,
    StorageAccount,
    loss_delta_kwh,
    trade_kw,
)
from lemcosim.federates.common.errors import LemcosimError

Approver = Callable[[dict[str, list[float]]], dict[str, Any]]
BoundPolicy = Literal["reject", "utility"]


class MarketError(LemcosimError):
    """An ESU or transaction the market cannot accept (named, with the numbers)."""


@dataclass
class StorageUnit:
    """An energy storage unit (ESU) providing liquidity; three-phase unless `phases` says not."""

    name: str
    bus: str
    capacity_kwh: float
    soc_kwh: float
    power_kw: float
    soc_min_kwh: float = 0.0
    efficiency: float = 1.0
    phases: str = "abc"

    def __post_init__(self) -> None:
        if not 0 <= self.soc_min_kwh <= self.soc_kwh <= self.capacity_kwh:
            raise MarketError(f"ESU {self.name}: need 0 ≤ soc_min ≤ soc ≤ capacity, got "
                              f"{self.soc_min_kwh}, {self.soc_kwh}, {self.capacity_kwh} kWh")
        if self.power_kw <= 0 or not 0 < self.efficiency <= 1:
            raise MarketError(f"ESU {self.name}: power must be > 0 and efficiency in (0, 1]")

    def deliverable_kwh(self, dt_s: float) -> float:
        """Energy it can inject in a window: stored energy above soc_min, and the power limit."""
        return min((self.soc_kwh - self.soc_min_kwh) * self.efficiency, self.power_kw * dt_s / 3600)

    def absorbable_kwh(self, dt_s: float) -> float:
        return min((self.capacity_kwh - self.soc_kwh) / self.efficiency, self.power_kw * dt_s / 3600)

    def deliver(self, es_kwh: float) -> None:
        """Settle a window's obligation (positive: inject, negative: absorb)."""
        if es_kwh >= 0:
            self.soc_kwh -= es_kwh / self.efficiency
        else:
            self.soc_kwh -= es_kwh * self.efficiency
        self.soc_kwh = min(max(self.soc_kwh, 0.0), self.capacity_kwh)


@dataclass(frozen=True)
class Transaction:
    id: str
    prosumer: str
    bus: str
    phase: str  # a, b, c or abc
    side: Side
    e_kwh: float
    limit_price: float | None = None  # buyers pay at most, sellers accept at least (M per kWh)


@dataclass
class TxResult:
    tx: Transaction
    approved: bool
    reason: str = ""
    m: float = float("nan")
    rho: float = float("nan")
    rho_eff: float = float("nan")
    rho_es: float = float("nan")
    d_loss_kwh: float = 0.0
    price_after: float = float("nan")
    utility_kwh: float = 0.0  # remainder settled with the utility at a price bound
    utility_m: float = 0.0
    es_i: dict[str, float] = field(default_factory=dict)
    es_cont: dict[str, float] = field(default_factory=dict)
    grid: dict[str, Any] = field(default_factory=dict)
    decided_by: str = ""  # "storage" when an ESU limit refused it before any power flow


@dataclass
class Ledger:
    """Every account's money and energy, to prove conservation."""

    money: dict[str, float] = field(default_factory=dict)
    energy_kwh: dict[str, float] = field(default_factory=dict)

    def move_money(self, src: str, dst: str, amount: float) -> None:
        self.money[src] = self.money.get(src, 0.0) - amount
        self.money[dst] = self.money.get(dst, 0.0) + amount

    def move_energy(self, src: str, dst: str, amount: float) -> None:
        self.energy_kwh[src] = self.energy_kwh.get(src, 0.0) - amount
        self.energy_kwh[dst] = self.energy_kwh.get(dst, 0.0) + amount


class _Unkept(Ledger):
    """A fork's ledger: its money and energy are never read (the window keeps the real ones)."""

    def move_money(self, src: str, dst: str, amount: float) -> None:
        pass

    def move_energy(self, src: str, dst: str, amount: float) -> None:
        pass


POOL = "pool"
UTILITY = "utility"
NETWORK_LOSSES = "losses"


class AmmWindow:
    """Stage 1 (liquidity) and stage 2 (transactions) of one trading window."""

    def __init__(self, pool: Pool, esus: list[StorageUnit], dt_s: float, *,
                 approve: Approver | None = None, loss_compensation: bool = False,
                 bound_policy: BoundPolicy = "reject", fit: float | None = None,
                 retail: float | None = None, base_losses_kw: float | None = None) -> None:
        if loss_compensation and approve is None:
            raise MarketError("loss compensation needs the grid's approval power flows")
        self.pool = pool
        self.esus = {e.name: e for e in esus}
        self.dt_s = dt_s
        self.approve = approve
        self.loss_compensation = loss_compensation
        self.bound_policy = bound_policy
        self.fit, self.retail = fit, retail
        self.l_es: dict[str, float] = {}
        self.es_cont: dict[str, float] = {n: 0.0 for n in self.esus}
        self.approved: list[TxResult] = []
        self.ledger = Ledger()
        # losses of the last approved state; None until the window's first grid answer brings
        # PLoss_0, the committed window state's (a known value saves that wait)
        self.loss_kw: float | None = base_losses_kw
        # approved trades per BUS.PHASE, summed as they are approved (approval state, never
        # rebuilt from the trades); the storage accounts are fixed once stage 2 starts
        self._trades_kw: dict[str, float] = {}
        self._storage: tuple[StorageAccount, ...] | None = None
        self._shares: dict[str, float] | None = None
        self.pending: Intent | None = None  # the transaction being approved, as an intent
        # every intent this window creates (asked of the grid, or local) when a list: a fork's
        # speculation, the replay of a batch's answers (federates/amm/federate.py)
        self.intent_log: list[Intent] | None = None
        self.assume_approved = False  # a fork: see `fork`
        self.lists_storage_refusals = False  # a fork's: see `fork`
        # when set, asked instead of `approve` with the pending intent itself: the replay of a
        # batch's answers, which the grid evaluated already (no injections to assemble)
        self.answer_intent: Callable[[Intent], dict[str, Any]] | None = None

    # --- stage 1 ---------------------------------------------------------------------------
    def add_liquidity(self, esu_name: str, e_kwh: float, opening_price: float | None = None
                      ) -> dict[str, float]:
        """ESU `esu_name` deposits `e_kwh` and the money the price requires; returns the status."""
        esu = self.esus.get(esu_name)
        if esu is None:
            raise MarketError(f"unknown ESU {esu_name!r}")
        can = esu.deliverable_kwh(self.dt_s)
        if e_kwh > can + 1e-9:
            raise MarketError(f"ESU {esu_name} commits {e_kwh:g} kWh but can deliver only {can:.6g} "
                              f"kWh this window (state of charge and power limit)")
        if self.pool.l_total <= 0 and self.pool.kind == "constant_product" and not opening_price:
            raise MarketError("the first liquidity of a constant-product pool needs ρ_eq")
        m = self.pool.deposit_for(e_kwh, opening_price)
        minted = self.pool.add_liquidity(e_kwh, m)
        self.l_es[esu_name] = self.l_es.get(esu_name, 0.0) + minted
        self._storage = None  # shares changed
        self._shares = None
        self.ledger.move_money(f"esu:{esu_name}", POOL, m)
        self.ledger.move_energy(f"esu:{esu_name}", POOL, e_kwh)
        return self.token_status()

    def token_status(self) -> dict[str, float]:
        status = dict(self.pool.status())
        for name in self.esus:
            share = self.share(name)
            status[f"L_ES({name})"] = self.l_es.get(name, 0.0)
            status[f"M_ES({name})"] = share * self.pool.m_lp  # the money it could withdraw
            status[f"ES_cont({name})"] = self.es_cont[name]
        return status

    def share(self, name: str) -> float:
        """ESU `name`'s L-share s_n (fixed once stage 2 starts: every transaction asks)."""
        if self._shares is None:
            total = sum(self.l_es.values())
            self._shares = {n: self.l_es.get(n, 0.0) / total if total > 0 else 0.0
                            for n in self.esus}
        return self._shares.get(name, 0.0)

    # --- stage 2 ---------------------------------------------------------------------------
    def transact(self, tx: Transaction) -> TxResult:
        """Provisional swap → ESU obligations → grid approval → commit or reject (with reason)."""
        if not (math.isfinite(tx.e_kwh) and tx.e_kwh > 0):
            return TxResult(tx, False, f"energy must be a positive number of kWh, got {tx.e_kwh!r}")
        try:
            swap = self.pool.quote(tx.side, tx.e_kwh)
        except PoolError as exc:
            if self.bound_policy == "utility":
                return self._commit_utility_only(tx, str(exc))
            return TxResult(tx, False, str(exc))
        if swap.remainder_kwh > 1e-12 and self.bound_policy == "reject":
            return TxResult(tx, False, f"{tx.side} of {tx.e_kwh:g} kWh crosses the pool's price bound "
                            f"after {swap.filled_kwh:.6g} kWh (bound policy: reject)")
        if tx.limit_price is not None:
            if tx.side == "buy" and swap.rho > tx.limit_price + 1e-12:
                return TxResult(tx, False, f"price {swap.rho:.6g} above the buyer's limit "
                                f"{tx.limit_price:g}")
            if tx.side == "sell" and swap.rho < tx.limit_price - 1e-12:
                return TxResult(tx, False, f"price {swap.rho:.6g} below the seller's limit "
                                f"{tx.limit_price:g}")
        sign = 1.0 if tx.side == "buy" else -1.0
        es_i = {n: sign * self.share(n) * swap.filled_kwh for n in self.esus}
        es_cont = {n: self.es_cont[n] + es_i[n] for n in self.esus}
        problem = self._esu_limits(es_cont)
        if problem:
            if self.lists_storage_refusals:
                # a fork knows no ΔLoss (with loss compensation it moves ES_cont), so its ES_cont
                # drifts from the window's: it lists the intent anyway and the grid, which holds
                # the real ES_cont, decides the limit (a 6,000-prosumer sunny noon: 82 batches a
                # window, each ended where the window traded what its fork had refused, 2.6 now)
                self.intent_log.append(self._intent(tx, swap, es_i))
            return TxResult(tx, False, problem, decided_by="storage")
        answer: dict[str, Any] = {}
        d_loss_kwh = 0.0
        if self.approve is not None or self.assume_approved:
            self.pending = self._intent(tx, swap, es_i)
            if self.intent_log is not None:
                self.intent_log.append(self.pending)
            if self.assume_approved:
                # a fork's next decisions read only its pool and ES_cont (it never learns losses:
                # its ΔLoss is 0, nothing to compensate); its results, ledger and trades are
                # never read, and every transaction of a batch is decided by a fork first
                self.pool.apply(swap)
                self.es_cont = es_cont
                return TxResult(tx, True)
            if self.answer_intent is not None:
                answer = self.answer_intent(self.pending)
            else:
                answer = self.approve(self.chain().injections(
                    self.pending.trade_kw, list(es_cont.values())))
            if not answer.get("feasible"):
                return TxResult(tx, False, f"DSO: {answer.get('reason') or 'infeasible'}", grid=answer)
            if self.loss_kw is None:
                self.loss_kw = self._window_base_losses(answer)
            d_loss_kwh = loss_delta_kwh(answer["losses_kw"], self.loss_kw, self.dt_s)
        return self._commit(tx, swap, es_i, es_cont, d_loss_kwh, answer)

    def _intent(self, tx: Transaction, swap: Swap, es_i: dict[str, float]) -> Intent:
        sign = 1.0 if tx.side == "sell" else -1.0
        committed = tx.e_kwh - (swap.remainder_kwh if swap.remainder_kwh > 1e-12 else 0.0)
        return Intent(tx.id, trade_kw(tx.bus, tx.phase, sign * swap.filled_kwh, self.dt_s),
                      tuple(es_i.values()),
                      None if committed == swap.filled_kwh else
                      trade_kw(tx.bus, tx.phase, sign * committed, self.dt_s))

    def chain(self) -> ApprovalChain:
        """The approval state now: approved trades, ESU deliveries and losses (docs/amm.md)."""
        return ApprovalChain(self.dt_s, self._accounts(), self._trades_kw,
                             list(self.es_cont.values()), self.loss_kw, self.loss_compensation)

    def _accounts(self) -> tuple[StorageAccount, ...]:
        """Each ESU as the approval sees it (fixed once stage 2 starts: SOC changes after it)."""
        if self._storage is None:
            self._storage = tuple(
                StorageAccount(tuple(f"{e.bus}.{ph}" for ph in e.phases), self.share(n),
                               e.deliverable_kwh(self.dt_s), e.absorbable_kwh(self.dt_s))
                for n, e in self.esus.items())
        return self._storage

    def fork(self, storage_refusals: bool = True) -> AmmWindow:
        """A copy that decides the coming transactions as if the grid approved each one and lists
        the intents it would have asked about (`intent_log`): batched approval sends them at once.
        `storage_refusals`: list those it refuses at a storage limit too (see `transact`; not
        for a grid that stops its batch at the first refusal, which would stop at each)."""
        twin = copy.copy(self)
        twin.pool = self.pool.copy()
        twin.es_cont = dict(self.es_cont)
        twin._trades_kw = dict(self._trades_kw)
        twin.approved, twin.ledger, twin.intent_log, twin.assume_approved = [], _Unkept(), [], True
        twin.answer_intent = None
        twin.lists_storage_refusals = storage_refusals
        return twin

    def _esu_limits(self, es_cont: dict[str, float]) -> str:
        for (n, es), account in zip(es_cont.items(), self._accounts(), strict=True):
            if es > account.deliverable_kwh + 1e-9:
                return (f"ESU {n} would have to deliver {es:.6g} kWh, more than its "
                        f"{account.deliverable_kwh:.6g} kWh")
            if -es > account.absorbable_kwh + 1e-9:
                return (f"ESU {n} would have to absorb {-es:.6g} kWh, more than its "
                        f"{account.absorbable_kwh:.6g} kWh")
        return ""

    def _window_base_losses(self, answer: dict) -> float:
        """PLoss_0, the losses of the committed window state: our grid sends them with every
        answer; a grid that does not is asked for the schedule so far (one more query)."""
        base = answer.get("base_losses_kw")
        return float(base) if base is not None else self.base_losses()

    def base_losses(self) -> float:
        answer = self.approve(self.schedule())
        if not answer.get("converged"):
            raise MarketError(f"the window's base power flow failed: {answer.get('reason')}")
        return float(answer["losses_kw"])

    def schedule(self) -> dict[str, list[float]]:
        """The window's approved market injections: trades and ESU deliveries, kW per BUS.PHASE."""
        return self.chain().injections()

    def _approved_trade(self, result: TxResult) -> dict[str, float]:
        tx = result.tx
        e = tx.e_kwh - result.utility_kwh
        added = trade_kw(tx.bus, tx.phase, e if tx.side == "sell" else -e, self.dt_s)
        for key, p in added.items():
            self._trades_kw[key] = self._trades_kw.get(key, 0.0) + p
        return added

    def _commit(self, tx: Transaction, swap: Swap, es_i: dict[str, float],
                es_cont: dict[str, float], d_loss_kwh: float, answer: dict) -> TxResult:
        self.pool.apply(swap)
        who = f"prosumer:{tx.prosumer}"
        if tx.side == "buy":
            self.ledger.move_money(who, POOL, swap.m)
            self.ledger.move_energy(POOL, who, swap.filled_kwh)
        else:
            self.ledger.move_money(POOL, who, swap.m)
            self.ledger.move_energy(who, POOL, swap.filled_kwh)
        price = self.pool.price
        loss_m = 0.0
        supplied = d_loss_kwh if self.loss_compensation else 0.0  # loss energy the ESUs deliver
        if self.loss_compensation:
            loss_m = d_loss_kwh * price
            for n in self.esus:
                s = self.share(n)
                es_i[n] += s * d_loss_kwh
                es_cont[n] += s * d_loss_kwh
                self.ledger.move_money(who, f"esu:{n}", s * loss_m)
                self.ledger.move_energy(f"esu:{n}", NETWORK_LOSSES, s * d_loss_kwh)
        if self.approve is not None:
            self.loss_kw = float(answer["losses_kw"])
        self.es_cont = es_cont
        sign = 1.0 if tx.side == "buy" else -1.0
        e = swap.filled_kwh
        result = TxResult(
            tx, True, m=swap.m, rho=swap.rho, rho_eff=(swap.m + sign * loss_m) / e,
            rho_es=(swap.m + sign * loss_m) / (e + sign * supplied) if e + sign * supplied else
            float("nan"), d_loss_kwh=d_loss_kwh, price_after=price, es_i=dict(es_i),
            es_cont=dict(es_cont), grid=answer)
        if swap.remainder_kwh > 1e-12:  # bound policy "utility"
            self._settle_with_utility(result, swap.remainder_kwh)
        self.approved.append(result)
        self._approved_trade(result)
        return result

    def _settle_with_utility(self, result: TxResult, e_kwh: float) -> None:
        tx = result.tx
        price = self.retail if tx.side == "buy" else self.fit
        if price is None:
            raise MarketError("bound policy `utility` needs fit and retail prices")
        who = f"prosumer:{tx.prosumer}"
        if tx.side == "buy":
            self.ledger.move_money(who, UTILITY, e_kwh * price)
            self.ledger.move_energy(UTILITY, who, e_kwh)
        else:
            self.ledger.move_money(UTILITY, who, e_kwh * price)
            self.ledger.move_energy(who, UTILITY, e_kwh)
        result.utility_kwh, result.utility_m = e_kwh, e_kwh * price
        result.reason = f"{e_kwh:.6g} kWh beyond the pool's price bound settled with the utility"

    def _commit_utility_only(self, tx: Transaction, why: str) -> TxResult:
        result = TxResult(tx, True, price_after=self.pool.price,
                          es_cont=dict(self.es_cont), es_i={n: 0.0 for n in self.esus})
        self._settle_with_utility(result, tx.e_kwh)
        result.reason = f"{why}; all {tx.e_kwh:g} kWh settled with the utility"
        self.approved.append(result)
        added = self._approved_trade(result)
        if self.intent_log is not None:  # the grid must add its (zero) trade too
            self.intent_log.append(Intent(tx.id, {}, tuple(0.0 for _ in self.esus), added,
                                           local=True))
        return result
