"""Test helpers: run the real CLI in a subprocess, bounded, and check no process is left."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parent
SCRIPTED = TESTS / "federates" / "scripted_federate.py"
# a whole-run bound for the ch5 runs (the FSVR-assist federation could stall HELICS's distributed
# coordination for ever, docs/performance.md, "The HELICS stall"): a hang fails the test in 90 s
# instead of running into pytest's timeout and leaving the federation behind
HELICS_BOUND_90S = ("--set", "helics.timeout_s=90")


def in_child_process(body: Callable[[], Any], timeout_s: float = 120) -> Any:
    """`body()` in a forked child process; its (picklable) return value, or AssertionError with
    the child's traceback. For tests that call HELICS in process: a HELICS call can block in C,
    where pytest-timeout's signal never reaches it, and a federate a failed test left connecting
    can wedge the next test's. A child that gives no result in `timeout_s` is killed and the test
    fails naming the hang; whatever HELICS started ends with the child."""
    context = multiprocessing.get_context("fork")  # `body` may be a closure: nothing to pickle
    receiver, sender = context.Pipe(duplex=False)

    def child() -> None:
        try:
            result = ("returned", body())
        except BaseException as exc:  # noqa: BLE001 - reported in the parent
            result = ("raised", "".join(traceback.format_exception(exc)))
        sender.send(result)
        os._exit(0)  # no atexit: HELICS' library clean-up has nothing left to wait for

    process = context.Process(target=child, daemon=True)
    process.start()
    sender.close()
    name = getattr(body, "__qualname__", repr(body))
    try:
        if not receiver.poll(timeout_s):
            process.kill()
            raise AssertionError(f"{name} gave no result in {timeout_s:g} s (a HELICS call "
                                 "hung?): its process was killed")
        kind, value = receiver.recv()
    except EOFError:
        process.join(10)
        raise AssertionError(f"{name}: its process died (exit code {process.exitcode})") from None
    finally:
        process.join(10)  # it exits right after sending
        if process.is_alive():
            process.kill()
            process.join(5)
    if kind == "raised":
        raise AssertionError(f"in the child process:\n{value}")
    return value


def lemcosim(*args: str, cwd: Path | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    """`lemcosim ARGS` as a separate process, bounded by `timeout`. A run still going then is
    sent SIGTERM first, so that the runner stops its federation (no process left behind), and
    the test fails with subprocess.TimeoutExpired."""
    proc = subprocess.Popen([sys.executable, "-m", "lemcosim.runner.cli", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for our purpose
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def assert_no_process_left(run_dir: Path) -> None:
    """Every process the runner started (logs/pids.json) is gone; kill and fail otherwise."""
    pids = json.loads((run_dir / "logs" / "pids.json").read_text())
    left = {name: pid for name, pid in pids.items() if alive(pid)}
    for pid in left.values():
        os.killpg(pid, signal.SIGKILL)
    assert not left, f"processes left behind: {left}"


def scripted_exec(*options: str) -> str:
    return f"{sys.executable} {SCRIPTED} {{config}} {' '.join(options)}".strip()


def write_scenario(tmp_path: Path, text: str, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def counter_scenario(tmp_path: Path, windows: int, *options: str, external: bool = False) -> Path:
    """A scripted counter federate (tests/federates/scripted_federate.py OPTIONS) and the recorder."""
    federate = "external: true" if external else f'exec: "{scripted_exec(*options)}"'
    return write_scenario(tmp_path, f"""
        name: counter
        description: a scripted federate and the recorder
        time: {{window_s: 900, windows: {windows}}}
        helics: {{timeout_s: 120, external_timeout_s: 60}}
        custom:
          counter:
            {federate}
            publications: {{counter/value: count}}
        recorder: {{}}
        """)


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str


def run_with_external(run_args: list[str], run_dir: Path, federate: str,
                      external_cmd: list[str]) -> tuple[Finished, Finished]:
    """`lemcosim run …` with one federate marked external, started here as its own process once
    the runner has composed its config (RUN_DIR/federates/FEDERATE.json, appended to the
    command); both bounded, both killed if still running."""
    runner = subprocess.Popen([sys.executable, "-m", "lemcosim.runner.cli", "run", *run_args,
                               "--out", str(run_dir), "--no-progress"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    external = None
    try:
        config = run_dir / "federates" / f"{federate}.json"
        deadline = time.monotonic() + 60
        while not (run_dir / "logs" / "pids.json").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        external = subprocess.Popen([*external_cmd, str(config)], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
        out, err = runner.communicate(timeout=120)
        ext_out, ext_err = external.communicate(timeout=30)
        return Finished(runner.returncode, out, err), Finished(external.returncode, ext_out, ext_err)
    finally:
        for p in (runner, external):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
