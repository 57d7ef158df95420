"""Read and validate a network in our format (networks/FORMAT.md); errors name file, table, row, field."""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from pydantic import BaseModel, ValidationError

from lemcosim.federates.common.errors import LemcosimError
from lemcosim.networks.model import (
    Capacitor,
    Line,
    LineCode,
    Load,
    Network,
    Regulator,
    Source,
    Transformer,
)

SHIPPED_DIR = Path(__file__).resolve().parent
TABLES: dict[str, type[BaseModel]] = {
    "lines": Line, "transformers": Transformer, "regulators": Regulator, "loads": Load,
    "capacitors": Capacitor,
}


class NetworkError(LemcosimError):
    """A network file that does not describe a valid feeder."""


def shipped_networks() -> list[str]:
    return sorted(p.parent.name for p in SHIPPED_DIR.glob("*/network.yaml"))


def network_path(ref: str | Path) -> Path:
    """`ieee13` (shipped), a folder holding network.yaml, or a network.yaml file."""
    path = Path(ref)
    if path.is_file():
        return path
    if (path / "network.yaml").is_file():
        return path / "network.yaml"
    shipped = SHIPPED_DIR / str(ref).lower() / "network.yaml"
    if shipped.is_file():
        return shipped
    raise NetworkError(f"unknown network {str(ref)!r}: shipped are {', '.join(shipped_networks())}; "
                       "or give a folder with network.yaml, or an OpenDSS .dss file")


def load_network(ref: str | Path) -> Network:
    path = network_path(ref)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise NetworkError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise NetworkError(f"{path}: expected a mapping of network fields")
    where = {"(network)": str(path)}
    for table in TABLES:
        value = raw.get(table)
        if isinstance(value, str):
            raw[table] = _read_csv_table(path.parent / value)
            where[table] = str(path.parent / value)
    network = _validate(raw, path, where)
    network.folder = str(path.parent)
    check_topology(network, path)
    return network


