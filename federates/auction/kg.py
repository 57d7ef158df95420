"""KG: issues a key set and its schedule per billing cycle; decrypts aggregates and cycle sums only.

What the KG decrypts, and the checks before it does (docs/privacy.md, "What the KG decrypts"):
- `aggregate` (sub-step 3): from the cluster's own CC, once per window, under the window's key,
  over k_min..max_cluster members; the plaintext must be a sum of that many valid packed curves
  (`SlotLayout.check_sum`). Slots with 1..k_min−1 non-zero contributors are thin: counted, and
  zeroed before the MO sees them unless `thin_slots: report`.
- `cleared_sum` (sub-step 9): the same envelope checks, over exactly the aggregate's members. It is
  never decrypted to a value: KG decrypts (Enc(reported) ⊖ Enc(slot))^r for a random r, which is 0
  if the PTs reported the aggregate's slot at the cleared level and a uniformly random number
  otherwise. A CC that passes off one member's ciphertext as its check sum learns nothing and KG
  learns one bit (equal or not).
- `cycle_sums` (the closing window): per member and key, from the member's CC, each key of the
  cycle's settled windows at most once; the bill must lie within `bill_bound_units`, which masks
  that do not cancel (missing or forged sums) miss with probability ~ bound/𝒩.
Anything else — another sender, a second copy, another key, another type — is refused and logged
as a `protocol_violation` naming the sender, and is never decrypted.
"""

from __future__ import annotations

import secrets
from collections import defaultdict

import gmpy2
import numpy as np

from lemcosim.federates.auction.codec import QTY_SCALE, CodecError
from lemcosim.federates.auction.keys import (
    CiphertextError,
    KeyPair,
    check,
    generate_key_set,
    key_schedule,
)
from lemcosim.federates.auction.role import Role, parse_int
from lemcosim.federates.auction.settlement import (
    UNITS_PER_M,
    bill_bound_units,
    cycle_bill_units,
)
from lemcosim.federates.common.app import FederateContext, FederateSettings

SIDES = ("buy", "sell")


