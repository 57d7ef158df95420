"""Privacy-preserving double auction, pure model. Keys are 512-bit here: an explicit test flag
(allow_short_keys=True); the default and the minimum outside tests is 2048 bits."""

from __future__ import annotations

import re

import numpy as np
import pytest

from lemcosim.federates.auction.aggregate import ClusterError, aggregate
from lemcosim.federates.auction.bids import Bid, BidError, encrypt_bid
from lemcosim.federates.auction.clearing import clear
from lemcosim.federates.auction.codec import QTY_SCALE, CodecError, SlotLayout, encode_qty
from lemcosim.federates.auction.congestion import clear_with_network
from lemcosim.federates.auction.keys import (
    Encryptor,
    KeyError_,
    add,
    decrypt_signed,
    generate_key_set,
    key_schedule,
)
from lemcosim.federates.auction.settlement import (
    decrypt_cycle_total,
    masked_amount,
    plaintext_amount,
    zero_sum_masks,
)

TEST_KEY_BITS = 512


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


def test_24_window_bill_equals_the_plaintext_sum(keys):
    """Thesis table 6.15: every prosumer's masked, encrypted costs over a billing cycle of 24
    windows decrypt (per key set, summed) to exactly its plaintext bill."""
    rng = np.random.default_rng(6)
    schedule = key_schedule(24, 3, seed=11)
    windows_of_key = {j: [t for t in range(24) if schedule[t] == j] for j in range(3)}
    assert all(len(w) >= 2 for w in windows_of_key.values())
    encryptors = {j: Encryptor(keys[j].public) for j in range(3)}
    for _prosumer in ("alice", "bob", "carol"):  # three prosumers, each its own masks
        masks = zero_sum_masks(windows_of_key, bound=10**12, rng=rng)
        sums: dict[int, int] = {}
        plain = 0.0
        for t in range(24):
            j = schedule[t]
            qty = float(rng.integers(0, 5000)) / QTY_SCALE  # b_i at the cleared level, kWh
            mcp, bcfl = float(rng.choice([0.08, 0.12, 0.19, 0.3])), float(rng.choice([1, 0.95, 0.5]))
            ct = masked_amount(keys[j].public, encryptors[j].encrypt(int(round(qty * QTY_SCALE))),
                               mcp, bcfl, encryptors[j].encrypt(masks[t]))
            sums[j] = add(keys[j].public, sums[j], ct) if j in sums else ct
            plain += plaintext_amount(qty, mcp, bcfl)
            # a single window decrypts to a masked value, not the cost (unless the mask is 0)
            assert decrypt_signed(keys[j], ct) != round(plaintext_amount(qty, mcp, bcfl) * 1e11)
        assert decrypt_cycle_total(keys, sums) == pytest.approx(plain, abs=1e-9)
