"""The auction's five roles in a real federation (512-bit keys: the explicit test flag)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_no_process_left, lemcosim

from lemcosim.analysis import load_run

pytestmark = pytest.mark.federation
SHORT_KEYS = ["--set", "auction.key_bits=512", "--set", "auction.allow_short_keys=true"]


def run(case: str, run_dir: Path, *extra: str):
    proc = lemcosim("run", case, "--out", str(run_dir), "--no-progress", *SHORT_KEYS, *extra,
                    timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert_no_process_left(run_dir)
    return load_run(run_dir)


def test_congested_cable_splits_price_areas_and_bills_match(run_dir):
    df = run("ch6_cigre_lv_congested", run_dir)
    dso = df[df.federate == "dso"]
    areas = dso[dso.quantity == "price_areas"].value
    assert (areas == 2).any()  # the R4-R5 limit binds: two price areas
    mo = df[(df.federate == "mo") & (df.quantity == "mcp")]
    split = mo.pivot_table(index="window", columns="entity", values="value")
    assert (split["c_up"] > split["c_end"]).any()  # the importing side pays more
    assert (split["c_mid"] == split["c_end"]).all()  # same side of the cable, same price
    # the AC flow the trades cause on R4-R5 after the split, per window: within its 15 kW limit
    # and at most 0.5 % below it (the exchange is ~15/1.035 kW: the cable's AC PTDF is ~-1.035)
    line = dso[dso.entity == "r4-r5"].pivot_table(index="window", columns="quantity",
                                                  values="value")
    assert len(line) == 24 and (line.limit_kw == 15).all()
    assert (line.flow_kw.abs() <= line.limit_kw).all()
    congested = line[line.exchange_kw.notna()]
    assert len(congested) > 0
    assert (congested.flow_kw.abs() >= 0.995 * congested.limit_kw).all()
    assert (congested.exchange_kw < 15 / 1.02).all()  # less than the limit: |PTDF| > 1
    # the 24-window encrypted settlement: every bill equals the prosumer's own plaintext record
    pt = df[df.federate == "pt"]
    bills = pt.pivot_table(index="entity", columns="quantity", values="value")
    assert len(bills) == 60
    assert np.allclose(bills["bill"], bills["own_record"], atol=1e-9)
    assert (bills["bill"].abs() > 0).sum() > 30


def test_uncongested_case_has_one_price(run_dir):
    df = run("ch6_cigre_lv_uncongested", run_dir, "--set", "time.windows=4",
             "--set", "auction.cycle_windows=4", "--set", "auction.keys_per_cycle=2")
    areas = df[(df.federate == "dso") & (df.quantity == "price_areas")].value
    assert (areas == 1).all()


def test_cc_mo_dso_see_no_individual_value(run_dir):
    """Every message and log line of CC, MO and DSO is searched for each prosumer's individual
    bid quantities (3-decimal kWh, as the PT builds them) and per-window positions."""
    df = run("ch6_cigre_lv_congested", run_dir, "--set", "time.windows=4",
             "--set", "auction.cycle_windows=4", "--set", "auction.keys_per_cycle=2",
             "--set", "auction.audit_messages=true", "--set", "prosumers.log_members=true")
    positions = df[(df.federate == "prosumers") & (df.quantity == "e_kwh")]
    levels, elasticity = 10, 0.5
    ramp = np.linspace(0, 1, levels)
    individual: set[str] = set()
    for e in positions.value:
        q = min(abs(e), 10.0)
        curve = q * (1 - elasticity * ramp) if e < 0 else q * (1 - elasticity + elasticity * ramp)
        individual |= {f"{v:.3f}" for v in np.round(curve, 3)}
        individual.add(f"{abs(e):.6f}")
    aggregates = df[(df.federate == "mo") & df.quantity.str.startswith("aggregate_")].value
    shared = {f"{v:.3f}" for v in aggregates}  # an aggregate may equal one member's value
    secret = {v for v in individual - shared if float(v) > 0.001}
    assert len(secret) > 100
    pattern = re.compile(r"(?<![\d.])(" + "|".join(re.escape(v) for v in secret) + r")(?![\d])")
    checked = 0
    for path in sorted((run_dir / "logs").iterdir()):
        if path.name.split(".")[0] not in ("cc_c_up", "cc_c_mid", "cc_c_end", "mo", "dso"):
            continue
        # a federate's Parquet log is read back as text: numbers rendered as they were logged
        text = (load_run(run_dir, [path.name]).to_csv() if path.is_dir()
                else path.read_bytes().decode("utf-8", errors="replace"))
        checked += len(text)
        found = pattern.search(text)
        assert found is None, f"{path.name} contains the individual value {found.group(0)}"
    assert checked > 10_000  # messages (ciphertexts, aggregates) and logs were really read
    messages = [json.loads(line) for line in (run_dir / "logs" / "cc_c_up.messages.jsonl")
                .read_text().splitlines()]
    assert {json.loads(m["text"])["type"] for m in messages} >= {"bids", "aggregate", "settle"}


def test_a_cluster_below_k_min_is_refused_and_the_rest_clears(run_dir):
    # r18 alone holds 3–4 of the 60 households: with k_min = 5 its CC must refuse to aggregate
    df = run("ch6_cigre_lv_uncongested", run_dir, "--set", "time.windows=2",
             "--set", "auction.cycle_windows=2", "--set", "auction.keys_per_cycle=1",
             "--set", "auction.k_min=5",
             "--set", "auction.clusters.c_end=[r8, r9, r10, r17]",
             "--set", "auction.clusters.c_tiny=[r18]")
    tiny = df[(df.federate == "cc_c_tiny") & (df.quantity == "refused")]
    assert len(tiny) == 2 and tiny.text.str.contains("fewer than k_min = 5").all()
    cleared = df[(df.federate == "mo") & (df.quantity == "mcp")]
    assert set(cleared.entity) == {"c_up", "c_mid", "c_end"}  # everyone else still clears
    pt = df[df.federate == "pt"].pivot_table(index="entity", columns="quantity", values="value")
    assert np.allclose(pt["bill"], pt["own_record"], atol=1e-9)  # refused members pay 0


def test_bad_ciphertexts_are_rejected_by_name_and_the_window_clears(run_dir):
    df = run("ch6_cigre_lv_uncongested", run_dir, "--set", "time.windows=2",
             "--set", "auction.cycle_windows=2", "--set", "auction.keys_per_cycle=1",
             "--set", "auction.faults.malformed=[up0]", "--set", "auction.faults.wrong_key=[up1]")
    rejected = df[(df.federate == "cc_c_up") & (df.quantity == "bid_rejected")].text
    assert rejected.str.contains("prosumer up0 buy: ciphertext is not an integer|malformed").any()
    assert rejected.str.contains("prosumer up1 buy: ciphertext under key").any()
    cleared = df[(df.federate == "mo") & (df.quantity == "mcp")]
    assert set(cleared.entity) == {"c_up", "c_mid", "c_end"}


def test_kg_detects_a_terminal_that_misreports_its_cleared_energy(run_dir):
    df = run("ch6_cigre_lv_uncongested", run_dir, "--set", "time.windows=2",
             "--set", "auction.cycle_windows=2", "--set", "auction.keys_per_cycle=1",
             "--set", "auction.faults.misreport=[up0]")
    flagged = df[(df.federate == "kg") & (df.quantity == "settlement_mismatch")]
    assert set(flagged.entity) == {"c_up"}  # only up0's cluster, from aggregates alone
    assert flagged.text.str.contains("PTs reported").all()
    honest = run("ch6_cigre_lv_uncongested", run_dir.parent / "honest", "--set", "time.windows=2",
                 "--set", "auction.cycle_windows=2", "--set", "auction.keys_per_cycle=1")
    assert honest[(honest.federate == "kg") & (honest.quantity == "settlement_mismatch")].empty
