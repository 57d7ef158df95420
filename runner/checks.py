"""Semantic checks of a scenario: everything `compose` and `run` would reject, before any process.

The schema (runner/schema.py) checks each value on its own; this module checks what needs the
feeder, the files and the other federates: buses and phases of every attachment, device locations,
profile and members files, names one federate uses for another, unique federate names, key sizes.
Every finding names the file and line, the key path, what was given and what was expected; all
findings are reported together.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lemcosim.federates.common.errors import LemcosimError
from lemcosim.runner.schema import Scenario, TimeConfig
from lemcosim.runner.sources import KeyPath, Layered, ScenarioError

MIN_KEY_BITS = 2048


@dataclass
class Feeder:
    """What attachments may name: phases per bus, and the elements a device may replace."""

    name: str
    phases: dict[str, str]
    lines: set[str] = field(default_factory=set)
    regulators: set[str] = field(default_factory=set)
    transformers: set[str] = field(default_factory=set)
    substation_bus: str | None = None


class _Findings:
    def __init__(self, layered: Layered | None) -> None:
        self.layered = layered
        self.problems: list[str] = []

    def add(self, path: KeyPath, given: object, expected: str) -> None:
        origin = self.layered.origin_of(path) if self.layered is not None else None
        where = str(origin) if origin else (self.layered.files[-1] if self.layered else "scenario")
        key = ".".join(str(p) for p in path)
        self.problems.append(f"{where}: key {key}: given {given!r}; expected {expected}")


def check_scenario(scenario: Scenario, layered: Layered | None = None) -> None:
    """Raise a ScenarioError listing every semantic problem of `scenario` (none: return).

    Auction role and cluster names are checked by the schema (federates/auction/config.py)."""
    found = _Findings(layered)
    feeder = _feeder(scenario, found)
    if feeder is not None:
        _check_attachments(scenario, feeder, found)
    _check_profiles(scenario, found)
    _check_auction(scenario, found)
    if not found.problems:  # names are checked on a scenario whose parts are sound
        _check_names(scenario, found)
    if found.problems:
        raise ScenarioError(found.problems)


# --- the feeder -----------------------------------------------------------------------------------
def _feeder(scenario: Scenario, found: _Findings) -> Feeder | None:
    net = scenario.network
    if net is None:
        return None
    try:
        if net.name is not None:
            return shipped_feeder(net.name)
        return dss_feeder(net.dss)
    except LemcosimError as exc:
        key = ("network", "name") if net.name is not None else ("network", "dss")
        found.add(key, net.name or net.dss, f"a network lemcosim can load: {exc}")
        return None


def shipped_feeder(ref: str) -> Feeder:
    """A network in our format (shipped name or folder), read and topology-checked."""
    from lemcosim.networks.loader import check_topology, load_network

    net = load_network(ref)
    phases = check_topology(net, Path(net.folder))
    return Feeder(net.name, phases, {x.name.lower() for x in net.lines},
                  {x.name.lower() for x in net.regulators},
                  {x.name.lower() for x in net.transformers},
                  net.substation_bus.lower() if net.substation_bus else None)


def dss_feeder(path: str) -> Feeder:
    """A user's OpenDSS master file, compiled in this process to learn its buses and elements."""
    from lemcosim.networks.builder import compile_dss, dss
    from lemcosim.networks.loader import NetworkError
    from lemcosim.networks.results import NodeIndex

    if Path(path).is_file() and not Path(path).read_text(errors="replace").strip():
        raise NetworkError(f"{path}: the OpenDSS file is empty")
    try:
        compile_dss(path)
        engine = dss()
        index = NodeIndex.of_active_circuit()
        lines = {n.lower() for n in engine.Lines.AllNames() if n.lower() != "none"}
        transformers = {n.lower() for n in engine.Transformers.AllNames() if n.lower() != "none"}
    except NetworkError:
        raise
    except Exception as exc:  # noqa: BLE001 - OpenDSS raises its own exception types
        raise NetworkError(f"{path}: OpenDSS cannot compile it: {exc}") from None
    phases: dict[str, set[str]] = {}
    for bus, phase in zip(index.bus, index.phase, strict=True):
        phases.setdefault(str(bus), set()).add(str(phase))
    return Feeder(Path(path).name, {b: "".join(sorted(p)) for b, p in phases.items()}, lines,
                  set(), transformers)


def _bus_phase(feeder: Feeder, found: _Findings, path: KeyPath, bus: str, phases: str,
               what: str, phase_path: KeyPath | None = None) -> None:
    """`bus` (given at `path`) exists and has `phases` (given at `phase_path`, default `path`)."""
    have = feeder.phases.get(str(bus).lower())
    if have is None:
        found.add(path, bus, f"a bus of network {feeder.name} for {what} ({_some(feeder.phases)})")
    elif not set(phases) <= set(have):
        found.add(phase_path or path, phases, f"phases present at bus {bus} of {feeder.name}: {have}")


