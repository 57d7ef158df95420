"""Analysis of run folders: KPIs from hand-checked numbers, figures that render for 1 window, a
day and a year, the self-contained report, and the comparison of runs (synthetic logs: see
synthetic_logs.py; the shipped studies' reports are exercised by their own tests)."""

from __future__ import annotations

import re
import subprocess
import sys

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import pandas as pd
import pytest
from helpers import HELICS_BOUND_90S, lemcosim
from synthetic_logs import synthetic_run

from lemcosim.analysis.figures import FIGURES, Options
from lemcosim.analysis.kpi import kpis, rejection_causes
from lemcosim.analysis.run import RunData

YEAR = 35_040


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("synthetic")
    return {n: synthetic_run(base / f"w{n}", n) for n in (1, 96, YEAR)}


def test_kpis_are_the_hand_computed_aggregates(runs):
    # 96 windows of 15 min, 3 transactions each (t0 refused for v_min, t1 and t2 approved),
    # 5 kWh through the pool and 2 kWh delivered by the ESU per window
    run = RunData.open(runs[96])
    got = {k.name: (k.value, k.unit) for k in kpis(run)}
    assert got["energy traded through the pool"] == (pytest.approx(96 * 5.0), "kWh")
    assert got["transactions approved"] == (pytest.approx(100 * 2 / 3), "%")
    assert got["rejections: v_min"] == (96.0, "count")
    # ESU revenue: Σ 2 kWh × closing price (0.16 + 0.01 sin) = 2 × 0.16 × 96 (the sine sums to 0)
    assert got["ESU revenue"] == (pytest.approx(2 * 0.16 * 96, rel=1e-9), "M")
    # losses 10 + 5 sin² kW over 24 h: mean 12.5 kW → 300 kWh
    assert got["feeder losses"] == (pytest.approx(300.0, rel=1e-9), "kWh")
    # the top bus·phase is 1 + 0.06 sin(2πw/96): beyond 1.05 pu while sin > 5/6, i.e.
    # 15.05 < w < 32.95 (w = 16..32), and below 0.95 pu for w = 64..80: 34 windows × 0.25 h
    assert got["time outside the voltage band"] == (pytest.approx(34 * 0.25), "h")
    # max VUF 1.4 + sin % exceeds 2 % while sin > 0.6: 9.83 < w < 38.17, 29 windows × 0.25 h
    assert got["time above the VUF limit"] == (pytest.approx(29 * 0.25), "h")
    assert got["MCP, area 1"] == (pytest.approx(0.30), "M/kWh")
    assert got["MCV, area 0"] == (pytest.approx(96 * (4.0 + 5.0)), "kWh")
    assert got["largest |bill − own record|"] == (0.0, "M")


def test_rejections_are_counted_per_binding_constraint():
    reasons = pd.Series(["DSO: v_min at 675.a: 0.94", "DSO: vuf_max at 675: 2.1; v_min at 611.c: 0.9",
                         "price 0.31 above the buyer's limit 0.3", "price 0.35 above the buyer's limit 0.3"])
    assert rejection_causes(reasons).to_dict() == {
        "v_min": 2, "price # above the buyer's limit #": 2, "vuf_max": 1}


EXPECTED = {
    1: {"prosumers_net_kw", "grid_voltage_band", "grid_losses", "grid_vuf", "amm_prices",
        "amm_alpha", "ch4_convergence", "auction_mcp", "auction_curves"},
    96: {"prosumers_net_kw", "grid_voltage_band", "grid_voltage_heatmap", "grid_losses",
         "grid_vuf", "amm_prices", "amm_price_series", "amm_approvals", "amm_alpha",
         "ch4_convergence", "auction_mcp", "auction_curves"},
}
EXPECTED[YEAR] = EXPECTED[96]
TIME_AXES = {"prosumers_net_kw", "grid_losses", "grid_vuf", "amm_price_series", "amm_approvals",
             "grid_voltage_heatmap"}


@pytest.mark.parametrize("windows", [1, 96, YEAR])
def test_every_figure_draws_non_empty_axes(runs, windows):
    run = RunData.open(runs[windows])
    figures = [f for make in FIGURES for f in make(run, Options())]
    assert {f.stem for f in figures} == EXPECTED[windows]
    for figure in figures:
        for ax in figure.fig.axes:
            assert ax.has_data(), f"{figure.stem}: empty axes {ax.get_title()!r}"
        if figure.stem in TIME_AXES or (figure.stem == "grid_voltage_band" and windows > 1):
            ax = figure.fig.axes[0]
            assert isinstance(ax.xaxis.get_major_formatter(), mdates.ConciseDateFormatter)
            start, end = (mdates.num2date(x).replace(tzinfo=None) for x in ax.get_xlim())
            span_days = (end - start).total_seconds() / 86400
            assert span_days >= {1: 0.04, 96: 0.9, YEAR: 360}[windows], figure.stem
        plt.close(figure.fig)


def test_heat_map_is_centred_on_one_pu_with_the_limits_marked(runs):
    run = RunData.open(runs[96])
    (figure,) = [f for make in FIGURES for f in make(run, Options())
                 if f.stem == "grid_voltage_heatmap"]
    image = figure.fig.axes[0].images[0]
    assert image.norm.vcenter == 1.0 and image.norm.vmin < 0.95 and image.norm.vmax > 1.05
    colorbar_lines = figure.fig.axes[1].collections[-1].get_segments()
    assert sorted(round(s[0][1], 6) for s in colorbar_lines) == [0.95, 1.05]
    plt.close(figure.fig)


