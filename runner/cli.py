"""`lemcosim` command line: scenarios, validate, compose, run, analyze, powerflow."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from datetime import datetime
from pathlib import Path

import yaml
from rich.console import Console

from lemcosim.analysis.cli import add_analysis_parsers
from lemcosim.federates.common.errors import LemcosimError
from lemcosim.federates.grid.cli import add_powerflow_parser, run_powerflow

console = Console(stderr=True, soft_wrap=True)


def _add_scenario_args(p: argparse.ArgumentParser, optional: bool = False) -> None:
    p.add_argument("scenario", nargs="?" if optional else None,
                   help="scenario file, or the name of a shipped one (lemcosim scenarios)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario value, e.g. --set time.windows=4 (repeatable)")


def cmd_scenarios(args: argparse.Namespace) -> int:
    from lemcosim.runner.sources import shipped_configs_dir

    for path in sorted(shipped_configs_dir().glob("*.yaml")):
        data = yaml.safe_load(path.read_text()) or {}
        lines = str(data.get("description", "")).strip().splitlines()
        print(f"{path.stem:32s} {lines[0] if lines else ''}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from lemcosim.runner.validate import load_checked

    scenario, _ = load_checked(args.scenario, args.overrides)
    print(yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False), end="")
    return 0


def _compose(args: argparse.Namespace, out: Path):
    from lemcosim.runner.compose import compose
    from lemcosim.runner.validate import load_checked

    scenario, _ = load_checked(args.scenario, args.overrides)  # everything, before any process
    if scenario.hosts and getattr(args, "host", None) is None and args.command == "run":
        raise LemcosimError(f"{scenario.name!r} runs on hosts {', '.join(scenario.hosts)}: launch each "
                            "host's part with `lemcosim run ... --host NAME` on that host")
    comp = compose(scenario, scenario.model_dump(mode="json"), out, port=getattr(args, "port", None),
                   host=getattr(args, "host", None))
    return scenario, comp


def cmd_compose(args: argparse.Namespace) -> int:
    from lemcosim.runner.launch import external_instructions

    scenario, comp = _compose(args, Path(args.out))
    print(f"composed {len(comp.plans)} federates of {scenario.name!r} into {comp.run_dir}")
    if scenario.hosts:
        for host in scenario.hosts:
            print(f"host {host}: helics run --path {comp.run_dir / f'runner_{host}.json'}")
    else:
        print(f"launch with: helics run --path {comp.runner_path}")
    for line in external_instructions(comp):
        print(line)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from lemcosim.runner.validate import load_scenario

    if args.resume is not None:
        return _resume(args)
    if args.scenario is None:
        raise LemcosimError("lemcosim run needs a SCENARIO (or --resume RUN_DIR)")
    if args.out is None:
        name = load_scenario(args.scenario, args.overrides)[0].name
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        args.out = str(Path("runs") / f"{name}-{stamp}")
    logs = Path(args.out) / "logs"
    if logs.is_dir() and (any(logs.glob("*/*.parquet")) or any(logs.glob("*.csv"))):
        raise LemcosimError(f"{args.out} already holds a run (logs/); logs are appended, so "
                            "give another --out or remove that folder")
    scenario, comp = _compose(args, Path(args.out))
    return _launch(args, scenario, comp)


def _resume(args: argparse.Namespace) -> int:
    """Continue a stopped run in its own folder after the last window every federate
    checkpointed; its resolved scenario is read back, so nothing about the run can change."""
    from lemcosim.federates.common.checkpoint import resume_window
    from lemcosim.runner.compose import compose, plan_federates
    from lemcosim.runner.validate import load_scenario

    run_dir = Path(args.resume)
    if args.scenario is not None or args.overrides or args.out is not None:
        raise LemcosimError("--resume RUN_DIR continues that run as it was composed: give no "
                            "SCENARIO, --set or --out with it")
    resolved = run_dir / "scenario.yaml"
    if not resolved.is_file():
        raise LemcosimError(f"--resume {run_dir}: not a run folder (no scenario.yaml)")
    scenario, _ = load_scenario(resolved)
    logs = run_dir / "logs"
    states = {}
    for progress in logs.glob("*.progress"):
        try:
            states[progress.stem] = json.loads(progress.read_text()).get("state")
        except (OSError, ValueError):
            states[progress.stem] = None
    if states and all(state == "done" for state in states.values()):
        raise LemcosimError(f"--resume {run_dir}: that run is complete; nothing to resume")
    names = (scenario.hosts[args.host].federates if args.host in scenario.hosts
             else [p.name for p in plan_federates(scenario)])
    after = resume_window(logs, names)
    _clear_errors(logs)
    comp = compose(scenario, scenario.model_dump(mode="json"), run_dir, host=args.host,
                   resume_after=after)
    console.print(f"resuming {scenario.name!r} after window {after} of {scenario.windows}")
    return _launch(args, scenario, comp)


def _clear_errors(logs: Path) -> None:
    """Remove the failure reports of an earlier attempt (`*.error`): a run that goes on anew
    must not be blamed on them."""
    for stale in logs.glob("*.error"):
        stale.unlink()


def _restart_after_stall(scenario, comp):
    """The stalled run's composition again, from its last checkpoint (the federates truncate
    their logs there), or from the start with its logs removed if no window was checkpointed.
    Returns it and the window it goes on after (-1: from the start)."""
    from lemcosim.federates.common.checkpoint import resume_window
    from lemcosim.runner.compose import compose

    logs = comp.run_dir / "logs"
    try:
        after = resume_window(logs, [p.name for p in comp.plans])
    except LemcosimError:
        after = -1
    if after < 0:
        shutil.rmtree(logs)
    else:
        _clear_errors(logs)
    return compose(scenario, scenario.model_dump(mode="json"), comp.run_dir, port=None,
                   resume_after=after if after >= 0 else None), after


def _launch(args: argparse.Namespace, scenario, comp) -> int:
    from lemcosim.runner.launch import run_federation

    # SIGINT/SIGTERM end the federation too (run_federation), then exit 130/143
    outcome = run_federation(comp, scenario, console, show_progress=not args.no_progress)
    restarts, furthest = 0, -2
    while outcome.stalled and restarts < scenario.helics.stall_restarts:
        comp, after = _restart_after_stall(scenario, comp)
        restarts = 1 if after > furthest else restarts + 1  # count restarts without progress
        furthest = max(furthest, after)
        where = f"after window {after}" if after >= 0 else "from the start"
        console.print(f"[yellow]{outcome.message}[/yellow]\nrestarting {where} "
                      f"({restarts} of helics.stall_restarts = {scenario.helics.stall_restarts})")
        outcome = run_federation(comp, scenario, console, show_progress=not args.no_progress)
    if outcome.stalled:
        outcome.message += (f"\ngave up: it stalled again after {restarts} restarts that got no "
                            "further (helics.stall_restarts)")
    if outcome.ok:
        console.print(f"[green]{outcome.message}[/green]")
        if args.analyze:
            from lemcosim.analysis.report import analyze

            for path in analyze(comp.run_dir):
                console.print(f"wrote {path}")
        return 0
    _error(outcome.message)
    return outcome.exit_code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lemcosim",
        description="Co-simulation of local electricity markets on distribution feeders (HELICS).",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("scenarios", help="list the shipped scenarios")
    p.set_defaults(func=cmd_scenarios)

    p = sub.add_parser("validate", help="print the resolved scenario or what is wrong with it")
    _add_scenario_args(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("compose", help="write HELICS configs and runner.json (helics run --path)")
    _add_scenario_args(p)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--port", type=int, default=None, help="broker port (default: a free one)")
    p.set_defaults(func=cmd_compose)

    p = sub.add_parser("run", help="compose and launch a federation, with a progress bar")
    _add_scenario_args(p, optional=True)
    p.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue a stopped run after the last window all federates checkpointed")
    p.add_argument("--out", default=None, help="run folder (default runs/NAME-TIMESTAMP)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--analyze", action="store_true", help="run `lemcosim analyze` after the run")
    p.add_argument("--host", default=None,
                   help="multi-host scenario: launch only this host's brokers and federates")
    p.set_defaults(func=cmd_run)

    add_analysis_parsers(sub)  # analyze, export, compare

    p = add_powerflow_parser(sub)
    p.set_defaults(func=run_powerflow)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
    except LemcosimError as exc:
        _error(str(exc))
        code = 2
    except KeyboardInterrupt as exc:  # Ctrl-C; a run reports its own signal (launch.Interrupted)
        code = getattr(exc, "exit_code", 130)
    if argv is None:
        sys.exit(code)
    return code


def _error(message: str) -> None:
    console.print("[red]error:[/red] ", end="")
    console.print(message, highlight=False, markup=False, soft_wrap=True)


if __name__ == "__main__":
    main()
