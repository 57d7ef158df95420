"""Chapter 5: the three-phase AMM on IEEE 13 without and with FSVR-assisted approval."""

from __future__ import annotations

import pytest
from helpers import assert_no_process_left, lemcosim

from lemcosim.analysis import load_run
from lemcosim.analysis.amm import transactions

pytestmark = pytest.mark.federation


def run(case: str, run_dir) -> tuple:
    proc = lemcosim("run", case, "--out", str(run_dir), "--no-progress", "--analyze", timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert_no_process_left(run_dir)
    return transactions(load_run(run_dir)).set_index("transaction")


@pytest.mark.parametrize("trades", ["all_buyer", "all_seller"])
def test_fsvr_makes_rejected_trades_feasible(trades, tmp_path):
    without = run(f"ch5_ieee13_{trades}_no_fsvr", tmp_path / "without")
    with_fsvr = run(f"ch5_ieee13_{trades}_fsvr", tmp_path / "with")
    rejected = without[~without.approved]
    assert len(rejected) >= 1 and rejected.reason.str.startswith("DSO:").all()
    rescued = with_fsvr.loc[rejected.index]
    assert rescued.approved.any()  # trades the feeder refused are accepted with the FSVR
    assert with_fsvr.approved.sum() > without.approved.sum()
    assisted = with_fsvr[with_fsvr.get("alpha_a1").notna()] if "alpha_a1" in with_fsvr else None
    assert assisted is not None and len(assisted) >= 1
    levels = {round(k * 0.025, 6) for k in range(-4, 5)}
    for column in [c for c in with_fsvr.columns if c.startswith("alpha_")]:
        assert {round(float(v), 6) for v in assisted[column]} <= levels  # nine hardware levels
    if trades == "all_seller":
        assert rejected.reason.str.contains("v_max").any()  # sellers push voltages over V_max
    else:
        assert rejected.reason.str.contains("v_min").all()  # buyers pull voltages under V_min
    # with the FSVR the approved trades leave the binding voltage better than the refused ones
    approved = with_fsvr[with_fsvr.approved]
    if trades == "all_buyer":
        assert approved.v_min.astype(float).min() > rejected.v_min.astype(float).min()
    else:
        assert approved.v_max.astype(float).max() < rejected.v_max.astype(float).max()


def test_a_pool_per_phase(run_dir):
    proc = lemcosim("run", "ch5_ieee13_balanced_no_fsvr", "--set", "amm.pool_per_phase=true",
                    "--out", str(run_dir), "--no-progress", "--analyze", timeout=240)
    assert proc.returncode == 0, proc.stderr
    from lemcosim.analysis.amm import token_status

    df = load_run(run_dir)
    status = token_status(df)
    # each phase's pool gets a third of both ESUs: three pools × two additions
    assert sorted(status["after addition"]) == sorted(
        f"{p}:add{j}:{e}.{p}" for p in "abc" for j, e in ((1, "es632"), (2, "es633")))
    assert status.groupby(status["after addition"].str[0])["E_LP"].max().nunique() == 1
    tx = transactions(df)
    # the three-phase 20 kWh sale at 675 became three 6.667 kWh trades, one per pool
    split = tx[tx.transaction.str.startswith("w0t0")]
    assert sorted(split.transaction) == ["w0t0a", "w0t0b", "w0t0c"]
    assert split.e_kwh.astype(float).tolist() == pytest.approx([20 / 3] * 3)
