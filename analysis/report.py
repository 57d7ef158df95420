"""`lemcosim analyze RUN_DIR`: summary tables (CSV + Markdown), figures (PNG) and one report page."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lemcosim.analysis.load import load_run, run_metadata


def summary_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per federate and quantity: rows, windows covered, and min/mean/max of numeric values."""
    numeric = df[df["value"].notna()]
    grouped = numeric.groupby(["federate", "quantity", "unit"], dropna=False)["value"]
    table = grouped.agg(rows="count", min="min", mean="mean", max="max").reset_index()
    windows = numeric.groupby(["federate", "quantity", "unit"], dropna=False)["window"].nunique()
    return table.merge(windows.rename("windows").reset_index(), on=["federate", "quantity", "unit"])


def analyze(run_dir: Path, out_dir: Path | None = None) -> list[Path]:
    """Write every table and figure this run's logs allow; returns the written paths."""
    run_dir = Path(run_dir)
    out = out_dir or run_dir / "analysis"
    out.mkdir(parents=True, exist_ok=True)
    df = load_run(run_dir)
    written: list[Path] = []
    sections: list[str] = []

    summary = summary_table(df)
    written += _write_table(summary, out / "summary")
    sections.append("## Summary of logged quantities\n\n" + markdown_table(summary))

    from lemcosim.analysis.figures import FIGURES, TABLES

    for make_tables in TABLES:
        for stem, caption, table in make_tables(df):
            written += _write_table(table, out / stem)
            sections.append(f"## {caption}\n\n" + markdown_table(table))

    for make in FIGURES:
        for path, caption in make(df, out):
            written.append(path)
            sections.append(f"## {caption}\n\n![{caption}]({path.name})")

    meta = run_metadata(run_dir)
    header = [f"# lemcosim run report: {meta.get('scenario', {}).get('name', run_dir.name)}", ""]
    if "versions" in meta:
        header.append("Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()))
    report = out / "report.md"
    report.write_text("\n".join(header) + "\n\n" + "\n\n".join(sections) + "\n")
    written.append(report)
    return written


def _write_table(table: pd.DataFrame, stem: Path) -> list[Path]:
    csv_path, md_path = stem.with_suffix(".csv"), stem.with_suffix(".md")
    table.to_csv(csv_path, index=False)
    md_path.write_text(markdown_table(table))
    return [csv_path, md_path]


def markdown_table(table: pd.DataFrame) -> str:
    """A GitHub-style Markdown table (no extra dependency)."""
    def fmt(v):
        return f"{v:.6g}" if isinstance(v, float) else str(v).replace("|", "/")

    head = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    rows = ["| " + " | ".join(fmt(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([head, rule, *rows]) + "\n"
