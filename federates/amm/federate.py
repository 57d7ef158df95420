"""AMM market federate: one pool per window, liquidity from ESUs, prosumer trades approved by the
grid federate's power-flow query over HELICS messages.

Timing (window w, δ = sub-step): prosumers publish positions at T_w; at T_w + δ the grid solves the
base state while the market opens (stage 1) and speculates its first batch, which it sends at
once: the grid serves it right after its solve. Each batch (or transaction) is one query round
trip: sent at t, answered by the grid at t, read here at t + δ; single queries go from T_w + 2δ,
FSVR assists from T_w + 3δ (after the controller's own sub-step). After the last one (at T_w + 2δ
at the earliest) the market publishes its schedule (approved trades and ESU deliveries) and the
grid re-solves the window with it. A rejected transaction is not executed (the prosumer curtails
or defers it). The next window is opened (pool, liquidity, first batch) while the market waits
for its grant, from the positions the population published a window ahead.
"""

from __future__ import annotations

import copy
import itertools
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import numpy as np

from lemcosim.federates.amm.config import AmmConfig
from lemcosim.federates.amm.esu_policy import EsuManager, exchange_injections
from lemcosim.federates.amm.market import AmmWindow, StorageUnit, Transaction, TxResult
from lemcosim.federates.amm.pool import ConcentratedPool, ConstantProductPool, Pool
from lemcosim.federates.amm.replay import BatchReplay
from lemcosim.federates.common import wire
from lemcosim.federates.common.app import FederateContext, FederateModel, FederateSettings
from lemcosim.federates.common.approval import Intent
from lemcosim.federates.common.clock import (
    CONTROLLER_SUBSTEP,
    GRID_SUBSTEP,
    MARKET_SUBSTEP,
    SERVER_OUTPUT_DELAY_S,
    WindowClock,
    first_request_substep,
)
from lemcosim.federates.common.errors import LemcosimError
from lemcosim.federates.prosumers.population import checked_positions, merge_positions

# intents per batch: a small market sends all its transactions at once, a large one adapts to
# where its batches stop matching the grid's evaluation. Each intent past a mismatch costs a
# wasted speculation and power flow: at 6,000 prosumers on an April noon (a mismatch every ~60
# transactions) a floor of 64 made a window 627 ms, 256 made it 932 ms; 64 still holds a market
# of 60 prosumers (~58 transactions) in one batch
_MIN_BATCH, _MAX_BATCH = 64, 4096
_TX_NUMBERS = ("e_kwh", "m", "rho", "rho_eff", "rho_es", "d_loss_kwh", "price_after",
               "utility_kwh")
_UNITS = {"e_kwh": "kWh", "m": "M", "rho": "M/kWh", "rho_eff": "M/kWh", "rho_es": "M/kWh",
          "d_loss_kwh": "kWh", "price_after": "M/kWh", "utility_kwh": "kWh"}