def _some(names: Iterable[str], n: int = 12) -> str:
    names = sorted(names)
    return ", ".join(names[:n]) + (", …" if len(names) > n else "")


def _check_attachments(scenario: Scenario, feeder: Feeder, found: _Findings) -> None:
    pros = scenario.prosumers
    if pros is not None and pros.enabled:
        for i, group in enumerate(pros.groups):
            for j, bus in enumerate(group.buses):
                for k, ph in enumerate(group.phases):
                    _bus_phase(feeder, found, ("prosumers", "groups", i, "buses", j), bus, ph,
                               f"group {group.name}", ("prosumers", "groups", i, "phases", k))
        if pros.members is not None:
            _check_members(pros.members, feeder, found)
    amm = scenario.amm
    if amm is not None and amm.enabled:
        for i, esu in enumerate(amm.esus):
            _bus_phase(feeder, found, ("amm", "esus", i, "bus"), esu.bus, esu.phases,
                       f"ESU {esu.name}", ("amm", "esus", i, "phases"))
        for i, tx in enumerate(amm.transactions or []):
            _bus_phase(feeder, found, ("amm", "transactions", i, "bus"), tx.bus, tx.phase,
                       f"prosumer {tx.prosumer}", ("amm", "transactions", i, "phase"))
    grid = scenario.grid
    if grid is not None and grid.enabled and grid.device is not None:
        _check_device_location(grid.device.at, feeder, found)
    auction = scenario.auction
    if auction is not None and auction.enabled:
        dso_feeder = feeder
        if auction.network is not None and auction.network != scenario.network.name:
            try:  # the DSO computes its PTDFs on a feeder of its own
                dso_feeder = shipped_feeder(auction.network)
            except LemcosimError as exc:
                found.add(("auction", "network"), auction.network, f"a network lemcosim can load: {exc}")
                dso_feeder = Feeder(auction.network, {})
        for cluster, buses in auction.clusters.items():
            for j, bus in enumerate(buses):
                if dso_feeder.phases:
                    _bus_phase(dso_feeder, found, ("auction", "clusters", cluster, j), bus, "",
                               f"cluster {cluster}")
        for i, line in enumerate(auction.dso.lines):
            if dso_feeder.phases and line.name.lower() not in dso_feeder.lines:
                found.add(("auction", "dso", "lines", i, "name"), line.name,
                          f"a line of network {dso_feeder.name} ({_some(dso_feeder.lines)})")
    ctl = scenario.fsvr_controller
    if ctl is not None and ctl.enabled and ctl.study.objective.vuf_bus is not None:
        _bus_phase(feeder, found, ("fsvr_controller", "study", "objective", "vuf_bus"),
                   ctl.study.objective.vuf_bus, "abc", "the VUF objective")


def _check_device_location(at: str | None, feeder: Feeder, found: _Findings) -> None:
    path = ("grid", "device", "at")
    if at is None:
        if feeder.substation_bus is None:
            found.add(path, None, f"a regulator or line of {feeder.name}: it has no substation "
                      "bus to put the device at by default")
        return
    kind, _, name = at.lower().rpartition(".")
    places = {"": feeder.regulators | feeder.lines | feeder.transformers, "line": feeder.lines,
              "transformer": feeder.transformers}
    if name not in places.get(kind, set()):
        found.add(path, at, f"a regulator or line of network {feeder.name} (regulators: "
                  f"{_some(feeder.regulators) or 'none'}; lines: {_some(feeder.lines)})")


def _check_members(members: str, feeder: Feeder, found: _Findings) -> None:
    from lemcosim.federates.prosumers.config import PopulationConfig
    from lemcosim.federates.prosumers.population import build_members

    path = ("prosumers", "members")
    try:
        table = build_members(PopulationConfig(members=members))
    except LemcosimError as exc:
        found.add(path, members, f"a readable members CSV: {exc}")
        return
    for row, (pid, bus, phase) in enumerate(zip(table.ids, table.bus, table.phase, strict=True)):
        have = feeder.phases.get(str(bus))
        if have is None or not set(str(phase)) <= set(have):
            wanted = (f"bus {bus} to be a bus of network {feeder.name}" if have is None
                      else f"phase {phase} to be present at bus {bus} (it has {have})")
            found.add(path, members, f"row {row + 1} (id {pid}): {wanted}")
    for column in ("load_profile", "pv_profile"):
        for ref in sorted(set(getattr(table, column).tolist())):
            _check_profile(str(ref), path, found, f"{members} column {column}: ")


# --- files ----------------------------------------------------------------------------------------
def _check_profiles(scenario: Scenario, found: _Findings) -> None:
    pros = scenario.prosumers
    if pros is None or not pros.enabled:
        return
    for i, group in enumerate(pros.groups):
        for key in ("load_profile", "pv_profile"):
            _check_profile(getattr(group, key), ("prosumers", "groups", i, key), found,
                           clock=scenario.time)


