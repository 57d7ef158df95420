"""Sequential network approval of a market's transactions: the arithmetic the market and the grid
share, so that a list of intents approved in one message gives bit for bit what one query per
transaction gives (docs/interfaces.md, "Batched approval").

State of a window's approval chain: the running per-`BUS.PHASE` sum of every approved trade
(kW, summed in approval order), each storage unit's cumulative delivery ES_cont (kWh), its L-share
and the losses of the last approved state. An intent is one provisional transaction: its trade's
contribution per `BUS.PHASE` and each storage unit's ES_i. Approving it adds the trade, moves
ES_cont by ES_i and, with loss compensation, by s_n·ΔLoss_i (the storage units supply the loss
energy pro rata to L). Every float is computed in the same order on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_STORAGE_TOL_KWH = 1e-9


@dataclass(frozen=True)
class StorageAccount:
    """A storage unit as the approval sees it: where it injects and what it may deliver."""

    keys: tuple[str, ...]  # BUS.PHASE it injects on, evenly
    share: float  # L-share s_n: the part of each ΔLoss it supplies
    deliverable_kwh: float
    absorbable_kwh: float

    def exceeded(self, es_cont_kwh: float) -> bool:
        return (es_cont_kwh > self.deliverable_kwh + _STORAGE_TOL_KWH
                or -es_cont_kwh > self.absorbable_kwh + _STORAGE_TOL_KWH)


@dataclass(frozen=True)
class Intent:
    """One provisional transaction: its trade per BUS.PHASE (kW) and each storage unit's ES_i."""

    id: str
    trade_kw: dict[str, float]
    es_i_kwh: tuple[float, ...]
    # what the trade adds once approved when it differs (a fill stopped at a pool bound)
    commit_kw: dict[str, float] | None = None
    local: bool = False  # settled by the market alone (with the utility): only its trade counts

    def to_json(self) -> dict[str, Any]:
        out = {"id": self.id, "trade_kw": self.trade_kw, "es_i_kwh": list(self.es_i_kwh)}
        return out | ({"commit_kw": self.commit_kw} if self.commit_kw is not None else {}) | (
            {"local": True} if self.local else {})

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Intent:
        commit = data.get("commit_kw")
        return cls(str(data["id"]), _per_key(data["trade_kw"]),
                   tuple(float(x) for x in data["es_i_kwh"]),
                   None if commit is None else _per_key(commit), bool(data.get("local")))


def _per_key(kw: dict[str, Any]) -> dict[str, float]:
    """kW per BUS.PHASE as received, keys as the grid names them (lower case; "675.A" and
    "675.a" are one injection, summed in order)."""
    out: dict[str, float] = {}
    for key, value in kw.items():
        key = str(key).lower()
        out[key] = out[key] + float(value) if key in out else float(value)
    return out


def trade_kw(bus: str, phases: str, signed_kwh: float, dt_s: float) -> dict[str, float]:
    """A trade's injection per BUS.PHASE: ±E/Δt split evenly over its phases (seller +)."""
    p_kw = signed_kwh * (3600.0 / dt_s)
    return {f"{bus}.{ph}": p_kw / len(phases) for ph in phases}


def loss_delta_kwh(losses_kw: float, previous_kw: float, dt_s: float) -> float:
    """ΔLoss_i over the window: (PLoss_i − PLoss_{i−1})·Δt."""
    return (losses_kw - previous_kw) * dt_s / 3600.0


@dataclass
class ApprovalChain:
    """The approved state of one window, updated per approval (never rebuilt from the trades)."""

    dt_s: float
    storage: tuple[StorageAccount, ...]
    trades_kw: dict[str, float] = field(default_factory=dict)
    es_cont_kwh: list[float] = field(default_factory=list)
    loss_kw: float | None = None
    loss_compensation: bool = False

    def __post_init__(self) -> None:
        if not self.es_cont_kwh:
            self.es_cont_kwh = [0.0] * len(self.storage)

    def injections(self, trade: dict[str, float] | None = None,
                   es_cont_kwh: list[float] | None = None) -> dict[str, list[float]]:
        """Approved trades (+ `trade`) and storage deliveries `es_cont_kwh` (default: approved)."""
        out = {k: [v, 0.0] for k, v in self.trades_kw.items()}
        for key, p in (trade or {}).items():
            out.setdefault(key, [0.0, 0.0])[0] += p
        kw_per_kwh = 3600.0 / self.dt_s
        for account, es in zip(self.storage, es_cont_kwh if es_cont_kwh is not None
                               else self.es_cont_kwh, strict=True):
            p_kw = es * kw_per_kwh
            for key in account.keys:
                out.setdefault(key, [0.0, 0.0])[0] += p_kw / len(account.keys)
        return out

    def add_trade(self, trade: dict[str, float]) -> None:
        for key, p in trade.items():
            self.trades_kw[key] = self.trades_kw.get(key, 0.0) + p

    def provisional(self, intent: Intent) -> list[float]:
        return [c + e for c, e in zip(self.es_cont_kwh, intent.es_i_kwh, strict=True)]

    def approve(self, intent: Intent, es_cont_kwh: list[float], losses_kw: float) -> None:
        """Commit an approved intent evaluated with `es_cont_kwh` and found to lose `losses_kw`."""
        self.add_trade(intent.commit_kw if intent.commit_kw is not None else intent.trade_kw)
        es = list(es_cont_kwh)
        if self.loss_compensation and self.loss_kw is not None:
            d_loss = loss_delta_kwh(losses_kw, self.loss_kw, self.dt_s)
            es = [c + a.share * d_loss for c, a in zip(es, self.storage, strict=True)]
        self.es_cont_kwh = es
        self.loss_kw = losses_kw

    # --- the batched request (docs/interfaces.md) ------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {"dt_s": self.dt_s, "trades_kw": self.trades_kw, "es_cont_kwh": self.es_cont_kwh,
                "loss_kw": self.loss_kw, "loss_compensation": self.loss_compensation,
                "storage": [{"keys": list(a.keys), "share": a.share,
                             "deliverable_kwh": a.deliverable_kwh,
                             "absorbable_kwh": a.absorbable_kwh} for a in self.storage]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ApprovalChain:
        storage = tuple(StorageAccount(tuple(str(k).lower() for k in a["keys"]), float(a["share"]),
                                       float(a["deliverable_kwh"]), float(a["absorbable_kwh"]))
                        for a in data.get("storage", []))
        loss = data.get("loss_kw")
        return cls(float(data["dt_s"]), storage,
                   _per_key(data.get("trades_kw") or {}),
                   [float(x) for x in data.get("es_cont_kwh") or []] or [0.0] * len(storage),
                   None if loss is None else float(loss), bool(data.get("loss_compensation")))
