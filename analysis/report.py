"""`lemcosim analyze RUN_DIR`: one self-contained report.html (KPIs, thesis-style tables, figures
embedded), a short report.md, every table as CSV (and a Markdown preview), every figure as PNG.

Tables are streamed from DuckDB to CSV and only their first rows reach the report, so a year of
logs is analysed in bounded memory.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from pathlib import Path

import jinja2
import pandas as pd

from lemcosim.analysis import amm, auction, fsvr, monthly
from lemcosim.analysis.figures import FIGURES, Options
from lemcosim.analysis.kpi import Kpi, kpis
from lemcosim.analysis.labels import MONEY_NOTE, header
from lemcosim.analysis.load import run_metadata
from lemcosim.analysis.plots import save
from lemcosim.analysis.run import RunData
from lemcosim.analysis.tables import Table

PREVIEW_ROWS = 25
TABLES = [amm.tables, monthly.tables, fsvr.tables, auction.tables]


def summary_query() -> str:
    """Per federate and quantity: rows, windows covered, min/mean/max of its numbers."""
    return """SELECT federate, quantity, any_value(unit) AS unit, count(*) AS rows,
            count(DISTINCT "window") AS windows, count(text) AS text_rows,
            min(value) AS min, avg(value) AS mean, max(value) AS max
        FROM logs GROUP BY federate, quantity ORDER BY federate, quantity"""


def summary_table(df: pd.DataFrame) -> pd.DataFrame:
    from lemcosim.analysis.tables import frame_connection

    return frame_connection(df).execute(summary_query()).df()


@dataclass
class RenderedTable:
    stem: str
    caption: str
    rows: int
    shown: int
    truncated: bool
    headers: list[tuple[str, str]]
    cells: list[list[tuple[str, str]]]


def analyze(run_dir: Path, out_dir: Path | None = None, window: int | None = None) -> list[Path]:
    """Write the report, tables and figures of a run; returns the written paths."""
    run_dir = Path(run_dir)
    out = Path(out_dir) if out_dir else run_dir / "analysis"
    out.mkdir(parents=True, exist_ok=True)
    run = RunData.open(run_dir)
    written: list[Path] = []

    summary = Table("summary", "Logged quantities", sql=summary_query())
    written += _write_table(run, summary, out)
    indicators = kpis(run)
    pd.DataFrame([k.__dict__ for k in indicators]).to_csv(out / "kpis.csv", index=False)
    written.append(out / "kpis.csv")

    tables: list[RenderedTable] = []
    for make in TABLES:
        for table in make(run):
            written += _write_table(run, table, out)
            tables.append(render(run, table))

    figures = []
    for make in FIGURES:
        for figure in make(run, Options(window=window)):
            path = save(figure.fig, out / f"{figure.stem}.png")
            written.append(path)
            figures.append({"stem": figure.stem, "caption": figure.caption,
                            "png": base64.b64encode(path.read_bytes()).decode("ascii")})

    context = _context(run, indicators, tables, figures, render(run, summary, limit=10_000))
    html = environment().get_template("report.html.j2").render(**context)
    (out / "report.html").write_text(html, encoding="utf-8")
    written.append(out / "report.html")
    (out / "report.md").write_text(markdown_report(context), encoding="utf-8")
    written.append(out / "report.md")
    return written


def render(run: RunData, table: Table, limit: int = PREVIEW_ROWS) -> RenderedTable:
    rows = table.rows(run)
    preview = table.preview(run, limit)
    units = table.units or {}
    kinds = {c: "num" if pd.api.types.is_numeric_dtype(preview[c])
             and not pd.api.types.is_bool_dtype(preview[c]) else "text" for c in preview.columns}
    headers = [(header(c, units.get(c)), kinds[c]) for c in preview.columns]
    cells = [[(fmt(v), kinds[c]) for c, v in zip(preview.columns, row, strict=True)]
             for row in preview.itertuples(index=False)]
    return RenderedTable(table.stem, table.caption, rows, len(preview), rows > len(preview),
                         headers, cells)


def fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _write_table(run: RunData, table: Table, out: Path) -> list[Path]:
    csv_path, md_path = out / f"{table.stem}.csv", out / f"{table.stem}.md"
    table.write_csv(run, csv_path)
    rendered = render(run, table, limit=50)
    md_path.write_text(markdown_table(rendered))
    return [csv_path, md_path]


def markdown_table(t: RenderedTable) -> str:
    head = "| " + " | ".join(h for h, _ in t.headers) + " |"
    rule = "|" + "|".join("---:" if kind == "num" else "---" for _, kind in t.headers) + "|"
    rows = ["| " + " | ".join(c.replace("|", "/") for c, _ in row) + " |" for row in t.cells]
    more = [f"\n… {t.rows - t.shown} more rows in {t.stem}.csv"] if t.truncated else []
    return "\n".join([head, rule, *rows, *more]) + "\n"


def _shown(k: Kpi) -> str:
    if isinstance(k.value, str):
        return k.value
    if k.unit == "count":
        return f"{k.value:,.0f}"
    return f"{k.value:,.4g}" if abs(k.value) < 1e4 else f"{k.value:,.0f}"


def _context(run: RunData, indicators: list[Kpi], tables, figures, summary) -> dict:
    meta_versions = run_metadata(run.path).get("versions", {})
    end = run.time_of([run.windows])[0]
    return {
        "title": f"lemcosim run report: {run.name}",
        "description": str(run.scenario.get("description", "")).strip(),
        "period": f"{run.windows} window(s) of {run.window_s / 60:g} min, "
                  f"{run.start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}",
        "versions": ", ".join(f"{k} {' '.join(str(v).split())}" for k, v in meta_versions.items()),
        "kpis": [dict(k.__dict__, shown=_shown(k)) for k in indicators],
        "tables": tables,
        "figures": figures,
        "summary": summary,
        "money_note": MONEY_NOTE if run.federates() & {"amm", "mo", "pt"} else "",
    }


def markdown_report(context: dict) -> str:
    """The short Markdown report: KPIs, then where the tables and figures are."""
    lines = [f"# {context['title']}", "", context["description"], "", context["period"], ""]
    if context["versions"]:
        lines += [f"Versions: {context['versions']}", ""]
    lines += ["## Key performance indicators", ""]
    if context["kpis"]:
        lines += ["| group | KPI | value | unit |", "|---|---|---:|---|"]
        lines += [f"| {k['group']} | {k['name']} | {k['shown']} | {k['unit']} |"
                  for k in context["kpis"]]
    else:
        lines.append("No market, grid or auction quantities logged.")
    lines += ["", context["money_note"], "## Tables", ""]
    lines += [f"- [{t.stem}.csv]({t.stem}.csv) ({t.rows} rows): {t.caption}"
              for t in context["tables"]]
    lines += ["", "## Figures", ""]
    lines += [f"- [{f['stem']}.png]({f['stem']}.png): {f['caption']}" for f in context["figures"]]
    lines += ["", "The full report with every table and figure: [report.html](report.html).", ""]
    return "\n".join(lines)


def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
        autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined)
