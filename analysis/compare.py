"""`lemcosim compare RUN_A RUN_B [...] --out DIR`: runs side by side, with differences to the first.

Writes DIR/compare.html (self-contained) and one CSV per table: KPIs, approvals per transaction,
voltage/VUF/loading extremes, prices (AMM per window, auction MCP per cluster and window) and
bills. `lemcosim compare --study FAMILY --out DIR` first runs a shipped study family (ch3 cases
1–3 of a feeder, ch5 without/with FSVR, ch6 uncongested/congested) into DIR/runs/.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd

from lemcosim.analysis.amm import transactions_query
from lemcosim.analysis.auction import bills_query, clearing_query
from lemcosim.analysis.kpi import kpis
from lemcosim.analysis.labels import MONEY_NOTE
from lemcosim.analysis.report import PREVIEW_ROWS, environment, render
from lemcosim.analysis.run import LAST_SOLVE, RunData
from lemcosim.analysis.tables import Table
from lemcosim.federates.common.errors import LemcosimError

_FAMILY = [  # (pattern of a shipped scenario's name, family, order within the family)
    (re.compile(r"^(ch3_\w+)_case(\d)$"), lambda m: int(m[2])),
    (re.compile(r"^(ch5_\w+?)_(no_fsvr|fsvr)$"), lambda m: 0 if m[2] == "no_fsvr" else 1),
    (re.compile(r"^(ch6_cigre_lv)_(uncongested|congested)$"), lambda m: 0 if m[2][0] == "u" else 1),
]
_TOO_MANY_TX = 200_000  # a year's transactions are compared through KPIs, not row by row


def study_families() -> dict[str, list[str]]:
    """Shipped study families → their scenarios in comparison order."""
    from lemcosim.runner.sources import shipped_configs_dir

    found: dict[str, list[tuple[int, str]]] = {}
    for path in sorted(shipped_configs_dir().glob("*.yaml")):
        for pattern, order in _FAMILY:
            if m := pattern.match(path.stem):
                found.setdefault(m[1], []).append((order(m), path.stem))
    return {family: [name for _, name in sorted(members)] for family, members in found.items()
            if len(members) > 1}


def run_study(family: str, out: Path, overrides: list[str]) -> list[Path]:
    """Run every scenario of a study family into OUT/runs/<scenario> (kept if already there)."""
    families = study_families()
    if family not in families:
        raise LemcosimError(f"--study {family!r}: no such study family (known: "
                            f"{', '.join(sorted(families))})")
    runs = []
    for scenario in families[family]:
        run_dir = out / "runs" / scenario
        if not (run_dir / "logs").is_dir():
            sets = [a for o in overrides for a in ("--set", o)]
            proc = subprocess.run([sys.executable, "-m", "lemcosim.runner.cli", "run", scenario,
                                   "--out", str(run_dir), "--no-progress", *sets],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                raise LemcosimError(f"study {family}: run of {scenario} failed:\n"
                                    f"{proc.stderr.strip()[-2000:]}")
        runs.append(run_dir)
    return runs


def compare(run_dirs: list[Path], out: Path) -> list[Path]:
    """Write the side-by-side comparison of `run_dirs` (the first is the reference)."""
    if len(run_dirs) < 2:
        raise LemcosimError("compare needs at least two run folders")
    runs = [RunData.open(d) for d in run_dirs]
    labels = _labels(runs)
    out.mkdir(parents=True, exist_ok=True)
    tables = [t for t in (
        _kpi_table(runs, labels),
        _extremes_table(runs, labels),
        _approvals_table(runs, labels),
        _price_table(runs, labels),
        _mcp_table(runs, labels),
        _bills_table(runs, labels),
    ) if t is not None and not t.frame.empty]
    written, rendered = [], []
    for table in tables:
        path = out / f"{table.stem}.csv"
        table.frame.to_csv(path, index=False)
        written.append(path)
        rendered.append(render(runs[0], table, limit=PREVIEW_ROWS * 4))
    html = environment().get_template("compare.html.j2").render(
        title="lemcosim comparison: " + " vs ".join(labels),
        runs=[{"label": lab, "path": str(r.path), "description":
               str(r.scenario.get("description", "")).strip(), "windows": r.windows}
              for lab, r in zip(labels, runs, strict=True)],
        tables=rendered, money_note=MONEY_NOTE)
    (out / "compare.html").write_text(html, encoding="utf-8")
    written.append(out / "compare.html")
    return written


def _labels(runs: list[RunData]) -> list[str]:
    names = [r.name for r in runs]
    return names if len(set(names)) == len(names) else [r.path.name for r in runs]


def _side_by_side(frames: list[pd.DataFrame], labels: list[str], keys: list[str],
                  value: str, diff: bool = True) -> pd.DataFrame:
    """Outer join of one value column per run on `keys`, with `Δ label` = run − first run."""
    merged = pd.concat([f.set_index(keys)[value].rename(label)  # rows in first-seen order
                        for f, label in zip(frames, labels, strict=True)], axis=1, sort=False)
    merged = merged.reset_index()
    if diff and pd.api.types.is_numeric_dtype(merged[labels[0]]):
        for label in labels[1:]:
            if pd.api.types.is_numeric_dtype(merged[label]):
                merged[f"Δ {label}"] = merged[label] - merged[labels[0]]
    return merged


def _kpi_table(runs, labels) -> Table:
    frames = [pd.DataFrame([{"group": k.group, "KPI": k.name, "unit": k.unit,
                             "value": float(k.value)} for k in kpis(r)],
                           columns=["group", "KPI", "unit", "value"]) for r in runs]
    # a count a run does not report (no rejection for that cause) is zero
    frames = [f.set_index(["group", "KPI", "unit"]) for f in frames]
    keys = pd.concat(frames).index.unique()
    frames = [f.reindex(keys).assign(value=lambda d: d["value"].where(
        d["value"].notna() | (d.index.get_level_values("unit") != "count"), 0.0)).reset_index()
        for f in frames]
    table = _side_by_side(frames, labels, ["group", "KPI", "unit"], "value")
    return Table("compare_kpis", "Headline KPIs of each run, and each run's difference from the "
                 f"first ({labels[0]}).", frame=table)


def _extremes_table(runs, labels) -> Table | None:
    frames = []
    for r in runs:
        if not r.has("grid"):
            frames.append(pd.DataFrame(columns=["quantity", "unit", "value"]))
            continue
        frames.append(r.sql(f"""
            SELECT q.name AS quantity, q.unit,
                   CASE WHEN q.agg = 'min' THEN min(value) ELSE max(value) END AS value
            FROM ({LAST_SOLVE.format(grid='grid')}) s JOIN (VALUES
                ('v_pu', 'lowest voltage', 'pu', 'min'), ('v_pu', 'highest voltage', 'pu', 'max'),
                ('max_vuf_pct', 'highest VUF', '%', 'max'),
                ('max_line_loading_pct', 'highest line loading', '%', 'max'),
                ('losses_kw', 'highest losses', 'kW', 'max')) q(quantity, name, unit, agg)
              ON s.quantity = q.quantity
            GROUP BY q.name, q.unit, q.agg ORDER BY q.name"""))
    table = _side_by_side(frames, labels, ["quantity", "unit"], "value")
    return Table("compare_extremes", "Voltage, VUF, loading and loss extremes over the committed "
                 "window states of each run.", frame=table)


def _approvals_table(runs, labels) -> Table | None:
    if not all(r.has("amm", "approved") for r in runs):
        return None
    counts = [int(r.con.execute("SELECT count(DISTINCT entity) FROM logs WHERE federate = 'amm' "
                                "AND quantity = 'approved' AND entity <> 'market'").fetchone()[0])
              for r in runs]
    if max(counts) > _TOO_MANY_TX:
        return None
    keys = ["window", "transaction"]
    txs = [r.sql(transactions_query()) for r in runs]
    table = _side_by_side([t.assign(approved=t["approved"].map({True: "yes", False: "no"}))
                           for t in txs], labels, keys, "approved", diff=False)
    for label, tx in zip(labels, txs, strict=True):
        extra = tx[keys + ["v_min", "v_max", "vuf_max", "reason"]].rename(columns={
            c: f"{c} ({label})" for c in ("v_min", "v_max", "vuf_max", "reason")})
        table = table.merge(extra, on=keys, how="left")
    table.insert(2, "same decision", table[labels].nunique(axis=1, dropna=False) == 1)
    return Table("compare_approvals", "Decision on every transaction in each run (yes = approved), "
                 "with the grid extremes it would cause (V in pu, VUF in %) and the reason of "
                 "each refusal.", frame=table.dropna(axis=1, how="all"))


def _price_table(runs, labels) -> Table | None:
    if not all(r.has("amm", "closing_price") for r in runs):
        return None
    frames = [r.sql("""SELECT "window",
            avg(value) FILTER (quantity = 'rho' AND regexp_full_match(entity, 'w\\d+t\\d+[abc]?'))
              AS rho_mean,
            any_value(value) FILTER (quantity = 'closing_price' AND entity = 'market') AS closing
        FROM logs WHERE federate = 'amm' GROUP BY "window" ORDER BY "window" """) for r in runs]
    table = _side_by_side(frames, labels, ["window"], "closing")
    table = table.rename(columns={lab: f"closing price ({lab})" for lab in labels} | {
        f"Δ {lab}": f"Δ closing price ({lab})" for lab in labels})
    means = _side_by_side(frames, labels, ["window"], "rho_mean", diff=False).rename(
        columns={lab: f"mean ρ_i ({lab})" for lab in labels})
    return Table("compare_prices", "AMM closing pool price and mean pool price ρ_i of the approved "
                 f"transactions per window (M/kWh). {MONEY_NOTE}",
                 frame=table.merge(means, on="window", how="outer"))


def _mcp_table(runs, labels) -> Table | None:
    if not all(r.has("mo", "mcp") for r in runs):
        return None
    frames = [r.sql(clearing_query()) for r in runs]
    mcp = _side_by_side(frames, labels, ["window", "cluster"], "mcp")
    mcp = mcp.rename(columns={lab: f"MCP ({lab})" for lab in labels} | {
        f"Δ {lab}": f"Δ MCP ({lab})" for lab in labels})
    mcv = _side_by_side(frames, labels, ["window", "cluster"], "mcv_kwh").rename(
        columns={lab: f"MCV kWh ({lab})" for lab in labels} | {
            f"Δ {lab}": f"Δ MCV kWh ({lab})" for lab in labels})
    areas = _side_by_side(frames, labels, ["window", "cluster"], "area", diff=False).rename(
        columns={lab: f"area ({lab})" for lab in labels})
    table = mcp.merge(mcv, on=["window", "cluster"]).merge(areas, on=["window", "cluster"])
    return Table("compare_clearing", "Auction clearing price (M/kWh), volume and price area per "
                 "cluster and window.", frame=table)


def _bills_table(runs, labels) -> Table | None:
    if not all(r.has("pt", "bill") for r in runs):
        return None
    frames = [r.sql(bills_query()) for r in runs]
    table = _side_by_side(frames, labels, ["cycle_end_window", "prosumer"], "bill")
    table = table.rename(columns={lab: f"bill M ({lab})" for lab in labels} | {
        f"Δ {lab}": f"Δ bill M ({lab})" for lab in labels})
    return Table("compare_bills", "Each prosumer's decrypted billing-cycle bill per run (M) and "
                 "its difference from the first run.", frame=table)


