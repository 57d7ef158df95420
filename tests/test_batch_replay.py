"""Which of a batch's grid answers the market may use (federates/amm/replay.py): an answer is
valid only while the grid's approval state equals the market's."""

from __future__ import annotations

import pytest

from lemcosim.federates.amm.replay import BatchReplay
from lemcosim.federates.common.approval import Intent

OK = {"feasible": True, "converged": True, "losses_kw": 100.0}
NO = {"feasible": False, "converged": True, "losses_kw": 101.0, "reason": "v_max at 675.b"}


def intent(i: int, kw: float = 4.0, local: bool = False) -> Intent:
    return Intent(f"t{i}", {"634.a": kw}, (-0.6, -0.4), local=local)


def test_answers_are_taken_in_order_past_a_refusal():
    replay = BatchReplay([intent(0), intent(1), intent(2)], {"t0": OK, "t1": NO, "t2": OK})
    assert replay.answer(intent(0)) is OK
    replay.settle("t0", [intent(0)])
    assert replay.answer(intent(1)) is NO  # the market refuses it, as the grid did not apply it
    replay.settle("t1", [intent(1)])
    assert replay.answer(intent(2)) is OK  # evaluated without t1: the market's state too


def test_an_intent_other_than_the_one_evaluated_gets_no_answer():
    # after the refusal of t0 the pool price differs: t1 hit a price bound, its fill is smaller
    replay = BatchReplay([intent(0), intent(1)], {"t0": NO, "t1": OK})
    assert replay.answer(intent(0)) is NO
    assert replay.answer(intent(1, kw=2.5)) is None


def test_a_trade_the_grid_applied_but_the_market_did_not_ends_the_batch():
    # the fork traded t0 (approved by the grid); the market refused it by its limit price
    replay = BatchReplay([intent(0), intent(1)], {"t0": OK, "t1": OK})
    replay.settle("t0", [])
    assert replay.answer(intent(1)) is None


def test_a_trade_neither_applied_is_skipped():
    # the grid refused t0 (or found a storage limit); the market refused it too, by itself
    for answer in (NO, {"id": "t0", "stopped": "storage limit"}):
        replay = BatchReplay([intent(0), intent(1)], {"t0": answer, "t1": OK})
        replay.settle("t0", [])
        assert replay.answer(intent(1)) is OK


def test_a_storage_stop_is_never_an_answer():
    replay = BatchReplay([intent(0)], {"t0": {"id": "t0", "stopped": "storage limit"}})
    assert replay.answer(intent(0)) is None


def test_local_settlements_must_match_what_the_grid_added():
    local = intent(1, kw=0.0, local=True)
    replay = BatchReplay([intent(0), local, intent(2)], {"t0": OK, "t2": OK})
    replay.answer(intent(0))
    replay.settle("t0", [intent(0)])
    replay.settle("t1", [local])
    assert replay.answer(intent(2)) is OK
    # a local settlement the fork did not list: the grid's state lacks its trade
    replay = BatchReplay([intent(0), intent(2)], {"t0": OK, "t2": OK})
    replay.answer(intent(0))
    replay.settle("t0", [intent(0)])
    replay.settle("t1", [local])
    assert replay.answer(intent(2)) is None


def test_a_new_fsvr_setting_ends_the_batch():
    replay = BatchReplay([intent(0), intent(1)], {"t0": NO, "t1": OK})
    replay.answer(intent(0))
    replay.misalign()  # approved with a setting the grid committed after evaluating t1
    assert replay.answer(intent(1)) is None


def test_an_unlisted_intent_gets_no_answer():
    replay = BatchReplay([intent(0)], {"t0": OK})
    replay.answer(intent(0))
    assert replay.answer(intent(1)) is None


def test_a_storage_limit_that_dloss_moves_is_decided_by_the_grid_in_the_same_batch():
    # ESU es1 at 675 may absorb 1 kWh this window (1 kWh of room, 400 kW); sellers at 692. With
    # loss compensation each approval moves ES_cont by ΔLoss too, which only the grid knows: a
    # 0.6 kWh sale raises the losses (ΔLoss = +0.0032 kWh, the ESU supplies it), so after 0.6
    # and 0.4 kWh the window's ES_cont is −0.9949 kWh and a 0.002 kWh sale still fits, while
    # a fork (ΔLoss 0) holds −1.0 and refuses it. Listing what it refuses at a storage limit
    # lets the grid decide it on the real ES_cont: one batch serves every transaction, with the
    # decisions of one query per transaction. Unlisted, the window asks about the 0.002 kWh sale
    # the batch lacks.
    from lemcosim.federates.amm.market import AmmWindow, StorageUnit, Transaction
    from lemcosim.federates.amm.pool import ConstantProductPool
    from lemcosim.federates.grid.model import GridModel, Limits
    from lemcosim.federates.grid.service import GridService

    # limits the grid never reaches here: the test is about storage
    svc = GridService(GridModel("ieee13", limits=Limits(v_min_pu=0.9, v_max_pu=1.1,
                                                        vuf_max_pct=5.0, loading_max_pct=200.0)))
    svc.solve_window({})
    sales = [Transaction(f"t{i}", f"p{i}", "692", "abc", "sell", e)
             for i, e in enumerate([0.6, 0.4, 0.002, 0.5])]

    def window() -> AmmWindow:
        w = AmmWindow(ConstantProductPool(), [StorageUnit("es1", "675", 100.0, 99.0, 400.0)], 900.0,
                      approve=lambda injections: svc.answer_query({"injections": injections}),
                      loss_compensation=True)
        w.add_liquidity("es1", 10.0, opening_price=10.0)
        w.loss_kw = svc.committed_flow.losses_kw  # PLoss_0
        return w

    one_query_each = window()
    reference = [one_query_each.transact(tx) for tx in sales]
    assert [(r.approved, r.decided_by) for r in reference] == [
        (True, ""), (True, ""), (True, ""), (False, "storage")]

    def decided_from_one_batch(storage_refusals: bool) -> list:
        w = window()
        fork = w.fork(storage_refusals)
        for tx in sales:
            fork.transact(tx)
        reply = svc.answer_sequence({"chain": w.chain().to_json(),
                                     "intents": [i.to_json() for i in fork.intent_log]})
        replay = BatchReplay(fork.intent_log, {a["id"]: a for a in reply["answers"]})
        w.answer_intent = replay.answer
        listed = {i.id for i in fork.intent_log}
        results = []
        for tx in sales:
            if tx.id not in listed:  # the window would need another batch here
                return results
            w.intent_log = []
            results.append(w.transact(tx))
            replay.settle(tx.id, w.intent_log)
        return results

    batched = decided_from_one_batch(storage_refusals=True)
    assert [(r.approved, r.reason) for r in batched] == [(r.approved, r.reason) for r in reference]
    assert [r.d_loss_kwh for r in batched] == pytest.approx([r.d_loss_kwh for r in reference],
                                                            abs=1e-6)  # the solver's tolerance
    assert len(decided_from_one_batch(storage_refusals=False)) == 2  # the 0.002 kWh sale unlisted
