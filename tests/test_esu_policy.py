"""ESU energy management: the pure policy by hand, and a real quickstart federation whose pool
stays liquid with it and runs dry without it."""

from __future__ import annotations

from datetime import datetime

import pytest
from helpers import assert_no_process_left, lemcosim
from pydantic import ValidationError

from lemcosim.analysis import load_run
from lemcosim.federates.amm.esu_policy import (
    EsuManager,
    EsuPolicyConfig,
    exchange_injections,
    exchange_kwh,
)
from lemcosim.federates.amm.market import StorageUnit

POLICY = EsuPolicyConfig(soc_low_pu=0.35, soc_high_pu=0.8, cheap_from_h=0, cheap_to_h=6,
                         soc_cheap_pu=0.6, exchange_power_pu=0.5)
DT_S = 900.0


def esu(soc_pu: float) -> StorageUnit:
    # 500 kWh, 250 kW, η = 0.95: the exchange limit is 0.5·250 kW·0.25 h = 31.25 kWh a window
    return StorageUnit("es675", "675", 500.0, soc_pu * 500.0, 250.0, 50.0, 0.95)


@pytest.mark.parametrize(("soc_pu", "hour", "kwh"), [
    (0.34, 10.0, 0.01 * 500 / 0.95),  # just below the band: back to 35 %, 5.263 kWh bought
    (0.20, 10.0, 31.25),  # far below: (0.15·500)/0.95 = 78.9 kWh wanted, the limit buys 31.25
    (0.50, 10.0, 0.0),  # inside the band: the market's business
    (0.50, 3.0, 0.1 * 500 / 0.95),  # cheap hours: toward 60 %, 52.6 kWh wanted, capped below
    (0.59, 3.0, 0.01 * 500 / 0.95),
    (0.85, 10.0, -0.05 * 500 * 0.95),  # above the band: sells 23.75 kWh to come back to 80 %
    (0.95, 3.0, -31.25),  # above the band even in cheap hours, capped
])
def test_exchange_by_hand(soc_pu, hour, kwh):
    assert exchange_kwh(esu(soc_pu), POLICY, hour, DT_S) == pytest.approx(min(kwh, 31.25))


def test_cheap_hours_may_wrap_midnight():
    night = POLICY.model_copy(update={"cheap_from_h": 22.0, "cheap_to_h": 6.0})
    assert night.cheap(23.5) and night.cheap(2.0) and not night.cheap(12.0)
    assert not POLICY.model_copy(update={"cheap_to_h": 0.0}).cheap(3.0)  # equal bounds: none


def test_manager_settles_the_exchange_and_leaves_the_rest_of_the_power_to_the_market():
    unit = esu(0.20)
    manager = EsuManager(POLICY)
    [x] = manager.start_window([unit], datetime(2026, 1, 5, 10, 7), DT_S)
    # 31.25 kWh bought at 0.15: 4.6875 M; stored 31.25·0.95 = 29.6875 kWh; the inverter has
    # 250 − 31.25/0.25 = 125 kW left for the market in this window
    assert (x.bought_kwh, x.money) == pytest.approx((31.25, 4.6875))
    assert unit.soc_kwh == pytest.approx(100.0 + 29.6875)
    assert unit.power_kw == pytest.approx(125.0)
    # a load of 125 kW on the three phases of bus 675
    assert exchange_injections([x], DT_S) == {f"675.{p}": [pytest.approx(-125 / 3), 0.0]
                                              for p in "abc"}
    unit.soc_kwh = 250.0  # inside the band next window: full power back, nothing exchanged
    [y] = manager.start_window([unit], datetime(2026, 1, 5, 10, 22), DT_S)
    assert (y.bought_kwh, unit.power_kw) == (0.0, 250.0)
    assert exchange_injections([y], DT_S) == {}


def test_the_band_must_be_ordered():
    with pytest.raises(ValidationError, match="soc_low_pu <= soc_cheap_pu <= soc_high_pu"):
        EsuPolicyConfig(soc_low_pu=0.5, soc_cheap_pu=0.4)
    with pytest.raises(ValidationError, match="soc_low_pu <= soc_expensive_pu <= soc_high_pu"):
        EsuPolicyConfig(soc_expensive_pu=0.9)


def test_expensive_hours_sell_down_toward_their_target():
    peak = POLICY.model_copy(update={"expensive_from_h": 17.0, "expensive_to_h": 21.0,
                                     "soc_expensive_pu": 0.5})
    # 18:00 at 55 %: sells (0.05·500)·0.95 = 23.75 kWh toward 50 %; at 45 % it holds
    assert exchange_kwh(esu(0.55), peak, 18.0, DT_S) == pytest.approx(-23.75)
    assert exchange_kwh(esu(0.45), peak, 18.0, DT_S) == 0.0
    assert exchange_kwh(esu(0.55), peak, 21.0, DT_S) == 0.0  # the hours end at 21:00
    assert exchange_kwh(esu(0.55), POLICY, 18.0, DT_S) == 0.0  # none by default


@pytest.mark.federation
@pytest.mark.parametrize("managed", [True, False])
def test_quickstart_pool_stays_liquid_with_managed_esus(tmp_path, managed):
    # Both ESUs start at 12 % (SOC_min 10 %): without management they can hardly deliver and the
    # pool runs dry within hours; with it they recharge in the cheap night hours and the pool
    # carries the trades. 16 windows (4 h) of the shipped quickstart.
    run_dir = tmp_path / "run"
    args = ["run", "quickstart", "--out", str(run_dir), "--no-progress", "--set", "time.windows=16",
            "--set", "amm.esus.0.soc0_pu=0.12", "--set", "amm.esus.1.soc0_pu=0.12"]
    if not managed:
        args += ["--set", "amm.esu_policy=null"]
    proc = lemcosim(*args, timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert_no_process_left(run_dir)
    amm = load_run(run_dir, federates=["amm"])
    skipped = amm[amm.quantity == "liquidity_skipped"]
    market = amm[amm.entity == "market"].pivot_table(index="window", columns="quantity",
                                                     values="value", aggfunc="first")
    through_pool = market["volume_kwh"].sum()
    with_utility = market["utility_kwh"].sum()
    share = through_pool / (through_pool + with_utility)
    if managed:
        assert skipped.empty
        assert share > 0.9
    else:
        assert not skipped.empty
        assert share < 0.5