class KeyGenerator(Role):
    """KG: keys and schedule per billing cycle; decrypts what the protocol allows, nothing else."""

    substep = 0

    def __init__(self, settings: FederateSettings) -> None:
        super().__init__(settings)
        self.cluster_of_cc = {self.names[c]: c for c in self.config.clusters}

    def on_window(self, ctx: FederateContext, window: int) -> None:
        cycle, position = self.cycle_of(window)
        if position == 0:
            self._issue_keys(ctx, window, cycle)
        key_id = self.schedule[position]
        self.at(ctx, window, 3)
        self.aggregates: dict[str, tuple[int, dict[str, np.ndarray]]] = {}
        for message in self.take("aggregate"):
            self._aggregate(ctx, message, key_id)
        curves, suppressed = {}, {}
        for cluster, (_, slots) in self.aggregates.items():
            thin = {side: [p for p, c in enumerate(slots[f"{side}_count"]) if 0 < c < self.config.k_min]
                    for side in SIDES}
            self.log(ctx, window, cluster, "thin_slots",
                     float(sum(len(v) for v in thin.values())), "count")
            if self.config.thin_slots == "suppress":
                for side in SIDES:
                    slots[side][thin[side]] = 0
                suppressed[cluster] = thin
            curves[cluster] = {side: (slots[side].astype(float) / QTY_SCALE).tolist()
                               for side in SIDES}
        self.send(ctx, "mo", {"type": "curves", "window": window, "curves": curves})
        # the PTs settle a suppressed slot's members at 0: their bids never reached the clearing
        self.send(ctx, "pt", {"type": "suppressed", "window": window, "slots": suppressed})
        self.at(ctx, window, 9)
        checked: set[str] = set()
        for message in self.take("cleared_sum"):
            self._check_settlement(ctx, window, message, key_id, checked)
        if self.closes_cycle(ctx, window):
            self._bills(ctx, window, cycle, position)
        for message in self.inbox:  # what no step of this window expects
            self.violation(ctx, message["from"], f"unexpected {str(message.get('type'))[:40]!r} "
                           f"message in window {window}")
        self.inbox = []

    def _issue_keys(self, ctx: FederateContext, window: int, cycle: int) -> None:
        self.pairs = generate_key_set(self.config.keys_per_cycle, self.config.key_bits,
                                      self.config.allow_short_keys)
        self.by_id: dict[str, KeyPair] = {p.fingerprint: p for p in self.pairs}
        self.schedule = [self.pairs[j].fingerprint for j in
                         key_schedule(self.config.cycle_windows, len(self.pairs))]
        keys = [{"id": p.fingerprint, "n": str(p.public.n)} for p in self.pairs]
        self.send(ctx, "pt", {"type": "keys", "cycle": cycle, "keys": keys,
                              "schedule": self.schedule})
        for cluster in self.config.clusters:  # CCs see each window's key id: docs/privacy.md
            self.send(ctx, cluster, {"type": "keys", "cycle": cycle, "keys": keys})
        self.log(ctx, window, "keys", "issued", float(len(keys)), "count")

    def _sender_cluster(self, ctx: FederateContext, message: dict, key_id: str) -> str | None:
        """The CC's cluster if the envelope is right (own cluster, this window's key)."""
        sender, cluster = message["from"], message.get("cluster")
        kind = message.get("type")
        if self.cluster_of_cc.get(sender) != cluster:
            self.violation(ctx, sender, f"{kind} for cluster {str(cluster)[:40]!r}, which is not "
                           "the sender's")
            return None
        if message.get("key_id") != key_id:
            self.violation(ctx, sender, f"{kind} under a key that does not serve this window")
            return None
        return cluster

    def _aggregate(self, ctx: FederateContext, message: dict, key_id: str) -> None:
        cluster = self._sender_cluster(ctx, message, key_id)
        if cluster is None:
            return
        sender, members = message["from"], message.get("members")
        if cluster in self.aggregates:
            self.violation(ctx, sender, "a second aggregate in one window")
            return
        if not isinstance(members, int) or not self.config.k_min <= members <= self.layout.max_cluster:
            self.violation(ctx, sender, f"an aggregate over {str(members)[:20]} members, outside "
                           f"[k_min = {self.config.k_min}, max_cluster = {self.layout.max_cluster}]")
            return
        pair = self.by_id[key_id]
        slots: dict[str, np.ndarray] = {}
        try:
            for side in SIDES:
                plaintext = pair.private.raw_decrypt(
                    check(pair.public, parse_int(message.get(side)), key_id, f"{side} aggregate"))
                self.layout.check_sum(plaintext, members)
                slots[side] = self.layout.unpack(plaintext)
                slots[f"{side}_count"] = self.layout.unpack_counts(plaintext)
        except (CiphertextError, CodecError) as exc:
            self.violation(ctx, sender, str(exc))  # names no value: nothing is forwarded
            return
        self.aggregates[cluster] = (members, slots)

    def _check_settlement(self, ctx: FederateContext, window: int, message: dict, key_id: str,
                          checked: set[str]) -> None:
        """Σ_i b_i(MCP) and Σ_i s_i(MCP) the PTs reported in the settlement must equal slot MCP
        of the aggregate curves: a PT that misreports shows up as its cluster's mismatch."""
        cluster = self._sender_cluster(ctx, message, key_id)
        if cluster is None:
            return
        sender, level = message["from"], message.get("level")
        if cluster not in self.aggregates or cluster in checked:
            self.violation(ctx, sender, "a check sum without an aggregate, or a second one")
            return
        members, slots = self.aggregates[cluster]
        if message.get("members") != members:
            self.violation(ctx, sender, f"a check sum over {str(message.get('members'))[:20]} "
                           f"members; the aggregate has {members}")
            return
        if not isinstance(level, int) or not 0 <= level < self.config.levels:
            self.violation(ctx, sender, "a check sum at no valid price level")
            return
        checked.add(cluster)
        pair = self.by_id[key_id]
        for side, field in zip(SIDES, ("b", "s"), strict=True):
            try:
                reported = check(pair.public, parse_int(message.get(field)), key_id, side)
            except CiphertextError as exc:
                self.violation(ctx, sender, str(exc))
                continue
            if not _equal_blinded(pair, reported, int(slots[side][level])):
                self.log(ctx, window, cluster, "settlement_mismatch",
                         f"{side}: what the PTs reported at the cleared level (check sum from "
                         f"{sender}) differs from the aggregate's slot; compared blinded, no "
                         "value decrypted")

    def _bills(self, ctx: FederateContext, window: int, cycle: int, position: int) -> None:
        settled = position + 1
        keys_used = set(self.schedule[:settled])
        closing = self.schedule[position]
        sums: dict[str, dict[str, int]] = defaultdict(dict)
        source: dict[str, str] = {}
        for message in self.take("cycle_sums"):
            sender = message["from"]
            if self.cluster_of_cc.get(sender) is None:
                self.violation(ctx, sender, "cycle sums from a federate that is no CC")
                continue
            for entry in message.get("sums", []):
                prosumer, key_id = str(entry.get("prosumer")), entry.get("key_id")
                if source.setdefault(prosumer, sender) != sender or key_id not in keys_used \
                        or key_id in sums[prosumer]:
                    self.violation(ctx, sender, f"a cycle sum for {prosumer[:40]} that is a "
                                   "duplicate, from another CC, or under a key of no settled window")
                    continue
                pair = self.by_id[key_id]
                try:
                    ct = check(pair.public, parse_int(entry.get("net")), key_id, prosumer)
                except CiphertextError as exc:
                    self.violation(ctx, sender, str(exc))
                    continue
                sums[prosumer][key_id] = pair.private.raw_decrypt(ct)
        bound = bill_bound_units(settled, self.config.max_qty_kwh, self.config.retail)
        bills: dict[str, float] = {}
        refused: dict[str, str] = {}
        for prosumer, decrypted in sums.items():
            units = (cycle_bill_units(decrypted, closing, self.by_id[closing].public.n)
                     if closing in decrypted else None)
            if units is None or abs(units) > bound:
                refused[prosumer] = ("its per-key sums do not add up to a bill within the bound "
                                     f"of {settled} windows (missing or forged sums): no bill")
                self.log(ctx, window, prosumer, "bill_refused", refused[prosumer])
            else:
                bills[prosumer] = units / UNITS_PER_M
        if settled < self.config.cycle_windows:
            self.log(ctx, window, "bills", "partial_cycle",
                     f"the run ends after {settled} of cycle {cycle}'s {self.config.cycle_windows} "
                     f"windows: the bills settle those {settled} windows")
        self.send(ctx, "pt", {"type": "bills", "cycle": cycle, "windows": settled,
                              "bills": bills, "refused": refused})
        self.log(ctx, window, "bills", "sent", float(len(bills)), "count")


def _equal_blinded(pair: KeyPair, ciphertext: int, expected: int) -> bool:
    """Whether Dec(ciphertext) == expected, learning nothing else: decrypt
    (Enc(m) · Enc(−expected))^r = Enc(r·(m − expected)), 0 iff equal, else uniform (r random)."""
    n, n2 = gmpy2.mpz(pair.public.n), gmpy2.mpz(pair.public.nsquare)
    minus_expected = (1 + (-expected % n) * n) % n2  # Enc(−expected) with obfuscator 1
    r = gmpy2.mpz(secrets.randbelow(int(n) - 1) + 1)
    blinded = gmpy2.powmod(gmpy2.mpz(ciphertext) * minus_expected % n2, r, n2)
    return pair.private.raw_decrypt(int(blinded)) == 0
