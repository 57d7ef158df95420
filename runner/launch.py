"""Launching a composed federation: broker + federates as child processes, progress, cleanup.

Every child runs in its own session (process group), so ending a federate also ends anything it
spawned. Whatever happens — success, a failed federate, a timeout, Ctrl-C — every process this
module started is gone when `run_federation` returns.
"""

from __future__ import annotations

import errno
import json
import os
import shlex
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lemcosim.federates.common.heartbeat import read_beat
from lemcosim.runner.compose import Composition
from lemcosim.runner.schema import Scenario

POLL_S = 0.1
TERMINATE_GRACE_S = 5.0
# failures this close to helics.timeout_s are the broker ending the run (--maxcosimduration)
BROKER_LIMIT_MARGIN_S = 2.0
# a federate whose heartbeat has not changed for this long has stopped advancing
STALL_S = 3.0
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


@dataclass
class Child:
    name: str
    proc: subprocess.Popen
    stderr_path: Path

    @property
    def is_broker(self) -> bool:
        return self.name.startswith("broker")


@dataclass
class RunOutcome:
    ok: bool
    message: str
    failed: str | None = None
    exit_code: int = 1
    # HELICS granted no federate anything for helics.stall_s while each waited in a time request:
    # the run can go on from its last checkpoint (runner/cli.py restarts it)
    stalled: bool = False


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM reached the runner; `exit_code` is the conventional 128 + signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.exit_code = EXIT_CODES.get(signum, 128 + signum)


class _Signals:
    """The first SIGINT/SIGTERM interrupts the run; any later one, during cleanup, only makes the
    cleanup skip its grace period (SIGKILL at once), so no child is ever left behind."""

    def __init__(self) -> None:
        self.first: int | None = None
        self.cleaning = False
        self.hurry = False
        self._saved: dict[int, object] = {}

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            for sig in EXIT_CODES:
                self._saved[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: object) -> None:
        if self.first is None:
            self.first = signum
        if self.cleaning:
            self.hurry = True
            return
        raise Interrupted(signum)


