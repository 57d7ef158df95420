"""Bid curves, validated at the prosumer terminal (PT), and their encrypted form."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lemcosim.federates.auction.codec import SlotLayout, encode_qty
from lemcosim.federates.auction.keys import Encryptor, fingerprint, to_text
from lemcosim.federates.common.errors import LemcosimError


class BidError(LemcosimError):
    """A bid that breaks the auction's rules (named with its prosumer)."""


def price_levels(fit: float, retail: float, levels: int) -> np.ndarray:
    """ρ_1 < … < ρ_P, evenly spaced from FIT to retail."""
    return np.linspace(fit, retail, levels)


@dataclass(frozen=True)
class Bid:
    """kWh prosumer `prosumer` buys (`buy`, non-increasing in price) and sells (`sell`,
    non-decreasing) at each price level."""

    prosumer: str
    buy: np.ndarray
    sell: np.ndarray

    def validate(self, layout: SlotLayout) -> Bid:
        for name, curve, sign in (("buy", self.buy, -1), ("sell", self.sell, 1)):
            curve = np.asarray(curve, float)
            if curve.shape != (layout.levels,) or not np.all(np.isfinite(curve)):
                raise BidError(f"prosumer {self.prosumer}: {name} curve needs {layout.levels} "
                               "finite values")
            if (curve < 0).any() or (curve > layout.max_qty_kwh).any():
                raise BidError(f"prosumer {self.prosumer}: {name} quantities must lie in "
                               f"[0, {layout.max_qty_kwh}] kWh")
            if (sign * np.diff(curve) < -1e-12).any():
                trend = "non-increasing" if sign < 0 else "non-decreasing"
                raise BidError(f"prosumer {self.prosumer}: {name} curve must be {trend} in price")
        return self


@dataclass(frozen=True)
class EncryptedBid:
    """What a PT sends its CC: one packed ciphertext per curve and the key's fingerprint."""

    prosumer: str
    key_id: str
    buy: int
    sell: int

    def message(self) -> dict:
        return {"prosumer": self.prosumer, "key_id": self.key_id, "buy": to_text(self.buy),
                "sell": to_text(self.sell)}


def encrypt_bid(bid: Bid, layout: SlotLayout, encryptor: Encryptor) -> EncryptedBid:
    bid.validate(layout)
    return EncryptedBid(bid.prosumer, fingerprint(encryptor.public),
                        encryptor.encrypt(layout.pack(encode_qty(bid.buy))),
                        encryptor.encrypt(layout.pack(encode_qty(bid.sell))))
