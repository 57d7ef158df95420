"""Cluster coordinator (CC): sums its cluster's encrypted bids without decrypting anything."""

from __future__ import annotations

from dataclasses import dataclass, field

from phe import paillier

from lemcosim.federates.auction.bids import EncryptedBid
from lemcosim.federates.auction.codec import SlotLayout
from lemcosim.federates.auction.keys import CiphertextError, add, check
from lemcosim.federates.common.errors import LemcosimError

K_MIN = 3


class ClusterError(LemcosimError):
    """A cluster the CC must refuse (too small: its aggregate would reveal a bid)."""


@dataclass
class ClusterAggregate:
    cluster: str
    members: list[str]
    buy: int  # Enc(Σ packed buy curves)
    sell: int
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (prosumer, reason)


def aggregate(cluster: str, bids: list[EncryptedBid], public: paillier.PaillierPublicKey,
              layout: SlotLayout, k_min: int = K_MIN) -> ClusterAggregate:
    """Check every ciphertext (malformed, wrong key → that bid is rejected with its reason),
    refuse clusters below k_min, and add the rest homomorphically."""
    good, rejected = [], []
    for bid in bids:
        try:
            check(public, bid.buy, bid.key_id, f"prosumer {bid.prosumer} buy")
            check(public, bid.sell, bid.key_id, f"prosumer {bid.prosumer} sell")
            good.append(bid)
        except CiphertextError as exc:
            rejected.append((bid.prosumer, str(exc)))
    if len(good) < k_min:
        raise ClusterError(f"cluster {cluster}: {len(good)} valid bids, fewer than k_min = {k_min}; "
                           "its aggregate would expose individual bids")
    layout.check_cluster(len(good))
    return ClusterAggregate(cluster, [b.prosumer for b in good],
                            add(public, *(b.buy for b in good)),
                            add(public, *(b.sell for b in good)), rejected)
