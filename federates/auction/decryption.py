"""What the KG decrypts, and the checks before it does (docs/privacy.md, "What the KG decrypts").

- `aggregate` (sub-step 3): from the cluster's own CC, once per window, under the window's key,
  over k_min..max_cluster members; the plaintext must be a sum of that many valid packed curves
  (`SlotLayout.check_sum`).
- `cleared_sum` (sub-step 9): the same envelope checks, over exactly the aggregate's members. The
  KG decrypts (Enc(reported) ⊖ Enc(slot))^r for a random r, which is 0 if the PTs reported the
  aggregate's slot at the cleared level and a random-looking number otherwise, and keeps only
  that bit. A CC that passes off one member's ciphertext as its check sum learns nothing. The
  KG drew r itself, so this hides nothing from a curious KG (docs/privacy.md).
- `cycle_sums` (the closing window): per member and key, from the member's CC, each key of the
  cycle's settled windows at most once; the bill must lie within `bill_bound_units`, which masks
  that do not cancel (missing or forged sums) miss with probability ~ bound/𝒩.
Anything else — another sender, a second copy, another key — is a `ProtocolViolation` naming the
sender, and is never decrypted.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from dataclasses import dataclass

import gmpy2
import numpy as np

from lemcosim.federates.auction.codec import CodecError, SlotLayout
from lemcosim.federates.auction.keys import CiphertextError, KeyPair, check
from lemcosim.federates.auction.role import parse_int
from lemcosim.federates.auction.settlement import cycle_bill_units
from lemcosim.federates.common.errors import LemcosimError

SIDES = ("buy", "sell")


class ProtocolViolation(LemcosimError):
    """A message the KG refuses; `sender` is the federate HELICS reports as its source."""

    def __init__(self, sender: str, what: str) -> None:
        super().__init__(what)
        self.sender = sender


@dataclass(frozen=True)
class Aggregate:
    """A cluster's decrypted aggregate: per side, P quantity slots (Wh) and P contributor counts."""

    members: int
    units: dict[str, np.ndarray]
    counts: dict[str, np.ndarray]

    def thin(self, k_min: int) -> dict[str, list[int]]:
        """Per side, the levels with 1..k_min−1 non-zero contributors."""
        return {side: [p for p, c in enumerate(self.counts[side]) if 0 < c < k_min]
                for side in SIDES}


