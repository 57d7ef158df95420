"""Scenario → one HELICS JSON config per federate + a `runner.json` for `helics run`.

The run folder holds everything needed to launch and to understand a run:
`runner.json`, `federates/<name>.json`, `scenario.yaml` (resolved), `versions.json`, `logs/`.
"""

from __future__ import annotations

import json
import random
import shlex
import shutil
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lemcosim.federates.common.clock import SERVER_OUTPUT_DELAY_S
from lemcosim.federates.common.errors import LemcosimError
from lemcosim.federates.common.interfaces import interfaces_of
from lemcosim.runner.hosts import broker_commands, host_parts
from lemcosim.runner.placement import BROKER, available_cpus, cpu_placement, placed
from lemcosim.runner.schema import Scenario

# federate type → python module run as `python -m MODULE CONFIG`
MODULES = {
    "prosumers": "lemcosim.federates.prosumers",
    "grid": "lemcosim.federates.grid",
    "amm": "lemcosim.federates.amm",
    "fsvr_controller": "lemcosim.federates.fsvr_controller",
    **{f"auction_{role}": "lemcosim.federates.auction" for role in ("kg", "cc", "mo", "dso", "pt")},
    "recorder": "lemcosim.federates.recorder",
}
# interruptible federates are woken by every value/message (servers, recorders); the rest step
# exactly on their own times
INTERRUPTIBLE = {"recorder", "grid"}
# federates that answer queries send with an output delay (clock.py, SERVER_OUTPUT_DELAY_S)
DELAYED_OUTPUT = {"grid"}


@dataclass
class FederatePlan:
    name: str
    type: str
    external: bool
    params: dict[str, Any]
    publications: list[dict[str, Any]] = field(default_factory=list)
    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    endpoints: list[dict[str, Any]] = field(default_factory=list)
    exec_template: str | None = None
    interruptible: bool | None = None  # None: by type (INTERRUPTIBLE)

    def command(self, config_path: Path, python: str) -> str:
        if self.exec_template is not None:
            return self.exec_template.replace("{config}", shlex.quote(str(config_path)))
        return f"{shlex.quote(python)} -m {MODULES[self.type]} {shlex.quote(str(config_path))}"


def plan_federates(scenario: Scenario) -> list[FederatePlan]:
    """Every enabled federate of the scenario with its interfaces resolved (runner/checks.py
    checks the names and attachments first)."""
    plans: list[FederatePlan] = []
    parts: dict[str, list[str]] = {}  # population → its federates
    if scenario.prosumers is not None and scenario.prosumers.enabled:
        section = scenario.prosumers
        params = section.model_dump(mode="json", exclude={"enabled", "external", "split"})
        if section.split == 1:
            parts["prosumers"] = ["prosumers"]
            plans.append(_typed_plan("prosumers", "prosumers", section.external, params))
        else:  # each part builds the whole population and publishes its own members
            parts["prosumers"] = [f"prosumers_{k}" for k in range(section.split)]
            plans += [_typed_plan(name, "prosumers", section.external,
                                  {**params, "part": [k, section.split]})
                      for k, name in enumerate(parts["prosumers"])]
    market_sources: list[str] = []
    if scenario.amm is not None and scenario.amm.enabled:
        section = scenario.amm
        params = section.model_dump(mode="json", exclude={"enabled", "external"})
        plan = _typed_plan("amm", "amm", section.external, params)
        if section.transactions is None:
            sources = parts.get(section.source, [section.source])
            plan.subscriptions += [{"key": f"{src}/{key}", "type": "string"}
                                   for src in sources for key in ("positions", "positions_next")]
            plan.params["position_sources"] = sources
            market_sources += sources
        plans.append(plan)
    if scenario.grid is not None and scenario.grid.enabled:
        # a population that trades reaches the grid through the market's schedule, not directly
        physical = [p.name for p in plans if p.type == "amm"] + [
            p.name for p in plans if p.type == "prosumers" and p.name not in market_sources]
        published = {p["key"] for plan in plans for p in plan.publications}
        plans.append(_grid_plan(scenario, physical, published))
    ctl = scenario.fsvr_controller
    if ctl is not None and ctl.enabled:
        plan = _typed_plan("fsvr_controller", "fsvr_controller", ctl.external,
                           ctl.model_dump(mode="json", exclude={"enabled", "external"}))
        if ctl.mode == "correction":
            plan.subscriptions = [{"key": f"{ctl.grid}/device_v_in", "type": "string"}]
        plan.interruptible = ctl.mode == "assist"  # woken by the market's requests
        plans.append(plan)
    if scenario.auction is not None and scenario.auction.enabled:
        if len(parts.get(scenario.auction.source, [])) > 1:
            raise LemcosimError("prosumers.split: the auction splits its population itself "
                                "(auction.terminals); leave prosumers.split at 1")
        plans += _auction_plans(scenario)
    for name, custom in scenario.custom.items():
        if not custom.enabled:
            continue
        plans.append(
            FederatePlan(
                name=name, type="custom", external=custom.external, params={},
                publications=[{"key": k, "type": "string", "unit": u, "global": True}
                              for k, u in custom.publications.items()],
                subscriptions=[{"key": k, "type": "string"} for k in custom.subscriptions],
                endpoints=[{"name": e, "global": True} for e in custom.endpoints],
                exec_template=custom.exec,
            )
        )
    if scenario.recorder is not None and scenario.recorder.enabled:
        # by default only what no federate of ours logs itself: custom and external publications
        keys = scenario.recorder.subscribe or [
            p["key"] for plan in plans if plan.type == "custom" or plan.external
            for p in plan.publications
        ]
        known = {p["key"] for plan in plans for p in plan.publications}
        plan = FederatePlan("recorder", "recorder", scenario.recorder.external,
                            {"keys": keys, "known": sorted(known & set(keys))})
        plan.subscriptions = [{"key": k, "type": "string"} for k in keys]
        plans.append(plan)
    if not plans:
        raise LemcosimError(f"scenario {scenario.name!r} enables no federate")
    return plans


