"""Dated profiles resampled with energy conserved, and the year generators (pvlib PV, demandlib
BDEW load): seasons, weekdays and holidays visible. Pure models, no HELICS."""

from __future__ import annotations

import pickle
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import assert_no_process_left, lemcosim

from lemcosim.analysis import load_run
from lemcosim.federates.common.errors import LemcosimError
from lemcosim.federates.prosumers.config import PopulationConfig
from lemcosim.federates.prosumers.dated import read_dated
from lemcosim.federates.prosumers.load_demandlib import load_year
from lemcosim.federates.prosumers.population import Population
from lemcosim.federates.prosumers.pv_pvlib import Weather, pv_year

JAN_1 = datetime(2026, 1, 1)


def dated_csv(tmp_path: Path, rows: list[tuple[str, float]], name: str = "dated.csv") -> Path:
    path = tmp_path / name
    path.write_text("time,kw\n" + "".join(f"{t},{v}\n" for t, v in rows))
    return path


def test_hourly_to_fifteen_minutes_repeats_each_hour_and_keeps_energy(tmp_path):
    # 1 kW then 2 kW then 4 kW, an hour each: 7 kWh. Quarters: 1,1,1,1, 2,2,2,2, 4,4,4,4 kW.
    series = read_dated(dated_csv(tmp_path, [("2026-01-01 00:00", 1), ("2026-01-01 01:00", 2),
                                             ("2026-01-01 02:00", 4)]))
    means = series.window_means(JAN_1, 900.0, 0, 12)[:, 0]
    assert means.tolist() == pytest.approx([1] * 4 + [2] * 4 + [4] * 4)
    assert means.sum() * 0.25 == pytest.approx(7.0)  # kWh, as in the file


def test_five_minutes_to_fifteen_minutes_averages_and_keeps_energy(tmp_path):
    # 1,2,3 kW then 4,5,6 kW in 5-minute steps: 15-minute means 2 and 5 kW; energy
    # (1+2+3+4+5+6)·(5/60) = 1.75 kWh = (2+5)·0.25.
    stamps = pd.date_range("2026-03-01", periods=6, freq="5min")
    path = tmp_path / "five.parquet"
    pd.DataFrame({"time": stamps, "kw": [1.0, 2, 3, 4, 5, 6]}).to_parquet(path)
    series = read_dated(path)
    means = series.window_means(datetime(2026, 3, 1), 900.0, 0, 2)[:, 0]
    assert means.tolist() == pytest.approx([2.0, 5.0])
    assert means.sum() * 0.25 == pytest.approx(1.75)


def test_a_window_straddling_two_irregular_steps_takes_the_time_weighted_mean(tmp_path):
    # 4 kW for 00:00–01:00, 8 kW for 01:00–01:30 (last step as long as ... the one before: 1 h).
    # A 30-minute window from 00:45: (4·15 + 8·15)/30 = 6 kW.
    series = read_dated(dated_csv(tmp_path, [("2026-01-01T00:00", 4), ("2026-01-01T01:00", 8)]))
    assert series.window_means(JAN_1, 1800.0, 0, 1)[0, 0] == pytest.approx(4.0)
    start = datetime(2026, 1, 1, 0, 45)
    assert series.window_means(start, 1800.0, 0, 1)[0, 0] == pytest.approx(6.0)


@pytest.mark.parametrize(("rows", "message"), [
    ([("2026-01-01 01:00", 1), ("2026-01-01 00:00", 2)], r"ascend strictly \(data row 2"),
    ([("2026-01-01 00:00", 1), ("2026-01-01 01:00", -2)], "negative value in data row 2"),
    ([("2026-01-01 00:00", 1), ("2026-01-01 01:00", "x")], "non-numeric or missing value in data row 2"),
    ([("2026-01-01 00:00", 1)], "at least two rows"),
    ([("yesterday", 1), ("today", 2)], "neither HH:MM times of day nor ISO timestamps"),
])
def test_bad_dated_files_are_named_errors(tmp_path, rows, message):
    path = dated_csv(tmp_path, rows)
    with pytest.raises(LemcosimError, match=message) as info:
        read_dated(path)
    assert str(path) in str(info.value)


