"""Which CPUs each process of a run may use (`helics.cpu_placement`, runner/placement.py).

On 2 cores a window of year_ieee13 took 8.2 ms with the grid on a core of its own and the rest
on the other, 9.5 ms left to the scheduler (docs/performance.md)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import HELICS_BOUND_90S, assert_no_process_left

from lemcosim.federates.common.errors import LemcosimError
from lemcosim.runner.compose import compose, plan_federates
from lemcosim.runner.placement import (
    available_cpus,
    cpu_placement,
    placed,
    query_servers,
    read_placement,
)
from lemcosim.runner.validate import load_scenario


def plans_of(ref: str, *overrides: str):
    return plan_federates(load_scenario(ref, list(overrides))[0])


def test_auto_gives_the_grid_a_market_asks_a_cpu_of_its_own():
    plans = plans_of("year_ieee13")
    assert query_servers(plans) == ["grid"]
    assert cpu_placement("auto", plans, [0, 1]) == {
        "broker": [0], "prosumers": [0], "amm": [0], "grid": [1]}
    # more cores: the grid takes the highest, the others share the rest
    assert cpu_placement("auto", plans, [0, 1, 2, 3])["grid"] == [3]
    assert cpu_placement("auto", plans, [0, 1, 2, 3])["amm"] == [0, 1, 2]
    # a container's cpuset: only its CPUs are used
    assert cpu_placement("auto", plans, [4, 6]) == {
        "broker": [4], "prosumers": [4], "amm": [4], "grid": [6]}


def test_auto_places_nothing_without_a_round_trip_or_a_second_cpu():
    assert cpu_placement("auto", plans_of("year_ieee13"), [0]) == {}
    # a market that does not ask the grid (approval off) waits for no round trip
    unapproved = plans_of("year_ieee13", "amm.approval=false", "amm.loss_compensation=false")
    assert query_servers(unapproved) == []
    assert cpu_placement("auto", unapproved, [0, 1]) == {}
    # the auction has no AMM round trips
    assert cpu_placement("auto", plans_of("ch6_cigre_lv_uncongested"), [0, 1]) == {}
    assert cpu_placement("off", plans_of("year_ieee13"), [0, 1]) == {}


def test_a_mapping_is_checked_by_process_name_and_cpu():
    plans = plans_of("year_ieee13")
    assert cpu_placement({"grid": [1], "broker": [0, 0]}, plans, [0, 1]) == {
        "grid": [1], "broker": [0]}
    with pytest.raises(LemcosimError, match=r"helics.cpu_placement.gird: no such process.*"
                                            r"broker, prosumers, amm, grid"):
        cpu_placement({"gird": [1]}, plans, [0, 1])
    with pytest.raises(LemcosimError, match=r"helics.cpu_placement.grid: CPU\(s\) \[7\] not "
                                            r"available to this run \(available: 0, 1\)"):
        cpu_placement({"grid": [1, 7]}, plans, [0, 1])
    with pytest.raises(LemcosimError, match=r"helics.cpu_placement.grid: CPU\(s\) \[\]"):
        cpu_placement({"grid": []}, plans, [0, 1])


@pytest.mark.skipif(shutil.which("taskset") is None, reason="needs taskset (util-linux)")
def test_the_composed_commands_carry_the_placement(tmp_path):
    scenario, _ = load_scenario("year_ieee13", ["helics.cpu_placement={grid: [0], amm: [0]}"])
    comp = compose(scenario, scenario.model_dump(mode="json"), tmp_path / "a")
    runner = json.loads(comp.runner_path.read_text())
    assert read_placement(runner) == {"amm": [0], "grid": [0]}
    assert comp.commands["grid"].split()[1:3] == ["-c", "0"]
    assert placed("helics_broker -f 2", None) == "helics_broker -f 2"
    scenario, _ = load_scenario("year_ieee13", ["helics.cpu_placement=off"])
    comp = compose(scenario, scenario.model_dump(mode="json"), tmp_path / "b")
    assert read_placement(json.loads(comp.runner_path.read_text())) == {}


def test_several_hosts_take_auto_or_off_but_no_mapping(tmp_path):
    hosts = ("hosts={a: {address: 192.0.2.1, federates: [grid, amm], root: true}, "
             "b: {address: 192.0.2.2, federates: [prosumers, recorder]}}")
    scenario, _ = load_scenario("quickstart", [hosts, "helics.broker_port=23600"])
    comp = compose(scenario, scenario.model_dump(mode="json"), tmp_path / "auto")
    assert all("taskset" not in command for command in comp.commands.values())
    scenario, _ = load_scenario("quickstart", [hosts, "helics.broker_port=23600",
                                               "helics.cpu_placement={grid: [1]}"])
    with pytest.raises(LemcosimError, match="a run on several hosts takes auto or off"):
        compose(scenario, scenario.model_dump(mode="json"), tmp_path / "mapping")


def test_a_bad_placement_is_a_clear_error(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "lemcosim.runner.cli", "run", "year_ieee13", "--out",
         str(tmp_path / "run"), "--set", "helics.cpu_placement={gird: [0]}"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "helics.cpu_placement.gird: no such process" in proc.stderr
    assert "Traceback" not in proc.stderr


def _kernel_list(cpus: list[int]) -> str:
    """CPUs as /proc writes them: runs of consecutive CPUs as ranges ([0, 1, 2, 5] → "0-2,5")."""
    runs: list[list[int]] = []
    for cpu in cpus:
        if runs and cpu == runs[-1][-1] + 1:
            runs[-1].append(cpu)
        else:
            runs.append([cpu])
    return ",".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def test_cpu_lists_read_as_the_kernel_writes_them():
    assert _kernel_list([1]) == "1"
    assert _kernel_list([0, 1, 2, 5]) == "0-2,5"
    assert _kernel_list([0, 2]) == "0,2"


def _allowed(pid: int) -> set[str]:
    """The CPU lists every thread of `pid` may run on."""
    lists = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        lists |= {line.split(":")[1].strip() for line in status.splitlines()
                  if line.startswith("Cpus_allowed_list")}
    return lists


@pytest.mark.federation
@pytest.mark.skipif(len(available_cpus()) < 2 or shutil.which("taskset") is None,
                    reason="needs 2 CPUs and taskset")
def test_every_thread_of_a_running_federation_stays_on_its_cpus(tmp_path):
    cpus = available_cpus()
    grid_cpu, rest = _kernel_list(cpus[-1:]), _kernel_list(cpus[:-1])
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "lemcosim.runner.cli", "run", "year_ieee13",
                             "--out", str(run_dir), "--no-progress", "--set", "time.windows=300",
                             *HELICS_BOUND_90S], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        seen: dict[str, set[str]] = {}
        deadline = time.monotonic() + 90
        while proc.poll() is None and time.monotonic() < deadline:
            progress = run_dir / "logs" / "amm.progress"
            if progress.exists() and json.loads(progress.read_text())["window"] >= 5:
                pids = json.loads((run_dir / "logs" / "pids.json").read_text())
                seen = {name: _allowed(pid) for name, pid in pids.items()}
                break
            time.sleep(0.05)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert seen == {"broker": {rest}, "prosumers": {rest}, "amm": {rest}, "grid": {grid_cpu}}
    assert_no_process_left(run_dir)