def _auction_plans(scenario: Scenario) -> list[FederatePlan]:
    """KG, MO, DSO, PT and one CC per cluster, each with one message endpoint `{name}/msg`."""
    section = scenario.auction
    assert section is not None and scenario.network is not None
    config = section.model_dump(mode="json", exclude={"enabled", "external"})
    # a population split across `terminals` PT federates: pt_0, pt_1, … (member i → pt_{i mod n})
    pts = [f"pt_{i}" for i in range(section.terminals)] if section.terminals > 1 else ["pt"]
    roles = {"kg": "kg", "mo": "mo", "dso": "dso", "pt": pts if len(pts) > 1 else "pt",
             **{c: f"cc_{c}" for c in section.clusters}}
    network = section.network or scenario.network.name or scenario.network.dss
    plans = []
    for role, names in roles.items():
        ftype = f"auction_{role}" if role in ("kg", "mo", "dso", "pt") else "auction_cc"
        for index, name in enumerate([names] if isinstance(names, str) else names):
            params = {"auction": config, "roles": roles, "network": network}
            if ftype == "auction_cc":
                params["cluster"] = role
            if ftype == "auction_pt":
                params["terminal"] = [index, len(pts)]
            plan = _typed_plan(name, ftype, section.external, params)
            if ftype == "auction_pt":
                plan.subscriptions = [{"key": f"{section.source}/positions", "type": "string"}]
            plans.append(plan)
    return plans


def _grid_plan(scenario: Scenario, prosumer_names: list[str], published: set[str]) -> FederatePlan:
    section = scenario.grid
    assert section is not None and scenario.network is not None
    sources = section.sources if section.sources is not None else prosumer_names
    params = {
        "network": scenario.network.model_dump(mode="json"),
        "limits": section.limits.model_dump(mode="json"),
        "device": section.device.model_dump(mode="json") if section.device else None,
        "injection_sources": sources,
        # sources announcing injections for the next window (a market's ESU utility exchange)
        "exchange_sources": [src for src in sources if f"{src}/exchange" in published],
        "log_queries": section.log_queries,
    }
    plan = _typed_plan("grid", "grid", section.external, params)
    plan.subscriptions = [{"key": f"{src}/injections", "type": "string"} for src in sources] + [
        {"key": f"{src}/exchange", "type": "string"} for src in params["exchange_sources"]]
    return plan


def _typed_plan(name: str, ftype: str, external: bool, params: dict[str, Any]) -> FederatePlan:
    plan = FederatePlan(name, ftype, external, params)
    for itf in interfaces_of(ftype):
        key = itf.resolve(name)
        if itf.kind == "publication":
            plan.publications.append({"key": key, "type": itf.type, "unit": itf.unit, "global": True})
        elif itf.kind == "endpoint":
            plan.endpoints.append({"name": key, "global": True})
    return plan


def broker_binary(python: str) -> str:
    """The helics_broker program itself. The `helics_broker` on PATH that pip installs is a
    Python wrapper that starts it as a child: a broker killed by the wrapper's PID would live on."""
    try:
        import helics

        binary = Path(helics.__file__).parent / "install" / "bin" / "helics_broker"
        if binary.is_file():
            return str(binary)
    except ImportError:
        pass
    wrapper = Path(python).parent / "helics_broker"
    return str(wrapper) if wrapper.exists() else "helics_broker"


