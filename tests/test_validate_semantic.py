"""`lemcosim validate` rejects everything `compose` and `run` would, before any process starts.

Each case is one of the user mistakes that used to pass validation (or give a traceback); the error
must name the file and line, the key path, what was given and what was expected.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from helpers import lemcosim

from lemcosim.runner.sources import ScenarioError
from lemcosim.runner.validate import load_checked

DATA = Path(__file__).resolve().parent / "data"

# one prosumer group on IEEE 13 with its grid: the base every case below changes
BASE = """\
name: case
time: {window_s: 900, windows: 2}
network: {name: ieee13}
prosumers:
  groups:
    - {count: 3, buses: ["671", "675"], phases: [a, b, c], load_profile: LOAD, pv_profile: clear_sky}
grid: {}
recorder: {}
"""


def scenario(tmp_path: Path, extra: str = "", base: str = BASE, load: str = "residential") -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(base.replace("LOAD", load) + textwrap.dedent(extra))
    return path


def error_of(path: Path, overrides: list[str] | None = None) -> str:
    with pytest.raises(ScenarioError) as info:
        load_checked(path, overrides)
    return str(info.value)


def test_the_base_scenario_is_valid(tmp_path):
    load_checked(scenario(tmp_path))


def test_unknown_network(tmp_path):
    path = scenario(tmp_path, base=BASE.replace("ieee13", "nosuch"))
    message = error_of(path)
    assert f"{path}:3: key network.name: given 'nosuch'" in message
    assert "unknown network 'nosuch'" in message and "ieee13" in message  # the shipped ones


def test_unknown_prosumer_bus(tmp_path):
    path = scenario(tmp_path, base=BASE.replace('"675"', '"999"'))
    assert f"{path}:6: key prosumers.groups.0.buses.1: given '999'; expected a bus of network " \
           "ieee13" in error_of(path)


def test_unknown_esu_bus(tmp_path):
    path = scenario(tmp_path, """\
        amm:
          esus: [{name: es1, bus: "6330", capacity_kwh: 100, power_kw: 50}]
        """)
    assert f"{path}:10: key amm.esus.0.bus: given '6330'; expected a bus of network ieee13 for " \
           "ESU es1" in error_of(path)


def test_a_phase_the_bus_does_not_have(tmp_path):
    # IEEE 13 bus 652 is single-phase (a)
    path = scenario(tmp_path, base=BASE.replace('["671", "675"], phases: [a, b, c]',
                                                '["652"], phases: [b]'))
    assert f"{path}:6: key prosumers.groups.0.phases.0: given 'b'; expected phases present at bus " \
           "652 of ieee13: a" in error_of(path)


def test_a_three_phase_esu_at_a_single_phase_bus(tmp_path):
    path = scenario(tmp_path, """\
        amm:
          esus: [{name: es1, bus: "652", capacity_kwh: 100, power_kw: 50}]
        """)
    # the ESU's phases default to abc; the error points at the ESU's line
    assert f"{path}:10: key amm.esus.0.phases: given 'abc'; expected phases present at bus 652 " \
           "of ieee13: a" in error_of(path)


def test_device_at_an_unknown_location(tmp_path):
    path = scenario(tmp_path, base=BASE.replace("grid: {}", "grid:\n  device: {kind: svr, at: l999}"))
    message = error_of(path)
    assert f"{path}:8: key grid.device.at: given 'l999'; expected a regulator or line" in message
    assert "reg1" in message  # what it could have been


def test_scripted_transaction_at_a_bus_typo_in_a_users_dss_feeder(tmp_path):
    path = scenario(tmp_path, base=f"""\
name: case
time: {{window_s: 900, windows: 1}}
network: {{dss: {DATA / 'three_bus.dss'}}}
grid: {{}}
amm:
  esus: [{{name: es1, bus: mid, capacity_kwh: 100, power_kw: 50}}]
  source: null
  transactions:
    - {{prosumer: p1, bus: fra, side: buy, e_kwh: 1}}
""")
    assert f"{path}:9: key amm.transactions.0.bus: given 'fra'; expected a bus of network " \
           "three_bus.dss for prosumer p1 (far, mid, src)" in error_of(path)


def test_an_empty_dss_file(tmp_path):
    empty = tmp_path / "empty.dss"
    empty.write_text("")
    path = scenario(tmp_path, base=f"name: case\nnetwork: {{dss: {empty}}}\ngrid: {{}}\n")
    assert f"{path}:2: key network.dss: given '{empty}'; expected a network lemcosim can load: " \
           f"{empty}: the OpenDSS file is empty" in error_of(path)


def test_a_missing_profile_file(tmp_path):
    path = scenario(tmp_path, load="missing.csv")
    message = error_of(path)
    assert f"{path}:6: key prosumers.groups.0.load_profile: given '{tmp_path / 'missing.csv'}'" \
        in message
    assert "profile file not found" in message


def test_a_profile_file_holding_inf(tmp_path):
    (tmp_path / "load.csv").write_text("time,shape\n00:00,0.5\n12:00,inf\n")
    message = error_of(scenario(tmp_path, load="load.csv"))
    assert "key prosumers.groups.0.load_profile" in message
    assert "data row 2 holds a non-finite value" in message


def test_a_members_file_with_an_unknown_bus(tmp_path):
    (tmp_path / "members.csv").write_text("id,bus,phase,load_peak_kw\nm1,671,a,3\nm2,9999,b,4\n")
    base = BASE.replace("  groups:\n    - {count: 3, buses: [\"671\", \"675\"], phases: [a, b, c], "
                        "load_profile: LOAD, pv_profile: clear_sky}\n", "  members: members.csv\n")
    path = scenario(tmp_path, base=base)
    assert f"{path}:5: key prosumers.members: given '{tmp_path / 'members.csv'}'; expected row 2 " \
           "(id m2): bus 9999 to be a bus of network ieee13" in error_of(path)


def test_short_auction_keys_need_the_test_flag(tmp_path):
    base = """\