def test_a_run_longer_than_the_file_names_the_file_and_both_periods(tmp_path):
    path = dated_csv(tmp_path, [("2026-01-01 00:00", 1), ("2026-01-01 01:00", 2)])
    series = read_dated(path)
    with pytest.raises(LemcosimError, match=r"covers 2026-01-01T00:00:00 to 2026-01-01T02:00:00, "
                       r"but the run needs 2026-01-01T01:00:00 to 2026-01-01T03:00:00"):
        series.window_means(JAN_1, 3600.0, 1, 2)


def test_a_population_draws_a_dated_file_in_units_of_its_peak(tmp_path):
    # hourly 0.5 then 1.0 pu of a 2 kW peak: 15-minute windows draw 1 kW four times, then 2 kW
    path = dated_csv(tmp_path, [("2026-01-01 00:00", 0.5), ("2026-01-01 01:00", 1.0),
                                ("2026-01-01 02:00", 1.0)])
    config = PopulationConfig.model_validate({
        "load_noise": 0.0, "groups": [{"count": 1, "buses": ["671"], "load_peak_kw": 2.0,
                                       "pv_share": 0.0, "load_profile": str(path)}]})
    pop = Population.from_config(config, 900.0, JAN_1)
    assert [pop.step(w).load_kw[0] for w in range(8)] == pytest.approx([1.0] * 4 + [2.0] * 4)
    with pytest.raises(LemcosimError, match="but the run needs"):
        pop.step(12)  # 03:00: beyond the file


# --- pvlib PV ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pv_2026():
    """South 30°, east 30° and west 30° roofs in Greensboro NC (TMY3 shipped with pvlib)."""
    return pv_year(2026, np.array([[30.0, 180.0], [30.0, 90.0], [30.0, 270.0]]),
                   Weather("tmy3_greensboro"))


def test_pv_year_has_seasons_nights_and_a_plausible_yield(pv_2026):
    kwh = pv_2026.values * 0.25  # kWh per kWp per 15-minute step
    month = pv_2026.starts.astype("datetime64[M]")
    june = kwh[month == np.datetime64("2026-06")].sum(axis=0)
    december = kwh[month == np.datetime64("2026-12")].sum(axis=0)
    assert (june > 1.3 * december).all()  # longer days and a higher sun in summer
    hour = (pv_2026.starts - pv_2026.starts.astype("datetime64[D]")).astype(int) // 3600
    assert pv_2026.values[(hour < 4) | (hour >= 21)].max() == 0.0  # nights
    # DC yield of a south 30° roof in North Carolina: PVWatts gives about 1,400–1,550 kWh/kWp
    # AC with its 14 % default losses, i.e. about 1,600–1,800 kWh/kWp DC.
    assert 1550 < kwh[:, 0].sum() < 1850
    assert len(kwh) == 365 * 96


def test_east_roofs_peak_before_noon_and_west_roofs_after(pv_2026):
    minutes = (pv_2026.starts - pv_2026.starts.astype("datetime64[D]")).astype(int) // 60
    by_time = pd.DataFrame(pv_2026.values, columns=["south", "east", "west"]).groupby(minutes).mean()
    assert by_time["east"].idxmax() < 12 * 60 < by_time["west"].idxmax()


def test_seeded_weather_is_reproducible_seasonal_and_flips_south_of_the_equator():
    south_roof = np.array([[30.0, 180.0]])
    north_roof = np.array([[30.0, 0.0]])  # faces the sun south of the equator

    def monthly(series):
        month = series.starts.astype("datetime64[M]")
        return np.array([series.values[month == np.datetime64(f"2026-{m:02d}"), 0].sum() * 0.25
                         for m in range(1, 13)])

    munich = pv_year(2026, south_roof, Weather("seeded", 48.0, 11.6, seed=7))
    again = pv_year(2026, south_roof, Weather("seeded", 48.0, 11.6, seed=7))
    other = pv_year(2026, south_roof, Weather("seeded", 48.0, 11.6, seed=8))
    assert np.array_equal(munich.values, again.values)
    assert not np.array_equal(munich.values, other.values)
    by_month = monthly(munich)
    assert by_month[5] > 2 * by_month[11]  # June against December
    # a south roof in southern Germany yields about 1,000–1,200 kWh/kWp a year
    assert 900 < by_month.sum() < 1400
    sydney = monthly(pv_year(2026, north_roof, Weather("seeded", -33.9, 151.2, seed=7)))
    assert sydney[11] > 2 * sydney[5]  # December is summer there


