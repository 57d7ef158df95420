"""AMM pools and the market window (pure): hand-checked numbers and token conservation."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lemcosim.federates.amm.market import (
    NETWORK_LOSSES,
    AmmWindow,
    MarketError,
    StorageUnit,
    Transaction,
)
from lemcosim.federates.amm.pool import ConcentratedPool, ConstantProductPool, PoolError


def cp_pool(e=100.0, m=1000.0, fee=0.0) -> ConstantProductPool:
    pool = ConstantProductPool(fee=fee)
    pool.add_liquidity(e, m)
    return pool


def test_constant_product_by_hand():
    # E = 100 kWh, M = 1000 → ρ = 10, k = 100 000
    pool = cp_pool()
    assert pool.k == 100_000 and pool.price == 10 and pool.l_total == pytest.approx(math.sqrt(1e5))
    buy = pool.quote("buy", 10)
    # M_i = k/(E − 10) − M = 100000/90 − 1000 = 111.111…, ρ_i = 11.111…, ρ after = 1111.1/90
    assert buy.m == pytest.approx(111.111111, abs=1e-6)
    assert buy.rho == pytest.approx(11.111111, abs=1e-6)
    assert buy.price_after == pytest.approx(12.345679, abs=1e-6)
    sell = pool.quote("sell", 10)
    # M_i = M − k/(E + 10) = 1000 − 909.0909 = 90.9091, ρ after = 909.0909/110 = 8.2645
    assert sell.m == pytest.approx(90.909091, abs=1e-6)
    assert sell.price_after == pytest.approx(8.264463, abs=1e-6)
    assert pool.e_lp == 100  # quotes never mutate
    pool.apply(buy)
    assert pool.k == pytest.approx(100_000)


def test_constant_product_fee_stays_in_the_pool():
    pool = cp_pool(fee=0.01)
    buy = pool.quote("buy", 10)
    # the buyer pays (1 + φ)·111.111 = 112.222; k grows to 90 · 1112.222 = 100 100
    assert buy.m == pytest.approx(112.222222, abs=1e-6) and buy.fee == pytest.approx(1.111111, abs=1e-6)
    pool.apply(buy)
    assert pool.k == pytest.approx(100_100, abs=1e-6)


def test_constant_product_refuses_more_than_it_holds():
    with pytest.raises(PoolError, match="buy of 100 kWh: the pool holds only 100 kWh"):
        cp_pool().quote("buy", 100)
    with pytest.raises(PoolError, match="positive number of kWh"):
        cp_pool().quote("sell", -1)


def conc_pool() -> ConcentratedPool:
    # ρ_lo = 4 (FIT), ρ_up = 25 (retail), opened at ρ_eq = 9 with 10 kWh:
    # ℒ = 10/(1/3 − 1/5) = 75, M = 75·(3 − 2) = 75, E* = 75/5 = 15, M* = 75·2 = 150
    pool = ConcentratedPool(rho_lo=4, rho_up=25, opening_price=9)
    pool.add_liquidity(10, pool.deposit_for(10))
    return pool


def test_concentrated_liquidity_by_hand():
    pool = conc_pool()
    assert pool.liquidity == pytest.approx(75) and pool.m_lp == pytest.approx(75)
    assert pool.price == pytest.approx(9)  # (75 + 150)/(10 + 15)
    buy = pool.quote("buy", 5)
    # E' = 5: M' = 75²/(5 + 15) − 150 = 131.25 → pays 56.25, ρ_i = 11.25, ρ after = 281.25/20
    assert buy.m == pytest.approx(56.25) and buy.rho == pytest.approx(11.25)
    assert buy.price_after == pytest.approx(14.0625)


def test_concentrated_swaps_stop_at_the_bounds():
    pool = conc_pool()
    buy = pool.quote("buy", 20)  # only 10 kWh in the pool: fills 10 at up to ρ_up
    # M' = 5625/15 − 150 = 225 → pays 150; ρ after = 375/15 = 25 = ρ_up
    assert buy.filled_kwh == pytest.approx(10) and buy.remainder_kwh == pytest.approx(10)
    assert buy.m == pytest.approx(150) and buy.price_after == pytest.approx(25)
    sell = pool.quote("sell", 20)  # absorbs ℒ²/M* − E* − E = 37.5 − 15 − 10 = 12.5 kWh
    assert sell.filled_kwh == pytest.approx(12.5) and sell.m == pytest.approx(75)
    assert sell.price_after == pytest.approx(4)  # ρ_lo
    pool.apply(buy)
    with pytest.raises(PoolError, match="at its bound ρ_up"):
        pool.quote("buy", 1)


def window(pool, approve=None, loss=False, policy="reject", esus=None) -> AmmWindow:
    esus = esus or [StorageUnit("es1", "18", 100, 80, 50), StorageUnit("es2", "25", 60, 50, 30)]
    return AmmWindow(pool, esus, 900.0, approve=approve, loss_compensation=loss,
                     bound_policy=policy, fit=4, retail=25)


def test_liquidity_shares_and_delivery_obligations():
    w = window(ConstantProductPool())
    w.add_liquidity("es1", 10, opening_price=10)
    status = w.add_liquidity("es2", 5)
    # first provider √(10·100) = 31.62 L, second pro rata 31.62·5/10 = 15.81 → shares 2/3, 1/3
    assert status["L_ES(es1)"] == pytest.approx(math.sqrt(1000))
    assert w.share("es2") == pytest.approx(1 / 3)
    assert status["E_LP"] == 15 and status["M_LP"] == 150
    r = w.transact(Transaction("t1", "p1", "5", "a", "buy", 3))
    assert r.approved and r.es_i["es1"] == pytest.approx(2.0) and r.es_i["es2"] == pytest.approx(1.0)
    r = w.transact(Transaction("t2", "p2", "6", "b", "sell", 1.5))
    assert r.es_cont["es1"] == pytest.approx(1.0) and r.es_cont["es2"] == pytest.approx(0.5)


def test_esu_cannot_commit_more_than_its_state_of_charge():
    w = window(ConstantProductPool(), esus=[StorageUnit("es1", "18", 100, 10, 50, soc_min_kwh=5)])
    with pytest.raises(MarketError, match=r"ESU es1 commits 6 kWh but can deliver only 5 kWh"):
        w.add_liquidity("es1", 6, opening_price=10)


def test_rejections_carry_their_reason():
    w = window(ConcentratedPool(rho_lo=4, rho_up=25, opening_price=9))
    w.add_liquidity("es1", 10)
    assert "crosses the pool's price bound" in w.transact(
        Transaction("t", "p", "5", "a", "buy", 20)).reason
    assert "positive number" in w.transact(Transaction("t", "p", "5", "a", "buy", 0)).reason
    assert "above the buyer's limit 10" in w.transact(
        Transaction("t", "p", "5", "a", "buy", 5, limit_price=10)).reason
    w2 = window(ConcentratedPool(rho_lo=4, rho_up=25, opening_price=9), policy="utility")
    w2.add_liquidity("es1", 10)
    r = w2.transact(Transaction("t", "p", "5", "a", "buy", 20))
    assert r.approved and r.utility_kwh == pytest.approx(10) and r.utility_m == pytest.approx(250)


def fake_grid_losses(base_kw: float, per_kw: float):
    """A stand-in for the DSO callback in a *pure* unit test: losses grow with |injection|;
    rejects when any bus·phase takes more than 40 kW. The real grid is in the federation tests."""

    def approve(injections):
        total = sum(abs(p) for p, _ in injections.values())
        worst = max(injections.items(), key=lambda kv: abs(kv[1][0]), default=("", [0, 0]))
        if abs(worst[1][0]) > 40:
            return {"feasible": False, "converged": True, "losses_kw": base_kw,
                    "reason": f"v_min at {worst[0]}: 0.93"}
        return {"feasible": True, "converged": True, "losses_kw": base_kw + per_kw * total,
                "reason": ""}
    return approve


def test_approval_and_loss_compensation_by_hand():
    w = window(ConstantProductPool(), approve=fake_grid_losses(10.0, 0.01), loss=True,
               esus=[StorageUnit("es1", "18", 100, 80, 100)])
    w.add_liquidity("es1", 20, opening_price=10)  # a single ESU: share 1; E = 20, M = 200
    r = w.transact(Transaction("t1", "p1", "5", "a", "buy", 2))
    # buyer −2 kWh/0.25 h = −8 kW at 5.a, ESU +8 kW over 3 phases: Σ|P| = 16 kW →
    # losses 10.16 kW; ΔLoss = 0.16 kW · 0.25 h = 0.04 kWh, priced at ρ after = 222.2/18
    rho_after = w.pool.price
    assert rho_after == pytest.approx((4000 / 18) / 18)
    assert r.d_loss_kwh == pytest.approx(0.04)
    assert r.rho_eff == pytest.approx((r.m + 0.04 * rho_after) / 2)
    assert r.rho_es == pytest.approx((r.m + 0.04 * rho_after) / 2.04)
    assert r.es_cont["es1"] == pytest.approx(2.04)  # the ESU also supplies the loss energy
    big = w.transact(Transaction("t2", "p2", "7", "b", "buy", 11))  # 44 kW at 7.b
    assert not big.approved and big.reason == "DSO: v_min at 7.b: 0.93"
    assert w.ledger.energy_kwh[NETWORK_LOSSES] == pytest.approx(0.04)


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(["cp", "conc"]), fee=st.sampled_from([0.0, 0.003]),
       loss=st.booleans(), policy=st.sampled_from(["reject", "utility"]),
       trades=st.lists(st.tuples(st.sampled_from(["buy", "sell"]),
                                 st.floats(0.01, 30, allow_nan=False)), max_size=25))
def test_every_token_is_conserved(kind, fee, loss, policy, trades):
    pool = (ConstantProductPool(fee=fee) if kind == "cp"
            else ConcentratedPool(rho_lo=4, rho_up=25, opening_price=9, fee=fee))
    w = window(pool, approve=fake_grid_losses(5.0, 0.02), loss=loss, policy=policy)
    w.add_liquidity("es1", 12, opening_price=9)
    w.add_liquidity("es2", 4)
    l_before = dict(w.l_es)
    for i, (side, e) in enumerate(trades):
        w.transact(Transaction(f"t{i}", f"p{i % 4}", "5", "abc", side, e))
        fees = getattr(w.pool, "fees_m", 0.0)
        # money: every account's balance sums to zero (pool money + collected fees included)
        assert sum(w.ledger.money.values()) == pytest.approx(0.0, abs=1e-7)
        assert w.ledger.money["pool"] == pytest.approx(w.pool.m_lp + fees, abs=1e-7)
        # energy: what the pool holds is what went in minus what came out
        assert sum(w.ledger.energy_kwh.values()) == pytest.approx(0.0, abs=1e-9)
        assert w.ledger.energy_kwh["pool"] == pytest.approx(w.pool.e_lp, abs=1e-9)
        # ESU obligations: pro rata to L, and L-tokens never change in stage 2
        assert w.l_es == l_before
        total = sum(w.es_cont.values())
        if total:
            assert w.es_cont["es1"] / total == pytest.approx(w.share("es1"), rel=1e-9)
        assert w.pool.e_lp >= -1e-12 and w.pool.m_lp >= -1e-12


def test_approval_against_the_real_ieee13_power_flow():
    """DSO approval by real OpenDSS solves (the grid service's query, no HELICS here)."""
    from lemcosim.federates.grid.model import GridModel, Limits
    from lemcosim.federates.grid.service import GridService

    grid = GridService(GridModel("ieee13", limits=Limits(v_min_pu=0.95, v_max_pu=1.07,
                                                          vuf_max_pct=3.0, loading_max_pct=200)))
    grid.solve_window({})
    w = AmmWindow(ConstantProductPool(), [StorageUnit("es675", "675", 2000, 1500, 1000)], 900.0,
                  approve=lambda inj: grid.answer_query({"injections": inj}),
                  loss_compensation=True)
    w.add_liquidity("es675", 200, opening_price=10)
    small = w.transact(Transaction("t1", "h1", "671", "abc", "buy", 20))
    assert small.approved, small.reason
    # 200 kWh in 15 min = 800 kW more load on the single-phase lateral 684-652: 652.a falls
    # below 0.95 pu (see test_grid_service) → rejected with the constraint, where and value
    big = w.transact(Transaction("t2", "h2", "652", "a", "buy", 150))
    assert not big.approved
    assert "v_min at 652.a" in big.reason
    # the ESU at 675 supplies the first buyer: local supply, so losses barely move
    assert abs(small.d_loss_kwh) < 1.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["buy", "sell"]), st.floats(0.01, 30.0),
                          st.sampled_from([None, 6.0, 12.0, 20.0])), min_size=1, max_size=25),
       st.sampled_from(["reject", "utility"]), st.booleans())
