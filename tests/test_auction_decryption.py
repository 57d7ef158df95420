"""What the KG decrypts (pure model, real `phe` keys of 512 bits: the explicit test flag): every
message outside the protocol is a ProtocolViolation naming its sender, and check sums are
compared without decrypting a value."""

from __future__ import annotations

import re

import pytest

from lemcosim.federates.auction.codec import SlotLayout, encode_qty
from lemcosim.federates.auction.decryption import (
    Decryptor,
    ProtocolViolation,
    equal_blinded,
)
from lemcosim.federates.auction.keys import Encryptor, add, generate_key_set
from lemcosim.federates.auction.settlement import CycleMasks, bill_bound_units

LAYOUT = SlotLayout(levels=3, max_qty_kwh=5, max_cluster=10, key_bits=512)
CCS = {"cc_a": "a", "cc_b": "b"}
# three members of cluster a: buy curves (kWh at levels 0, 1, 2)
CURVES = [[2.0, 1.0, 0.0], [3.0, 2.0, 1.0], [4.0, 4.0, 4.0]]


@pytest.fixture(scope="module")
def kg():
    pairs = generate_key_set(2, 512, allow_short_keys=True)
    schedule = [pairs[0].fingerprint, pairs[1].fingerprint]  # window 0 → key 0, window 1 → key 1
    return pairs, Decryptor(pairs, schedule, LAYOUT, k_min=3, cluster_of_cc=CCS)


def enc(pairs, j):
    return Encryptor(pairs[j].public)


def aggregate_message(pairs, curves=CURVES, members=3, sender="cc_a", cluster="a", key=0):
    e = enc(pairs, key)
    buy = add(pairs[key].public, *(e.encrypt(LAYOUT.pack(encode_qty(c))) for c in curves))
    sell = e.encrypt(LAYOUT.pack(encode_qty([0.0, 0.0, 0.0])))
    return {"type": "aggregate", "from": sender, "cluster": cluster, "members": members,
            "key_id": pairs[key].fingerprint, "buy": str(buy), "sell": str(sell)}


def test_an_aggregate_decrypts_with_its_contributor_counts(kg):
    pairs, decryptor = kg
    seen = {}
    assert decryptor.aggregate(aggregate_message(pairs), 0, seen) == "a"
    assert list(seen["a"].units["buy"]) == [9000, 7000, 5000]  # Wh: 2+3+4, 1+2+4, 0+1+4
    assert list(seen["a"].counts["buy"]) == [3, 3, 2]
    assert seen["a"].thin(3) == {"buy": [2], "sell": []}  # level 2: two contributors


@pytest.mark.parametrize("change, sender, reason", [
    ({"sender": "cc_b"}, "cc_b", "aggregate for cluster 'a', which is not the sender's"),
    ({"sender": "mo"}, "mo", "aggregate for cluster 'a', which is not the sender's"),
    ({"key": 1}, "cc_a", "aggregate under a key that does not serve this window"),
    ({"members": 2}, "cc_a", "an aggregate over 2 members, outside [k_min = 3, max_cluster = 10]"),
    ({"members": 11}, "cc_a", "an aggregate over 11 members, outside"),
    # four curves claimed as three members: level 0 counts 4 contributors
    ({"curves": CURVES + [[5.0, 5.0, 5.0]], "members": 3}, "cc_a",
     "buy aggregate is not a sum of 3 valid curves"),
])
def test_aggregates_outside_the_protocol_are_refused_naming_the_sender(kg, change, sender, reason):
    pairs, decryptor = kg
    with pytest.raises(ProtocolViolation, match=re.escape(reason)) as caught:
        decryptor.aggregate(aggregate_message(pairs, **change), 0, {})
    assert caught.value.sender == sender


def test_a_second_aggregate_and_a_malformed_one_are_refused(kg):
    pairs, decryptor = kg
    seen = {}
    decryptor.aggregate(aggregate_message(pairs), 0, seen)
    with pytest.raises(ProtocolViolation, match="a second aggregate in one window"):
        decryptor.aggregate(aggregate_message(pairs), 0, seen)
    with pytest.raises(ProtocolViolation, match="buy: malformed ciphertext"):
        decryptor.aggregate(aggregate_message(pairs) | {"buy": "x"}, 0, {})


def test_one_bid_passed_off_as_an_aggregate_is_all_thin(kg):
    """A CC outside the model could forward one member's bid as its aggregate; the counts
    it carries then mark every non-zero slot as thin, so `suppress` hides it from the MO."""
    pairs, decryptor = kg
    seen = {}
    decryptor.aggregate(aggregate_message(pairs, curves=[CURVES[1]]), 0, seen)
    assert seen["a"].thin(3) == {"buy": [0, 1, 2], "sell": []}


