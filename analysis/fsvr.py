"""Chapter-4 study tables and the quality-versus-power-flows figure."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from lemcosim.analysis import plots

_COLUMNS = ["losses_kw", "loss_saving_pct", "vuf_max_pct", "vuf_reduction_pct", "objective",
            "flows", "lambda_max", "lambda_flows", "setting"]


def study_table(df: pd.DataFrame) -> pd.DataFrame:
    rows = df[(df["federate"] == "fsvr_controller") & (df["quantity"] != "history")]
    rows = rows[rows["entity"].str.contains(":", na=False) | (rows["entity"] == "base")]
    if rows.empty or not (rows["quantity"] == "flows").any():
        return pd.DataFrame()
    rows = rows.assign(cell=rows["value"].where(rows["value"].notna(), rows["text"]))
    table = rows.pivot_table(index="entity", columns="quantity", values="cell",
                             aggfunc="last").reset_index()
    table.columns.name = None
    order = {"base": 0, "svr": 1, "fsvr": 2, "upfc": 3, "sensitivity": 0, "coordinate": 1, "gwo": 2}
    table["_o"] = table["entity"].map(
        lambda e: tuple(order.get(part, 9) for part in (e.split(":") + [""])[:2]))
    table = table.sort_values("_o").drop(columns="_o").rename(columns={"entity": "device:method"})
    return table[["device:method"] + [c for c in _COLUMNS if c in table.columns]]


def tables(df: pd.DataFrame) -> Iterator[tuple[str, str, pd.DataFrame]]:
    table = study_table(df)
    if not table.empty:
        yield ("ch4_study", "Optimal device settings: loss, VUF, loadability against the base case",
               table)


def convergence(df: pd.DataFrame, out: Path) -> Iterator[tuple[Path, str]]:
    rows = df[(df["federate"] == "fsvr_controller") & (df["quantity"] == "history")]
    if rows.empty:
        return
    fig, ax = plt.subplots(figsize=(8, 4))
    for entity, text in zip(rows["entity"], rows["text"], strict=True):
        history = json.loads(text)
        ax.step([h[0] for h in history], [h[1] for h in history], where="post", label=entity)
    ax.set_yscale("symlog")
    path = plots.finish(fig, ax, out / "ch4_convergence.png",
                        "Solution quality against the number of power flows", "power flows",
                        "best objective (with voltage penalty)")
    yield path, "Optimiser quality against power flows"