def test_a_fork_decides_every_transaction_as_the_window_does_when_the_grid_approves_all(
        orders, policy, loss):
    # A fork moves only its pool and ES_cont (nothing else of it is read); a grid that approves
    # every intent at the base state's losses (ΔLoss = 0) must leave the window deciding exactly
    # what the fork listed: the same intents, storage refusals, limit prices and price bounds.
    # The fork also lists what it refuses at a storage limit (the grid decides those on the real
    # ES_cont); a fork for a grid that stops at refusals does not.
    # ESU es2 (30 kW: 7.5 kWh a window either way; a third of every trade) refuses once the
    # trades run 22.5 kWh net in one direction: a fork that lost ES_cont decides otherwise.
    def grid(_):
        return {"feasible": True, "converged": True, "losses_kw": 3.0}

    w = window(ConstantProductPool(), approve=grid, loss=loss, policy=policy)
    w.add_liquidity("es1", 10, opening_price=10)
    w.add_liquidity("es2", 5)
    w.loss_kw = 3.0
    txs = [Transaction(f"t{i}", f"p{i}", "5", "abc" if i % 3 else "b", side, e, limit)
           for i, (side, e, limit) in enumerate(orders)]
    fork, stopping = w.fork(), w.fork(storage_refusals=False)
    for tx in txs:
        fork.transact(tx)
        stopping.transact(tx)
    w.intent_log = []
    results = [w.transact(tx) for tx in txs]
    at_storage = {r.tx.id for r in results if r.decided_by == "storage"}
    assert w.intent_log == [i for i in fork.intent_log if i.id not in at_storage]
    assert at_storage <= {i.id for i in fork.intent_log}
    assert stopping.intent_log == w.intent_log
    assert w.pool.price == fork.pool.price and w.es_cont == fork.es_cont
    assert sum(not r.approved for r in results) == len(txs) - len(w.approved)


