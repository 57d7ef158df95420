"""Fixed-point encoding and slot packing of bid curves into one Paillier plaintext.

Precision (documented convention): quantities in 1 Wh steps (QTY_SCALE = 1000 per kWh), prices
in 1e-4 M per kWh (PRICE_SCALE = 10 000), so a cost is an integer in 1e-7 M. A curve of P levels,
each at most `max_qty_kwh`, is packed as m = Σ_p q_p·2^(w·p) + Σ_p [q_p > 0]·2^(P·w + v·p): P
quantity slots, then P contributor-count slots (1 where the member bids a non-zero quantity), so
the sum over a cluster carries, per level, how many members contribute to it (slot-level
k-anonymity, docs/privacy.md). The widths leave headroom for the sum over the largest cluster:
w = bits(max_qty·QTY_SCALE·max_cluster) + 1 guard bit, v = bits(max_cluster) + 1. Packing refuses
what would not fit the key's plaintext space (P·(w + v) ≤ key bits − 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lemcosim.federates.common.errors import LemcosimError

QTY_SCALE = 1000  # per kWh: 1 Wh
PRICE_SCALE = 10_000  # per M/kWh: 1e-4 M/kWh


class CodecError(LemcosimError):
    """A value or a cluster that the fixed-point layout cannot represent."""


def encode_qty(kwh: np.ndarray | float) -> np.ndarray:
    return np.rint(np.asarray(kwh, float) * QTY_SCALE).astype(np.int64)


def decode_qty(units: np.ndarray | int) -> np.ndarray:
    return np.asarray(units, float) / QTY_SCALE


def encode_price(price: float) -> int:
    return int(round(price * PRICE_SCALE))


def decode_cost(units: int) -> float:
    """A cost in qty·price units (1e-7 M) back to M."""
    return units / (QTY_SCALE * PRICE_SCALE)


@dataclass(frozen=True)
class SlotLayout:
    levels: int  # P
    max_qty_kwh: float
    max_cluster: int
    key_bits: int

    def __post_init__(self) -> None:
        if self.plaintext_bits > self.key_bits - 2:
            raise CodecError(
                f"{self.levels} levels × {self.slot_bits + self.count_bits} bits do not fit a "
                f"{self.key_bits}-bit key: lower max_cluster ({self.max_cluster}) or max_qty_kwh "
                f"({self.max_qty_kwh})")

    @property
    def max_units(self) -> int:
        return int(round(self.max_qty_kwh * QTY_SCALE))

    @property
    def slot_bits(self) -> int:
        return max(1, math.ceil(math.log2(self.max_units * self.max_cluster + 1))) + 1

    @property
    def count_bits(self) -> int:
        return math.ceil(math.log2(self.max_cluster + 1)) + 1

    @property
    def plaintext_bits(self) -> int:
        return self.levels * (self.slot_bits + self.count_bits)

    def pack(self, units: np.ndarray) -> int:
        """One curve (P integers in [0, max_units]) → one plaintext integer, with its counts."""
        values = [int(v) for v in units]
        if len(values) != self.levels:
            raise CodecError(f"a curve has {self.levels} levels, got {len(values)}")
        if min(values) < 0 or max(values) > self.max_units:
            raise CodecError(f"curve values must lie in [0, {self.max_qty_kwh} kWh]")
        w, v, base = self.slot_bits, self.count_bits, self.levels * self.slot_bits
        return sum((q << (w * p)) + (int(q > 0) << (base + v * p)) for p, q in enumerate(values))

    def unpack(self, plaintext: int) -> np.ndarray:
        """A (possibly summed) plaintext → its P quantity slots."""
        return self._slots(plaintext, 0, self.slot_bits)

    def unpack_counts(self, plaintext: int) -> np.ndarray:
        """A (possibly summed) plaintext → per level, how many members bid a non-zero quantity."""
        return self._slots(plaintext, self.levels * self.slot_bits, self.count_bits)

    def _slots(self, plaintext: int, offset: int, width: int) -> np.ndarray:
        mask = (1 << width) - 1
        return np.array([(plaintext >> (offset + width * p)) & mask for p in range(self.levels)],
                        dtype=object)

    def check_sum(self, plaintext: int, members: int) -> None:
        """A decrypted aggregate of `members` packed curves, or a CodecError: it must fit the
        layout, count at most `members` per level, and hold at most max_qty per counted member."""
        if plaintext >> self.plaintext_bits:
            raise CodecError(f"aggregate exceeds the {self.plaintext_bits}-bit layout")
        counts, units = self.unpack_counts(plaintext), self.unpack(plaintext)
        if any(c > members for c in counts) or any(
                u > c * self.max_units for u, c in zip(units, counts, strict=True)):
            raise CodecError(f"aggregate is not a sum of {members} valid curves")

    def check_cluster(self, size: int) -> None:
        if size > self.max_cluster:
            raise CodecError(f"a cluster of {size} exceeds the layout's headroom "
                             f"(max_cluster {self.max_cluster}): its sum could overflow a slot")
