"""Prosumer population model (pure numpy, no HELICS): profiles, placement, storage, aggregation."""

from __future__ import annotations

import re
from datetime import datetime

import numpy as np
import pytest

from lemcosim.federates.common.errors import LemcosimError
from lemcosim.federates.prosumers.config import PopulationConfig
from lemcosim.federates.prosumers.population import Population, build_members
from lemcosim.federates.prosumers.profiles import (
    clear_sky_pu,
    load_table,
    residential_shape,
    resolve_profile,
)

JUNE_21 = datetime(2026, 6, 21)


def flat_profile(tmp_path, name: str, value: float) -> str:
    path = tmp_path / f"{name}.csv"
    path.write_text(f"time,shape\n00:00,{value}\n12:00,{value}\n")
    return str(path)


def population(tmp_path, *, load_pu=0.5, pv_pu=1.0, storage=None, count=1, **group) -> Population:
    config = PopulationConfig.model_validate({
        "seed": 1, "load_noise": 0.0, "pv_derate": 1.0,
        "groups": [{"count": count, "buses": ["671"], "phases": ["a"], "load_peak_kw": 2.0,
                    "pv_share": 1.0, "pv_kwp": 5.0, "storage": storage,
                    "load_profile": flat_profile(tmp_path, "load", load_pu),
                    "pv_profile": flat_profile(tmp_path, "pv", pv_pu), **group}],
    })
    return Population.from_config(config, 900.0, JUNE_21)


def test_clear_sky_at_zenith_is_the_haurwitz_maximum():
    # Cooper: δ(21 June = day 172) = 23.45°·sin(2π·456/365) = 23.4498°. At that latitude the sun
    # stands at the zenith at solar noon: GHI = 1098·exp(−0.057) W/m² = 1.03717 kW/m².
    declination = 23.45 * np.sin(2 * np.pi * 456 / 365)
    assert clear_sky_pu(JUNE_21.replace(hour=12), declination) == pytest.approx(1.03717, abs=1e-5)
    assert clear_sky_pu(JUNE_21.replace(hour=0), 48.0) == 0.0
    # symmetric about solar noon
    assert clear_sky_pu(JUNE_21.replace(hour=9), 48.0) == pytest.approx(
        clear_sky_pu(JUNE_21.replace(hour=15), 48.0))


def test_residential_shape_peaks_at_one_in_the_evening():
    minutes = np.arange(0, 1440, 15.0)
    shape = residential_shape(minutes)
    assert shape.max() == pytest.approx(1.0, abs=1e-3)
    assert 17 * 60 <= minutes[shape.argmax()] <= 21 * 60
    assert shape[minutes == 3 * 60][0] < 0.4  # night base load


def test_storage_charges_from_surplus_by_hand(tmp_path):
    # load 2 kW·0.5 = 1 kW, PV 5 kWp·1.0 = 5 kW → surplus 4 kW, below the 5 kW converter.
    # Charging 4 kW for Δt = 0.25 h at η = 0.95 into 10 kWh: ΔSOC = 4·0.95·0.25/10 = 0.095.
    pop = population(tmp_path, storage={"share": 1.0, "capacity_kwh": 10.0, "power_kw": 5.0,
                                        "soc0": 0.5, "efficiency": 0.95})
    state = pop.step(0)
    assert state.storage_kw[0] == pytest.approx(-4.0)
    assert state.net_kw[0] == pytest.approx(0.0)
    assert state.soc[0] == pytest.approx(0.595)
    # From SOC 0.975 only (1 − 0.975)·10/(0.95·0.25) = 1.0526 kW fit: the rest is exported.
    pop.soc[:] = 0.975
    state = pop.step(1)
    assert state.storage_kw[0] == pytest.approx(-1.052632, abs=1e-6)
    assert state.soc[0] == pytest.approx(1.0)
    assert state.net_kw[0] == pytest.approx(4.0 - 1.052632, abs=1e-6)


def test_storage_discharges_into_deficit_down_to_soc_min(tmp_path):
    # load 2 kW, no PV: deficit 2 kW. From SOC 0.12 with soc_min 0.1 the battery can give
    # (0.12 − 0.1)·10·0.95/0.25 = 0.76 kW.
    pop = population(tmp_path, load_pu=1.0, pv_pu=0.0,
                     storage={"share": 1.0, "capacity_kwh": 10.0, "soc0": 0.12})
    state = pop.step(0)
    assert state.storage_kw[0] == pytest.approx(0.76)
    assert state.net_kw[0] == pytest.approx(-2.0 + 0.76)
    assert state.soc[0] == pytest.approx(0.1)


def test_idle_storage_holds_its_charge(tmp_path):
    pop = population(tmp_path, storage={"share": 1.0, "policy": "idle", "soc0": 0.7})
    state = pop.step(0)
    assert state.storage_kw[0] == 0.0 and state.soc[0] == 0.7
    assert state.net_kw[0] == pytest.approx(4.0)