def test_a_fork_decides_as_if_approved_and_lists_what_it_would_ask():
    asked = []
    w = window(ConstantProductPool(), approve=lambda inj: asked.append(inj) or {
        "feasible": True, "converged": True, "losses_kw": 0.0})
    w.add_liquidity("es1", 10, opening_price=10)
    w.add_liquidity("es2", 5)  # shares 2/3, 1/3
    w.loss_kw = 0.0  # the base state's losses (the grid publishes them)
    fork = w.fork()
    fork.transact(Transaction("t1", "p1", "5", "a", "buy", 3))
    fork.transact(Transaction("t2", "p2", "6", "abc", "sell", 1.5))
    # the window itself is untouched and the grid was not asked
    assert not asked and not w.approved and w.pool.e_lp == 15 and w.es_cont["es1"] == 0.0
    t1, t2 = fork.intent_log
    # 3 kWh bought in 15 min = −12 kW at 5.a; the ESUs deliver 2 and 1 kWh
    assert t1.trade_kw == {"5.a": -12.0} and t1.es_i_kwh == pytest.approx((2.0, 1.0))
    assert t2.trade_kw == {f"6.{p}": pytest.approx(2.0) for p in "abc"}  # +6 kW over 3 phases
    # deciding them for real asks the grid exactly the injections the intents describe
    w.transact(Transaction("t1", "p1", "5", "a", "buy", 3))
    assert asked[0] == w.chain().injections() and asked[0]["5.a"] == [-12.0, 0.0]
    # es1 at bus 18 injects 2 kWh/15 min = 8 kW over three phases
    assert asked[0]["18.a"] == [pytest.approx(8 / 3), 0.0]
