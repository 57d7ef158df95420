"""Floors a co-simulation benchmark divides by, measured in the same run (shared by benchmarks).

- `opendss_floor(network, solves)`: a bare opendssdirect loop, one load changed and the circuit
  solved `solves` times, voltages and losses read — what each power flow of the federation must
  do at least. Returns the seconds and how many solves converged.
- `pingpong_floor(round_trips, core=, payload_bytes=, placement=)`: a bare 2-federate HELICS
  ping-pong on its own broker (zmq or tcp core): the pinger sends a message at t and requests
  t + δ, the ponger (woken by the message) answers at t — the market–grid query pattern. Returns
  the seconds of the `round_trips` round trips alone (timed inside the pinger: no start-up, no
  shutdown). `placement` ({"ping", "pong", "broker"} → CPUs) places it as the federation it is
  compared with (helics.cpu_placement): on 2 cores placed and unplaced differ by ~20 %.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

_DELTA_S = 1e-3


def opendss_floor(network: str, solves: int) -> tuple[float, int]:
    from lemcosim.federates.grid.model import GridModel
    from lemcosim.networks.builder import dss

    model = GridModel(network)
    model.set_injections({})
    engine = dss()
    load = engine.Loads.AllNames()[0]
    engine.Loads.Name(load)
    base_kw = engine.Loads.kW()
    converged = 0
    start = time.perf_counter()
    for i in range(solves):
        engine.Loads.Name(load)
        engine.Loads.kW(base_kw * (1.0 + 0.01 * (i % 2)))
        engine.Solution.Solve()
        converged += bool(engine.Solution.Converged())
        engine.Circuit.AllBusVolts()
        engine.Circuit.Losses()
    return time.perf_counter() - start, converged


def _federate(name: str, broker: str, round_trips: int, ready, core: str = "zmq",
              payload_bytes: int | tuple[int, int] = 1, elapsed=None,
              cpus: Sequence[int] | None = None) -> None:
    if cpus:  # before HELICS starts its threads: they inherit it
        os.sched_setaffinity(0, cpus)
    import helics as h

    info = h.helicsCreateFederateInfo()
    h.helicsFederateInfoSetCoreTypeFromString(info, core)
    h.helicsFederateInfoSetCoreInitString(info, f"--federates=1 --broker_address={broker}")
    h.helicsFederateInfoSetTimeProperty(info, h.HELICS_PROPERTY_TIME_DELTA, _DELTA_S)
    if name == "pong":
        h.helicsFederateInfoSetFlagOption(info, h.HELICS_FLAG_UNINTERRUPTIBLE, False)
    fed = h.helicsCreateMessageFederate(name, info)
    ep = h.helicsFederateRegisterEndpoint(fed, "ep", "")
    h.helicsFederateEnterExecutingMode(fed)
    ready.set()
    request_bytes, answer_bytes = (payload_bytes if isinstance(payload_bytes, tuple)
                                   else (payload_bytes, payload_bytes))
    payload = b"q" * max(request_bytes if name == "ping" else answer_bytes, 1)
    if name == "ping":
        t = 0.0
        started = time.perf_counter()
        for _ in range(round_trips):
            h.helicsEndpointSendBytesTo(ep, payload, "pong/ep")
            t = h.helicsFederateRequestTime(fed, t + _DELTA_S)
            while h.helicsEndpointHasMessage(ep):
                h.helicsEndpointGetMessage(ep)
        elapsed.value = time.perf_counter() - started
        h.helicsEndpointSendBytesTo(ep, b"stop", "pong/ep")
    else:
        done = False
        while not done:
            h.helicsFederateRequestTime(fed, h.HELICS_TIME_MAXTIME)
            while h.helicsEndpointHasMessage(ep):
                msg = h.helicsEndpointGetMessage(ep)
                if h.helicsMessageGetBytes(msg) == b"stop":
                    done = True
                else:
                    h.helicsEndpointSendBytesTo(ep, payload, "ping/ep")
    h.helicsFederateDisconnect(fed)
    h.helicsFederateFree(fed)


def floor_placement(run_dir: Path, market: str = "amm", server: str = "grid") -> dict[str, list[int]]:
    """A run's CPU placement (its runner.json) as the ping-pong's: the market's CPUs for the
    pinger, the grid's for the ponger, the broker's for the broker; {} if it placed nothing."""
    from lemcosim.runner.placement import read_placement

    runner = run_dir / "runner.json"  # a run on several hosts has one per host: not placed
    placement = read_placement(json.loads(runner.read_text())) if runner.exists() else {}
    return {role: placement[name] for role, name in
            (("ping", market), ("pong", server), ("broker", "broker")) if name in placement}


def pingpong_floor(round_trips: int, port: int | None = None, core: str = "zmq",
                   payload_bytes: int | tuple[int, int] = 1,
                   placement: Mapping[str, Sequence[int]] | None = None) -> float:
    """Seconds for `round_trips` HELICS message round trips between two bare federates;
    `payload_bytes`: of each message, or (request, answer)."""
    import helics as h

    from lemcosim.runner.compose import free_port

    placement = placement or {}
    port = port or free_port()
    address = f"tcp://127.0.0.1:{port}"
    mine = os.sched_getaffinity(0)
    if placement.get("broker"):  # the broker's threads start here and inherit it
        os.sched_setaffinity(0, placement["broker"])
    try:
        broker = h.helicsCreateBroker(core, f"floor_broker_{port}",
                                      f"--federates=2 --local_port={port}")
    finally:
        os.sched_setaffinity(0, mine)
    ctx = mp.get_context("spawn")
    ready = [ctx.Event(), ctx.Event()]
    elapsed = ctx.Value("d", float("nan"))
    procs = [ctx.Process(target=_federate, args=(name, address, round_trips, ev, core,
                                                 payload_bytes, elapsed, placement.get(name)))
             for name, ev in zip(("ping", "pong"), ready, strict=True)]
    for p in procs:
        p.start()
    for ev in ready:
        ev.wait(60)
    for p in procs:
        p.join(600)
    h.helicsBrokerWaitForDisconnect(broker, 10_000)
    h.helicsBrokerFree(broker)
    return float(elapsed.value)


if __name__ == "__main__":
    seconds, ok = opendss_floor("ieee13", 2000)
    print(f"opendss: 2000 solves in {seconds:.3f} s ({ok} converged), "
          f"{seconds / 2000 * 1e3:.3f} ms each")
    for core in ("zmq", "tcp"):
        seconds = pingpong_floor(2000, core=core)
        print(f"helics ping-pong ({core}): 2000 round trips in {seconds:.3f} s, "
              f"{seconds / 2000 * 1e3:.3f} ms each")