# --- demandlib BDEW load ------------------------------------------------------------------------
def day(series, date: str, column: str) -> np.ndarray:
    col = series.columns.index(column)
    return series.values[series.starts.astype("datetime64[D]") == np.datetime64(date), col]


def test_bdew_household_profile_sunday_holiday_and_seasons():
    us = load_year(2026, "US")
    # scaled to 1 kWh a year: 15-minute mean powers add up to 1 kWh
    assert us.values[:, us.columns.index("bdew_h0")].sum() * 0.25 == pytest.approx(1.0)
    sunday, holiday, tuesday = (day(us, d, "bdew_h0") for d in ("2026-01-18", "2026-01-19",
                                                                 "2026-01-20"))
    assert not np.allclose(sunday, tuesday)  # weekdays and Sundays have their own shapes
    assert holiday == pytest.approx(sunday)  # Martin Luther King Day (a Monday) is a Sunday
    plain = load_year(2026, None)
    assert day(plain, "2026-01-19", "bdew_h0") == pytest.approx(day(plain, "2026-01-26", "bdew_h0"))
    # winter households use more than summer ones: h0's dynamisation over the year (BDEW)
    assert day(us, "2026-01-20", "bdew_h0_dyn").sum() > 1.2 * day(us, "2026-07-21",
                                                                  "bdew_h0_dyn").sum()


def test_population_year_load_adds_up_to_each_members_annual_energy():
    # daily windows over 2026: energy = annual_kwh exactly (no noise), 3650 kWh = 10 kWh a day
    config = PopulationConfig.model_validate({
        "load_noise": 0.0, "holidays": "DE",
        "groups": [{"count": 2, "buses": ["671"], "load_profile": "bdew_h0_dyn",
                    "annual_kwh": 3650.0, "pv_share": 1.0, "pv_kwp": 5.0, "pv_profile": "pvlib",
                    "pv_tilt_deg": [20.0, 40.0]}]})
    pop = Population.from_config(config, 86400.0, JAN_1)
    states = [pop.step(w) for w in range(365)]
    load_kwh = np.array([s.load_kw * 24 for s in states])
    # h0_dyn's dynamisation keeps the year's energy within 0.1 % of the annual value
    assert load_kwh.sum(axis=0) == pytest.approx([3650.0, 3650.0], rel=1e-3)
    # Christmas (a Friday) is a German holiday: it draws like the Sunday before, not the Friday
    christmas, sunday, friday = (load_kwh[d, 0] for d in (358, 353, 351))
    assert abs(christmas - sunday) < abs(christmas - friday)
    pv = np.array([s.pv_kw.sum() * 24 for s in states])
    assert pv[151:181].sum() > 1.3 * pv[334:365].sum()  # June above December


