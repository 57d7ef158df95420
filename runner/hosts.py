"""Multi-host federations: federates assigned to hosts, joined by a HELICS broker hierarchy.

A scenario's `hosts:` section names each host's address and its federates. The runner then
composes a two-level HELICS broker hierarchy:

    root broker (on the root host, `helics.broker_port`)
      ├── sub-broker of host a (on a's address, its `port`)  ← federates of a
      └── sub-broker of host b (on b's address, its `port`)  ← federates of b

Every federate talks only to the sub-broker of its own host, so the traffic between hosts is
broker-to-broker. `lemcosim compose` writes one runner file per host (`runner_<host>.json`,
each with its own brokers and federates, for `helics run` on that host) and `lemcosim run
--host NAME` launches one host's part. Ports are fixed by the scenario, because every host
composes the same scenario independently and all must agree on where the root broker is.
"""

from __future__ import annotations

import ipaddress
import shlex
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lemcosim.federates.common.errors import LemcosimError

# sub-broker of the i-th host (0-based) on broker_port + SUB_PORT_STEP·(i+1) unless it names one:
# a zmq broker hands ports just above its own to the cores it serves
SUB_PORT_STEP = 20


class HostConfig(BaseModel):
    """One machine of a multi-host federation."""

    model_config = ConfigDict(extra="forbid")

    address: str = Field(description="IP address the host's sub-broker and federates bind")
    federates: list[str] = Field(min_length=1, description="names of the federates it runs")
    root: bool = Field(False, description="runs the root broker (default: the first host)")
    port: int | None = Field(None, ge=1024, le=65000, description="its sub-broker's port")

    @field_validator("address")
    @classmethod
    def _ip(cls, value: str) -> str:
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address") from None


@dataclass(frozen=True)
class HostPart:
    """What one host runs: its brokers (root first where it has it) and its federates."""

    name: str
    address: str
    port: int
    federates: list[str]
    root: bool


def host_parts(hosts: dict[str, HostConfig], broker_port: int | None,
               federate_names: list[str]) -> dict[str, HostPart]:
    """Check the assignment and fix every host's sub-broker port.

    Every federate of the scenario runs on exactly one host; exactly one host is the root.
    """
    if broker_port is None:
        raise LemcosimError("hosts: a multi-host scenario needs `helics.broker_port` (the root "
                            "broker's port), because every host composes the scenario on its own")
    seen: dict[str, str] = {}
    for host, cfg in hosts.items():
        for fed in cfg.federates:
            if fed in seen:
                raise LemcosimError(f"hosts.{host}.federates: {fed!r} is already on host {seen[fed]!r}")
            seen[fed] = host
    unknown = sorted(set(seen) - set(federate_names))
    if unknown:
        raise LemcosimError(f"hosts: unknown federate(s) {', '.join(map(repr, unknown))}; the "
                            f"scenario's federates are {', '.join(federate_names)}")
    missing = [f for f in federate_names if f not in seen]
    if missing:
        raise LemcosimError(f"hosts: federate(s) {', '.join(map(repr, missing))} are on no host; "
                            "add each to the `federates` of one host")
    roots = [h for h, cfg in hosts.items() if cfg.root]
    if len(roots) > 1:
        raise LemcosimError(f"hosts: only one root host allowed, got {', '.join(roots)}")
    root = roots[0] if roots else next(iter(hosts))
    parts: dict[str, HostPart] = {}
    for i, (host, cfg) in enumerate(hosts.items()):
        port = cfg.port or broker_port + SUB_PORT_STEP * (i + 1)
        parts[host] = HostPart(host, cfg.address, port, list(cfg.federates), host == root)
    used = [broker_port] + [p.port for p in parts.values()]
    if len(set(used)) != len(used):
        raise LemcosimError(f"hosts: broker ports collide: root {broker_port}, "
                            + ", ".join(f"{p.name} {p.port}" for p in parts.values()))
    return parts


def root_of(parts: dict[str, HostPart]) -> HostPart:
    return next(p for p in parts.values() if p.root)


def broker_commands(part: HostPart, parts: dict[str, HostPart], root_port: int, common: str,
                    helics_bin: str) -> list[tuple[str, str]]:
    """(name, command) of the brokers a host starts: the root broker first where it has it.

    `common` carries the flags every broker shares (core type, log level, time limits).
    """
    bin_ = shlex.quote(helics_bin)
    root = root_of(parts)
    commands = []
    if part.root:
        total = sum(len(p.federates) for p in parts.values())
        commands.append(("broker_root", f"{bin_} --root -f {total} --subbrokers={len(parts)} "
                         f"--port={root_port} --local_interface={root.address} {common}"))
    commands.append(("broker", f"{bin_} -f {len(part.federates)} "
                     f"--broker_address=tcp://{root.address}:{root_port} --port={part.port} "
                     f"--local_interface={part.address} {common}"))
    return commands
