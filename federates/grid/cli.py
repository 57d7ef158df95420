"""`lemcosim powerflow NETWORK_OR_DSS`: one power flow, as a table or as one JSON object."""

from __future__ import annotations

import argparse
import json
import sys

from lemcosim.federates.common.errors import LemcosimError


def add_powerflow_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("powerflow", help="solve one power flow of a shipped network or a .dss file")
    p.add_argument("network", help="shipped network (ieee13, ieee34, ieee123, ieee33, cigre_lv), a "
                   "folder with network.yaml, or an OpenDSS master .dss file")
    p.add_argument("--load-mult", type=float, default=1.0, help="scales every load's P and Q")
    p.add_argument("--regulators", choices=["published", "off", "control"], default="published",
                   help="feeder regulators at their published taps (default), at neutral, or "
                   "under their own OpenDSS control")
    p.add_argument("--injection", action="append", default=[], metavar="BUS.PHASE=P_KW[,Q_KVAR]",
                   help="net injection into the grid (repeatable; negative = consumption)")
    p.add_argument("--device", choices=["svr", "fsvr", "upfc"], help="insert a regulator device")
    p.add_argument("--at", help="device location: a regulator (its bank is replaced) or a line "
                   "(device at its sending end); default: the substation end of the feeder")
    p.add_argument("--setting", help="svr: 3 taps as α (e.g. 0.0625,0.05,0.06875); fsvr: 9 α row "
                   "by row; upfc: 3 magnitudes (pu of the input phase, ≤ 0.2) ; 3 angles (deg from the input "
                   "phase), e.g. '0.05,0.05,0.05;0,0,0'")
    p.add_argument("--continuous", action="store_true", help="fsvr: continuous α within ±R_max")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")
    return p


def parse_injection(text: str) -> tuple[str, list[float]]:
    key, sep, values = text.partition("=")
    try:
        numbers = [float(v) for v in values.split(",")]
        if not sep or not key or not 1 <= len(numbers) <= 2:
            raise ValueError
    except ValueError:
        raise LemcosimError(f"--injection {text!r}: expected BUS.PHASE=P_KW[,Q_KVAR]") from None
    return key.strip().lower(), numbers + [0.0] * (2 - len(numbers))


def run_powerflow(args: argparse.Namespace) -> int:
    from lemcosim.federates.grid.devices import parse_cli_setting
    from lemcosim.federates.grid.model import GridModel

    if args.load_mult <= 0:
        raise LemcosimError(f"--load-mult {args.load_mult}: must be positive")
    if (args.at or args.setting) and not args.device:
        raise LemcosimError("--at and --setting need --device svr|fsvr|upfc")
    if args.device == "upfc" and args.setting and ";" not in args.setting:
        raise LemcosimError(f"--setting {args.setting!r}: upfc needs 3 magnitudes (pu) ; 3 angles "
                            "(deg), e.g. '0.05,0.05,0.05;0,0,0'")
    device = parse_cli_setting(args.device, args.setting, args.continuous) if args.device else None
    model = GridModel(args.network, regulators=args.regulators, load_mult=args.load_mult,
                      device=device, device_at=args.at)
    injections: dict[str, list[float]] = {}
    for text in args.injection:
        key, pq = parse_injection(text)
        prev = injections.setdefault(key, [0.0, 0.0])
        prev[0] += pq[0]
        prev[1] += pq[1]
    model.set_injections(injections)
    flow = model.solve()
    if args.json:
        print(json.dumps(flow.summary_json()))
        if not flow.converged:  # stdout stays one JSON object; the reason goes to stderr
            print(f"{args.network}: {flow.reason}", file=sys.stderr)
    else:
        print_table(flow, args.network)
    return 0 if flow.converged else 1


def print_table(flow, network: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not flow.converged:
        console.print(f"[red]{network}: {flow.reason}[/red]")
        return
    table = Table(title=f"{network}: bus voltages (pu ∠ deg)")
    for column in ("bus", "a", "b", "c", "VUF %"):
        table.add_column(column, justify="right")
    vuf = dict(zip(flow.vuf_buses, flow.vuf_pct, strict=True))
    for bus, phases in flow.buses_json().items():
        cells = [f"{phases[p]['v_pu']:.4f} ∠ {phases[p]['angle_deg']:7.2f}" if p in phases else ""
                 for p in "abc"]
        table.add_row(bus, *cells, f"{vuf[bus]:.3f}" if bus in vuf else "")
    console.print(table)
    where_min, v_min = flow.extreme("v_min")
    where_max, v_max = flow.extreme("v_max")
    where_vuf, vuf_max = flow.extreme("vuf_max")
    where_line, loading = flow.extreme("loading_max")
    console.print(f"losses {flow.losses_kw:.2f} kW, {flow.losses_kvar:.2f} kvar; "
                  f"V min {v_min:.4f} pu at {where_min}, V max {v_max:.4f} pu at {where_max}; "
                  f"max VUF {vuf_max:.3f} % at {where_vuf}; max line loading {loading:.1f} % "
                  f"at {where_line}", highlight=False)