@pytest.mark.federation
def test_year_scenario_runs_its_first_windows_in_a_real_federation(tmp_path):
    # the shipped year on IEEE 13, first hour of 1 January (a US holiday, night: no PV)
    run_dir = tmp_path / "run"
    proc = lemcosim("run", "year_ieee13", "--out", str(run_dir), "--no-progress",
                    "--set", "time.windows=4", timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert_no_process_left(run_dir)
    pros = load_run(run_dir, federates=["prosumers"], entities=["population"])
    assert pros[pros.quantity == "members"].value.iloc[0] == 60
    assert pros[pros.quantity == "pv_kw"].value.max() == 0.0
    assert (pros[pros.quantity == "load_kw"].value > 0).all()
    market = load_run(run_dir, federates=["amm"], entities=["market"])
    assert market[market.quantity == "volume_kwh"].value.sum() > 0  # the pool trades
    assert load_run(run_dir, federates=["amm"], quantities=["liquidity_skipped"]).empty


def test_validation_names_a_dated_profile_that_does_not_span_the_run(tmp_path):
    # two hourly rows cover 00:00–02:00: eight 15-minute windows fit, a ninth does not
    path = dated_csv(tmp_path, [("2026-06-21 00:00", 0.5), ("2026-06-21 01:00", 0.7)])
    args = ["validate", "quickstart", "--set", f"prosumers.groups.0.load_profile={path}"]
    assert lemcosim(*args, "--set", "time.windows=8").returncode == 0
    proc = lemcosim(*args, "--set", "time.windows=9")
    assert proc.returncode != 0
    assert "prosumers.groups.0.load_profile" in proc.stderr
    assert (f"{path}: covers 2026-06-21T00:00:00 to 2026-06-21T02:00:00, but the run needs "
            "2026-06-21T00:00:00 to 2026-06-21T02:15:00") in proc.stderr


def test_a_run_crossing_new_year_joins_two_generated_years():
    # daily windows from 28 Dec 2026 over New Year: 1 Jan 2027 (a Friday, a holiday in DE) draws
    # like Sunday 3 Jan, not like the Thursday before it
    config = PopulationConfig.model_validate({
        "load_noise": 0.0, "holidays": "DE",
        "groups": [{"count": 1, "buses": ["671"], "load_profile": "bdew_h0", "annual_kwh": 3650.0,
                    "pv_share": 1.0, "pv_kwp": 5.0, "pv_profile": "pvlib"}]})
    pop = Population.from_config(config, 86400.0, datetime(2026, 12, 28))
    load = [pop.step(w).load_kw[0] for w in range(7)]  # 28 Dec … 3 Jan
    new_year, thursday, sunday = load[4], load[3], load[6]
    assert new_year == pytest.approx(sunday, rel=0.02)
    assert abs(new_year - sunday) < abs(new_year - thursday)


def test_a_pv_generator_is_no_load_profile_and_a_load_generator_no_pv_profile(tmp_path):
    group = {"count": 1, "buses": ["671"]}
    with pytest.raises(ValueError, match="load_profile 'pvlib' generates pv, not load"):
        PopulationConfig.model_validate({"groups": [group | {"load_profile": "pvlib"}]})
    with pytest.raises(ValueError, match="pv_profile 'bdew_h0' generates load, not pv"):
        PopulationConfig.model_validate({"groups": [group | {"pv_profile": "bdew_h0"}]})
    members = tmp_path / "members.csv"
    members.write_text("id,bus,phase,load_peak_kw,load_profile\nm1,671,a,2.0,pvlib\n")
    config = PopulationConfig.model_validate({"members": str(members)})
    with pytest.raises(LemcosimError, match="'pvlib' generates pv: it cannot be a load_profile"):
        Population.from_config(config, 900.0, JAN_1)


def test_demandlib_does_not_turn_every_later_warning_into_an_error():
    # demandlib 0.2 calls warnings.simplefilter("error") inside ElecSlp: a federate's later
    # RuntimeWarning would then end the run
    import warnings

    from lemcosim.federates.prosumers.load_demandlib import load_year

    before = list(warnings.filters)
    load_year.cache_clear()
    load_year(2025, "DE")
    assert warnings.filters == before


def test_a_checkpointed_population_leaves_out_its_generated_years_and_steps_on_identically():
    # 15-minute windows from 31 Dec 2026 20:00: the 16th window is 1 Jan 2027, so the copy
    # regenerates 2027 (and 2026 for the resampled block) from what its checkpoint kept
    config = PopulationConfig.model_validate({
        "holidays": "DE", "groups": [{"count": 3, "buses": ["671"], "load_profile": "bdew_h0",
                                      "annual_kwh": 3650.0, "pv_share": 1.0, "pv_kwp": 5.0,
                                      "pv_profile": "pvlib", "storage": {"share": 1.0}}]})
    pop = Population.from_config(config, 900.0, datetime(2026, 12, 31, 20))
    for w in range(4):
        pop.step(w)
    whole = len(pickle.dumps(pop))
    resumed = pickle.loads(pickle.dumps(pop))
    dated = [g[1] for s in (resumed._load_sources, resumed._pv_sources) for g in s.groups
             if g[0] == "dated"]
    assert len(dated) == 2 and not any(d.years for d in dated)
    # the BDEW year it left out alone: 35,040 quarter hours × 12 profiles × 8 bytes = 3.4 MB
    assert whole < 1_000_000
    for w in range(4, 40):
        a, b = pop.step(w), resumed.step(w)
        for field in ("load_kw", "pv_kw", "storage_kw", "soc", "net_kw"):
            assert np.array_equal(getattr(a, field), getattr(b, field)), (w, field)
