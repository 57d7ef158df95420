"""Which ingredient of the market–grid time pattern makes a HELICS round trip cost more than a bare
ping-pong (issue #13)? Bare helics federates, no lemcosim models.

usage: python benchmarks/roundtrip_pattern.py [--windows N] [--queries K] [--core zmq|tcp]
                                              [--repeat R] [--only NAME ...] [--no-count]

Each variant rebuilds the federation's time/message pattern one ingredient more (VARIANTS): per
window of 900 s the server ("grid") steps at T_w + δ and is woken by messages; the client
("amm") asks at T_w + 2δ, sends K queries, each followed by a request for t + δ, then publishes
its schedule and advances δ (the grid re-solves). A third federate ("prosumers", no inputs)
publishes at T_w. Printed per variant: the round trip (send → answer, in the client) and the
client's window, as ms and against `floor` (benchmarks/floors.py's ping-pong) in the same run,
and the HELICS time requests the broker routes per window, counted from a traced 20-window run
(deterministic up to the waits' length: unlike wall time, it does not depend on the load).

FINDINGS (HELICS 3.6.1, zmq core, 2 cores; 150 windows, 1 round trip each, best of 2):

  variant                ms/round trip  x floor  ms/window  time msgs/window
  floor                          1.224     1.00      1.902      24.5
  2fed                           1.254     1.02      2.441      31.1
  2fed+grid_pubs                 1.273     1.04      2.365      53.0
  2fed+injections                1.041     0.85      2.886      56.5
  2fed+links                     2.273     1.86      6.644     627.9   <- value cycle
  2fed+links+grid_delta          1.733     1.42      4.928     276.1
  2fed+links+globaltime          1.110     0.91      3.105      37.5   (hangs, see below)
  3fed_paced (lemcosim before)   2.879     2.35     10.295     684.3
  3fed_lockstep                  4.364     3.56     13.515    1493.5
  3fed_paced-cycle               1.511     1.23      5.402      61.0

- The cause is the value cycle amm ⇄ grid: the market subscribes to the grid's losses and the
  grid to the market's schedule (each direction alone costs nothing). With both, HELICS'
  default (distributed) time coordinator re-sends the same time request between the two
  federates, through the broker, for as long as either waits: 10–20× the time messages, and the
  round trip costs 2–4× the floor (more under load: the storm takes CPU from the federate that
  computes). In the real federation (year_ieee13, 10 windows, broker --loglevel=trace) the broker
  routed 33,505 time requests, about 3,350 per window.
- Not the cause: the paced input-less prosumers (its `global_time` polls cost a little per
  window, not per round trip), the interruptible grid requesting its next window step instead
  of MAXTIME, targeted endpoints, a third federate as such.
- Flags that do not remove it: uninterruptible/interruptible either way, event_triggered,
  forward_compute, wait_for_current_time_update on the market (hangs), restrictive_time_policy
  (on the grid: an endless storm, a livelock), time_delta/period δ (halve the storm, round trip
  ≈ 1.4×), input options ignore_interrupts/receive_only/source_only, single_thread_federate,
  the zmq_ss core; tcp/tcp_ss cores were no clear gain under load (and the federation on the
  tcp core lost comms in both of two 192-window runs of benchmarks/cosim.py).
- The broker's `--globaltime` removes it (≈ 45 time requests per window in the real federation,
  round trip at the floor) but HELICS 3.6.1's global time coordinator stops granting after a
  few thousand windows: every bare variant stalled between window 3,500 and 4,500 (900 s
  windows), and year_ieee13 stalled at window 3,818 with all federates requesting (compare
  HELICS issue #2795, a year-long run that hangs under --globaltime). Not usable for years.
- What removes it without a flag: no value cycle. `3fed_paced-cycle` (the grid publishes
  nothing the market subscribes to) is back near the floor. The market read only
  `grid/losses_kw` (the committed base-state losses at T_w + δ); it now reads them from the
  grid's answers (`base_losses_kw`), which broke the cycle in lemcosim (docs/performance.md).
  Before that, measured by dropping that subscription (results then differed): the broker's
  time requests fell from ≈ 3,350 to ≈ 80 per window, yet the real round trip stayed at
  2.6–3.1× the ping-pong (3.4–3.5× with the cycle, same minutes): in the real federation the
  cycle was not the main cost (docs/performance.md).
- A lead for the rest: a long serving time costs extra even with two bare federates.
  `2fed+serve20` (the grid spins 20 ms before answering, subtracted) measured 3.5–3.7 ms per
  round trip against 1.7 ms for `2fed` in the same run (another run: 2.1 against 1.4 ms);
  the real grid serves a batch for
  17–26 ms. Not yet explained (wake-up latency of the waiting side's HELICS/zmq threads on a
  loaded 2-core machine is a guess, not a finding).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

WINDOW_S = 900.0
DELTA_S = 1e-3  # the sub-step δ


@dataclass(frozen=True)
class Variant:
    name: str
    what: str
    grid_request: str = "next_window"  # "maxtime" | "next_window"
    injections: bool = True  # amm→grid: the window's schedule, re-solved one sub-step later
    grid_pubs: bool = True  # grid→amm: losses and voltages at every solve
    third: str | None = None  # None | "paced" | "free" | "lockstep"
    # role → {HELICS time property: seconds}, e.g. {"grid": {"delta": δ}}
    times: dict[str, dict[str, float]] = field(default_factory=dict)
    flags: dict[str, dict[str, bool]] = field(default_factory=dict)  # fed → {flag: value}
    core_args: str = ""  # broker and federates' cores
    fed_args: str = ""  # federates' cores only
    broker_args: str = ""  # the broker only
    log_level: str = ""  # the federates' HELICS log level ("timing" traces every time message)
    targeted: bool = False  # endpoints name their peer (HELICS 3 targeted endpoints)
    input_options: dict[str, dict[str, bool]] = field(default_factory=dict)  # role → options
    serve_s: float = 0.0  # the grid computes this long (busy) before it answers; not counted


def _flag(h, name: str) -> int:
    return getattr(h, f"HELICS_FLAG_{name.upper()}")


def _federate(role: str, v: Variant, address: str, core: str, windows: int, queries: int,
              ready, out) -> None:
    import helics as h

    info = h.helicsCreateFederateInfo()
    h.helicsFederateInfoSetCoreTypeFromString(info, core)
    h.helicsFederateInfoSetCoreInitString(
        info, f"--federates=1 --broker_address={address} {v.core_args} {v.fed_args}".strip())
    for prop, seconds in v.times.get(role, {}).items():
        h.helicsFederateInfoSetTimeProperty(
            info, getattr(h, f"HELICS_PROPERTY_TIME_{prop.upper()}"), seconds)
    # as runner/compose.py writes them: the grid interruptible, every other federate not
    h.helicsFederateInfoSetFlagOption(info, h.HELICS_FLAG_UNINTERRUPTIBLE, role != "grid")
    if v.log_level:
        h.helicsFederateInfoSetIntegerProperty(
            info, h.HELICS_PROPERTY_INT_LOG_LEVEL, getattr(h, f"HELICS_LOG_LEVEL_{v.log_level.upper()}"))
    for name, value in v.flags.get(role, {}).items():
        h.helicsFederateInfoSetFlagOption(info, _flag(h, name), value)
    fed = h.helicsCreateCombinationFederate(role, info)
    pubs, subs = {}, {}
    ep = None
    if role == "prosumers":
        pubs["positions"] = h.helicsFederateRegisterGlobalPublication(
            fed, "prosumers/positions", h.HELICS_DATA_TYPE_STRING, "")
        if v.third == "lockstep":  # a time dependency on the market: the gating by HELICS
            subs["progress"] = h.helicsFederateRegisterSubscription(fed, "amm/price", "")
    elif role == "amm":
        ep = h.helicsFederateRegisterGlobalEndpoint(fed, "amm/dso", "")
        if v.targeted:
            h.helicsEndpointAddDestinationTarget(ep, "grid/query")
            h.helicsEndpointAddSourceTarget(ep, "grid/query")
        pubs["price"] = h.helicsFederateRegisterGlobalPublication(
            fed, "amm/price", h.HELICS_DATA_TYPE_DOUBLE, "")
        if v.injections:
            pubs["injections"] = h.helicsFederateRegisterGlobalPublication(
                fed, "amm/injections", h.HELICS_DATA_TYPE_STRING, "")
        if v.grid_pubs:
            subs["losses"] = h.helicsFederateRegisterSubscription(fed, "grid/losses_kw", "")
            subs["voltages"] = h.helicsFederateRegisterSubscription(fed, "grid/voltages", "")
        if v.third:
            subs["positions"] = h.helicsFederateRegisterSubscription(fed, "prosumers/positions", "")
    else:  # grid
        ep = h.helicsFederateRegisterGlobalEndpoint(fed, "grid/query", "")
        if v.targeted:
            h.helicsEndpointAddDestinationTarget(ep, "amm/dso")
            h.helicsEndpointAddSourceTarget(ep, "amm/dso")
        if v.grid_pubs:
            pubs["losses"] = h.helicsFederateRegisterGlobalPublication(
                fed, "grid/losses_kw", h.HELICS_DATA_TYPE_DOUBLE, "")
            pubs["voltages"] = h.helicsFederateRegisterGlobalPublication(
                fed, "grid/voltages", h.HELICS_DATA_TYPE_STRING, "")
        if v.injections:
            subs["injections"] = h.helicsFederateRegisterSubscription(fed, "amm/injections", "")
    for name, value in v.input_options.get(role, {}).items():
        for ipt in subs.values():
            h.helicsInputSetOption(ipt, getattr(h, f"HELICS_HANDLE_OPTION_{name.upper()}"), value)
    h.helicsFederateEnterExecutingMode(fed)
    if v.log_level:  # the time dependency graph HELICS built
        for kind in ("dependencies", "dependents"):
            query = h.helicsCreateQuery(role, kind)
            print(f"{role} {kind}: {h.helicsQueryExecute(query, fed)}", flush=True)
            h.helicsQueryFree(query)
    ready.set()
    end = windows * WINDOW_S
    if role == "amm":
        spent, answered = 0.0, 0
        began = time.perf_counter()
        for w in range(windows):
            if w and w % 500 == 0:  # a long run shows it advances
                print(f"  {v.name}: window {w} at {time.perf_counter() - began:.0f} s",
                      file=sys.stderr, flush=True)
            t = h.helicsFederateRequestTime(fed, w * WINDOW_S + 2 * DELTA_S)
            for _ in range(queries):
                started = time.perf_counter()
                h.helicsEndpointSendBytesTo(ep, b'{"id": 1, "injections": {}}', "grid/query")
                t = h.helicsFederateRequestTime(fed, t + DELTA_S)
                answered += h.helicsEndpointPendingMessageCount(ep) > 0
                while h.helicsEndpointHasMessage(ep):
                    h.helicsEndpointGetMessage(ep)
                spent += time.perf_counter() - started - v.serve_s
            if v.injections:  # the window's schedule: the grid re-solves it one sub-step later
                h.helicsPublicationPublishString(pubs["injections"], '{"632.a": [1.0, 0.0]}')
                t = h.helicsFederateRequestTime(fed, t + DELTA_S)
            h.helicsPublicationPublishDouble(pubs["price"], 0.1)
        out[0], out[1], out[2] = spent, windows * queries - answered, time.perf_counter() - began
        h.helicsEndpointSendBytesTo(ep, b"stop", "grid/query")
        h.helicsFederateRequestTime(fed, end)
    elif role == "grid":
        done = False
        w = 0
        while not done:
            target = h.HELICS_TIME_MAXTIME if v.grid_request == "maxtime" else min(
                w * WINDOW_S + DELTA_S, end)
            t = h.helicsFederateRequestTime(fed, target)
            while h.helicsEndpointHasMessage(ep):
                msg = h.helicsEndpointGetMessage(ep)
                if h.helicsMessageGetBytes(msg) == b"stop":
                    done = True
                else:
                    until = time.perf_counter() + v.serve_s
                    while time.perf_counter() < until:  # the power flows of a batch
                        pass
                    h.helicsEndpointSendBytesTo(ep, b'{"id": 1, "feasible": true}', "amm/dso")
            if v.injections and h.helicsInputIsUpdated(subs["injections"]):
                h.helicsInputGetString(subs["injections"])
                if v.grid_pubs:
                    h.helicsPublicationPublishDouble(pubs["losses"], 1.0)
            if t >= target - 1e-7 and target < end:  # own step: solve and publish the window
                if v.grid_pubs:
                    h.helicsPublicationPublishDouble(pubs["losses"], 1.0)
                    h.helicsPublicationPublishString(pubs["voltages"], '{"632.a": 1.0}')
                w += 1
        h.helicsFederateRequestTime(fed, end)
    else:  # prosumers: publishes at T_w, nothing feeds it
        pace = None
        if v.third == "paced":
            from lemcosim.federates.common.app import _Pace
            from lemcosim.federates.common.clock import WindowClock

            pace = _Pace.of(h, fed, "prosumers", WindowClock(WINDOW_S, windows, DELTA_S))
        stats: dict = {}
        for w in range(windows):
            if pace is not None:
                from collections import defaultdict

                pace.wait_for(w, stats.setdefault("s", defaultdict(float)))
            h.helicsFederateRequestTime(fed, w * WINDOW_S)
            h.helicsPublicationPublishString(pubs["positions"], '{"id": ["h1"], "e_kwh": [1.0]}')
        h.helicsFederateRequestTime(fed, end)
    h.helicsFederateDisconnect(fed)
    h.helicsFederateFree(fed)


def measure(v: Variant, core: str, windows: int, queries: int, timeout_s: float = 120.0,
            broker_log: Path | None = None) -> tuple[float, float]:
    """Seconds per round trip (the market's send → answer, summed, / round trips) and the
    market's seconds per window (round trips and the steps between them). With `broker_log`
    the broker traces every message it routes into that file (slow: count, do not time)."""
    from lemcosim.runner.compose import broker_binary, free_port

    roles = ["amm", "grid"] + (["prosumers"] if v.third else [])
    port = free_port(span=4 * len(roles) + 8)
    log = open(broker_log, "w") if broker_log else subprocess.DEVNULL  # noqa: SIM115
    broker = subprocess.Popen(
        [broker_binary(sys.executable), "-f", str(len(roles)), f"--port={port}",
         "--local_interface=127.0.0.1", f"--coretype={core}",
         f"--loglevel={'trace' if broker_log else 'warning'}",
         *v.core_args.split(), *v.broker_args.split()], stdout=log, stderr=subprocess.STDOUT)
    address = f"tcp://127.0.0.1:{port}"
    ctx = mp.get_context("spawn")
    ready = [ctx.Event() for _ in roles]
    out = ctx.Array("d", [float("nan")] * 3)
    procs = [ctx.Process(target=_federate,
                         args=(r, v, address, core, windows, queries, ev, out))
             for r, ev in zip(roles, ready, strict=True)]
    try:
        for p in procs:
            p.start()
        deadline = time.monotonic() + timeout_s
        for p in procs:
            p.join(max(deadline - time.monotonic(), 0.1))
        if any(p.is_alive() for p in procs):
            raise TimeoutError(f"{v.name}: not done in {timeout_s:.0f} s")
        broker.wait(30)
    finally:  # a failed variant leaves nothing behind
        for p in procs:
            if p.is_alive():
                p.kill()
        if broker.poll() is None:
            broker.kill()
        if broker_log:
            log.close()
    if out[1] != 0:
        raise SystemExit(f"{v.name}: {out[1]:.0f} round trips got no answer within one sub-step")
    return float(out[0]) / (windows * queries), float(out[2]) / windows


def time_messages(v: Variant, core: str, windows: int, queries: int) -> float:
    """HELICS time requests the broker routes per window (from its trace): unlike wall time,
    independent of the machine's load."""
    with tempfile.TemporaryDirectory(prefix="roundtrip-") as tmp:
        path = Path(tmp) / "broker.log"
        measure(v, core, windows, queries, broker_log=path)
        with open(path, errors="replace") as fh:
            return sum("cmd:time_request" in line for line in fh) / windows


VARIANTS = [
    Variant("floor", "benchmarks/floors.py: 2 feds, server requests MAXTIME, time_delta δ",
            grid_request="maxtime", injections=False, grid_pubs=False,
            times={"amm": {"delta": DELTA_S}, "grid": {"delta": DELTA_S}}),
    Variant("2fed", "2 feds, the server requests its next own step (lemcosim's grid)",
            injections=False, grid_pubs=False),
    Variant("2fed+grid_pubs", "+ grid→amm losses/voltages publications", injections=False),
    Variant("2fed+injections", "+ amm→grid injections (re-solved a sub-step later)",
            grid_pubs=False),
    Variant("2fed+links", "+ both: a value cycle amm ⇄ grid"),
    Variant("2fed+links+targeted", "+ both, endpoints targeted at each other", targeted=True),
    Variant("2fed+links+grid_delta", "+ both, grid time_delta δ",
            times={"grid": {"delta": DELTA_S}}),
    Variant("2fed+links+globaltime", "+ both, broker --globaltime (hangs in long runs)",
            broker_args="--globaltime"),
    Variant("3fed_free", "2fed+links + input-less prosumers → amm, free-running", third="free"),
    Variant("3fed_paced", "2fed+links + prosumers paced by global_time polling (the "
            "federation until PLoss_0 moved into the answers)", third="paced"),
    Variant("3fed_lockstep", "2fed+links + prosumers subscribes amm/price (time dependency)",
            third="lockstep"),
    Variant("3fed_paced-cycle", "3fed_paced without grid→amm publications (no value cycle: "
            "lemcosim's pattern now)",
            third="paced", grid_pubs=False),
    Variant("2fed+serve20", "2fed, the grid computes 20 ms (busy) before answering "
            "(not counted)", injections=False, grid_pubs=False, serve_s=0.02),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=150)
    parser.add_argument("--queries", type=int, default=1, help="round trips per window")
    parser.add_argument("--core", choices=("zmq", "tcp"), default="zmq")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per variant")
    parser.add_argument("--no-count", action="store_true",
                        help="skip the traced runs counting the broker's time messages")
    args = parser.parse_args()
    variants = [v for v in VARIANTS if not args.only or v.name in args.only]
    results: dict[str, list[tuple[float, float]]] = {v.name: [] for v in variants}
    for _ in range(args.repeat):  # interleaved: machine load drifts between variants alike
        for v in variants:
            try:
                results[v.name].append(measure(v, args.core, args.windows, args.queries,
                                               args.timeout))
            except (TimeoutError, SystemExit) as exc:
                print(f"  {v.name}: FAILED {exc}", file=sys.stderr)
    nan = (float("nan"), float("nan"))
    floor = min(results.get("floor") or [nan])
    print(f"{args.core} core, {args.windows} windows x {args.queries} round trips, "
          f"best of {args.repeat}; time msgs: time requests through the broker per window")
    print(f"  {'variant':22s} ms/round trip  x floor  ms/window  x floor  time msgs")
    for v in variants:
        rt, window = min(results[v.name] or [nan])
        msgs = float("nan") if args.no_count else time_messages(v, args.core, 20, args.queries)
        print(f"  {v.name:22s} {rt * 1e3:13.3f} {rt / floor[0]:8.2f} {window * 1e3:10.3f} "
              f"{window / floor[1]:8.2f} {msgs:10.1f}   {v.what}")


if __name__ == "__main__":
    main()
