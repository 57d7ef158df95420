"""Encrypted settlement (SPEC §5): costs and revenues computed on ciphertexts, masked by the PTs
with masks that sum to zero over the windows sharing a key, decrypted only as billing-cycle sums.

Per window t the PT sends Enc(b_i(MCP)) and Enc(s_i(MCP)) — its bid at the cleared level, which
it knows because MCP is public — plus Enc(m_i^t) and Enc(n_i^t), its masks for cost and revenue.
The CC computes, without decrypting,
    𝔆_i^t = Enc(b_i(MCP)) ⊗ (MCP·BCFL) ⊕ Enc(m_i^t),   ℜ_i^t = Enc(s_i(MCP)) ⊗ (MCP·SCF) ⊕ Enc(n_i^t)
(⊗ a plaintext factor in fixed point, ⊕ homomorphic addition). At the end of the cycle the CC adds
each prosumer's 𝔆 over the windows of each key set j and KG decrypts those sums only: the masks
cancel and Σ_j gives the bill. The CC can check a PT's honesty in aggregate: Σ_i b_i(MCP) of its
cluster must equal slot MCP of the decrypted aggregate (KG compares).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from phe import paillier

from lemcosim.federates.auction.codec import PRICE_SCALE, QTY_SCALE, decode_cost, encode_price
from lemcosim.federates.auction.keys import KeyPair, add, decrypt_signed, scale

FACTOR_SCALE = 10_000  # BCFL/SCF in 1e-4 steps; cost units are then qty·price·factor


def zero_sum_masks(windows_of_key: dict[int, list[int]], bound: int,
                   rng: np.random.Generator) -> dict[int, int]:
    """Window → mask: uniform in [−bound, bound] except the last window of each key set, which
    takes minus the sum of the others, so the masks of every key set add up to zero."""
    masks: dict[int, int] = {}
    for windows in windows_of_key.values():
        values = [int(v) for v in rng.integers(-bound, bound + 1, len(windows) - 1)]
        values.append(-sum(values))
        masks.update(zip(windows, values, strict=True))
    return masks


def masked_amount(public: paillier.PaillierPublicKey, qty_ct: int, price: float, fraction: float,
                  mask_ct: int) -> int:
    """Enc(q·price·fraction + mask) in units of 1e-7·1e-4 M, from Enc(q) and Enc(mask)."""
    factor = encode_price(price) * int(round(fraction * FACTOR_SCALE))
    return add(public, scale(public, qty_ct, factor), mask_ct)


def decrypt_cycle_total(pairs: Sequence[KeyPair] | dict[int, KeyPair],
                        sums_by_key: dict[int, int]) -> float:
    """The bill in M: Σ_j Dec_j(Σ_{t∈T_j} 𝔆^t) (masks cancel within each key set)."""
    units = sum(decrypt_signed(pairs[j], c) for j, c in sums_by_key.items())
    return decode_cost(units) / FACTOR_SCALE


def plaintext_amount(qty_kwh: float, price: float, fraction: float) -> float:
    """The same amount in plaintext fixed point (for checks and for the PT's own records)."""
    q = int(round(qty_kwh * QTY_SCALE))
    return q * encode_price(price) * int(round(fraction * FACTOR_SCALE)) / (
        QTY_SCALE * PRICE_SCALE * FACTOR_SCALE)