def _check_profile(ref: str, path: KeyPath, found: _Findings, prefix: str = "",
                   clock: TimeConfig | None = None) -> None:
    from lemcosim.federates.prosumers.dated import DatedSeries
    from lemcosim.federates.prosumers.profiles import load_table, resolve_profile

    try:
        resolved = resolve_profile(ref)
        if isinstance(resolved, Path):
            table = load_table(resolved)
            bad = ~np.isfinite(table.shapes)
            if bad.any():
                row = int(np.argwhere(bad)[0][0])
                raise LemcosimError(f"{resolved}: data row {row + 1} holds a non-finite value")
            if clock is not None and isinstance(table, DatedSeries):  # it must span the run
                table.check_covers(clock.start, clock.window_s, 0, clock.windows)
    except LemcosimError as exc:
        found.add(path, ref, f"{prefix}a profile generator, shipped profile or readable profile "
                  f"file ({exc})")


# --- the auction ----------------------------------------------------------------------------------
def _check_auction(scenario: Scenario, found: _Findings) -> None:
    auction = scenario.auction
    if auction is None or not auction.enabled:
        return
    if auction.key_bits < MIN_KEY_BITS and not auction.allow_short_keys:
        found.add(("auction", "key_bits"), auction.key_bits,
                  f"at least {MIN_KEY_BITS} bits (shorter keys only with allow_short_keys: true, "
                  "for tests)")
    from lemcosim.federates.auction.codec import SlotLayout

    try:  # the packed bid curves must fit the key's plaintext space
        SlotLayout(auction.levels, auction.max_qty_kwh, auction.max_cluster, auction.key_bits)
    except LemcosimError as exc:
        found.add(("auction", "levels"), auction.levels, f"a bid layout that fits the key: {exc}")


# --- names between federates ----------------------------------------------------------------------
def _check_names(scenario: Scenario, found: _Findings) -> None:
    from lemcosim.runner.compose import plan_federates

    plans = plan_federates(scenario)
    counts = Counter(p.name for p in plans)
    for name, n in counts.items():
        if n > 1:
            types = ", ".join(p.type for p in plans if p.name == name)
            path: KeyPath = ("custom", name) if name in scenario.custom else (name,)
            found.add(path, name, f"a federate name used once; {n} federates ({types}) are named "
                      f"{name!r}")
    by_type: dict[str, list[str]] = {}
    for p in plans:
        by_type.setdefault(p.type, []).append(p.name)
    published = {pub["key"] for p in plans for pub in p.publications}
    injectors = sorted(k.removesuffix("/injections") for k in published if k.endswith("/injections"))
    prosumers = by_type.get("prosumers", [])
    if scenario.prosumers is not None and scenario.prosumers.split > 1:
        prosumers = ["prosumers"]  # a split population is still one source by its name
    grid = scenario.grid
    if grid is not None and grid.enabled:
        for i, src in enumerate(grid.sources or []):
            if f"{src}/injections" not in published:
                found.add(("grid", "sources", i), src, "a federate publishing injections "
                          f"({', '.join(injectors) or 'none in this scenario'})")
    rec = scenario.recorder
    if rec is not None and rec.enabled:
        for i, key in enumerate(rec.subscribe):
            if key not in published:
                found.add(("recorder", "subscribe", i), key,
                          f"a publication of this scenario's federates ({_some(published, 8)})")
    for name, custom in scenario.custom.items():
        if custom.enabled:
            for i, key in enumerate(custom.subscriptions):
                if key not in published:
                    found.add(("custom", name, "subscriptions", i), key,
                              f"a publication of this scenario's federates ({_some(published, 8)})")
    grids = by_type.get("grid", [])
    amm = scenario.amm
    if amm is not None and amm.enabled:
        if amm.transactions is None and amm.source not in prosumers:
            found.add(("amm", "source"), amm.source,
                      f"a prosumer federate ({', '.join(prosumers) or 'none in this scenario'})")
        if amm.approval and amm.grid not in grids:
            found.add(("amm", "grid"), amm.grid, f"the grid federate ({', '.join(grids) or 'none'})")
        controllers = by_type.get("fsvr_controller", [])
        if amm.fsvr_assist is not None and amm.fsvr_assist not in controllers:
            found.add(("amm", "fsvr_assist"), amm.fsvr_assist,
                      f"the FSVR controller federate ({', '.join(controllers) or 'none'})")
    ctl = scenario.fsvr_controller
    if ctl is not None and ctl.enabled and ctl.grid not in grids:
        found.add(("fsvr_controller", "grid"), ctl.grid, f"the grid federate ({', '.join(grids) or 'none'})")
    auction = scenario.auction
    if auction is not None and auction.enabled and auction.source not in prosumers:
        found.add(("auction", "source"), auction.source,
                  f"a prosumer federate ({', '.join(prosumers) or 'none in this scenario'})")
