"""Which of a batch's grid answers the market may use (federates/amm/replay.py): an answer is
valid only while the grid's approval state equals the market's."""

from __future__ import annotations

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