# Ports a broker may take: below Linux's ephemeral range, so that no outgoing connection (which
# takes a random ephemeral local port) can grab a port the broker hands a core after compose
# checked it; that race failed a CI run with "unable to register federate".
_BROKER_PORTS_FROM = 20000


def _ephemeral_low(default: int = 32768) -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return default


def free_port(span: int = 20) -> int:
    """A loopback port P with P..P+span free (a zmq broker hands nearby ports to cores), below the
    ephemeral port range."""
    high = _ephemeral_low() - span - 1
    if high <= _BROKER_PORTS_FROM:
        high = 65000 - span
    pick = random.SystemRandom()  # parallel runs must not draw the same sequence of ports
    for _ in range(200):
        port = pick.randrange(_BROKER_PORTS_FROM, high)
        if all(_port_free(p) for p in range(port, port + span)):
            return port
    raise LemcosimError("no free loopback port range found")


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def core_init(scenario: Scenario, port: int, address: str = "127.0.0.1") -> str:
    return (f"--federates=1 --broker_address=tcp://{address}:{port} "
            f"--local_interface={address} --timeout={int(scenario.helics.external_timeout_s)}s")


def interruptible(plan: FederatePlan) -> bool:
    return plan.interruptible if plan.interruptible is not None else plan.type in INTERRUPTIBLE


def global_time_coordination(scenario: Scenario, plans: list[FederatePlan]) -> bool:
    """Whether the broker grants times (`helics.time_coordination`). `auto`: when two
    interruptible federates with endpoints can wake each other by messages. Each then may
    advance as soon as the other might send, so neither bounds the other's next time (zero
    lookahead both ways); HELICS 3.6.1's distributed coordination can leave such a cycle waiting
    for ever (docs/performance.md, "The HELICS stall"), its global coordination resolves it."""
    mode = scenario.helics.time_coordination
    if mode != "auto":
        return mode == "global"
    return sum(1 for p in plans if interruptible(p) and p.endpoints) >= 2


def broker_flags(scenario: Scenario, global_time: bool) -> str:
    """Flags every broker of the run shares: core type, log level, time coordination and the
    run's time limits."""
    h = scenario.helics
    coordination = " --globaltime" if global_time else ""
    return (f"--coretype={h.core_type} --loglevel={h.log_level} "
            f"--maxcosimduration={int(h.timeout_s)}s --terminate_on_error "
            f"--timeout={int(h.external_timeout_s)}s{coordination}")


def broker_command(scenario: Scenario, n_federates: int, port: int, helics_bin: str,
                   global_time: bool) -> str:
    return (f"{shlex.quote(helics_bin)} -f {n_federates} --port={port} "
            f"--local_interface=127.0.0.1 {broker_flags(scenario, global_time)}")


@dataclass
class Composition:
    run_dir: Path
    port: int
    plans: list[FederatePlan]
    configs: dict[str, Path]
    runner_path: Path
    broker_exec: str
    commands: dict[str, str]
    # brokers started before `broker_exec` (the root broker of a multi-host run's root host)
    extra_brokers: list[tuple[str, str]] = field(default_factory=list)
    global_time: bool = False  # the broker grants times (`helics.time_coordination`)

    def brokers(self) -> list[tuple[str, str]]:
        return [*self.extra_brokers, ("broker", self.broker_exec)]


