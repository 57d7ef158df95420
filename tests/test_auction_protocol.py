"""What the KG may decrypt, cycles cut short, and thin aggregate slots, in a real federation
(512-bit keys: the explicit test flag; docs/privacy.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import assert_no_process_left, lemcosim

from lemcosim.analysis import load_run

pytestmark = pytest.mark.federation
SHORT_KEYS = ["--set", "auction.key_bits=512", "--set", "auction.allow_short_keys=true"]


def run(case: str, run_dir: Path, windows: int, cycle: int, keys: int, *extra: str):
    proc = lemcosim("run", case, "--out", str(run_dir), "--no-progress", *SHORT_KEYS,
                    "--set", f"time.windows={windows}", "--set", f"auction.cycle_windows={cycle}",
                    "--set", f"auction.keys_per_cycle={keys}", *extra, timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert_no_process_left(run_dir)
    return load_run(run_dir)


def bills(df):
    return df[df.federate == "pt"].pivot_table(index="entity", columns="quantity", values="value",
                                               aggfunc="first")


def test_a_run_shorter_than_its_cycle_settles_the_windows_it_had(run_dir):
    """3 windows of a 4-window cycle under 2 keys: the PTs close the cycle at the run's last
    window, so every bill is the exact net amount of those 3 windows (the old zero-sum masks
    left a 39,139 M bill against a −0.096 M record here)."""
    df = run("ch6_cigre_lv_congested", run_dir, 3, 4, 2)
    pt = bills(df)
    assert len(pt) == 60 and (pt["bill_windows"] == 3).all()
    assert (pt["bill"] == pt["own_record"]).all()  # both exact multiples of 1e-11 M
    assert (pt["bill"].abs() > 0).sum() > 30
    assert not df.quantity.isin(["bill_refused", "bill_disputed", "protocol_violation"]).any()
    partial = df[(df.federate == "kg") & (df.quantity == "partial_cycle")]
    assert list(partial.window) == [2]
    assert partial.text.iloc[0] == ("the run ends after 3 of cycle 0's 4 windows: the bills "
                                    "settle those 3 windows")


def test_a_forged_check_sum_is_refused_and_never_decrypted_to_a_value(run_dir):
    """CC c_up sends KG, as its check sum, one member's Enc(b_i(MCP)), Enc(s_i(MCP)): once
    admitting it covers 1 member (refused: the aggregate has more) and once claiming the
    aggregate's member count (compared blinded: a mismatch, and no value)."""
    df = run("ch6_cigre_lv_uncongested", run_dir, 2, 2, 1,
             "--set", "auction.faults.forged_cleared_sum=[c_up]")
    kg = df[df.federate == "kg"]
    members = df[(df.federate == "cc_c_up") & (df.quantity == "bids_aggregated")].value
    violations = kg[kg.quantity == "protocol_violation"]
    assert list(violations.entity) == ["cc_c_up", "cc_c_up"]  # named sender, once per window
    for text, n in zip(violations.text, members, strict=True):
        assert text == f"cc_c_up: a check sum over 1 members; the aggregate has {n:.0f}; refused"
    mismatches = kg[kg.quantity == "settlement_mismatch"]
    assert set(mismatches.entity) == {"c_up"} and len(mismatches) >= 2
    assert mismatches.text.str.contains("check sum from cc_c_up").all()
    # no number in anything the KG logged about it: the forged ciphertext was never decrypted
    assert not mismatches.text.str.contains(r"\d").any()
    assert set(kg.quantity) <= {"issued", "thin_slots", "protocol_violation",
                                "settlement_mismatch", "sent"}
    # the other clusters' checks pass, and the forgery does not touch anyone's bill
    pt = bills(df)
    assert (pt["bill"] == pt["own_record"]).all()


def test_each_role_accepts_each_message_only_from_its_protocol_sender(run_dir):
    """CC c_mid poses as the KG and sends the MO aggregate curves of 1000 kWh per level: the MO
    refuses them naming cc_c_mid, and clears on the KG's curves."""
    df = run("ch6_cigre_lv_uncongested", run_dir, 1, 1, 1,
             "--set", "auction.faults.fake_curves=[c_mid]")
    mo = df[df.federate == "mo"]
    refused = mo[mo.quantity == "protocol_violation"]
    assert list(refused.entity) == ["cc_c_mid"]
    assert refused.text.iloc[0] == ("cc_c_mid: a 'curves' message, which mo accepts only from "
                                    "kg; refused")
    curves = mo[(mo.entity == "c_mid") & mo.quantity.str.startswith("aggregate_")].value
    assert len(curves) == 20 and curves.max() <= 18 * 10  # the KG's: 18 members, <= 10 kWh each
    assert not df[df.federate != "mo"].quantity.eq("protocol_violation").any()


@pytest.mark.parametrize("mode", ["report", "suppress"])
def test_thin_aggregate_slots_are_counted_and_suppressed(run_dir, mode):
    """Window 0 of the congested case: c_up has too few sellers — 10 slots (a whole sell
    curve) with 1..k_min−1 = 1..2 non-zero contributors. `report` counts them and the MO sees
    them; `suppress` zeroes them before the MO does, and their members settle 0."""
    df = run("ch6_cigre_lv_congested", run_dir, 1, 1, 1, "--set", f"auction.thin_slots={mode}")
    thin = df[(df.federate == "kg") & (df.quantity == "thin_slots")].set_index("entity").value
    assert thin.to_dict() == {"c_end": 0, "c_mid": 0, "c_up": 10}
    mo = df[(df.federate == "mo") & (df.entity == "c_up")]
    sell = mo[mo.quantity.str.startswith("aggregate_sell_")].value
    assert len(sell) == 10
    assert (sell == 0).all() == (mode == "suppress")
    pt = bills(df)
    assert (pt["bill"] == pt["own_record"]).all()
    # the suppressed sellers' bids never reached the clearing: their record is no sale
    sellers = [p for p in pt.index if p.startswith("up")]
    revenue = pt.loc[sellers, "own_record"]
    assert ((revenue < 0).sum() == 0) == (mode == "suppress")

