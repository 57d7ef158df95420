"""Encrypted settlement (SPEC §5): each window's net amount computed on ciphertexts, masked by the
PT with masks that cancel only over the whole billing cycle, across key sets.

Per window t (key j) the PT sends Enc_j(b_i(MCP)) and Enc_j(s_i(MCP)) — its bid at the cleared
level, which it knows because MCP is public — and Enc_j(m_i^t). The CC computes, without
decrypting, the pseudo-amount
    𝔄_i^t = Enc(b_i(MCP)) ⊗ (MCP·BCFL) ⊖ Enc(s_i(MCP)) ⊗ (MCP·SCF) ⊕ Enc(m_i^t)
(⊗ a plaintext factor in fixed point, ⊖/⊕ homomorphic subtraction/addition) and adds each
prosumer's 𝔄 over the windows of each key set j. At the end of the cycle KG decrypts those per-key
sums D_j = A_j + M_j mod 𝒩_j (A_j the amounts, M_j the masks of key j's windows) and adds them.

Masks (`CycleMasks`): every m_i^t is uniform mod 𝒩_j from `secrets`, except the mask of the
cycle's closing window t* (key j*), which the PT chooses so that D_{j*} ≡ S − Σ_{j≠j*} D_j
(mod 𝒩_{j*}), S = Σ_j A_j the cycle's net amount. Then every D_j with j ≠ j* is uniform mod 𝒩_j
and independent of the amounts, D_{j*} is fixed by the others and S, and
    bill = signed((Σ_j D_j) mod 𝒩_{j*}) = S   (|S| < 𝒩/2, guaranteed by `bill_bound_units`).
The KG's view of a prosumer is thus K − 1 uniform numbers and the bill: no per-key or per-window
value. The PT can choose the closing mask because at t* it knows every amount of the cycle (its
own cleared quantities and the public prices), so a run that ends mid-cycle closes there and the
partial cycle is settled exactly.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

import gmpy2
from phe import paillier

from lemcosim.federates.auction.codec import PRICE_SCALE, QTY_SCALE, encode_price, encode_qty
from lemcosim.federates.auction.keys import add, invert_all, joint_power, scale

FACTOR_SCALE = 10_000  # BCFL/SCF in 1e-4 steps; an amount is then qty·price·factor units
UNITS_PER_M = QTY_SCALE * PRICE_SCALE * FACTOR_SCALE


def amount_factor(price: float, fraction: float) -> int:
    """MCP·fraction in fixed point (price units × 1e-4 fraction units)."""
    return encode_price(price) * int(round(fraction * FACTOR_SCALE))


def masked_amount(public: paillier.PaillierPublicKey, qty_ct: int, price: float, fraction: float,
                  mask_ct: int) -> int:
    """Enc(q·price·fraction + mask) in units of 1/UNITS_PER_M M, from Enc(q) and Enc(mask)."""
    return add(public, scale(public, qty_ct, amount_factor(price, fraction)), mask_ct)


def net_masked_amount(public: paillier.PaillierPublicKey, buy_ct: int, sell_ct: int, price: float,
                      bcfl: float, scf: float, mask_ct: int) -> int:
    """𝔄 = Enc(b·MCP·BCFL − s·MCP·SCF + mask) from Enc(b), Enc(s) and Enc(mask)."""
    return net_masked_amounts(public, [(buy_ct, sell_ct, mask_ct)], price, bcfl, scf)[0]


def net_masked_amounts(public: paillier.PaillierPublicKey, entries: list[tuple[int, int, int]],
                       price: float, bcfl: float, scf: float) -> list[int]:
    """𝔄 of every (Enc(b), Enc(s), Enc(mask)) of a window under one key: one joint
    exponentiation each, and one modular inversion for all the Enc(s) (keys.invert_all)."""
    n2 = gmpy2.mpz(public.nsquare)
    k_buy, k_sell = amount_factor(price, bcfl), amount_factor(price, scf)
    inverses = invert_all([gmpy2.mpz(s) % n2 for _, s, _ in entries], n2)
    return [int(joint_power(n2, gmpy2.mpz(b), k_buy, s_inv, k_sell) * m % n2)
            for (b, _, m), s_inv in zip(entries, inverses, strict=True)]


def checked_net_amounts(public: paillier.PaillierPublicKey, entries: list[tuple[int, int, int]],
                        price: float, bcfl: float, scf: float) -> list[int | None]:
    """`net_masked_amounts`, but an entry whose Enc(s) is no unit modulo 𝒩² (a faulty terminal's
    "0", say) gets None instead of leaving the whole batch without an inverse."""
    try:
        return net_masked_amounts(public, entries, price, bcfl, scf)
    except ZeroDivisionError:
        n = gmpy2.mpz(public.n)
        return [net_masked_amounts(public, [e], price, bcfl, scf)[0]
                if gmpy2.gcd(gmpy2.mpz(e[1]), n) == 1 else None for e in entries]


def net_units(buy_kwh: float, sell_kwh: float, price: float, bcfl: float, scf: float) -> int:
    """The same net amount in plaintext fixed point (the PT's own record and its masks)."""
    return (int(encode_qty(buy_kwh)) * amount_factor(price, bcfl)
            - int(encode_qty(sell_kwh)) * amount_factor(price, scf))


def bill_bound_units(windows: int, max_qty_kwh: float, retail: float) -> int:
    """|S| of an honest bill over `windows` windows: at most max_qty at the top price per window."""
    return windows * int(encode_qty(max_qty_kwh)) * amount_factor(retail, 1.0)


@dataclass
class CycleMasks:
    """One prosumer's masks over one billing cycle, at its PT: per key id, Σ amounts and Σ masks."""

    moduli: dict[str, int] = field(default_factory=dict)
    amounts: dict[str, int] = field(default_factory=dict)
    masks: dict[str, int] = field(default_factory=dict)

    def mask(self, key_id: str, n: int, amount_units: int, closing: bool) -> int:
        """The mask of this window (key `key_id`, modulus `n`); `closing` at the cycle's last
        settled window, whose mask makes the per-key sums add up to the bill."""
        self.moduli[key_id] = n
        a = self.amounts.get(key_id, 0) + amount_units
        m_prev = self.masks.get(key_id, 0)
        if closing:
            total = sum(self.amounts.values()) - self.amounts.get(key_id, 0) + a
            others = sum((self.amounts[k] + self.masks[k]) % self.moduli[k]
                         for k in self.amounts if k != key_id)
            m = (total - others - a - m_prev) % n
        else:
            m = secrets.randbelow(n)
        self.amounts[key_id] = a
        self.masks[key_id] = (m_prev + m) % n
        return m


def cycle_bill_units(decrypted: dict[str, int], closing_key: str, closing_n: int) -> int:
    """S from the KG's per-key decryptions D_j (in [0, 𝒩_j)): signed((Σ_j D_j) mod 𝒩_{j*})."""
    if closing_key not in decrypted:
        raise ValueError(f"no sum under the closing key {closing_key}")
    s = sum(decrypted.values()) % closing_n
    return s - closing_n if s > closing_n // 2 else s