def compose(
    scenario: Scenario,
    resolved: dict[str, Any],
    out_dir: Path,
    port: int | None = None,
    python: str | None = None,
    host: str | None = None,
    resume_after: int | None = None,
) -> Composition:
    """Write the run folder: HELICS configs, runner file(s), resolved scenario, versions.

    A multi-host scenario gets one `runner_<host>.json` per host; the returned composition is
    `host`'s part (default: the root host's).
    """
    out_dir = out_dir.resolve()
    (out_dir / "federates").mkdir(parents=True, exist_ok=True)
    (out_dir / "logs").mkdir(exist_ok=True)
    python = python or sys.executable
    plans = plan_federates(scenario)
    parts = (host_parts(scenario.hosts, scenario.helics.broker_port, [p.name for p in plans])
             if scenario.hosts else {})
    if host is not None and host not in parts:
        raise LemcosimError(f"--host {host!r}: the scenario's hosts are "
                            f"{', '.join(parts) or '(none: it runs on one host)'}")
    # a zmq broker hands its cores ports just above its own, a few per federate: keep them all free
    port = scenario.helics.broker_port if parts else port or scenario.helics.broker_port or free_port(
        span=max(20, 4 * len(plans) + 8))
    host_of = {fed: part for part in parts.values() for fed in part.federates}
    configs: dict[str, Path] = {}
    commands: dict[str, str] = {}
    for plan in plans:
        path = out_dir / "federates" / f"{plan.name}.json"
        part = host_of.get(plan.name)
        address, fed_port = (part.address, part.port) if part else ("127.0.0.1", port)
        config = _helics_config(scenario, plan, out_dir, fed_port, address)
        if resume_after is not None:
            config["lemcosim"]["resume_after"] = resume_after
        path.write_text(json.dumps(config, indent=2))
        configs[plan.name] = path
        if not plan.external:
            commands[plan.name] = plan.command(path, python)
    helics_bin = broker_binary(python)
    global_time = global_time_coordination(scenario, plans)
    (out_dir / "scenario.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))
    (out_dir / "versions.json").write_text(json.dumps(versions(), indent=2))
    placement = run_placement(scenario, plans)  # {} on several hosts
    if not parts:
        commands = {name: placed(cmd, placement.get(name)) for name, cmd in commands.items()}
        broker_exec = placed(broker_command(scenario, len(plans), port, helics_bin, global_time),
                             placement.get(BROKER))
        runner_path = _write_runner(out_dir / "runner.json", scenario.name, out_dir,
                                    [("broker", broker_exec)], plans, commands)
        return Composition(out_dir, port, plans, configs, runner_path, broker_exec, commands,
                           global_time=global_time)
    chosen = None
    for part in parts.values():
        brokers = broker_commands(part, parts, port, broker_flags(scenario, global_time), helics_bin)
        local = [p for p in plans if p.name in part.federates]
        path = _write_runner(out_dir / f"runner_{part.name}.json", f"{scenario.name}@{part.name}",
                             out_dir, brokers, local, commands)
        if part.name == host or (host is None and part.root):
            chosen = Composition(out_dir, part.port, local, configs, path, brokers[-1][1],
                                 {p.name: commands[p.name] for p in local if not p.external},
                                 brokers[:-1], global_time)
    assert chosen is not None
    return chosen


def run_placement(scenario: Scenario, plans: list[FederatePlan]) -> dict[str, list[int]]:
    """`helics.cpu_placement` for a one-host run (runner/placement.py)."""
    setting = scenario.helics.cpu_placement
    if scenario.hosts:
        if isinstance(setting, dict):
            raise LemcosimError("helics.cpu_placement: a mapping places the processes of a "
                                "one-host run; a run on several hosts takes auto or off")
        return {}
    if setting == "auto" and shutil.which("taskset") is None:
        return {}
    return cpu_placement(setting, plans, available_cpus())


def _write_runner(path: Path, name: str, run_dir: Path, brokers: list[tuple[str, str]],
                  plans: list[FederatePlan], commands: dict[str, str]) -> Path:
    """A runner file that `helics run --path` launches as it is."""
    entries = [{"name": b, "directory": str(run_dir), "host": "localhost", "exec": cmd}
               for b, cmd in brokers]
    entries += [{"name": p.name, "directory": str(run_dir), "host": "localhost",
                 "exec": commands[p.name]} for p in plans if not p.external]
    path.write_text(json.dumps({"name": name, "federates": entries}, indent=2))
    return path


def _helics_config(scenario: Scenario, plan: FederatePlan, run_dir: Path, port: int,
                   address: str = "127.0.0.1") -> dict:
    delay = {"outputDelay": SERVER_OUTPUT_DELAY_S} if plan.type in DELAYED_OUTPUT else {}
    return {
        "name": plan.name,
        "coreType": scenario.helics.core_type,
        "coreInitString": core_init(scenario, port, address),
        "uninterruptible": not interruptible(plan),
        **delay,
        "terminate_on_error": True,
        "publications": plan.publications,
        "subscriptions": plan.subscriptions,
        "endpoints": plan.endpoints,
        "lemcosim": {
            "type": plan.type,
            "run_dir": str(run_dir),
            "window_s": scenario.time.window_s,
            "windows": scenario.windows,
            "substep_s": scenario.time.substep_s,
            "start": scenario.time.start.isoformat(),
            "log_flush_windows": scenario.logs.flush_windows,
            "checkpoint_windows": scenario.logs.checkpoint_windows,
            "params": plan.params,
        },
    }


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str] = {"python": sys.version.split()[0]}
    for dist in ("lemcosim", "helics", "opendssdirect.py", "phe", "numpy", "pandas"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "not installed"
    try:
        import opendssdirect as dss

        out["opendss_engine"] = dss.Basic.Version()
    except Exception:  # noqa: BLE001 - version report must never stop a run
        out["opendss_engine"] = "unavailable"
    return out
