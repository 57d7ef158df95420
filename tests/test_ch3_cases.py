"""The chapter-3 AMM case studies: each runs with one command and shows its phenomenon."""

from __future__ import annotations

import pytest
from helpers import assert_no_process_left, lemcosim
from reference_results import assert_same_results

from lemcosim.analysis import load_run

pytestmark = pytest.mark.federation


@pytest.mark.parametrize("network", ["ieee33", "cigre_lv", "ieee123"])
@pytest.mark.parametrize("case", [1, 2, 3])
def test_case_study(network, case, run_dir):
    proc = lemcosim("run", f"ch3_{network}_case{case}", "--out", str(run_dir), "--no-progress",
                    "--analyze")
    assert proc.returncode == 0, proc.stderr
    assert_no_process_left(run_dir)
    df = load_run(run_dir)
    amm = df[df.federate == "amm"]
    reasons = amm[amm.quantity == "reason"].text.tolist()
    dso = [r for r in reasons if r.startswith("DSO:")]
    violations = df[(df.federate == "grid") & (df.quantity == "violation")]
    if case == 1:
        # no approval: every transaction executes, and the grid's final solve shows the violation
        assert not dso
        assert not violations[violations.substep > 1].empty
    else:
        # with approval: at least one transaction refused by a network constraint, none executed
        assert dso and any(c in dso[0] for c in ("v_min", "v_max", "vuf_max", "loading_max"))
        assert violations[violations.substep > 1].empty
    prices = amm[amm.quantity.isin(["rho", "rho_eff"])].pivot_table(
        index="entity", columns="quantity", values="value")
    compensated = (prices.rho_eff - prices.rho).abs() > 1e-12
    # only case 3 charges ΔLoss_i·ρ_LP^i: ρ_eff departs from ρ; otherwise they coincide
    assert compensated.any() if case == 3 else not compensated.any()
    for name in ("amm_token_status.md", "amm_transactions.md", "amm_prices.png"):
        assert (run_dir / "analysis" / name).exists(), name
    # batched approval decides exactly as one query per transaction did (tests/data/reference_*)
    assert_same_results(run_dir, f"ch3_{network}_case{case}")
