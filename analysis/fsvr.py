"""Chapter-4 study table (thesis tables 4.6–4.10) and the FSVR controller's settings per window."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd

from lemcosim.analysis.tables import Table

# issue 10's columns first (the device's study bus named in vuf_bus), then what explains them
_FIRST = ["device", "method", "feasible", "losses_kw", "loss_saving_pct", "vuf_max_pct", "vuf_bus",
          "vuf_bus_pct", "v_min_pu", "v_max_pu", "lambda_max", "flows", "setting", "vuf_max_bus",
          "vuf_reduction_pct", "objective", "lambda_flows", "violations", "note"]
_TEXT = {"device", "method", "setting", "vuf_bus", "vuf_max_bus", "violations", "note"}
_ORDER = {"none": 0, "svr": 1, "fsvr": 2, "upfc": 3,
          "base": 0, "published": 1, "sensitivity": 2, "coordinate": 3, "gwo": 4}


def study_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per `device:method` of a ch4 study (federates/fsvr_controller/study.py): the base
    case (none:base), the SVR at the published taps (svr:published), each device and method;
    numbers numeric, settings and notes as text; empty if the run is no ch4 study."""
    rows = df[(df["federate"] == "fsvr_controller") & (df["quantity"] != "history")
              & df["entity"].str.contains(":", na=False)]
    if rows.empty or not (rows["quantity"] == "flows").any():
        return pd.DataFrame()
    rows = rows.assign(cell=rows["value"].astype(object).where(rows["value"].notna(), rows["text"]))
    table = rows.pivot_table(index="entity", columns="quantity", values="cell",
                             aggfunc="last").reset_index()
    table.columns.name = None
    table[["device", "method"]] = table["entity"].str.split(":", n=1, expand=True)
    table["_o"] = [(_ORDER.get(d, 9), _ORDER.get(m, 9))
                   for d, m in zip(table["device"], table["method"], strict=True)]
    table = table.sort_values("_o").reset_index(drop=True)
    table = table[[c for c in _FIRST if c in table.columns]]
    for column in table.columns.difference(list(_TEXT)):  # pivot_table leaves object columns
        table[column] = pd.to_numeric(table[column], errors="coerce")
    table["feasible"] = table["feasible"] == 1
    return table


def tables(run) -> Iterator[Table]:
    if run.has("fsvr_controller", "flows"):
        df = run.sql("""SELECT * FROM logs WHERE federate = 'fsvr_controller'
                        AND quantity <> 'history'""")
        units = (df.dropna(subset=["value"]).groupby("quantity")["unit"].first().to_dict())
        yield Table("ch4_study", "Optimal device settings per device and method against the base "
                    "case (thesis tables 4.6–4.10): losses, VUF, voltage range, loadability λ "
                    "and the power flows spent.", frame=study_table(df), units=units)
    if run.has("fsvr_controller", "alpha"):
        yield Table("fsvr_settings", "FSVR coefficients α set by the voltage-correction "
                    "controller in each window (pu; V_out,p = V_in,p + Σ_k α_pk V_in,k).",
                    sql="""PIVOT (SELECT "window", entity, value FROM logs
                           WHERE federate = 'fsvr_controller' AND quantity = 'alpha')
                           ON entity USING any_value(value) ORDER BY "window" """)