def _read_csv_table(path: Path) -> list[dict[str, Any]]:
    try:
        frame = pd.read_csv(path, comment="#", dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise NetworkError(f"{path}: table file not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise NetworkError(f"{path}: not a readable CSV table: {exc}") from None
    rows = []
    for i, record in enumerate(frame.to_dict("records")):
        try:
            rows.append({k: yaml.safe_load(v) for k, v in record.items() if str(v).strip() != ""})
        except yaml.YAMLError as exc:
            raise NetworkError(f"{path}: row {i + 1}: a cell is no value: "
                               f"{getattr(exc, 'problem', None) or exc}") from None
    return rows


def _validate(raw: dict[str, Any], path: Path, where: dict[str, str]) -> Network:
    problems: list[str] = []
    tables = {t: raw.pop(t, []) or [] for t in TABLES}
    codes = raw.pop("linecodes", {}) or {}
    source = raw.pop("source", None)
    rows: dict[str, list[Any]] = {}
    for table, model in TABLES.items():
        rows[table] = []
        for i, row in enumerate(tables[table]):
            label = f"{table} row {i + 1}" + (f" ({row.get('name')})" if isinstance(row, dict) else "")
            parsed = _parse(model, row, f"{where.get(table, str(path))}: {label}", problems)
            if parsed is not None:
                rows[table].append(parsed)
    linecodes = {}
    for name, code in codes.items():
        parsed = _parse(LineCode, code, f"{path}: linecode {name}", problems)
        if parsed is not None:
            linecodes[str(name).lower()] = parsed
    parsed_source = _parse(Source, source, f"{path}: source", problems)
    try:
        network = Network.model_validate({**raw, "source": parsed_source, "linecodes": linecodes,
                                          **rows}) if not problems else None
    except ValidationError as exc:
        problems += [f"{path}: field {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        network = None
    if problems or network is None:
        raise NetworkError("\n".join(problems))
    return network


def _parse(model: type[BaseModel], data: Any, label: str, problems: list[str]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for e in exc.errors():
            field = ".".join(str(p) for p in e["loc"]) or "(row)"
            problems.append(f"{label}: field {field}: {e['msg'].removeprefix('Value error, ')}")
        return None


def check_topology(net: Network, path: Path) -> dict[str, str]:
    """Phases present at each bus, found by walking from the source; raises on every mismatch."""
    problems: list[str] = []
    names: dict[str, set[str]] = {}
    for table in ("lines", "transformers", "regulators", "loads", "capacitors"):
        for row in getattr(net, table):
            if row.name in names.setdefault(table, set()):
                problems.append(f"{path}: {table} {row.name}: duplicate name")
            names[table].add(row.name)
    for line in net.lines:
        if line.linecode is not None:
            code = net.linecodes.get(line.linecode)
            if code is None:
                problems.append(f"{path}: lines {line.name}: unknown linecode {line.linecode!r}")
            elif code.size is not None and code.size != len(line.phases):
                problems.append(f"{path}: lines {line.name}: linecode {line.linecode} has "
                                f"{code.size} conductors, the line {len(line.phases)} phases")
    # branches as (label, bus_a, bus_b, phases at a, phases at b)
    branches: list[tuple[str, str, str, str, str]] = []
    for line in net.lines:
        if not line.open:
            branches.append((f"lines {line.name}", line.bus1, line.bus2, line.phases, line.phases))
    for reg in net.regulators:
        branches.append((f"regulators {reg.name}", reg.bus1, reg.bus2, reg.phases, reg.phases))
    for tr in net.transformers:
        w0 = tr.windings[0]
        for w in tr.windings[1:]:
            ph0 = w0.phases or ("abc" if tr.phases == 3 else "a")
            ph = w.phases or ("abc" if tr.phases == 3 else "a")
            branches.append((f"transformers {tr.name}", w0.bus, w.bus, ph0, ph))
    phases: dict[str, set[str]] = {net.source.bus: set("abc")}
    adjacency: dict[str, list[tuple[str, str, str, str]]] = {}
    for label, a, b, pa, pb in branches:
        adjacency.setdefault(a, []).append((label, b, pa, pb))
        adjacency.setdefault(b, []).append((label, a, pb, pa))
    queue = deque([net.source.bus])
    checked: set[tuple[str, str]] = set()
    while queue:
        bus = queue.popleft()
        for label, other, here, there in adjacency.get(bus, []):
            if (label, bus) in checked:
                continue
            checked.add((label, bus))
            missing = set(here) - phases[bus]
            if missing:
                problems.append(f"{path}: {label}: phase(s) {''.join(sorted(missing))} not present "
                                f"at bus {bus} (it has {''.join(sorted(phases[bus]))})")
            known = phases.setdefault(other, set())
            if not set(there) <= known:
                known |= set(there)
                queue.append(other)
    for label, a, b, _, _ in branches:
        if a not in phases and b not in phases:
            problems.append(f"{path}: {label}: buses {a} and {b} are not connected to the source")
    for line in net.lines:
        for bus in (line.bus1, line.bus2):
            if line.open and bus not in phases:
                problems.append(f"{path}: lines {line.name}: unknown bus {bus!r}")
    for table in ("loads", "capacitors"):
        for row in getattr(net, table):
            if row.bus not in phases:
                problems.append(f"{path}: {table} {row.name}: unknown bus {row.bus!r}")
            elif not set(row.phases) <= phases[row.bus]:
                problems.append(f"{path}: {table} {row.name}: phase(s) {row.phases} not all present "
                                f"at bus {row.bus} (it has {''.join(sorted(phases[row.bus]))})")
    if net.substation_bus is not None and net.substation_bus.lower() not in phases:
        problems.append(f"{path}: substation_bus {net.substation_bus!r} is not a bus of the network")
    if problems:
        raise NetworkError("\n".join(problems))
    return {bus: "".join(sorted(p)) for bus, p in phases.items()}
