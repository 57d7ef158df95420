"""Launching a composed federation: broker + federates as child processes, progress, cleanup.

Every child runs in its own session (process group), so ending a federate also ends anything it
spawned. Whatever happens — success, a failed federate, a timeout, Ctrl-C — every process this
module started is gone when `run_federation` returns.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lemcosim.runner.compose import Composition
from lemcosim.runner.schema import Scenario

POLL_S = 0.1
TERMINATE_GRACE_S = 5.0


@dataclass
class Child:
    name: str
    proc: subprocess.Popen
    stderr_path: Path


@dataclass
class RunOutcome:
    ok: bool
    message: str
    failed: str | None = None


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


def _end(children: list[Child]) -> None:
    alive = [c for c in children if c.proc.poll() is None]
    for c in alive:
        _signal(c, signal.SIGTERM)
    deadline = time.monotonic() + TERMINATE_GRACE_S
    for c in alive:
        try:
            c.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal(c, signal.SIGKILL)
            c.proc.wait(timeout=5)
    for c in children:  # anything a child left in its process group
        _signal(c, signal.SIGKILL)


def _signal(child: Child, sig: int) -> None:
    try:
        os.killpg(child.proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


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
    windows = scenario.windows
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
            task = progress.add_task(scenario.name, total=windows)
            return _watch(comp, scenario, children, internal, externals, progress, task, started)
    except KeyboardInterrupt:
        return RunOutcome(False, "interrupted by the user; every federate was stopped")
    finally:
        _end(children)


def _watch(comp, scenario, children, internal, externals, progress, task, started) -> RunOutcome:
    connected = False
    timeout_s = scenario.helics.timeout_s + 30.0
    while True:
        time.sleep(POLL_S)
        failed = [c for c in children if c.proc.poll() not in (None, 0)]
        if failed:
            culprit = _culprit(comp.run_dir, failed)
            reason = _reason(comp.run_dir, culprit)
            return RunOutcome(False, f"federate {culprit.name!r} failed (exit code "
                              f"{culprit.proc.returncode}):\n{reason}", culprit.name)
        states = [_progress_of(comp.run_dir, p.name) for p in internal]
        if not connected and internal and all(s is not None for s in states):
            connected = True
        done_windows = min((s["window"] + 1 for s in states if s), default=0) if all(states) else 0
        progress.update(task, completed=max(0, done_windows))
        if all(c.proc.poll() == 0 for c in children):
            progress.update(task, completed=scenario.windows)
            return RunOutcome(True, f"run complete: {comp.run_dir}")
        elapsed = time.monotonic() - started
        if not connected and elapsed > scenario.helics.external_timeout_s + 30.0:
            waiting = externals or [p.name for p, s in zip(internal, states, strict=True) if s is None]
            return RunOutcome(False, "federation did not start within "
                              f"{scenario.helics.external_timeout_s:.0f} s; still waiting for: "
                              f"{', '.join(waiting)}", waiting[0] if waiting else None)
        if elapsed > timeout_s:
            slow = [c.name for c in children if c.proc.poll() is None and not c.name.startswith("broker")]
            return RunOutcome(False, f"federation exceeded helics.timeout_s = "
                              f"{scenario.helics.timeout_s:.0f} s; still running: {', '.join(slow)}",
                              slow[0] if slow else None)


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