name: case
time: {window_s: 900, windows: 2}
network: {name: cigre_lv}
prosumers:
  groups: [{count: 6, buses: [r11, r15], phases: [abc]}]
auction:
  key_bits: 1024
  clusters: {c1: [r11, r15]}
"""
    path = scenario(tmp_path, base=base)
    assert f"{path}:7: key auction.key_bits: given 1024; expected at least 2048 bits" \
        in error_of(path)
    load_checked(path, ["auction.allow_short_keys=true"])
    # 40 levels of 20 kWh for clusters of up to 1000 need 40 × 37 = 1480 bits > 1022 of the key
    message = error_of(path, ["auction.allow_short_keys=true", "auction.levels=40"])
    assert "--set auction.levels=40: key auction.levels: given 40; expected a bid layout that " \
           "fits the key: 40 levels × 37 bits do not fit a 1024-bit key" in message


def test_voltage_limits_in_the_wrong_order(tmp_path):
    path = scenario(tmp_path, base=BASE.replace(
        "grid: {}", "grid:\n  limits: {v_min_pu: 1.2, v_max_pu: 0.9}"))
    assert f"{path}:8: key grid.limits: given" in error_of(path)
    assert "expected v_min_pu below v_max_pu, got v_min_pu 1.2 and v_max_pu 0.9" in error_of(path)


@pytest.mark.parametrize("override,key,expected", [
    ("time.window_s=.inf", "time.window_s", "given inf; expected a finite number"),
    ("prosumers.groups.0.load_peak_kw=[2, .inf]", "prosumers.groups.0.load_peak_kw.1",
     "given inf; expected a finite number"),
    ("network.load_mult=-.inf", "network.load_mult", "given -inf; expected Input should be greater"),
    ("grid.limits.vuf_max_pct=.nan", "grid.limits.vuf_max_pct", "given nan; expected"),
])
def test_infinite_and_nan_numbers_are_rejected_at_the_schema(tmp_path, override, key, expected):
    assert f"--set {override}: key {key}: {expected}" in error_of(scenario(tmp_path), [override])


def test_duplicate_federate_names(tmp_path):
    path = scenario(tmp_path, 'custom:\n  grid: {exec: "sleep 1", publications: {grid/x: kW}}\n')
    assert f"{path}:10: key custom.grid: given 'grid'; expected a federate name used once; 2 " \
           "federates (grid, custom) are named 'grid'" in error_of(path)


def test_grid_source_that_publishes_no_injections(tmp_path):
    path = scenario(tmp_path, base=BASE.replace("grid: {}", "grid: {sources: [nosuch]}"))
    assert f"{path}:7: key grid.sources.0: given 'nosuch'; expected a federate publishing " \
           "injections (prosumers)" in error_of(path)


def test_recorder_subscription_to_nothing(tmp_path):
    path = scenario(tmp_path, base=BASE.replace("recorder: {}", "recorder: {subscribe: [nosuch/key]}"))
    assert f"{path}:8: key recorder.subscribe.0: given 'nosuch/key'; expected a publication of " \
           "this scenario's federates" in error_of(path)


def test_amm_source_that_is_not_a_prosumer_federate(tmp_path):
    path = scenario(tmp_path, """\
        amm:
          source: nosuch
          esus: [{name: es1, bus: "633", capacity_kwh: 100, power_kw: 50}]
        """)
    assert f"{path}:10: key amm.source: given 'nosuch'; expected a prosumer federate (prosumers)" \
        in error_of(path)


def test_a_date_that_does_not_exist_is_named(tmp_path):
    path = scenario(tmp_path, base=BASE.replace("windows: 2}", "windows: 2, start: 2026-13-45}"))
    assert f"{path}:2: key time.start: given '2026-13-45'; expected a valid date" in error_of(path)


def test_every_problem_is_reported_at_once(tmp_path):
    path = scenario(tmp_path, base=BASE.replace('"675"', '"999"').replace("[a, b, c]", "[a]"),
                    extra="amm:\n  esus: [{name: es1, bus: '6330', capacity_kwh: 1, power_kw: 1}]\n")
    assert len(error_of(path).splitlines()) == 2  # bus 999 and ESU bus 6330


def test_cli_validate_and_run_reject_before_any_process_starts(tmp_path):
    path = scenario(tmp_path, base=BASE.replace('"675"', '"999"'))
    for command in (["validate", str(path)], ["run", str(path), "--out", str(tmp_path / "run")]):
        proc = lemcosim(*command, timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert "key prosumers.groups.0.buses.1: given '999'" in proc.stderr
        assert "Traceback" not in proc.stderr
    assert not (tmp_path / "run" / "logs" / "pids.json").exists()  # nothing was launched


def test_powerflow_upfc_setting_needs_its_angles():
    proc = lemcosim("powerflow", "ieee13", "--device", "upfc", "--setting", "0.05,0.05,0.05",
                    timeout=120)
    assert proc.returncode == 2
    assert "--setting '0.05,0.05,0.05': upfc needs 3 magnitudes (pu) ; 3 angles (deg)" in proc.stderr
    ok = lemcosim("powerflow", "ieee13", "--device", "upfc", "--setting", "0.05,0.05,0.05;0,0,0",
                  "--json", timeout=120)
    assert ok.returncode == 0, ok.stderr