class Decryptor:
    """The KG's key set of one billing cycle, its schedule, and the checks before decrypting."""

    def __init__(self, pairs: list[KeyPair], schedule: list[str], layout: SlotLayout, k_min: int,
                 cluster_of_cc: dict[str, str]) -> None:
        self.by_id = {p.fingerprint: p for p in pairs}
        self.schedule = schedule
        self.layout = layout
        self.k_min = k_min
        self.cluster_of_cc = cluster_of_cc  # CC federate name → its cluster

    def aggregate(self, message: dict, position: int, seen: dict[str, Aggregate]) -> str:
        """Decrypt a CC's aggregate into `seen[cluster]`; returns the cluster."""
        sender, key_id, cluster = self._envelope(message, position)
        members = message.get("members")
        if cluster in seen:
            raise ProtocolViolation(sender, "a second aggregate in one window")
        if not isinstance(members, int) or not self.k_min <= members <= self.layout.max_cluster:
            raise ProtocolViolation(sender, f"an aggregate over {str(members)[:20]} members, "
                                    f"outside [k_min = {self.k_min}, max_cluster = "
                                    f"{self.layout.max_cluster}]")
        pair = self.by_id[key_id]
        units, counts = {}, {}
        for side in SIDES:
            try:
                plaintext = pair.private.raw_decrypt(self._ciphertext(message, side, pair, key_id))
                self.layout.check_sum(plaintext, members)
            except CodecError as exc:  # names no value: nothing of it is forwarded
                raise ProtocolViolation(sender, f"{side} {exc}") from None
            units[side] = self.layout.unpack(plaintext)
            counts[side] = self.layout.unpack_counts(plaintext)
        seen[cluster] = Aggregate(members, units, counts)
        return cluster

    def check_sum(self, message: dict, position: int, aggregates: dict[str, Aggregate],
                  checked: set[str]) -> tuple[str, list[str]]:
        """The cluster and the sides whose check sum differs from the aggregate's slot at the
        cleared level (compared blinded: no value is decrypted)."""
        sender, key_id, cluster = self._envelope(message, position)
        level = message.get("level")
        if cluster not in aggregates or cluster in checked:
            raise ProtocolViolation(sender, "a check sum without an aggregate, or a second one")
        aggregate = aggregates[cluster]
        if message.get("members") != aggregate.members:
            raise ProtocolViolation(sender, f"a check sum over {str(message.get('members'))[:20]}"
                                    f" members; the aggregate has {aggregate.members}")
        if not isinstance(level, int) or not 0 <= level < self.layout.levels:
            raise ProtocolViolation(sender, "a check sum at no valid price level")
        pair = self.by_id[key_id]
        reported = {side: self._ciphertext(message, field, pair, key_id)
                    for side, field in zip(SIDES, ("b", "s"), strict=True)}
        checked.add(cluster)
        return cluster, [side for side in SIDES
                         if not equal_blinded(pair, reported[side],
                                              int(aggregate.units[side][level]))]

    def bills(self, messages: list[dict], position: int, bound_units: int
              ) -> tuple[dict[str, int], dict[str, str], list[ProtocolViolation]]:
        """Bills in units per member from the cycle sums, members refused a bill (why), and
        the entries refused."""
        keys_used = set(self.schedule[:position + 1])
        closing = self.schedule[position]
        decrypted: dict[str, dict[str, int]] = defaultdict(dict)
        source: dict[str, str] = {}
        violations = []
        for message in messages:
            sender = message["from"]
            if sender not in self.cluster_of_cc:
                violations.append(ProtocolViolation(sender, "cycle sums from a federate that is "
                                                    "no CC"))
                continue
            sums = message.get("sums")
            for entry in sums if isinstance(sums, list) else [sums]:
                if not (isinstance(entry, dict) and isinstance(entry.get("prosumer"), str)
                        and isinstance(entry.get("key_id"), str)):
                    violations.append(ProtocolViolation(sender, "a cycle sum that is no "
                                                        "{prosumer, key_id, net} entry"))
                    continue
                # the whole id keys the bill (two ids alike in their first 40 characters are
                # two members); only the message that names it is cut short
                prosumer, key_id = str(entry.get("prosumer")), entry.get("key_id")
                if source.setdefault(prosumer, sender) != sender or key_id not in keys_used \
                        or key_id in decrypted[prosumer]:
                    violations.append(ProtocolViolation(
                        sender, f"a cycle sum for {prosumer[:40]} that is a duplicate, from "
                        "another CC, or under a key of no settled window"))
                    continue
                pair = self.by_id[key_id]
                try:
                    ct = self._ciphertext(entry | {"from": sender}, "net", pair, key_id)
                except ProtocolViolation as exc:
                    violations.append(exc)
                    continue
                decrypted[prosumer][key_id] = pair.private.raw_decrypt(ct)
        bills, refused = {}, {}
        for prosumer, sums in decrypted.items():
            units = (cycle_bill_units(sums, closing, self.by_id[closing].public.n)
                     if closing in sums else None)
            if units is None or abs(units) > bound_units:
                refused[prosumer] = ("its per-key sums do not add up to a bill within the bound "
                                     f"of {position + 1} windows (missing or forged sums): no bill")
            else:
                bills[prosumer] = units
        return bills, refused, violations

    def _envelope(self, message: dict, position: int) -> tuple[str, str, str]:
        """(sender, key id, cluster) if the sender is the cluster's CC and the key this window's."""
        sender, cluster, kind = message["from"], message.get("cluster"), message.get("type")
        if self.cluster_of_cc.get(sender) != cluster:
            raise ProtocolViolation(sender, f"{kind} for cluster {str(cluster)[:40]!r}, which is "
                                    "not the sender's")
        if message.get("key_id") != self.schedule[position]:
            raise ProtocolViolation(sender, f"{kind} under a key that does not serve this window")
        return sender, self.schedule[position], cluster

    @staticmethod
    def _ciphertext(message: dict, field: str, pair: KeyPair, key_id: str) -> int:
        try:
            return check(pair.public, parse_int(message.get(field)), key_id, field)
        except CiphertextError as exc:
            raise ProtocolViolation(message["from"], str(exc)) from None


def equal_blinded(pair: KeyPair, ciphertext: int, expected: int) -> bool:
    """Whether Dec(ciphertext) == expected, keeping nothing else: decrypt
    (Enc(m) · Enc(−expected))^r = Enc(r·(m − expected)), 0 iff equal, else uniform (r random).
    The caller knows r, so it could divide it out: no blinding against the KG itself."""
    n, n2 = gmpy2.mpz(pair.public.n), gmpy2.mpz(pair.public.nsquare)
    minus_expected = (1 + (-expected % n) * n) % n2  # Enc(−expected) with obfuscator 1
    r = gmpy2.mpz(secrets.randbelow(int(n) - 1) + 1)
    blinded = gmpy2.powmod(gmpy2.mpz(ciphertext) * minus_expected % n2, r, n2)
    return pair.private.raw_decrypt(int(blinded)) == 0