class AmmFederate(FederateModel):
    # stage 1 (pool, liquidity, positions, the first batch's speculation) runs alongside the
    # grid's window solve at k = 1; the first batch goes at k = 1 (served after that solve),
    # everything else from k = 2
    substep = GRID_SUBSTEP

    def step_time_s(self, clock: WindowClock, window: int) -> float:
        # just after the grid's step: the first batch then wakes the grid with one hand-off
        # (clock.py, SERVER_OUTPUT_DELAY_S)
        return clock.time_of(window, self.substep) + SERVER_OUTPUT_DELAY_S

    def __init__(self, settings: FederateSettings) -> None:
        self.name = settings.name
        params = dict(settings.params)
        # the federates of the population it trades with (several when the population is split)
        self.position_sources: list[str] = params.pop("position_sources", None) or [
            str(params.get("source"))]
        self.config = AmmConfig.model_validate(params)
        self.dt_s = settings.clock.window_s
        # ESUs per pool: all of them in the one pool, or a third of each three-phase ESU's energy
        # and power in each phase's pool (pool_per_phase; docs/amm.md)
        shares = {"": (1.0, None)} if not self.config.pool_per_phase else {
            p: (1 / 3, p) for p in "abc"}
        self.books: dict[str, list[StorageUnit]] = {}
        self.commit_pu: dict[str, float] = {}
        for label, (share, phase) in shares.items():
            units = []
            for e in self.config.esus:
                name = f"{e.name}.{phase}" if phase else e.name
                units.append(StorageUnit(name, e.bus.lower(), share * e.capacity_kwh,
                                         share * e.soc0_pu * e.capacity_kwh, share * e.power_kw,
                                         share * e.soc_min_pu * e.capacity_kwh, e.efficiency,
                                         phase or e.phases))
                self.commit_pu[name] = e.commit_pu
            self.books[label] = units
        self.rng = np.random.default_rng(self.config.seed)
        self.last_close: float | None = None
        self._query_ids = itertools.count()
        self._batch = _MIN_BATCH  # intents per batched approval, adapted to the refusal rate
        # one pool approves in batches; pools per phase ask one query per transaction
        self.batched = self.config.approval and len(self.books) == 1
        self.start = datetime.fromisoformat(settings.start) if settings.start else datetime(2026, 6, 21)
        policy = self.config.esu_policy
        self.esu_manager = EsuManager(policy) if policy is not None else None
        self._exchange: dict[str, list[float]] = {}  # the ESUs' utility exchange this window
        self._opened: _Opened | None = None  # the next window, opened while waiting for it
        self._decided: list[tuple[float, int, TxResult]] = []  # (t, k, result) to log

    # --- one window ------------------------------------------------------------------------
    def setup(self, ctx: FederateContext) -> None:
        self._announce_exchange(ctx, 0)

    def on_window(self, ctx: FederateContext, window: int) -> None:
        opened, self._opened = self._opened, None
        ahead = opened is not None and opened.window == window
        if not ahead:
            positions = {} if self.config.transactions is not None else merge_positions(
                [checked_positions(ctx.read_json(key), f"{self.name}: subscription {key!r}")
                 for key in (f"{src}/positions" for src in self.position_sources)])
            opened = self._open(ctx, window, positions)
        books, txs, first, opening = opened.books, opened.txs, opened.first, opened.opening
        exchange = self._exchange
        results: list[TxResult] = []
        trading_step = ctx.clock.time_of(window, MARKET_SUBSTEP)
        if not (first and any(not i.local for i in first)):
            # a single query goes from k = 2 (an FSVR assist from k = 3), once the window solve
            # is committed; the first batch goes now: the grid serves it right after that solve
            ctx.advance_to(trading_step)
        if self.batched:
            self._transact_batched(ctx, window, books[""], txs, results, first)
        else:
            for tx in txs:
                for label, part in self._route(tx):
                    book = books[label]
                    if book.pool.l_total <= 0:
                        continue
                    result = book.transact(part)
                    if result.approved and book.loss_kw is not None:
                        for other in books.values():  # PLoss_{i−1} is the last approved state
                            other.loss_kw = book.loss_kw
                    results.append(result)
                    self._decided.append((ctx.time_s, self._substep(ctx), result))
        # publications from k = 2: at k = 1 the grid's window solve would count them
        ctx.advance_to(trading_step)
        schedule: dict[str, list[float]] = {}
        for label, book in books.items():
            for esu in self.books[label]:
                esu.deliver(book.es_cont[esu.name])
                ctx.log.record(ctx.time_s, window, esu.name, "soc_kwh", esu.soc_kwh, "kWh",
                               self._substep(ctx))
                ctx.log.record(ctx.time_s, window, esu.name, "es_cont_kwh",
                               book.es_cont[esu.name], "kWh", self._substep(ctx))
            _merge(schedule, book.schedule())
        _merge(schedule, exchange)
        self.last_close = float(np.mean([b.pool.price for b in books.values()]))
        ctx.publish(f"{self.name}/injections", schedule)
        if window + 1 < ctx.clock.windows:
            self._announce_exchange(ctx, window + 1)
        ctx.publish(f"{self.name}/price", self.last_close)
        volume = sum(r.tx.e_kwh - r.utility_kwh for r in results if r.approved)
        ctx.publish(f"{self.name}/volume_kwh", volume)
        for quantity, value, unit in (("opened_ahead", 1.0 if ahead else 0.0, "1/0"),
                                      ("opening_price", opening, "M/kWh"),
                                      ("closing_price", self.last_close, "M/kWh"),
                                      ("volume_kwh", volume, "kWh"),
                                      ("approved", sum(r.approved for r in results), "count"),
                                      ("rejected", sum(not r.approved for r in results), "count"),
                                      ("utility_kwh", sum(r.utility_kwh for r in results
                                                          if r.approved), "kWh")):
            ctx.log.record(ctx.time_s, window, "market", quantity, value, unit, self._substep(ctx))
        decided, self._decided = self._decided, []
        ctx.defer(lambda: self._log_txs(ctx, window, decided))  # while waiting for the next step
        if window + 1 < ctx.clock.windows:
            self._open_ahead(ctx, window + 1)

    def _open(self, ctx: FederateContext, window: int, positions: dict[str, list]) -> _Opened:
        """Stage 1 of `window`: a pool per book with the ESUs' liquidity (logged at T_w + δ), the
        window's transactions and, with batched approval, the first batch's speculation."""
        t, k = ctx.clock.time_of(window, self.substep), self.substep
        rng_before = self.rng.bit_generator.state  # a dict: cheaper than a copy of the generator
        books: dict[str, AmmWindow] = {}
        opening = 0.0
        for label, esus in self.books.items():
            pool, opening = self._open_pool()
            books[label] = AmmWindow(
                pool, esus, self.dt_s,
                approve=self._approver(ctx, window, books, label) if self.config.approval else None,
                loss_compensation=self.config.loss_compensation,
                bound_policy=self.config.pool.bound_policy, fit=self.config.pool.fit,
                retail=self.config.pool.retail)
            self._add_liquidity(ctx, t, k, window, label, books[label], esus, opening)
        txs = self._intents(window, positions)
        ctx.stats["transactions"] += len(txs)
        first = (self._speculate(books[""], txs[:self._batch])
                 if self.batched and books[""].pool.l_total > 0 and txs else None)
        return _Opened(window, books, opening, txs, first, rng_before)

    def _open_ahead(self, ctx: FederateContext, window: int) -> None:
        """Open `window` while waiting for its grant, when every population published its
        positions a window ahead (`{source}/positions_next`); else it opens at T_w + δ."""
        positions: dict[str, list] = {}
        if self.config.transactions is None:
            keys = [f"{src}/positions_next" for src in self.position_sources]
            if not all(key in ctx.inputs for key in keys):
                return
            ahead = [ctx.read_json(key) for key in keys]
            if not all(isinstance(a, dict) and a.get("window") == window for a in ahead):
                return
            positions = merge_positions([checked_positions(a, f"{self.name}: subscription {key!r}")
                                         for a, key in zip(ahead, keys, strict=True)])

        def open_window() -> None:
            self._opened = self._open(ctx, window, positions)
        ctx.defer(open_window)

    def checkpoint_state(self) -> dict:
        state = super().checkpoint_state()
        opened = state.pop("_opened", None)
        if opened is not None:  # the next window opened ahead: a resumed run opens it again
            state["rng"] = rng = copy.deepcopy(self.rng)
            rng.bit_generator.state = opened.rng_before
        return state

    def _announce_exchange(self, ctx: FederateContext, window: int) -> None:
        """ESU energy management (esu_policy.py) for `window`, decided once the window before has
        delivered: each ESU's utility exchange, settled on its state of charge and published
        with the previous window's schedule (window 0's at the start), so that the grid's solve
        of `window` commits it in the window's base state with no step of its own."""
        if self.esu_manager is None:
            return
        esus = [e for units in self.books.values() for e in units]
        when = self.start + timedelta(seconds=(window + 0.5) * self.dt_s)
        done = self.esu_manager.start_window(esus, when, self.dt_s)
        for x in done:
            ctx.log.record(ctx.time_s, window, x.esu, "utility_exchange_kwh", x.bought_kwh, "kWh",
                           self._substep(ctx))
            ctx.log.record(ctx.time_s, window, x.esu, "utility_exchange_m", x.money, "M",
                           self._substep(ctx))
        self._exchange = exchange_injections(done, self.dt_s)
        if self._exchange:
            ctx.publish(f"{self.name}/exchange", {"window": window, "injections": self._exchange})

    def _add_liquidity(self, ctx: FederateContext, t: float, k: int, window: int, label: str,
                       book: AmmWindow, esus: list[StorageUnit], opening: float) -> None:
        prefix = f"{label}:" if label else ""
        for j, esu in enumerate(esus):
            commit = esu.deliverable_kwh(self.dt_s) * self.commit_pu[esu.name]
            if commit <= 1e-9:
                ctx.log.record(t, window, esu.name, "liquidity_skipped", 0.0, "kWh", k)
                continue
            for quantity, value in book.add_liquidity(esu.name, commit, opening).items():
                ctx.log.record(t, window, f"{prefix}add{j + 1}:{esu.name}", quantity, value, "", k)

    def _approver(self, ctx: FederateContext, window: int, books: dict[str, AmmWindow],
                  label: str):
        """Approval for one pool: its provisional state plus every other pool's schedule."""
        def approve(injections: dict) -> dict:
            total = {k: list(v) for k, v in injections.items()}
            for other, book in books.items():
                if other != label:
                    _merge(total, book.schedule())
            return self._ask_grid(ctx, window, total)
        return approve

    def _route(self, tx: Transaction) -> list[tuple[str, Transaction]]:
        """One pool: as it is. A pool per phase: a one-phase trade to its phase's pool, a
        three-phase one split in three equal parts (each decided on its own)."""
        if not self.config.pool_per_phase:
            return [("", tx)]
        if len(tx.phase) == 1:
            return [(tx.phase, tx)]
        return [(p, replace(tx, id=f"{tx.id}{p}", phase=p, e_kwh=tx.e_kwh / len(tx.phase)))
                for p in tx.phase]

    def _open_pool(self) -> tuple[Pool, float]:
        """A fresh pool for the window and its opening price ρ_eq (see `PoolConfig.reopen`)."""
        p = self.config.pool
        price = p.opening_price
        if p.reopen == "last_close" and self.last_close is not None:
            price = min(max(self.last_close, p.fit * 1.0001), p.retail * 0.9999)
        if p.kind == "concentrated":
            return ConcentratedPool(rho_lo=p.fit, rho_up=p.retail, fee=p.fee,
                                    opening_price=price), price
        return ConstantProductPool(fee=p.fee), price

    def _intents(self, window: int, positions: dict[str, list]) -> list[Transaction]:
        if self.config.transactions is not None:
            return [Transaction(f"w{window}t{i}", t.prosumer, t.bus.lower(), t.phase, t.side,
                                t.e_kwh, t.limit_price)
                    for i, t in enumerate(self.config.transactions)]
        ids = positions.get("id", [])
        s = self.config.strategy
        order = np.arange(len(ids))
        if s.order == "random":
            self.rng.shuffle(order)
        txs = []
        for i in order:
            e = float(positions["e_kwh"][i])
            if abs(e) < max(s.min_trade_kwh, 1e-12):
                continue
            side = "sell" if e > 0 else "buy"
            limit = None
            if s.kind == "limit":
                limit = (s.sell_limit or self.config.pool.fit) if side == "sell" else (
                    s.buy_limit or self.config.pool.retail)
            txs.append(Transaction(f"w{window}t{len(txs)}", ids[i], str(positions["bus"][i]).lower(),
                                   str(positions["phase"][i]), side, abs(e), limit))
        return txs[: self.config.max_trades] if self.config.max_trades else txs

    # --- batched approval (docs/amm.md) -----------------------------------------------------
    def _transact_batched(self, ctx: FederateContext, window: int, book: AmmWindow,
                          txs: list[Transaction], results: list[TxResult],
                          first: list[Intent] | None) -> None:
        """Every transaction in order, with one grid round trip per batch instead of one each.

        A fork of the window decides the coming transactions as if the grid approved each one
        and lists the intents it asks about; the grid evaluates them in order on the approval
        state, skipping those it refuses. The window then decides for real, taking each answer
        only while the grid's approval state is its own (replay.py); at the first mismatch, the
        next batch starts. Each answer used comes from the power flow one query per transaction
        would solve, on the same state, so the results are identical; a batch costs extra power
        flows only for intents after a mismatch. `first`: the first batch's intents, speculated
        while the grid solved the window."""
        if book.pool.l_total <= 0 or not txs:
            return
        start = 0
        while start < len(txs):
            intents = first if start == 0 and first is not None else self._speculate(
                book, txs[start:start + self._batch])
            replay = BatchReplay(intents, self._ask_sequence(ctx, book, intents))
            book.answer_intent = self._replay_answers(ctx, book, replay)
            decided = start
            try:
                for tx in txs[start:]:
                    book.intent_log = []
                    result = book.transact(tx)
                    replay.settle(tx.id, book.intent_log)
                    results.append(result)
                    self._decided.append((ctx.time_s, self._substep(ctx), result))
                    decided += 1
            except _NeedGrid:
                pass
            finally:
                book.answer_intent, book.intent_log = None, None
            if decided == start:
                raise LemcosimError(f"{self.name}: the grid answered none of a batch of "
                                    f"{len(intents)} intents from {txs[start].id}")
            asked = len(replay.answers)
            # the next batch: twice the run this one carried (flat after a mismatch)
            self._batch = min(max(2 * replay.cursor, _MIN_BATCH), _MAX_BATCH) if asked else \
                self._batch
            start = decided

    def _speculate(self, book: AmmWindow, txs: list[Transaction]) -> list[Intent]:
        fork = book.fork(storage_refusals=self.config.after_refusal == "continue")
        asked = 0
        for tx in txs:
            before = len(fork.intent_log)
            # a storage limit the fork decides without ΔLoss (it knows none) is usually the real
            # one too; where ΔLoss decides it otherwise, the replay finds the mismatch there
            fork.transact(tx)
            asked += sum(not i.local for i in fork.intent_log[before:])
            if asked >= self._batch:
                break
        return fork.intent_log

    def _ask_sequence(self, ctx: FederateContext, book: AmmWindow,
                      intents: list[Intent]) -> dict[str, dict]:
        if not any(not i.local for i in intents):
            return {}
        reply = self._round_trip(ctx, f"{self.config.grid}/query",
                                 {"chain": book.chain().to_json(),
                                  "intents": [i.to_json() for i in intents],
                                  "after_refusal": self.config.after_refusal,
                                  # only logged (amm.log_answer_detail); an FSVR assist asks anew
                                  "extremes": self.config.log_answer_detail}, 1)
        if reply is None or "answers" not in reply:
            raise LemcosimError(f"{self.name}: grid federate {self.config.grid!r} did not answer a "
                                f"batch of {len(intents)} intents in one sub-step"
                                + (f": {reply.get('reason')}" if reply else ""))
        if book.loss_kw is None:  # the window's first batch: PLoss_0 comes with the answers
            if reply.get("base_losses_kw") is None:
                raise LemcosimError(f"{self.name}: grid federate {self.config.grid!r} answered a "
                                    "batch without base_losses_kw: the window's base power flow "
                                    "did not converge (or the grid does not send PLoss_0)")
            book.loss_kw = float(reply["base_losses_kw"])
        return {a["id"]: a for a in reply["answers"]}

    def _replay_answers(self, ctx: FederateContext, book: AmmWindow, replay: BatchReplay):
        def answer_intent(intent: Intent) -> dict:
            answer = replay.answer(intent)
            if answer is None:
                raise _NeedGrid
            ctx.stats["approvals_used"] += 1  # a power flow of the batch's that decided (profile)
            if answer.get("feasible") or not answer.get("converged") or not self.config.fsvr_assist:
                return answer
            chain = book.chain()  # the injections a single query would carry, as in `transact`
            assisted = self._ask_fsvr(ctx, chain.injections(intent.trade_kw,
                                                            chain.provisional(intent)), answer)
            if assisted.get("feasible"):
                replay.misalign()  # approved with a new FSVR setting the grid did not evaluate on
            return assisted
        return answer_intent

    # --- grid round trip -------------------------------------------------------------------
    def _ask_grid(self, ctx: FederateContext, window: int, injections: dict) -> dict:
        answer = self._round_trip(ctx, f"{self.config.grid}/query", {"injections": injections}, 1)
        if answer is None:
            return {"feasible": False, "converged": False, "losses_kw": None,
                    "reason": f"no answer from grid federate {self.config.grid!r} in one sub-step"}
        if answer.get("feasible") or not answer.get("converged") or not self.config.fsvr_assist:
            return answer
        return self._ask_fsvr(ctx, injections, answer)

    def _ask_fsvr(self, ctx: FederateContext, injections: dict, rejected: dict) -> dict:
        """Ask the FSVR controller for a setting that makes the transaction feasible; commit it."""
        ctl = self.config.fsvr_assist
        # its assist queries the grid (advances time): asked after the controller's own step
        ctx.advance_to(ctx.clock.time_of(ctx.window, first_request_substep(
            CONTROLLER_SUBSTEP, serving_advances_time=True)))
        reply = self._round_trip(ctx, f"{ctl}/assist", {"injections": injections},
                                 self.config.assist_max_substeps)
        if reply is None or not reply.get("feasible"):
            why = "no answer" if reply is None else "no FSVR setting makes it feasible"
            return rejected | {"reason": f"{rejected.get('reason')}; {why} ({ctl})"}
        ack = self._round_trip(ctx, f"{self.config.grid}/control", {"device": reply["device"]}, 1)
        if ack is None or not ack.get("accepted"):
            return rejected | {"reason": f"{rejected.get('reason')}; grid refused the FSVR "
                               f"setting: {(ack or {}).get('reason', 'no answer')}"}
        return {"feasible": True, "converged": True, "losses_kw": reply["losses_kw"],
                "base_losses_kw": rejected.get("base_losses_kw"),
                "extremes": reply.get("extremes") or {}, "device": reply["device"],
                "reason": "", "assist_flows": reply.get("flows"), "rule": rejected.get("rule")}

    def _round_trip(self, ctx: FederateContext, destination: str, payload: dict,
                    max_substeps: int) -> dict | None:
        """Send on our endpoint; advance one sub-step at a time until the answer with our id."""
        request_id = f"{self.name}-{next(self._query_ids)}"
        started = time.perf_counter()
        ctx.stats["round_trips"] += 1
        try:
            ctx.send(f"{self.name}/dso", destination, {"id": request_id} | payload)
            # wall clock, shared with the grid: the part of its window solve inside the round
            # trip is its work, not HELICS's (benchmarks/cosim.py)
            ctx.stats.setdefault("first_request_at_s", time.time())
            for _ in range(max_substeps):
                ctx.advance_to(ctx.clock.next_substep_s(ctx.time_s))
                granted_at = time.time()  # reading and decoding the answer is the market's work
                for _, text, _ in ctx.receive(f"{self.name}/dso"):
                    answer = wire.decode(text)
                    if answer.get("id") == request_id:
                        ctx.stats.setdefault("first_answer_at_s", granted_at)
                        return answer
            return None
        finally:
            ctx.stats["round_trip_s"] += time.perf_counter() - started

    def _substep(self, ctx: FederateContext) -> int:
        return ctx.clock.substep_of(ctx.time_s)

    def _log_txs(self, ctx: FederateContext, window: int,
                 decided: list[tuple[float, int, TxResult]]) -> None:
        for t, k, r in decided:
            self._log_tx(ctx, t, k, window, r)

    def _log_tx(self, ctx: FederateContext, t: float, k: int, window: int, r: TxResult) -> None:
        """A transaction's rows, decided at time `t`, sub-step `k`."""
        tx = r.tx
        rows: list[tuple[str, float | str, str]] = [
            ("approved", 1.0 if r.approved else 0.0, "1/0"), ("side", tx.side, ""),
            ("prosumer", tx.prosumer, ""), ("bus", f"{tx.bus}.{tx.phase}", ""),
            ("e_kwh", float(tx.e_kwh), "kWh")]
        rows += [(q, float(v), _UNITS[q]) for q in _TX_NUMBERS[1:]
                 if (v := getattr(r, q)) == v]  # not NaN
        if r.reason:
            rows.append(("reason", r.reason, ""))
        if self.config.log_answer_detail:
            if r.grid.get("rule"):  # the DSO's approval rule (grid.limits.rule)
                rows.append(("approval_rule", r.grid["rule"], ""))
            for name, extreme in (r.grid.get("extremes") or {}).items():
                rows += [(name, float(extreme["value"]), ""), (f"{name}_at", str(extreme["where"]), "")]
        device = r.grid.get("device")
        if r.approved and device:  # approved with an FSVR setting: its nine coefficients
            rows.append(("fsvr_assisted", 1.0, "1/0"))
            rows += [(f"alpha_{p}{q + 1}", float(value), "pu")
                     for p, row in zip("abc", device["alpha"], strict=True)
                     for q, value in enumerate(row)]
        ctx.log.record_entity(t, window, tx.id, k, rows)


@dataclass
class _Opened:
    """A window after stage 1 (`AmmFederate._open`)."""

    window: int
    books: dict[str, AmmWindow]
    opening: float  # ρ_eq, M/kWh
    txs: list[Transaction]
    first: list[Intent] | None  # the first batch's speculation (batched approval)
    rng_before: dict  # the state of the order's generator before this window drew from it


class _NeedGrid(Exception):  # noqa: N818 - control flow, never leaves the federate
    """The next transaction needs a grid answer the current batch does not hold."""


def _merge(total: dict[str, list[float]], more: dict[str, list[float]]) -> None:
    for key, (p, q) in more.items():
        acc = total.setdefault(key, [0.0, 0.0])
        acc[0] += p
        acc[1] += q
