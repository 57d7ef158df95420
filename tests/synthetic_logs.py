"""Synthetic run folders for the analysis tests: the logs a federation would write (same schema,
same federate names and quantities), built with pyarrow in one go so that a year-long run takes
seconds instead of a year-long federation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from lemcosim.federates.common.logschema import SCHEMA, part_name

WINDOW_S = 900.0


class Rows:
    """Columns of one federate's log, appended in bulk."""

    def __init__(self) -> None:
        self.cols: dict[str, list] = {c: [] for c in SCHEMA.names}

    def add(self, window, entity, quantity, value=None, text=None, unit="", time_s=None,
            federate="") -> None:
        window = np.atleast_1d(np.asarray(window))
        time_s = window * WINDOW_S if time_s is None else time_s
        columns = {"window": window, "time_s": time_s, "substep": 0, "entity": entity,
                   "quantity": quantity, "value": value, "text": text, "unit": unit,
                   "federate": federate}
        arrays = np.broadcast_arrays(*(np.asarray(v, dtype=object) for v in columns.values()))
        for column, values in zip(columns, arrays, strict=True):
            self.cols[column].extend(np.atleast_1d(values).tolist())

    def write(self, logs: Path, federate: str) -> None:
        folder = logs / federate
        folder.mkdir(parents=True, exist_ok=True)
        self.cols["federate"] = [federate] * len(self.cols["window"])
        table = pa.table({c: pa.array(self.cols[c], SCHEMA.field(c).type) for c in SCHEMA.names},
                         schema=SCHEMA)
        pq.write_table(table, folder / part_name(0))


def synthetic_run(path: Path, windows: int, bus_phases: int = 12, tx_per_window: int = 3) -> Path:
    """A run folder with prosumers, grid, AMM (with FSVR-assisted approvals), auction and a ch4
    study, `windows` windows long, starting 2026-01-01 00:00."""
    logs = path / "logs"
    logs.mkdir(parents=True)
    (path / "scenario.yaml").write_text(yaml.safe_dump({
        "name": path.name, "description": "synthetic logs for the analysis tests",
        "time": {"window_s": WINDOW_S, "windows": windows, "start": "2026-01-01T00:00:00"},
        "grid": {"limits": {"v_min_pu": 0.95, "v_max_pu": 1.05, "vuf_max_pct": 2.0,
                            "loading_max_pct": 100.0}},
        "auction": {"levels": 4, "fit": 0.08, "retail": 0.3}}))
    (path / "versions.json").write_text(json.dumps({"lemcosim": "test"}))
    w = np.arange(windows)
    day = np.sin(2 * np.pi * (w % 96) / 96)

    pros = Rows()
    pros.add(w, "population", "net_kw", value=20 * day, unit="kW")
    pros.write(logs, "prosumers")

    grid = Rows()
    for b in range(bus_phases):
        grid.add(w, f"6{b:02d}.{'abc'[b % 3]}", "v_pu",
                 value=1.0 + 0.06 * day * (b + 1) / bus_phases,
                 unit="pu")
    grid.add(w, "feeder", "losses_kw", value=10 + 5 * day ** 2, unit="kW")
    grid.add(w, "feeder", "max_vuf_pct", value=1.4 + day, unit="%")
    grid.add(w, "feeder", "max_line_loading_pct", value=60 + 30 * day, unit="%")
    grid.write(logs, "grid")

    amm = Rows()
    for q, value, unit in (("opening_price", 0.15 + 0 * w, "M/kWh"),
                           ("closing_price", 0.16 + 0.01 * day, "M/kWh"),
                           ("volume_kwh", 5 + 0 * w, "kWh"), ("utility_kwh", 0 * w, "kWh"),
                           ("approved", tx_per_window - 1 + 0 * w, "count"),
                           ("rejected", 1 + 0 * w, "count")):
        amm.add(w, "market", q, value=value, unit=unit)
    amm.add(w, "es1", "es_cont_kwh", value=2.0 + 0 * w, unit="kWh")
    for t in range(tx_per_window):
        tx = [f"w{i}t{t}" for i in w]
        approved = t > 0
        amm.add(w, tx, "approved", value=float(approved), unit="1/0")
        amm.add(w, tx, "side", text="buy")
        amm.add(w, tx, "prosumer", text=f"h{t}")
        amm.add(w, tx, "bus", text="675.a")
        amm.add(w, tx, "e_kwh", value=2.5, unit="kWh")
        amm.add(w, tx, "v_min", value=0.96 - 0.02 * (not approved))
        if approved:
            amm.add(w, tx, "rho", value=0.15 + 0.001 * t, unit="M/kWh")
            amm.add(w, tx, "rho_eff", value=0.152 + 0.001 * t, unit="M/kWh")
            amm.add(w, tx, "rho_es", value=0.15 + 0.001 * t, unit="M/kWh")
            for a in ("a1", "b2", "c3"):
                amm.add(w, tx, f"alpha_{a}", value=1.0 + 0.01 * t, unit="pu")
        else:
            amm.add(w, tx, "reason", text="DSO: v_min at 675.a: 0.94")
    amm.write(logs, "amm")

    mo = Rows()
    for c, cluster in enumerate(("c_up", "c_mid", "c_end")):
        mo.add(w, cluster, "mcp", value=0.08 + 0.22 * (c == 0) + 0 * w, unit="M/kWh")
        mo.add(w, cluster, "mcv_kwh", value=3.0 + c + 0 * w, unit="kWh")
        mo.add(w, cluster, "area", value=float(c == 0) + 0 * w)
        first = w[: min(windows, 4)]  # curves of a few windows
        for level in range(4):
            mo.add(first, cluster, f"aggregate_buy_{level}", value=8.0 - level, unit="kWh")
            mo.add(first, cluster, f"aggregate_sell_{level}", value=2.0 + 2 * level, unit="kWh")
    mo.write(logs, "mo")

    pt = Rows()
    pt.add(windows - 1, ["up0", "mid0", "end0"], "bill", value=[1.5, -0.5, -0.25], unit="M")
    pt.add(windows - 1, ["up0", "mid0", "end0"], "own_record", value=[1.5, -0.5, -0.25], unit="M")
    pt.write(logs, "pt")

    ctl = Rows()
    for i, entity in enumerate(("svr:sensitivity", "fsvr:gwo")):
        history = [[f, 10.0 / (f + 1) + i] for f in range(0, 50, 5)]
        ctl.add(0, entity, "history", text=json.dumps(history))
        ctl.add(0, entity, "flows", value=50.0, unit="count")
        ctl.add(0, entity, "feasible", value=1.0, unit="1/0")
        ctl.add(0, entity, "losses_kw", value=100.0 - i, unit="kW")
    ctl.add(0, "none:base", "losses_kw", value=110.0, unit="kW")
    ctl.add(0, "none:base", "flows", value=1.0, unit="count")
    ctl.write(logs, "fsvr_controller")
    return path