def _start(name: str, command: str, run_dir: Path) -> Child:
    logs = run_dir / "logs"
    out = open(logs / f"{name}.out", "wb")  # noqa: SIM115 - closed with the process
    err_path = logs / f"{name}.err"
    err = open(err_path, "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        shlex.split(command), cwd=run_dir, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    out.close()
    err.close()
    return Child(name, proc, err_path)


def _end(children: list[Child], hurry=lambda: False) -> None:
    """SIGTERM (and SIGCONT, so a stopped child can act on it) to every process group, SIGKILL
    after the grace period or at once if `hurry()` turns true; then SIGKILL whatever is left."""
    alive = [c for c in children if c.proc.poll() is None]
    for c in alive:
        _signal(c, signal.SIGTERM)
        _signal(c, signal.SIGCONT)
    deadline = time.monotonic() + TERMINATE_GRACE_S
    while any(c.proc.poll() is None for c in alive) and time.monotonic() < deadline and not hurry():
        time.sleep(0.02)
    for c in children:  # the stragglers, and anything a child left in its process group
        _signal(c, signal.SIGKILL)
    for c in alive:
        try:
            c.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # stuck in the kernel; nothing more a signal can do
            pass


def _signal(child: Child, sig: int) -> None:
    try:
        os.killpg(child.proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def port_in_use(address: str, port: int, core_type: str) -> int | None:
    """The first of a broker's ports (a zmq broker binds P and P+1) already bound on `address`."""
    for p in (port, port + 1) if core_type == "zmq" else (port,):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((address, p))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return p
    return None


def _broker_address(command: str) -> tuple[str, int] | None:
    """(address, port) a broker command binds, from its --local_interface and --port flags."""
    flags = dict(a.lstrip("-").split("=", 1) for a in shlex.split(command) if a.startswith("--")
                 and "=" in a)
    if "port" not in flags:
        return None
    return flags.get("local_interface", "127.0.0.1"), int(flags["port"])


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def _progress_of(run_dir: Path, name: str) -> dict | None:
    try:
        return json.loads((run_dir / "logs" / f"{name}.progress").read_text())
    except (OSError, json.JSONDecodeError):
        return None


def external_instructions(comp: Composition) -> list[str]:
    lines = []
    for plan in comp.plans:
        if plan.external:
            lines.append(
                f"external federate {plan.name!r}: connect to broker tcp://127.0.0.1:{comp.port} "
                f"as federate name {plan.name!r}; HELICS config {comp.configs[plan.name]} "
                f"(e.g. helics.helicsCreateCombinationFederateFromConfig(that_path))"
            )
    return lines


def run_federation(
    comp: Composition, scenario: Scenario, console: Console | None = None, show_progress: bool = True
) -> RunOutcome:
    console = console or Console(stderr=True, soft_wrap=True)
    children: list[Child] = []
    internal = [p for p in comp.plans if not p.external]
    externals = [p.name for p in comp.plans if p.external]
    for name, command in comp.brokers():
        bound = _broker_address(command)
        busy = port_in_use(*bound, scenario.helics.core_type) if bound else None
        if busy is not None:
            return RunOutcome(False, f"{name} port {busy} on {bound[0]} is in use (another run's "
                              "broker, or another program): give another --port or "
                              "helics.broker_port, or leave both unset for a free one", name, 2)
    signals = _Signals()
    with signals:
        started = time.monotonic()
        try:
            for name, command in comp.brokers():
                children.append(_start(name, command, comp.run_dir))
            for plan in internal:
                children.append(_start(plan.name, comp.commands[plan.name], comp.run_dir))
            (comp.run_dir / "logs" / "pids.json").write_text(
                json.dumps({c.name: c.proc.pid for c in children})
            )
            for line in external_instructions(comp):
                console.print(line, soft_wrap=True, highlight=False)
            with Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("windows"), TimeElapsedColumn(), console=console,
                disable=not show_progress, transient=False,
            ) as progress:
                task = progress.add_task(scenario.name, total=scenario.windows)
                return _watch(comp, scenario, children, internal, externals, progress, task, started)
        except KeyboardInterrupt as exc:
            signals.cleaning = True
            code = exc.exit_code if isinstance(exc, Interrupted) else EXIT_CODES[signal.SIGINT]
            name = signal.Signals(signals.first or signal.SIGINT).name
            return RunOutcome(False, f"interrupted ({name}); every federate was stopped", None, code)
        finally:
            signals.cleaning = True
            _end(children, lambda: signals.hurry)


class StallWatch:
    """Notices a federation that HELICS stopped: every federate waits in a time request and none
    of their heartbeats has changed for `stall_s`. Only where the runner sees every federate's
    heartbeat (no external federates, one host); a federate doing anything (computing, writing
    its log while its request is pending, pacing) is not waiting, so work never looks like it.
    A stopped process (SIGSTOP, a debugger) is no HELICS stall: the timeout report names it."""

    def __init__(self, run_dir: Path, federates: list[str], pids: list[int], stall_s: float) -> None:
        self.paths = {name: run_dir / "logs" / f"{name}.heartbeat" for name in federates}
        self.pids = pids  # every process of the run, brokers too
        self.stall_s = stall_s
        self._last: dict[str, tuple[int, float]] = {}  # name → (seq, monotonic time first seen)

    def stalled(self, now: float) -> str | None:
        """What every federate waits for, once all have waited `stall_s` unchanged; else None."""
        waiting, stalled = [], True
        for name, path in self.paths.items():
            beat = read_beat(path)
            if beat is None or not beat.requesting:
                self._last.pop(name, None)
                stalled = False
                continue
            seq, since = self._last.get(name, (None, now))
            if seq != beat.seq:
                self._last[name] = (beat.seq, now)
            stalled = stalled and seq == beat.seq and now - since >= self.stall_s
            waiting.append(f"{name} (granted t = {beat.granted_s:g} s, requests "
                           f"t = {beat.requested_s:g} s)")
        if not (stalled and waiting) or any(process_state(pid) == "T" for pid in self.pids):
            return None
        return "; ".join(waiting)


def _watch(comp, scenario, children, internal, externals, progress, task, started) -> RunOutcome:
    connected = False
    limit_s = scenario.helics.timeout_s
    watch = (StallWatch(comp.run_dir, [p.name for p in internal], [c.proc.pid for c in children],
                        scenario.helics.stall_s)
             if not externals and not scenario.hosts and scenario.helics.stall_restarts else None)
    while True:
        time.sleep(POLL_S)
        elapsed = time.monotonic() - started
        failed = [c for c in children if c.proc.poll() not in (None, 0)]
        if failed:
            if elapsed >= limit_s - BROKER_LIMIT_MARGIN_S:  # the broker's --maxcosimduration
                return _timed_out(comp, scenario, children, elapsed)
            return _failure(comp, scenario, children, failed)
        states = [_progress_of(comp.run_dir, p.name) for p in internal]
        if not connected and internal and all(s is not None for s in states):
            connected = True
        done_windows = min((s["window"] + 1 for s in states if s), default=0) if all(states) else 0
        progress.update(task, completed=max(0, done_windows))
        if all(c.proc.poll() == 0 for c in children):
            progress.update(task, completed=scenario.windows)
            return RunOutcome(True, f"run complete: {comp.run_dir}", exit_code=0)
        if not connected and elapsed > scenario.helics.external_timeout_s + 30.0:
            waiting = externals or [p.name for p, s in zip(internal, states, strict=True) if s is None]
            return RunOutcome(False, "timeout: the federation did not start within "
                              f"helics.external_timeout_s = {scenario.helics.external_timeout_s:.0f}"
                              f" s; still waiting for: {', '.join(waiting)}",
                              waiting[0] if waiting else None)
        if elapsed > limit_s - POLL_S:  # just before the broker's own limit ends the federation
            return _timed_out(comp, scenario, children, elapsed)
        waiting = watch.stalled(time.monotonic()) if watch and connected else None
        if waiting:
            return RunOutcome(False, f"HELICS granted no time for {watch.stall_s:g} s "
                              f"(helics.stall_s) while every federate waited: {waiting}",
                              stalled=True)


def _failure(comp, scenario, children, failed: list[Child]) -> RunOutcome:
    """A child exited non-zero: a broker (port in use?), or the federate that failed first."""
    for broker in (c for c in failed if c.is_broker):
        tail = _tail(broker.stderr_path)
        if "Unable to bind" in tail:
            return RunOutcome(False, f"{broker.name} could not bind its port {comp.port} (in use "
                              f"by another run or program):\n{tail}", broker.name)
        return RunOutcome(False, f"{broker.name} exited ({_exit_text(broker.proc.returncode)}):\n{tail}",
                          broker.name)
    sick = _broker_trouble(children)
    if sick:
        return RunOutcome(False, f"{sick}; the federates failed as a consequence: "
                          f"{', '.join(c.name for c in failed)}", "broker")
    culprit = _culprit(comp.run_dir, failed)
    reason = _reason(comp.run_dir, culprit)
    return RunOutcome(False, f"federate {culprit.name!r} failed ({_exit_text(culprit.proc.returncode)})"
                      f":\n{reason}", culprit.name)


def _exit_text(code: int) -> str:
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def _broker_trouble(children: list[Child]) -> str | None:
    for c in children:
        if not c.is_broker:
            continue
        if c.proc.poll() not in (None, 0):  # a clean exit follows the federates' own ending
            return f"the {c.name} (PID {c.proc.pid}) exited ({_exit_text(c.proc.returncode)})"
        if process_state(c.proc.pid) == "T":
            return f"the {c.name} (PID {c.proc.pid}) is stopped (process state T: SIGSTOP?)"
    return None


def process_state(pid: int) -> str | None:
    """The kernel's one-letter state of `pid` (R running, S sleeping, T stopped, Z zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rpartition(")")[2].split()[0]
    except OSError:
        return None


def _timed_out(comp, scenario, children, elapsed: float) -> RunOutcome:
    """Which federates stopped advancing, from their heartbeats and process states."""
    window_s = scenario.time.window_s
    now = time.time()
    stalled, waiting, moving, finished, crashed = [], [], [], [], []
    for c in children:
        if c.is_broker:
            continue
        code = c.proc.poll()
        if code == 0:
            finished.append(c.name)
            continue
        if code is not None:
            crashed.append(f"{c.name} ({_exit_text(code)})")
            continue
        beat = read_beat(comp.run_dir / "logs" / f"{c.name}.heartbeat")
        where = (f"granted t = {beat.granted_s:g} s (window {int(beat.granted_s // window_s)})"
                 if beat else "")
        if process_state(c.proc.pid) == "T":
            last = f"; last {where}" if where else ""
            stalled.append(f"{c.name} is stopped (process state T: SIGSTOP?){last}")
        elif beat is None:
            stalled.append(f"{c.name} (no heartbeat: not in executing mode, or not a lemcosim "
                           "federate)")
        elif now - beat.wall_s < STALL_S:
            moving.append(f"{c.name} ({where})")
        elif beat.requesting:
            waiting.append(f"{c.name} (requests t = {beat.requested_s:g} s since "
                           f"{now - beat.wall_s:.0f} s; {where})")
        elif beat.pacing:
            waiting.append(f"{c.name} (waits for its readers before it requests t = "
                           f"{beat.requested_s:g} s, since {now - beat.wall_s:.0f} s; {where})")
        else:
            stalled.append(f"{c.name} hangs: {where}, and {now - beat.wall_s:.0f} s later it "
                           "has not asked for the next time")
    lines = [f"timeout: the run exceeded helics.timeout_s = {scenario.helics.timeout_s:g} s (the "
             f"whole-run limit) after {elapsed:.0f} s"]
    sick = _broker_trouble(children)
    if sick:
        lines.append(f"{sick}: the federation cannot end without it")
    if stalled:
        lines.append("stopped advancing: " + "; ".join(stalled))
    if waiting:
        lines.append("waiting in a time request: " + "; ".join(waiting))
    if moving:
        lines.append("still advancing: " + "; ".join(moving))
    if crashed:
        lines.append("crashed (exited on their own): " + ", ".join(crashed))
    if finished:
        lines.append("finished: " + ", ".join(finished))
    if not (sick or stalled or moving):
        hint = ("" if comp.global_time else "; or a cycle of interruptible federates stalled "
                "HELICS's distributed time coordination: try helics.time_coordination: global")
        lines.append("every running federate waits in a time request: HELICS grants none "
                     f"(a federate that is not a lemcosim one, or the broker, holds the time{hint})")
    culprit = "broker" if sick else (stalled[0].split()[0] if stalled else None)
    return RunOutcome(False, "\n".join(lines), culprit)


def _culprit(run_dir: Path, failed: list[Child]) -> Child:
    """The federate that failed first on its own (it wrote an error file), not one it took down."""
    for c in failed:
        if (run_dir / "logs" / f"{c.name}.error").exists():
            return c
    return failed[0]


def _reason(run_dir: Path, child: Child) -> str:
    error_file = run_dir / "logs" / f"{child.name}.error"
    parts = []
    if error_file.exists():
        parts.append(error_file.read_text().strip())
    tail = _tail(child.stderr_path)
    if tail:
        parts.append(f"--- last lines of {child.stderr_path} ---\n{tail}")
    return "\n".join(parts) or "(no output)"
