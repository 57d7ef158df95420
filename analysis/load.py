"""Reading a run folder's tidy logs into one DataFrame."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from lemcosim.federates.common.errors import LemcosimError
from lemcosim.federates.common.tidylog import COLUMNS


def load_run(run_dir: str | Path) -> pd.DataFrame:
    """Every federate's log rows: columns time_s, window, substep, federate, entity, quantity,
    value, unit (`value` numeric where it is a number; text values are kept in `text`)."""
    logs = Path(run_dir) / "logs"
    files = sorted(logs.glob("*.csv"))
    if not files:
        raise LemcosimError(f"{run_dir}: no logs (expected {logs}/<federate>.csv)")
    frames = []
    for path in files:
        # a run killed during a write may leave a last partial line: skip it, keep the rest
        frame = pd.read_csv(path, dtype={"entity": str, "quantity": str, "unit": str,
                                         "federate": str, "value": str},
                            on_bad_lines="skip", keep_default_na=False)
        missing = set(COLUMNS) - set(frame.columns)
        if missing:
            raise LemcosimError(f"{path}: not a lemcosim log (missing columns {sorted(missing)})")
        frames.append(frame)
    df = pd.concat(frames, ignore_index=True)
    df["time_s"] = pd.to_numeric(df["time_s"], errors="coerce")
    df["window"] = pd.to_numeric(df["window"], errors="coerce").astype("Int64")
    df["substep"] = pd.to_numeric(df["substep"], errors="coerce").astype("Int64")
    df = df.dropna(subset=["time_s", "window"])
    df["text"] = df["value"]
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    df.loc[df["value"].notna(), "text"] = ""
    return df.reset_index(drop=True)


def run_metadata(run_dir: str | Path) -> dict:
    """Resolved scenario and versions stored beside the logs."""
    import yaml

    run_dir = Path(run_dir)
    meta: dict = {}
    scenario = run_dir / "scenario.yaml"
    if scenario.exists():
        meta["scenario"] = yaml.safe_load(scenario.read_text())
    versions = run_dir / "versions.json"
    if versions.exists():
        meta["versions"] = json.loads(versions.read_text())
    return meta
