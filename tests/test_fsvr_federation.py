"""The FSVR driven over HELICS: lemcosim's controller, and the external example (helics + numpy
only) started as a separate process."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from helpers import assert_no_process_left, lemcosim, run_with_external

from lemcosim.analysis import load_run
from lemcosim.federates.grid.model import GridModel

pytestmark = pytest.mark.federation
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "external_fsvr_controller.py"


def device_settings(run_dir: Path) -> list[dict]:
    df = load_run(run_dir)
    rows = df[(df.federate == "grid") & (df.entity == "device") & (df.quantity == "setting")]
    return [json.loads(t) for t in rows.sort_values("time_s").text]


def test_own_controller_brings_the_feeder_inside_the_band_below_the_published_svr_vuf(run_dir):
    # IEEE 13 at full load with the FSVR at A = 0 in window 0: 611.c at 0.906 pu, VUF 2.50 % (675).
    # The controller measures the feeder and commands A from window 1 on; the feeder is then inside
    # 0.95–1.05 pu (measured: 0.9545–1.0499) at a VUF (1.39 %) below what the published SVR gives
    # on the same injections (2.11 %, and that SVR leaves rg60.c at 1.069 pu).
    proc = lemcosim("run", "fsvr_correction", "--set", "time.windows=3", "--out", str(run_dir),
                    "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert_no_process_left(run_dir)
    df = load_run(run_dir)
    ctl = df[df.federate == "fsvr_controller"]
    assert ctl[ctl.quantity == "accepted"].value.tolist() == [1.0, 1.0]  # w0, w1 acknowledged
    settings = device_settings(run_dir)
    assert settings[0]["alpha"] == [[0.0] * 3] * 3  # window 0: the neutral setting
    levels = {round(k * 0.025, 6) for k in range(-4, 5)}
    assert all(round(a, 6) in levels for row in settings[-1]["alpha"] for a in row)
    grid = df[df.federate == "grid"]
    v = grid[grid.quantity == "v_pu"].groupby("window").value
    vuf = grid[(grid.entity == "feeder") & (grid.quantity == "max_vuf_pct")].set_index("window").value
    assert v.min()[0] < 0.91 and vuf[0] > 2.4  # uncorrected
    svr = GridModel("ieee13", regulators="published")
    pros = df[(df.federate == "prosumers") & df.quantity.isin(["p_kw", "q_kvar"])
              & df.entity.str.contains(".", regex=False)]
    for window in (1, 2):
        assert 0.95 <= v.min()[window] and v.max()[window] <= 1.05
        rows = pros[pros.window == window]
        injections: dict[str, list[float]] = {}
        for r in rows.itertuples():
            injections.setdefault(r.entity, [0.0, 0.0])[r.quantity == "q_kvar"] = r.value
        svr.set_injections(injections)
        published = svr.solve()
        assert vuf[window] < published.vuf_pct.max() - 0.5
        assert published.magnitude().max() > 1.05  # the published SVR is not inside the band


def test_external_example_drives_the_fsvr(run_dir):
    runner, external = run_with_external(
        ["fsvr_external", "--set", "time.windows=3", "--set", "helics.external_timeout_s=60"],
        run_dir, "fsvr_controller", [sys.executable, str(EXAMPLE)])
    assert runner.returncode == 0, runner.stderr
    assert external.returncode == 0, external.stderr
    assert "setting w0 accepted=True" in external.stdout
    assert_no_process_left(run_dir)
    settings = device_settings(run_dir)
    assert len(settings) == 3 and settings[0]["alpha"] == [[0.0] * 3] * 3


def test_the_example_imports_neither_lemcosim_nor_more_than_helics_and_numpy():
    imports = [line.split()[1] for line in EXAMPLE.read_text().splitlines()
               if line.startswith(("import ", "from "))]
    assert set(imports) <= {"itertools", "json", "sys", "helics", "numpy"}
