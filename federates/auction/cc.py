"""CC: aggregates its cluster's bids and computes masked costs, all on ciphertexts."""

from __future__ import annotations

from collections import defaultdict

from phe import paillier

from lemcosim.federates.auction.aggregate import ClusterError, aggregate
from lemcosim.federates.auction.bids import EncryptedBid
from lemcosim.federates.auction.codec import CodecError
from lemcosim.federates.auction.keys import add, to_text
from lemcosim.federates.auction.role import Role, majority, parse_int, public_key
from lemcosim.federates.auction.settlement import checked_net_amounts
from lemcosim.federates.common.app import FederateContext, FederateSettings


class ClusterCoordinator(Role):
    """CC: aggregates its cluster's bids and computes masked costs, all on ciphertexts."""

    substep = 2
    accepts = {"keys": ("kg",), "bids": ("pt",), "settle": ("pt",), "result": ("mo",)}

    def __init__(self, settings: FederateSettings) -> None:
        super().__init__(settings)
        self.cluster: str = settings.params["cluster"]
        self.keys: dict[str, paillier.PaillierPublicKey] = {}
        self.sums: dict[tuple[str, str], int] = {}  # (member, key id) → Σ 𝔄

    def on_window(self, ctx: FederateContext, window: int) -> None:
        self.receive(ctx)
        self.aggregated: set[str] = set()
        for message in self.take("keys"):
            self.keys = {k["id"]: public_key(k["n"]) for k in message["keys"]}
        bids = received_bids(self.take("bids"))
        key_id = majority([b.key_id for b in bids])
        if key_id in self.keys:
            try:
                agg = aggregate(self.cluster, bids, self.keys[key_id], self.layout,
                                self.config.k_min)
                self.send(ctx, "kg", {"type": "aggregate", "cluster": self.cluster,
                                      "key_id": key_id, "members": len(agg.members),
                                      "buy": to_text(agg.buy), "sell": to_text(agg.sell)})
                self.aggregated = set(agg.members)
                self.log(ctx, window, self.cluster, "bids_aggregated", float(len(agg.members)),
                         "count")
                for _prosumer, reason in agg.rejected:  # the reason names the prosumer
                    self.log(ctx, window, self.cluster, "bid_rejected", reason)
                if agg.rejected:  # their terminals settle them at 0: their bids did not clear
                    self.send(ctx, "pt", {"type": "rejected", "window": window,
                                          "prosumers": [p for p, _ in agg.rejected]})
            except (ClusterError, CodecError) as exc:
                self.log(ctx, window, self.cluster, "refused", str(exc))
        elif bids:
            self.log(ctx, window, self.cluster, "refused", f"bids under unknown key {key_id}")
        if self.cluster in self.config.faults.fake_curves:  # posing as the KG to steer the price
            self.send(ctx, "mo", {"type": "curves", "window": window, "curves": {self.cluster: {
                "buy": [1000.0] * self.config.levels, "sell": [0.0] * self.config.levels}}})
        self.at(ctx, window, 8)
        result = next((m for m in self.take("result")), None)
        cleared = (result or {}).get("clusters", {}).get(self.cluster) or {}
        mcp, bcfl, scf = (cleared.get(q, 0.0) for q in ("mcp", "bcfl", "scf"))
        checked: dict[str, list[int]] = {}  # for KG's consistency check: Σ b, Σ s of members
        check_key = None
        settle: dict[str, list[tuple[str, int, int, int]]] = defaultdict(list)  # key id → entries
        for entry in entries(self.take("settle"), "entries"):
            key_id, prosumer = str(entry.get("key_id")), str(entry.get("prosumer"))
            if key_id not in self.keys:
                continue
            b, s, m = (parse_int(entry.get(q)) for q in ("b", "s", "m"))
            if prosumer in self.aggregated:
                check_key = key_id
                checked[prosumer] = [b, s]
            settle[key_id].append((prosumer, b, s, m))
        for key_id, items in settle.items():
            public = self.keys[key_id]
            nets = checked_net_amounts(public, [item[1:] for item in items], mcp, bcfl, scf)
            for (prosumer, *_), net in zip(items, nets, strict=True):
                if net is None:  # one terminal's bad entry: its member gets no bill, the rest do
                    self.log(ctx, window, self.cluster, "settle_rejected", f"prosumer {prosumer}: "
                             "Enc(s) is no unit modulo 𝒩²; its cycle sum will not add up")
                    continue
                key = (prosumer, key_id)
                self.sums[key] = add(public, self.sums[key], net) if key in self.sums else net
        if cleared.get("level", -1) >= 0 and check_key is not None:
            public = self.keys[check_key]
            check = {"type": "cleared_sum", "cluster": self.cluster, "key_id": check_key,
                     "level": cleared["level"], "members": len(checked),
                     "b": to_text(add(public, *(v[0] for v in checked.values()))),
                     "s": to_text(add(public, *(v[1] for v in checked.values())))}
            if self.cluster in self.config.faults.forged_cleared_sum:
                # a decryption-oracle attempt: one member's ciphertexts as the check sum, then a
                # check sum that admits to covering one member
                first = next(iter(checked.values()))
                check |= {"b": str(first[0]), "s": str(first[1])}
                self.send(ctx, "kg", check | {"members": 1})
            self.send(ctx, "kg", check)
        if self.closes_cycle(ctx, window):
            sums = [{"prosumer": p, "key_id": k, "net": to_text(c)}
                    for (p, k), c in self.sums.items()]
            self.send(ctx, "kg", {"type": "cycle_sums", "cluster": self.cluster, "sums": sums})
            self.log(ctx, window, self.cluster, "cycle_sums_sent", float(len(sums)), "count")
            self.sums = {}


def entries(messages: list[dict], field: str) -> list[dict]:
    """The entries of terminals' messages that are JSON objects. A malformed one must not end the
    CC: its missing fields parse as no ciphertext, which is rejected naming the prosumer."""
    return [e for m in messages if isinstance(m.get(field), list) for e in m[field]
            if isinstance(e, dict)]


def received_bids(messages: list[dict]) -> list[EncryptedBid]:
    """The bids of terminals' `bids` messages; a missing field is no ciphertext, which
    `aggregate` rejects naming the prosumer."""
    return [EncryptedBid(str(b.get("prosumer")), str(b.get("key_id")), parse_int(b.get("buy")),
                         parse_int(b.get("sell"))) for b in entries(messages, "bids")]
