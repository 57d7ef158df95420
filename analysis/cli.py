"""The analysis commands of `lemcosim`: analyze, export, compare."""

from __future__ import annotations

import argparse
from pathlib import Path

from lemcosim.federates.common.errors import LemcosimError


def add_analysis_parsers(sub) -> None:
    p = sub.add_parser("analyze", help="report (HTML, Markdown), tables (CSV) and figures of a run")
    p.add_argument("run_dir")
    p.add_argument("--out", default=None, help="output folder (default RUN_DIR/analysis)")
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("export", help="a run's Parquet logs as CSV (one file per federate)")
    p.add_argument("run_dir")
    p.add_argument("--csv", required=True, metavar="OUT", help="output folder for <federate>.csv")
    p.add_argument("--federate", action="append", default=None, help="only this federate (repeatable)")
    p.add_argument("--quantity", action="append", default=None, help="only this quantity (repeatable)")
    p.add_argument("--windows", default=None, metavar="FIRST:LAST",
                   help="only windows FIRST..LAST (inclusive)")
    p.set_defaults(func=cmd_export)


def cmd_analyze(args: argparse.Namespace) -> int:
    from lemcosim.analysis.report import analyze

    for path in analyze(Path(args.run_dir), Path(args.out) if args.out else None):
        print(f"wrote {path}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from lemcosim.analysis.export import export_csv

    for path in export_csv(Path(args.run_dir), Path(args.csv), args.federate, args.quantity,
                           parse_windows(args.windows)):
        print(f"wrote {path}")
    return 0


def parse_windows(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    first, sep, last = text.partition(":")
    try:
        return int(first), int(last if sep else first)
    except ValueError:
        raise LemcosimError(f"--windows {text!r}: expected FIRST:LAST, e.g. 0:95") from None