def test_round_robin_placement_over_buses_then_phases():
    config = PopulationConfig.model_validate(
        {"groups": [{"count": 7, "buses": ["634", "671"], "phases": ["a", "b", "c"]}]})
    members = build_members(config)
    assert members.bus.tolist() == ["634", "671", "634", "671", "634", "671", "634"]
    assert members.phase.tolist() == ["a", "a", "b", "b", "c", "c", "a"]
    assert members.ids == [f"p{i}" for i in range(7)]


def test_three_phase_members_split_equally_and_aggregation_keeps_the_total(tmp_path):
    pop = population(tmp_path, count=4, phases=["abc", "b"])
    state = pop.step(0)
    injections = pop.injections(state)
    # each member exports 5 − 1 = 4 kW; members 0 and 2 are three-phase (4/3 kW a phase)
    assert injections["671.a"][0] == pytest.approx(8 / 3)
    assert injections["671.b"][0] == pytest.approx(8 / 3 + 8.0)
    assert sum(v[0] for v in injections.values()) == pytest.approx(state.net_kw.sum())
    # q = −P_load·tan(acos 0.95) = −1·0.32868 kvar per member
    assert sum(v[1] for v in injections.values()) == pytest.approx(-4 * 0.328684, abs=1e-5)


def test_positions_are_energy_over_the_window(tmp_path):
    pop = population(tmp_path, count=2)
    positions = pop.positions(pop.step(0))
    assert positions["e_kwh"] == pytest.approx([1.0, 1.0])  # 4 kW · 0.25 h
    assert positions["bus"] == ["671", "671"]


def test_same_seed_same_population_other_seed_other():
    def total(seed: int) -> float:
        config = PopulationConfig.model_validate({"seed": seed, "groups": [
            {"count": 50, "buses": ["1"], "storage": {"share": 0.3}}]})
        pop = Population.from_config(config, 900.0, JUNE_21)
        return sum(float(pop.step(w).net_kw.sum()) for w in range(96))

    assert total(3) == total(3)
    assert total(3) != total(4)


def test_a_day_of_ten_thousand_members_is_vectorised():
    config = PopulationConfig.model_validate({"groups": [
        {"count": 10_000, "buses": [str(b) for b in range(1, 34)], "storage": {"share": 0.2}}]})
    pop = Population.from_config(config, 900.0, JUNE_21)
    states = [pop.step(w) for w in range(96)]
    noon, night = states[48], states[8]
    assert noon.pv_kw.sum() > 0 and night.pv_kw.sum() == 0
    assert len(pop.injections(noon)) == 33 * 3


def test_shipped_profiles_resolve_and_load():
    table = load_table(resolve_profile("residential_load"))
    assert table.columns == 6 and len(table.minutes) == 96
    assert 0 <= table.shapes.min() and table.shapes.max() <= 1
    pv = load_table(resolve_profile("pv_june_48n"))
    assert pv.at(0.0).max() == 0.0  # midnight
    assert pv.at(12 * 60.0)[0] > 0.9  # clear sky at noon, 48° N in June


def test_members_file_and_its_errors(tmp_path):
    good = tmp_path / "members.csv"
    good.write_text("id,bus,phase,load_peak_kw,pv_kwp,storage_kwh,storage_kw\n"
                    "alice,671,a,3,5,10,5\nbob,675,abc,4,0,0,0\n")
    members = build_members(PopulationConfig(members=str(good)))
    assert members.ids == ["alice", "bob"] and members.storage_kwh.tolist() == [10.0, 0.0]

    cases = {
        "id,bus,load_peak_kw\na,1,2\n": "missing column(s) phase",
        "id,bus,phase,load_peak_kw\na,1,d,2\n": "row 1 (id a): phase 'd' is not one of a, b, c, abc",
        "id,bus,phase,load_peak_kw,pv_kwp\na,1,a,2,-1\n": "row 1 (id a): pv_kwp = -1",
        "id,bus,phase,load_peak_kw,colour\na,1,a,2,red\n": "unknown column(s) colour",
        "id,bus,phase,load_peak_kw\na,1,a,2\na,2,b,2\n": "prosumer id 'a' appears twice",
    }
    for text, expected in cases.items():
        bad = tmp_path / "bad.csv"
        bad.write_text(text)
        with pytest.raises(LemcosimError, match=re.escape(expected)):
            build_members(PopulationConfig(members=str(bad)))


def test_profile_table_errors_name_the_file(tmp_path):
    bad = tmp_path / "shape.csv"
    bad.write_text("hour,x\n0,1\n")
    with pytest.raises(LemcosimError, match=r"shape.csv: needs a `time` column"):
        load_table(bad)
    bad.write_text("time,x\n00:00,1\n00:00,2\n")
    with pytest.raises(LemcosimError, match="ascend strictly"):
        load_table(bad)
    with pytest.raises(LemcosimError, match="unknown profile 'sunny'"):
        resolve_profile("sunny")
