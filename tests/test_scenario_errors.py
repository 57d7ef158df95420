"""Malformed scenarios: each gives one clear error naming file, line, key path, given and expected."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lemcosim.runner.sources import ScenarioError
from lemcosim.runner.validate import load_scenario


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def error_of(path: Path, overrides: list[str] | None = None) -> str:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, overrides)
    return str(info.value)


CASES = [
    # (file text, expected fragments of the error; {f} = the file's path)
    ("name: x\ntime: {window_s: 900\n", ["{f}:", "not valid YAML"]),
    ("name: x\ntme:\n  window_s: 900\n", ["{f}:2", "key tme: unknown key", "allowed here:", "time"]),
    ("name: x\ntime:\n  window: 900\n", ["{f}:3", "key time.window: unknown key", "window_s"]),
    ("name: x\ntime:\n  window_s: fast\n", ["{f}:3", "key time.window_s", "given 'fast'",
                                            "expected", "number"]),
    ("name: x\ntime:\n  window_s: -900\n", ["{f}:3", "key time.window_s", "given -900",
                                            "greater than 0"]),
    ("name: x\ntime:\n  windows: 4\n  duration_s: 3600\n",
     ["{f}:2", "key time", "give `windows` or `duration_s`, not both"]),
    ("name: x\ntime:\n  duration_s: 1000\n", ["{f}:2", "key time",
                                              "not a whole number of windows"]),
    # the grid answers 1 µs after it acts (clock.py): a sub-step must leave room for that
    ("name: x\ntime:\n  substep_s: 1.0e-5\n", ["{f}:2", "key time", "substep_s = 1e-05 s is "
                                                "below 0.0001 s", "1e-06 s after it acts"]),
    ("name: x\nhelics:\n  cpu_placement: sometimes\n",
     ["{f}:3", "key helics.cpu_placement", "given 'sometimes'", "'auto' or 'off'"]),
    ("description: no name\n", ["{f}", "key name: required but not given"]),
    ("name: x\nhelics:\n  core_type: udp\n", ["{f}:3", "key helics.core_type", "given 'udp'",
                                              "'zmq' or 'tcp'"]),
    ("name: x\nnetwork:\n  name: ieee13\n  dss: my.dss\n",
     ["{f}:2", "key network", "exactly one of `name`"]),
    ("name: x\ncustom:\n  ctl:\n    publications: {ctl/x: kW}\n",
     ["{f}:3", "key custom.ctl", "needs `exec`"]),
    ("name: x\ntime:\n  window_s: 900\n  window_s: 60\n", ["{f}:4", "time.window_s",
                                                         "given twice (first on line 3)"]),
    ("name: x\nextends: no_such_base.yaml\n", ["no_such_base.yaml: no such scenario file"]),
    ("name: x\nhelics:\n  broker_port: 80\n", ["{f}:3", "helics.broker_port", "given 80",
                                               "greater than or equal to 1024"]),
    ("- a\n- b\n", ["{f}:1", "must be a mapping"]),
    ("name: x\nnetwork: {name: ieee13}\ngrid:\n  device:\n    kind: fsvr\n"
     "    setting: {alpha: [0.03, 0, 0, 0, 0, 0, 0, 0, 0]}\n",
     ["{f}:4", "key grid.device", "alpha_a1 = 0.03 is not one of the 9 levels"]),
    ("name: x\ngrid: {}\n", ["{f}", "a `grid` federate needs a `network` section"]),
    ("name: x\nprosumers:\n  groups: [{count: 2, buses: [a], load_peak_kw: [5, 2]}]\n",
     ["{f}:3", "key prosumers.groups.0", "load_peak_kw range [5.0, 2.0] has low > high"]),
]


@pytest.mark.parametrize("text,expected", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_malformed_scenario_names_file_line_and_key(tmp_path, text, expected):
    path = write(tmp_path, "bad.yaml", text)
    message = error_of(path)
    for fragment in expected:
        assert fragment.replace("{f}", str(path.resolve())) in message, message


def test_error_in_an_included_fragment_names_the_fragment_and_its_line(tmp_path):
    write(tmp_path, "time.yaml", "time:\n  window_s: 900\n  windos: 4\n")
    main = write(tmp_path, "main.yaml", "name: x\ninclude: [time.yaml]\n")
    message = error_of(main)
    assert f"{(tmp_path / 'time.yaml').resolve()}:3" in message
    assert "key time.windos: unknown key" in message


def test_extends_then_include_then_own_keys_then_set_override_in_that_order(tmp_path):
    write(tmp_path, "base.yaml", "name: base\ntime: {window_s: 900, windows: 10}\n")
    write(tmp_path, "frag.yaml", "time: {windows: 20}\n")
    main = write(tmp_path, "main.yaml",
                 "name: main\nextends: base.yaml\ninclude: [frag.yaml]\ntime: {window_s: 600}\n")
    scenario, _ = load_scenario(main)
    assert (scenario.name, scenario.time.window_s, scenario.time.windows) == ("main", 600, 20)
    scenario, _ = load_scenario(main, ["time.windows=3"])
    assert scenario.time.windows == 3


def test_bad_set_override_is_named_as_the_option(tmp_path):
    main = write(tmp_path, "main.yaml", "name: x\n")
    message = error_of(main, ["time.windows=abc"])
    assert "--set time.windows=abc: key time.windows: given 'abc'" in message
    assert "--set time.windows: expected dotted.key=value" in error_of(main, ["time.windows"])


def test_extends_cycle_is_reported(tmp_path):
    write(tmp_path, "a.yaml", "name: a\nextends: b.yaml\n")
    write(tmp_path, "b.yaml", "name: b\nextends: a.yaml\n")
    assert "extends/include cycle" in error_of(tmp_path / "a.yaml")


def test_duration_s_sets_the_number_of_windows(tmp_path):
    # 1 day = 86 400 s = 96 windows of 900 s
    main = write(tmp_path, "main.yaml", "name: x\ntime: {duration_s: 86400}\n")
    assert load_scenario(main)[0].time.windows == 96


def test_cli_prints_the_error_without_traceback(tmp_path):
    path = write(tmp_path, "bad.yaml", "name: x\ntime:\n  window_s: fast\n")
    proc = subprocess.run([sys.executable, "-m", "lemcosim.runner.cli", "validate", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"{path.resolve()}:3: key time.window_s: given 'fast'" in proc.stderr


def test_a_bare_yaml_off_means_regulators_off(tmp_path):
    # YAML 1.1 reads `off` as false; the scenario means the regulators' state
    path = tmp_path / "s.yaml"
    path.write_text("name: x\nnetwork: {name: ieee13, regulators: off}\n")
    scenario, _ = load_scenario(path)
    assert scenario.network.regulators == "off"


def test_federates_and_networks_never_import_the_runner():
    # LemcosimError lives in federates/common/errors.py so the layers below need no runner import
    root = Path(__file__).resolve().parent.parent
    offenders = [str(p.relative_to(root)) for folder in ("federates", "networks")
                 for p in (root / folder).rglob("*.py") if "lemcosim.runner" in p.read_text()]
    assert offenders == []
