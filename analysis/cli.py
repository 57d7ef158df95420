"""The analysis commands of `lemcosim`: analyze, export, compare."""

from __future__ import annotations

import argparse
from pathlib import Path

from lemcosim.federates.common.errors import LemcosimError


def add_analysis_parsers(sub) -> None:
    p = sub.add_parser("analyze", help="report (HTML, Markdown), tables (CSV) and figures of a run")
    p.add_argument("run_dir")
    p.add_argument("--out", default=None, help="output folder (default RUN_DIR/analysis)")
    p.add_argument("--window", type=int, default=None, metavar="W",
                   help="window of the per-transaction and auction-curve figures "
                        "(default: the busiest, the first)")
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("export", help="a run's Parquet logs as CSV (one file per federate)")
    p.add_argument("run_dir")
    p.add_argument("--csv", required=True, metavar="OUT", help="output folder for <federate>.csv")
    p.add_argument("--federate", action="append", default=None, help="only this federate (repeatable)")
    p.add_argument("--quantity", action="append", default=None, help="only this quantity (repeatable)")
    p.add_argument("--windows", default=None, metavar="FIRST:LAST",
                   help="only windows FIRST..LAST (inclusive)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("compare", help="runs side by side (HTML, CSV): KPIs, approvals, extremes, "
                       "prices, bills, differences")
    p.add_argument("run_dirs", nargs="*", metavar="RUN_DIR", help="run folders, the first is the "
                   "reference")
    p.add_argument("--study", default=None, metavar="FAMILY",
                   help="run a shipped study family first (e.g. ch5_ieee13_all_buyer, "
                        "ch6_cigre_lv, ch3_ieee33) into OUT/runs and compare its runs")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="with --study: override a value in every run (repeatable)")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=cmd_compare)


def cmd_analyze(args: argparse.Namespace) -> int:
    from lemcosim.analysis.report import analyze

    for path in analyze(Path(args.run_dir), Path(args.out) if args.out else None, args.window):
        print(f"wrote {path}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from lemcosim.analysis.export import export_csv

    for path in export_csv(Path(args.run_dir), Path(args.csv), args.federate, args.quantity,
                           parse_windows(args.windows)):
        print(f"wrote {path}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from lemcosim.analysis.compare import compare, run_study

    out = Path(args.out)
    runs = [Path(r) for r in args.run_dirs]
    if args.study:
        runs += run_study(args.study, out, args.overrides)
    elif args.overrides:
        raise LemcosimError("--set applies to the runs of --study only")
    for path in compare(runs, out):
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