def test_auction_curves_are_on_the_price_axis_for_a_chosen_window(runs):
    run = RunData.open(runs[96])
    (figure,) = [f for f in next(m for m in FIGURES if m.__name__ == "auction_curves")(
        run, Options(window=2))]
    assert "window 2" in figure.caption
    ax = figure.fig.axes[0]
    x = ax.lines[0].get_xdata()
    assert list(x) == pytest.approx([0.08, 0.08 + 0.22 / 3, 0.08 + 0.44 / 3, 0.30])  # 4 levels
    assert ax.get_xlabel() == "" and figure.fig.axes[-1].get_xlabel() == "price, M/kWh"
    plt.close(figure.fig)


def test_report_is_self_contained_with_kpis_tables_and_every_figure(runs):
    out = runs[96] / "analysis"
    proc = lemcosim("analyze", str(runs[96]))
    assert proc.returncode == 0, proc.stderr
    html = (out / "report.html").read_text()
    assert html.index('id="kpis"') < html.index('id="tables"') < html.index('id="figures"')
    pngs = sorted(p.stem for p in out.glob("*.png"))
    assert pngs == sorted(EXPECTED[96])
    assert len(re.findall(r'<img src="data:image/png;base64,', html)) == len(pngs)
    assert not re.search(r"""(src|href)=["']https?:""", html)  # nothing from the network
    # long tables are previewed, with the full CSV linked; units in the headers
    assert "Showing the first 25 of 288 rows" in html and 'href="amm_transactions.csv"' in html
    assert "ρ_i [M/kWh]" in html and "E_i [kWh]" in html
    assert len(pd.read_csv(out / "amm_transactions.csv")) == 288
    markdown = (out / "report.md").read_text()
    assert len(markdown.splitlines()) < 80 and "| AMM | transactions approved | 66.67 | % |" in markdown


@pytest.mark.slow
def test_a_year_is_analysed_in_under_1_gb(runs):
    # the analysing process reports its own peak (children of this test session may be bigger)
    script = ("import resource, sys; from lemcosim.runner.cli import main; "
              f"code = main(['analyze', {str(runs[YEAR])!r}]); "
              "print('peak_kib', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(code)")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    peak_kib = int(proc.stdout.split("peak_kib")[-1])
    assert peak_kib < 1024 * 1024, f"analyze peaked at {peak_kib / 1024:.0f} MiB"


def test_compare_puts_runs_side_by_side_with_differences(tmp_path):
    a = synthetic_run(tmp_path / "a", 4)
    b = synthetic_run(tmp_path / "b", 4, tx_per_window=4)  # one more approved transaction
    out = tmp_path / "cmp"
    proc = lemcosim("compare", str(a), str(b), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    kpi = pd.read_csv(out / "compare_kpis.csv").set_index("KPI")
    assert kpi.loc["transactions approved", "a"] == pytest.approx(100 * 2 / 3)
    assert kpi.loc["transactions approved", "Δ b"] == pytest.approx(75.0 - 100 * 2 / 3)
    approvals = pd.read_csv(out / "compare_approvals.csv")
    assert len(approvals) == 16 and approvals["same decision"].sum() == 12  # t3 only in b
    assert set(approvals[approvals.transaction == "w0t0"][["a", "b"]].iloc[0]) == {"no"}
    bills = pd.read_csv(out / "compare_bills.csv")
    assert (bills["Δ bill M (b)"] == 0).all() and len(bills) == 3
    html = (out / "compare.html").read_text()
    assert "Differences (Δ) are each run minus the first run, a." in html
    bad = lemcosim("compare", str(a), "--out", str(out))
    assert bad.returncode == 2 and "at least two run folders" in bad.stderr


@pytest.mark.slow
@pytest.mark.federation
def test_one_command_compares_the_ch5_family_without_and_with_fsvr(tmp_path):
    out = tmp_path / "ch5"
    proc = lemcosim("compare", "--study", "ch5_ieee13_all_buyer", *HELICS_BOUND_90S, "--out",
                    str(out), timeout=280)
    assert proc.returncode == 0, proc.stderr
    no, fsvr = "ch5_ieee13_all_buyer_no_fsvr", "ch5_ieee13_all_buyer_fsvr"
    approvals = pd.read_csv(out / "compare_approvals.csv")
    rescued = approvals[(approvals[no] == "no") & (approvals[fsvr] == "yes")]
    # without the FSVR buyers are refused for V_min; with it every one is approved
    assert len(rescued) >= 4 and rescued[f"reason ({no})"].str.contains("v_min").all()
    assert (approvals[fsvr] == "yes").all()
    kpi = pd.read_csv(out / "compare_kpis.csv").set_index("KPI")
    assert kpi.loc["transactions approved", f"Δ {fsvr}"] > 0
    assert (out / "runs" / no / "logs").is_dir() and (out / "compare.html").exists()
    bad = lemcosim("compare", "--study", "ch5_nosuch", "--out", str(out))
    assert bad.returncode == 2 and "no such study family (known: ch3_cigre_lv" in bad.stderr
