"""A real two-host federation: two Linux network namespaces joined by a veth pair, a root broker
and one sub-broker per host, and results equal to the same scenario run on one host.

The namespaces carry TEST-NET-1 addresses (192.0.2.0/24, RFC 5737) that exist only inside them;
the test creates and removes them itself and needs root and iproute2, else it is skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import lemcosim, write_scenario

from lemcosim.analysis.load import load_run
from lemcosim.federates.common.errors import LemcosimError
from lemcosim.runner.hosts import HostConfig, host_parts

pytestmark = pytest.mark.federation

ADDRESS = {"a": "192.0.2.1", "b": "192.0.2.2"}


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@pytest.fixture
def two_hosts():
    """Namespaces lemA/lemB (names unique to this process) joined by a veth pair."""
    if shutil.which("ip") is None or os.geteuid() != 0:
        pytest.skip("needs root and iproute2 (`ip netns`) to create two network namespaces")
    tag = str(os.getpid())
    ns = {h: f"lem{tag}{h}" for h in ADDRESS}
    veth = {h: f"vl{tag}{h}" for h in ADDRESS}
    try:
        _ip("netns", "add", ns["a"])
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"network namespaces unavailable here: {exc.stderr.decode().strip()}")
    try:
        _ip("netns", "add", ns["b"])
        _ip("link", "add", veth["a"], "type", "veth", "peer", "name", veth["b"])
        for h in ADDRESS:
            _ip("link", "set", veth[h], "netns", ns[h])
            _ip("-n", ns[h], "addr", "add", f"{ADDRESS[h]}/24", "dev", veth[h])
            _ip("-n", ns[h], "link", "set", veth[h], "up")
            _ip("-n", ns[h], "link", "set", "lo", "up")
        yield ns
    finally:
        for h in ADDRESS:  # deleting a namespace deletes its end of the veth pair, and so both
            subprocess.run(["ip", "netns", "del", ns[h]], capture_output=True, timeout=10)


def _scenarios(tmp_path: Path) -> tuple[Path, Path]:
    base = write_scenario(tmp_path, """
        extends: quickstart
        name: two_host_check
        time: {windows: 3}
        helics: {broker_port: 23600, timeout_s: 120, external_timeout_s: 60}
        """, "base.yaml")
    split = write_scenario(tmp_path, f"""
        extends: base.yaml
        hosts:
          a: {{address: {ADDRESS['a']}, federates: [grid, amm], root: true}}
          b: {{address: {ADDRESS['b']}, federates: [prosumers, recorder]}}
        """, "two_hosts.yaml")
    return base, split


def _rows(*run_dirs: Path):
    df = pytest.importorskip("pandas").concat([load_run(d) for d in run_dirs], ignore_index=True)
    keys = ["federate", "window", "substep", "entity", "quantity", "time_s"]
    return df.sort_values(keys + ["text"], kind="stable").reset_index(drop=True)[keys + ["value", "text"]]


def test_two_host_federation_equals_the_single_host_run(tmp_path, two_hosts):
    base, split = _scenarios(tmp_path)
    single = tmp_path / "single"
    done = lemcosim("run", str(base), "--out", str(single), "--no-progress")
    assert done.returncode == 0, done.stderr

    parts = {}
    for host in ("a", "b"):
        parts[host] = subprocess.Popen(
            ["ip", "netns", "exec", two_hosts[host], sys.executable, "-m", "lemcosim.runner.cli",
             "run", str(split), "--host", host, "--out", str(tmp_path / host), "--no-progress"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        outs = {h: p.communicate(timeout=180) for h, p in parts.items()}
    finally:
        for p in parts.values():
            if p.poll() is None:  # the runner ends its federates on SIGTERM
                os.killpg(p.pid, signal.SIGTERM)
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
    for h, p in parts.items():
        assert p.returncode == 0, f"host {h}: {outs[h][1]}"

    # each host launched only its own part, bound to its own address
    pids_a = json.loads((tmp_path / "a" / "logs" / "pids.json").read_text())
    pids_b = json.loads((tmp_path / "b" / "logs" / "pids.json").read_text())
    assert set(pids_a) == {"broker_root", "broker", "grid", "amm"}
    assert set(pids_b) == {"broker", "prosumers", "recorder"}
    grid_cfg = json.loads((tmp_path / "a" / "federates" / "grid.json").read_text())
    assert f"tcp://{ADDRESS['a']}:23620" in grid_cfg["coreInitString"]

    expected, got = _rows(single), _rows(tmp_path / "a", tmp_path / "b")
    assert len(got) == len(expected) > 100
    assert (got[["federate", "window", "entity", "quantity", "text"]]
            .equals(expected[["federate", "window", "entity", "quantity", "text"]]))
    assert got["value"].fillna(-1e300).tolist() == pytest.approx(
        expected["value"].fillna(-1e300).tolist(), rel=1e-12, abs=1e-12)


def test_compose_writes_one_runner_file_per_host(tmp_path):
    _, split = _scenarios(tmp_path)
    done = lemcosim("compose", str(split), "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    a = json.loads((tmp_path / "out" / "runner_a.json").read_text())
    b = json.loads((tmp_path / "out" / "runner_b.json").read_text())
    assert [f["name"] for f in a["federates"]] == ["broker_root", "broker", "amm", "grid"]
    assert [f["name"] for f in b["federates"]] == ["broker", "prosumers", "recorder"]
    root_cmd = a["federates"][0]["exec"]
    assert "--root" in root_cmd and "-f 4" in root_cmd and "--subbrokers=2" in root_cmd
    assert "--port=23600" in root_cmd and "--local_interface=192.0.2.1" in root_cmd
    sub_b = b["federates"][0]["exec"]
    assert "--broker_address=tcp://192.0.2.1:23600" in sub_b and "--port=23640" in sub_b
    assert "--local_interface=192.0.2.2" in sub_b and "-f 2" in sub_b


def test_run_of_a_multi_host_scenario_needs_a_host(tmp_path):
    _, split = _scenarios(tmp_path)
    done = lemcosim("run", str(split), "--out", str(tmp_path / "x"), "--no-progress")
    assert done.returncode != 0 and "--host NAME" in done.stderr and "Traceback" not in done.stderr
    done = lemcosim("run", str(split), "--host", "c", "--out", str(tmp_path / "y"), "--no-progress")
    assert done.returncode != 0 and "--host 'c'" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("hosts, port, message", [
    ({"a": {"address": "10.0.0.1", "federates": ["grid"]}}, None, "needs `helics.broker_port`"),
    ({"a": {"address": "10.0.0.1", "federates": ["grid", "amm"]},
      "b": {"address": "10.0.0.2", "federates": ["amm"]}}, 23600, "'amm' is already on host 'a'"),
    ({"a": {"address": "10.0.0.1", "federates": ["grid", "nosuch"]}}, 23600, "unknown federate(s) 'nosuch'"),
    ({"a": {"address": "10.0.0.1", "federates": ["grid"]}}, 23600, "'amm' are on no host"),
    ({"a": {"address": "10.0.0.1", "federates": ["grid"], "root": True},
      "b": {"address": "10.0.0.2", "federates": ["amm"], "root": True}}, 23600, "only one root"),
    ({"a": {"address": "10.0.0.1", "federates": ["grid"], "port": 23600},
      "b": {"address": "10.0.0.2", "federates": ["amm"]}}, 23600, "broker ports collide"),
])
def test_host_assignment_errors_are_named(hosts, port, message):
    configs = {h: HostConfig.model_validate(c) for h, c in hosts.items()}
    with pytest.raises(LemcosimError, match=message.replace("(", r"\(").replace(")", r"\)")):
        host_parts(configs, port, ["grid", "amm"])


def test_a_host_address_must_be_an_ip_address():
    with pytest.raises(ValueError, match="not an IP address"):
        HostConfig.model_validate({"address": "hostname.example", "federates": ["grid"]})
