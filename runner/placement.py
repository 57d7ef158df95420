"""Which CPUs each process of a run may use (`helics.cpu_placement`, docs/performance.md).

A market ⇄ grid round trip wakes about eight threads in three processes (the market, the broker,
the grid, each with HELICS' core and zmq threads), and the grid's work is the longest stretch of
a window. Left to the scheduler on 2 cores, all of them share both cores. `auto` gives the grid a
core of its own and the rest of the run (broker, market, populations) the others: on 2 cores a
window of year_ieee13 took 8.2 instead of 9.5 ms and the two hand-offs of a round trip 1.0
instead of 1.5 ms (the bare ping-pong placed alike: 0.64 against 0.80 ms). The threads sharing a
core wait longer for it, the grid's main thread hardly at all (benchmarks/threads.py). The
placement is a `taskset -c` in front of each command, so `helics run --path RUN/runner.json`
applies it too.
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from lemcosim.federates.common.errors import LemcosimError

BROKER = "broker"


class _Plan(Protocol):
    name: str
    type: str
    external: bool
    params: dict


def available_cpus() -> list[int]:
    """The CPUs this process may run on (a container's cpuset counts), ascending."""
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def query_servers(plans: Iterable[_Plan]) -> list[str]:
    """The launched grid federates a launched market asks for approval (one round trip per batch
    or transaction): the processes a round trip waits for."""
    plans = list(plans)
    asked = {str(p.params.get("grid")) for p in plans
             if p.type == "amm" and not p.external and p.params.get("approval")}
    return [p.name for p in plans if p.type == "grid" and not p.external and p.name in asked]


def cpu_placement(setting: str | Mapping[str, Sequence[int]], plans: Sequence[_Plan],
                  cpus: Sequence[int]) -> dict[str, list[int]]:
    """Process name (`broker` or a launched federate) → the CPUs it may use; a process not
    named may use every CPU. `auto`: each query server a CPU of its own from the highest down,
    as long as one is left for the rest, which share the others; nothing on one CPU or without a
    market that asks a grid. `off`: nothing. A mapping is taken as given, checked."""
    launched = [p.name for p in plans if not p.external]
    if setting == "off":
        return {}
    if setting == "auto":
        servers = query_servers(plans)[: max(len(cpus) - 1, 0)]
        if not servers:
            return {}
        own = {name: [cpus[-1 - k]] for k, name in enumerate(servers)}
        rest = list(cpus[: len(cpus) - len(servers)])
        return {name: own.get(name, rest) for name in [BROKER, *launched]}
    if isinstance(setting, str):
        raise LemcosimError(f"helics.cpu_placement: {setting!r} is neither auto, off nor a "
                            "mapping of process names to CPU lists")
    placement: dict[str, list[int]] = {}
    for name, wanted in setting.items():
        key = f"helics.cpu_placement.{name}"
        if name != BROKER and name not in launched:
            raise LemcosimError(f"{key}: no such process in this run (the broker and the "
                                f"launched federates: {', '.join([BROKER, *launched])})")
        missing = sorted(set(wanted) - set(cpus))
        if not wanted or missing:
            raise LemcosimError(f"{key}: CPU(s) {missing or '[]'} not available to this run "
                                f"(available: {', '.join(map(str, cpus)) or 'unknown'})")
        placement[name] = sorted(set(wanted))
    return placement


def placed(command: str, cpus: Sequence[int] | None) -> str:
    """`command` run on `cpus` (`taskset -c`); as it is without CPUs."""
    if not cpus:
        return command
    taskset = shutil.which("taskset")
    if taskset is None:
        raise LemcosimError("helics.cpu_placement needs `taskset` (util-linux); install it or set "
                            "helics.cpu_placement: off")
    return f"{shlex.quote(taskset)} -c {','.join(map(str, cpus))} {command}"


def read_placement(runner_json: dict) -> dict[str, list[int]]:
    """Process name → CPUs, from the `taskset -c` of a runner file's commands (`placed`)."""
    out: dict[str, list[int]] = {}
    for entry in runner_json.get("federates", []):
        args = shlex.split(entry.get("exec", ""))
        if len(args) > 2 and os.path.basename(args[0]) == "taskset" and args[1] == "-c":
            out[entry["name"]] = [int(c) for c in args[2].split(",")]
    return out
