"""Privacy-preserving double auction, pure model. Keys are 512-bit here: an explicit test flag
(allow_short_keys=True); the default and the minimum outside tests is 2048 bits."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from helpers import lemcosim, write_scenario
from pydantic import ValidationError

from lemcosim.federates.auction.aggregate import ClusterError, aggregate
from lemcosim.federates.auction.bids import Bid, BidError, encrypt_bid
from lemcosim.federates.auction.clearing import clear
from lemcosim.federates.auction.codec import QTY_SCALE, CodecError, SlotLayout, encode_qty
from lemcosim.federates.auction.config import AuctionConfig, RoleNameError, check_cluster_names
from lemcosim.federates.auction.congestion import clear_with_network
from lemcosim.federates.auction.keys import (
    Encryptor,
    KeyError_,
    add,
    generate_key_set,
    key_schedule,
)
from lemcosim.federates.auction.settlement import (
    UNITS_PER_M,
    CycleMasks,
    bill_bound_units,
    cycle_bill_units,
    net_masked_amount,
    net_units,
)

TEST_KEY_BITS = 512
CONFIGS = Path(__file__).resolve().parent.parent / "configs"


@pytest.fixture(scope="module")
def keys():
    return generate_key_set(3, TEST_KEY_BITS, allow_short_keys=True)


def test_short_keys_need_the_explicit_test_flag():
    with pytest.raises(KeyError_, match="512-bit keys are below the 2048-bit default"):
        generate_key_set(1, 512)


def test_packing_has_headroom_exactly_for_the_largest_cluster():
    # 5 levels, ≤ 10 kWh = 10 000 Wh per slot, clusters of ≤ 100: a slot must hold 10⁶ → 20 bits,
    # plus 1 guard bit = 21 bits
    layout = SlotLayout(levels=5, max_qty_kwh=10, max_cluster=100, key_bits=TEST_KEY_BITS)
    assert layout.slot_bits == 21
    full = encode_qty(np.full(5, 10.0))
    total = sum(layout.pack(full) for _ in range(100))  # the largest cluster, every slot at max
    assert list(layout.unpack(total)) == [1_000_000] * 5  # no carry into the next slot
    with pytest.raises(CodecError, match="exceeds the layout's headroom"):
        layout.check_cluster(101)
    # without headroom (a layout for single curves) the same sum carries into the next slot
    tight = SlotLayout(levels=5, max_qty_kwh=10, max_cluster=1, key_bits=TEST_KEY_BITS)
    summed = sum(tight.pack(full) for _ in range(100))
    assert list(tight.unpack(summed)) != [1_000_000] * 5
    with pytest.raises(CodecError, match="do not fit a 512-bit key"):
        SlotLayout(levels=40, max_qty_kwh=10, max_cluster=10_000, key_bits=TEST_KEY_BITS)


def test_encrypted_packed_sum_decrypts_to_the_sum_of_curves(keys):
    layout = SlotLayout(levels=4, max_qty_kwh=5, max_cluster=10, key_bits=TEST_KEY_BITS)
    enc = Encryptor(keys[0].public)
    enc.precompute(6)  # offline: obfuscators for the window
    bids = [Bid("a", np.array([3, 2, 1, 0.5]), np.array([0, 0.25, 1, 2])),
            Bid("b", np.array([1, 1, 0.5, 0]), np.array([0, 1, 2, 4.5])),
            Bid("c", np.array([2.5, 1, 0, 0]), np.array([1, 1, 1, 1]))]
    encrypted = [encrypt_bid(b, layout, enc) for b in bids]
    agg = aggregate("c1", encrypted, keys[0].public, layout)
    buy = layout.unpack(keys[0].private.raw_decrypt(agg.buy)).astype(float) / QTY_SCALE
    sell = layout.unpack(keys[0].private.raw_decrypt(agg.sell)).astype(float) / QTY_SCALE
    assert buy.tolist() == [6.5, 4.0, 1.5, 0.5] and sell.tolist() == [1.0, 2.25, 4.0, 7.5]


def test_bad_bids_and_clusters_are_named_and_the_rest_still_aggregates(keys):
    layout = SlotLayout(levels=3, max_qty_kwh=5, max_cluster=10, key_bits=TEST_KEY_BITS)
    with pytest.raises(BidError, match="prosumer x: buy curve must be non-increasing"):
        Bid("x", np.array([1, 2, 0]), np.zeros(3)).validate(layout)
    with pytest.raises(BidError, match="prosumer y: sell curve must be non-decreasing"):
        Bid("y", np.zeros(3), np.array([2, 1, 3])).validate(layout)
    with pytest.raises(BidError, match=re.escape("prosumer z: buy quantities must lie in [0, 5")):
        Bid("z", np.array([6, 1, 0]), np.zeros(3)).validate(layout)
    good = Encryptor(keys[0].public)
    other = Encryptor(keys[1].public)
    bid = Bid("p", np.array([1, 1, 0]), np.array([0, 1, 1]))
    honest = [encrypt_bid(Bid(f"h{i}", bid.buy, bid.sell), layout, good) for i in range(3)]
    wrong_key = encrypt_bid(Bid("w", bid.buy, bid.sell), layout, other)
    malformed = encrypt_bid(Bid("m", bid.buy, bid.sell), layout, good)
    malformed = type(malformed)("m", malformed.key_id, keys[0].public.nsquare + 5, malformed.sell)
    agg = aggregate("c1", honest + [wrong_key, malformed], keys[0].public, layout)
    assert agg.members == ["h0", "h1", "h2"]
    reasons = dict(agg.rejected)
    assert "ciphertext under key" in reasons["w"] and "malformed ciphertext" in reasons["m"]
    with pytest.raises(ClusterError, match="cluster c2: 2 valid bids, fewer than k_min = 3"):
        aggregate("c2", honest[:2], keys[0].public, layout)


def test_clearing_by_hand():
    prices = np.array([0.1, 0.2, 0.3])
    # supply first covers demand at 0.3 (9 ≥ 4): MCP 0.3, MCV 4, BCF 1, SCF 4/9
    c = clear(prices, np.array([10, 8, 4]), np.array([2, 6, 9]))
    assert (c.level, c.mcp, c.mcv_kwh, c.bcf) == (2, 0.3, 4.0, 1.0)
    assert c.scf == pytest.approx(4 / 9)
    # supply never covers demand: clear at the top level, buyers curtailed (BCF = 3/5)
    c = clear(prices, np.array([9, 7, 5]), np.array([1, 2, 3]))
    assert (c.mcp, c.mcv_kwh, c.scf) == (0.3, 3.0, 1.0) and c.bcf == pytest.approx(0.6)


def test_congested_line_splits_two_price_areas_by_hand():
    # Area A (upstream of line 0, PTDF 0) sells; B and C (downstream, PTDF −1) buy. Jointly:
    # D = 20, 16, 12 and S = 10, 20, 30 → MCP 0.2, MCV 16, SCF 0.8: A injects 0.8·20/0.25 = 64 kW
    # and the line carries 64 kW > 40 kW. Split with 40 kW·0.25 h = 10 kWh exchanged: A clears
    # with D + 10 → MCP_A 0.1 (10 ≥ 10); B∪C with S + 10 → never covers 12 → MCP_B 0.3,
    # BCF = 10/12; the line then carries exactly 40 kW.
    prices = np.array([0.1, 0.2, 0.3])
    demand = np.array([[0, 0, 0], [10, 8, 6], [10, 8, 6]], float)
    supply = np.array([[10, 20, 30], [0, 0, 0], [0, 0, 0]], float)
    ptdf = np.array([[0.0, -1.0, -1.0]])
    result = clear_with_network(prices, demand, supply, ptdf, np.array([40.0]), 0.25,
                                loss_factor=np.array([0.0, 0.05, 0.05]))
    assert result.binding_line == 0
    a, b, c = result.areas
    assert (a.price_area, a.clearing.mcp) == (0, 0.1) and (b.price_area, b.clearing.mcp) == (1, 0.3)
    assert b.clearing.bcf == pytest.approx(10 / 12) and b.bcfl == pytest.approx(10 / 12 * 0.95)
    assert result.flows_kw[0] == pytest.approx(40.0)
    relaxed = clear_with_network(prices, demand, supply, ptdf, np.array([100.0]), 0.25)
    assert relaxed.binding_line is None and {r.clearing.mcp for r in relaxed.areas} == {0.2}


def test_split_exchange_is_corrected_until_the_ac_flow_holds_the_limit():
    """The hand case above, but the line carries more than the exchange: 1.035 kW per kW (a
    cable's AC PTDF with losses) plus a quadratic loss term 0.002·E². E = 40/1.035 = 38.65 kW
    alone gives 40 + 0.002·38.65² = 42.99 kW; the correction must land in [39.8, 40] kW."""
    prices = np.array([0.1, 0.2, 0.3])
    demand = np.array([[0, 0, 0], [10, 8, 6], [10, 8, 6]], float)
    supply = np.array([[10, 20, 30], [0, 0, 0], [0, 0, 0]], float)
    ptdf = np.array([[0.0, -1.035, -1.035]])

    def ac(injections):
        b = injections[1:].sum()  # B's net injection (negative: it imports)
        return np.array([1.035 * b + 0.002 * b * abs(b)])

    result = clear_with_network(prices, demand, supply, ptdf, np.array([40.0]), 0.25, flows=ac)
    assert result.binding_line == 0
    assert 0.995 * 40 <= abs(result.flows_kw[0]) <= 40
    # E solves 1.035·E + 0.002·E² = 40: E = (√(1.035² + 4·0.002·40) − 1.035)/0.004 = 36.13 kW;
    # a flow 0.5 % lower, 39.8 kW, needs E = 35.96 kW
    assert 35.96 <= result.exchange_kw <= 36.13
    assert 1 < result.iterations <= 10
    # B's buyers get what was imported: BCF = E·Δt / 12 kWh at the top price
    b = result.areas[1].clearing
    assert b.mcp == 0.3 and b.bcf == pytest.approx(result.exchange_kw * 0.25 / 12)


def test_split_keeps_the_largest_exchange_that_holds_when_the_band_is_unreachable():
    """A flow that jumps by 15 kW once the exchange reaches 30 kW (as a change of cleared level
    can): no exchange gives 39.8..40 kW, so the split keeps the largest one that holds the limit,
    30 kW (flow 30 kW), found by bisection."""
    prices = np.array([0.1, 0.2, 0.3])
    demand = np.array([[0, 0, 0], [10, 8, 6], [10, 8, 6]], float)
    supply = np.array([[10, 20, 30], [0, 0, 0], [0, 0, 0]], float)

    def jumpy(injections):
        e = -injections[1:].sum()
        return np.array([-(e + (15.0 if e >= 30 else 0.0))])

    result = clear_with_network(prices, demand, supply, np.array([[0.0, -1.0, -1.0]]),
                                np.array([40.0]), 0.25, flows=jumpy)
    assert abs(result.flows_kw[0]) <= 40
    assert result.exchange_kw == pytest.approx(30.0, abs=1e-3)


def settle_cycle(keys, schedule, windows, rng):
    """One prosumer's cycle exactly as PT, CC and KG run it: the PT encrypts b, s and its mask
    under the window's key, the CC computes 𝔄 = Enc(b·MCP·BCFL − s·MCP·SCF + mask) and adds it per
    key, the KG decrypts the per-key sums. Returns (KG's decryptions, plaintext amounts)."""
    ids = [k.fingerprint for k in keys]
    encryptors = {k.fingerprint: Encryptor(k.public) for k in keys}
    masks, sums, amounts = CycleMasks(), {}, []
    for t in range(windows):
        key = keys[schedule[t]]
        j = ids[schedule[t]]
        b, s = float(rng.integers(0, 5000)) / QTY_SCALE, float(rng.integers(0, 5000)) / QTY_SCALE
        mcp = float(rng.choice([0.08, 0.12, 0.19, 0.3]))
        bcfl, scf = float(rng.choice([1, 0.95, 0.5])), float(rng.choice([1, 0.4]))
        amount = net_units(b, s, mcp, bcfl, scf)
        m = masks.mask(j, key.public.n, amount, closing=t == windows - 1)
        enc = encryptors[j]
        ct = net_masked_amount(key.public, enc.encrypt(int(encode_qty(b))),
                               enc.encrypt(int(encode_qty(s))), mcp, bcfl, scf, enc.encrypt(m))
        sums[j] = add(key.public, sums[j], ct) if j in sums else ct
        amounts.append((j, amount))
    by_id = {k.fingerprint: k for k in keys}
    return {j: by_id[j].private.raw_decrypt(c) for j, c in sums.items()}, amounts


def test_24_window_bill_equals_the_plaintext_sum(keys):
    """Thesis table 6.15: a prosumer's masked, encrypted net amounts over a billing cycle of 24
    windows under 3 keys decrypt (per key set, combined) to exactly its plaintext bill."""
    rng = np.random.default_rng(6)
    schedule = key_schedule(24, 3)
    assert sorted(set(schedule)) == [0, 1, 2] and len(schedule) == 24
    for _prosumer in ("alice", "bob", "carol"):  # each its own masks
        decrypted, amounts = settle_cycle(keys, schedule, 24, rng)
        closing = keys[schedule[-1]]
        bill = cycle_bill_units(decrypted, closing.fingerprint, closing.public.n)
        assert bill == sum(a for _, a in amounts)  # exact, in 1e-11 M
        assert abs(bill) <= bill_bound_units(24, 5.0, 0.3)
        assert bill / UNITS_PER_M == pytest.approx(sum(a for _, a in amounts) / UNITS_PER_M)


def test_kg_decryptions_of_the_smallest_cycle_reveal_no_per_key_or_window_value(keys):
    """2 windows, 2 keys (one window each): the KG decrypts one sum per key. The sum of the key
    that does not close the cycle is uniform mod 𝒩 — it never equals, nor lies near, that
    window's amount (|amount| < 10¹⁰ ≪ 𝒩 ≈ 2⁵¹²); the closing key's sum is S minus it. With
    the old masks (sum zero within each key set, bounded by 10¹⁵) a one-window key set would
    have decrypted to the amount itself."""
    rng = np.random.default_rng(11)
    pair = keys[:2]
    bound = bill_bound_units(2, 5.0, 0.3)
    fractions = []
    for trial in range(60):
        schedule = [trial % 2, 1 - trial % 2]
        decrypted, amounts = settle_cycle(pair, schedule, 2, rng)
        (j_open, a_open), (j_close, a_close) = amounts
        n_open = next(k.public.n for k in pair if k.fingerprint == j_open)
        n_close = next(k.public.n for k in pair if k.fingerprint == j_close)
        d_open, d_close = decrypted[j_open], decrypted[j_close]
        for d, n in ((d_open, n_open), (d_close, n_close)):
            signed = d - n if d > n // 2 else d
            assert abs(signed) > bound  # not a per-window or per-key amount of the prosumer
            assert signed not in (a_open, a_close)
        fractions.append(d_open / n_open)
        assert cycle_bill_units(decrypted, j_close, n_close) == a_open + a_close
    # uniform on [0, 1): all four quarters hit (a bounded mask would leave them at 0 or 1)
    assert {int(4 * f) for f in fractions} == {0, 1, 2, 3}


def test_key_schedule_comes_from_os_randomness_and_no_seed_is_configurable():
    schedules = {tuple(key_schedule(24, 3)) for _ in range(5)}
    assert len(schedules) > 1  # 3²¹ possible arrangements: five draws never all agree
    assert all(sorted(set(s)) == [0, 1, 2] for s in schedules)
    with pytest.raises(KeyError_, match="2 windows cannot give each of 3 keys a window"):
        key_schedule(2, 3)
    config = {"clusters": {"a": ["r1"]}}
    AuctionConfig.model_validate(config)
    with pytest.raises(ValidationError, match="key_seed"):
        AuctionConfig.model_validate(config | {"key_seed": 2026})


@pytest.mark.parametrize("clusters, message", [
    ({"kg": ["r1"], "c": ["r2"]}, "cluster name 'kg' is reserved"),
    ({"mo": ["r1"]}, "cluster name 'mo' is reserved"),
    ({"dso": ["r1"]}, "cluster name 'dso' is reserved"),
    ({"pt": ["r1"]}, "cluster name 'pt' is reserved"),
    ({"pt_0": ["r1"]}, "cluster name 'pt_0' is reserved"),
    ({"cc_a": ["r1"]}, "cluster name 'cc_a' is reserved"),
    ({"Up Stream": ["r1"]}, "must be a lower-case identifier"),
])
def test_cluster_names_that_would_merge_roles_are_refused(clusters, message):
    with pytest.raises(RoleNameError, match=message):
        check_cluster_names(list(clusters))
    with pytest.raises(ValidationError, match=message):
        AuctionConfig.model_validate({"clusters": clusters})


def test_validate_refuses_a_cluster_named_like_a_role_before_launch(tmp_path):
    proc = lemcosim("validate", "ch6_cigre_lv_congested", "--set", "auction.clusters.kg=[r18]",
                    "--set", "auction.clusters.c_end=[r8, r9, r10, r17]")
    assert proc.returncode != 0
    assert "auction.clusters" in proc.stderr and "'kg' is reserved" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = lemcosim("validate", "ch6_cigre_lv_congested", "--set", "auction.source=mo")
    assert proc.returncode != 0 and "source 'mo' is the name of an auction role" in proc.stderr
    # a cluster given twice would silently replace the first: the loader names both lines
    scenario = write_scenario(tmp_path, f"""
        include: [{CONFIGS / "ch6_cigre_lv_congested.yaml"}]
        auction:
          clusters:
            c_up: [r1, r2, r3, r4, r11, r12, r13, r14, r15]
            c_up: [r5, r6, r7, r16]
        """)
    proc = lemcosim("validate", str(scenario))
    assert proc.returncode != 0
    assert "key 'auction.clusters.c_up' given twice (first on line 4)" in proc.stderr


def test_packed_counts_give_each_slot_its_non_zero_contributors():
    # 3 members, 3 levels: contributors per level 1, 2, 3 (a buyer at level 0 only, ...)
    layout = SlotLayout(levels=3, max_qty_kwh=5, max_cluster=10, key_bits=TEST_KEY_BITS)
    assert layout.count_bits == 5  # bits(11) + 1 guard bit
    curves = [[0, 0, 1.5], [0, 2.0, 2.0], [4.0, 3.0, 0.5]]
    total = sum(layout.pack(encode_qty(c)) for c in curves)
    assert list(layout.unpack(total)) == [4000, 5000, 4000]
    assert list(layout.unpack_counts(total)) == [1, 2, 3]
    layout.check_sum(total, members=3)
    with pytest.raises(CodecError, match="not a sum of 2 valid curves"):
        layout.check_sum(total, members=2)  # level 2 counts 3 contributors
    with pytest.raises(CodecError, match="exceeds the"):
        layout.check_sum(total << layout.plaintext_bits, members=3)