def check_message(pairs, values_kwh, members=3, level=1, sender="cc_a"):
    e = enc(pairs, 0)
    b = add(pairs[0].public, *(e.encrypt(int(encode_qty(v))) for v in values_kwh))
    return {"type": "cleared_sum", "from": sender, "cluster": "a", "key_id": pairs[0].fingerprint,
            "level": level, "members": members, "b": str(b), "s": str(e.encrypt(0))}


def test_check_sums_are_compared_blinded_and_forgeries_refused(kg):
    pairs, decryptor = kg
    aggregates = {}
    decryptor.aggregate(aggregate_message(pairs), 0, aggregates)
    honest = check_message(pairs, [c[1] for c in CURVES])  # 1 + 2 + 4 = 7 kWh at level 1
    assert decryptor.check_sum(honest, 0, aggregates, set()) == ("a", [])
    # one member's Enc(b_i) claimed as the sum of three: a mismatch, compared blinded
    forged = check_message(pairs, [CURVES[2][1]])
    assert decryptor.check_sum(forged, 0, aggregates, set()) == ("a", ["buy"])
    with pytest.raises(ProtocolViolation, match="a check sum over 1 members; the aggregate has 3"):
        decryptor.check_sum(check_message(pairs, [CURVES[2][1]], members=1), 0, aggregates, set())
    with pytest.raises(ProtocolViolation, match="a check sum at no valid price level"):
        decryptor.check_sum(check_message(pairs, [7.0], level=3), 0, aggregates, set())
    with pytest.raises(ProtocolViolation, match="without an aggregate, or a second one"):
        decryptor.check_sum(honest, 0, aggregates, {"a"})
    with pytest.raises(ProtocolViolation, match="without an aggregate"):
        decryptor.check_sum(honest, 0, {}, set())


def test_the_blinded_comparison_decrypts_zero_or_a_random_number(kg):
    pairs, _ = kg
    ct = enc(pairs, 0).encrypt(7000)
    assert equal_blinded(pairs[0], ct, 7000)
    assert not equal_blinded(pairs[0], ct, 6999)
    assert not equal_blinded(pairs[0], ct, 0)


def cycle_sums(pairs, amounts, sender="cc_a", prosumer="a1"):
    """A member's 2-window cycle (window 0 under key 0, window 1 under key 1), masked as the PT
    masks it, summed per key as the CC sums it."""
    masks, entries = CycleMasks(), []
    for t, amount in enumerate(amounts):
        m = masks.mask(pairs[t].fingerprint, pairs[t].public.n, amount, closing=t == 1)
        e = enc(pairs, t)
        net = add(pairs[t].public, e.encrypt(amount), e.encrypt(m))
        entries.append({"prosumer": prosumer, "key_id": pairs[t].fingerprint, "net": str(net)})
    return {"type": "cycle_sums", "from": sender, "cluster": "a", "sums": entries}


def test_bills_are_exact_and_anything_else_is_refused(kg):
    pairs, decryptor = kg
    bound = bill_bound_units(2, 5.0, 0.3)
    message = cycle_sums(pairs, [123_456_789, -23_456_789])
    bills, refused, violations = decryptor.bills([message], 1, bound)
    assert bills == {"a1": 100_000_000} and refused == {} and violations == []
    # the closing key's sum missing: no bill
    partial = message | {"sums": message["sums"][:1]}
    bills, refused, _ = decryptor.bills([partial], 1, bound)
    assert bills == {} and "no bill" in refused["a1"]
    # a sum that is no masked amount (one window's sum replaced): the bill is out of bounds
    rogue = dict(message["sums"][0], net=str(enc(pairs, 0).encrypt(5)))
    bills, refused, _ = decryptor.bills([message | {"sums": [rogue, message["sums"][1]]}], 1,
                                        bound)
    assert bills == {} and "within the bound of 2 windows" in refused["a1"]
    # duplicates, another CC for the same member, a sender that is no CC
    doubled = message | {"sums": message["sums"] + message["sums"][:1]}
    _, _, violations = decryptor.bills([doubled, cycle_sums(pairs, [1, 2], sender="cc_b"),
                                        cycle_sums(pairs, [1, 2], sender="pt")], 1, bound)
    assert [v.sender for v in violations] == ["cc_a", "cc_b", "cc_b", "pt"]
    assert "no CC" in str(violations[-1])


def test_no_value_of_a_member_is_within_reach_of_a_single_key(kg):
    """The KG's decryption of the non-closing key is uniform mod 𝒩: never the window's amount."""
    pairs, decryptor = kg
    for amount in (0, 1, 10**9):
        message = cycle_sums(pairs, [amount, 5])
        d = pairs[0].private.raw_decrypt(int(message["sums"][0]["net"]))
        assert d != amount and min(d, pairs[0].public.n - d) > 10**20
