"""Paillier key sets per billing cycle, the window→key schedule, and precomputed obfuscators.

Keys come from `phe` (g = 𝒩 + 1). Encryption here is the raw Paillier map with an obfuscator
ρ (an 𝒩-th residue, obfuscation.py) precomputed ahead of the window, so the online cost of a
ciphertext is one modular multiplication: Enc(m) = (1 + m·𝒩)·ρ mod 𝒩². Negative integers are
encoded mod 𝒩 and decoded from the upper half of [0, 𝒩).
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from dataclasses import dataclass, field

import gmpy2
from phe import paillier

from lemcosim.federates.auction.obfuscation import (
    Batch,
    ObfuscatorBase,
    ObfuscatorPool,
    compute,
)
from lemcosim.federates.common.errors import LemcosimError

DEFAULT_KEY_BITS = 2048


class KeyError_(LemcosimError):  # noqa: N801 - "KeyError" would shadow the builtin
    """A key request the key generator refuses (too short without the test flag, unknown set)."""


class CiphertextError(LemcosimError):
    """A ciphertext that is malformed or was made under another key."""


def fingerprint(public_key: paillier.PaillierPublicKey) -> str:
    return _fingerprint(public_key.n)


@functools.lru_cache(maxsize=64)
def _fingerprint(n: int) -> str:  # every bid names its key: hash 𝒩 once per key, not per bid
    return hashlib.sha256(str(n).encode()).hexdigest()[:16]


@dataclass
class KeyPair:
    public: paillier.PaillierPublicKey
    private: paillier.PaillierPrivateKey

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public)


def generate_key_set(n_keys: int, key_bits: int = DEFAULT_KEY_BITS,
                     allow_short_keys: bool = False) -> list[KeyPair]:
    """K_gen for one billing cycle: `n_keys` independent Paillier key pairs (phe draws the
    primes from random.SystemRandom, the OS's CSPRNG)."""
    if key_bits < DEFAULT_KEY_BITS and not allow_short_keys:
        raise KeyError_(f"{key_bits}-bit keys are below the {DEFAULT_KEY_BITS}-bit default; only "
                        "tests may ask for them (allow_short_keys=True)")
    return [KeyPair(*paillier.generate_paillier_keypair(n_length=key_bits)) for _ in range(n_keys)]


def key_schedule(windows: int, n_keys: int) -> list[int]:
    """Window → key index for one billing cycle, drawn by the KG from OS randomness (`secrets`):
    every key serves at least one window, the other windows a uniformly random key. The KG sends
    it to the PTs with the keys; it is no secret from the CCs (docs/privacy.md)."""
    if n_keys < 1 or windows < n_keys:
        raise KeyError_(f"{windows} windows cannot give each of {n_keys} keys a window")
    rng = secrets.SystemRandom()
    schedule = list(range(n_keys)) + [rng.randrange(n_keys) for _ in range(windows - n_keys)]
    rng.shuffle(schedule)
    return schedule


@dataclass
class Encryptor:
    """Raw Paillier encryption under one public key with obfuscators computed ahead of time in
    the Damgård–Jurik–Nielsen short-exponent form (obfuscation.py), here or in worker processes."""

    public: paillier.PaillierPublicKey
    base: ObfuscatorBase = field(init=False)
    _ready: list = field(default_factory=list)
    _pending: list[Batch] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.base = ObfuscatorBase.fresh(self.public.n)

    @property
    def n(self) -> gmpy2.mpz:
        return gmpy2.mpz(self.public.n)

    @property
    def nsquare(self) -> gmpy2.mpz:
        return gmpy2.mpz(self.public.nsquare)

    @property
    def stock(self) -> int:
        """Obfuscators computed or under way."""
        return len(self._ready) + sum(batch.count for batch in self._pending)

    def precompute(self, count: int) -> None:
        """`count` obfuscators now, in this process (the offline part of encryption)."""
        self._ready.extend(compute(self.base, count))

    def prefetch(self, count: int, pool: ObfuscatorPool) -> Batch:
        """`count` obfuscators in the background; encryption takes them once they are needed."""
        batch = pool.submit(self.base, count)
        self._pending.append(batch)
        return batch

    def collect(self) -> None:
        """Take the background batches now, waiting for any that is not done yet."""
        while self._pending:
            self._ready.extend(self._pending.pop(0).result())

    def encrypt(self, m: int) -> int:
        if not self._ready:
            self._ready.extend(self._pending.pop(0).result() if self._pending
                               else compute(self.base, 1))
        n, n2 = self.n, self.nsquare
        return int(((1 + (gmpy2.mpz(m) % n) * n) * self._ready.pop()) % n2)


def to_text(ciphertext: int) -> str:
    """A ciphertext as decimal text for a message, converted by GMP (Python's own int → str is
    quadratic: about 3× slower at 4096 bits, and a window sends 5 ciphertexts per member)."""
    return gmpy2.mpz(ciphertext).digits()


def from_text(text: str | int) -> int:
    """The inverse of `to_text` (GMP again); TypeError/ValueError for what is no integer."""
    return int(gmpy2.mpz(text))


def add(public: paillier.PaillierPublicKey, *ciphertexts: int) -> int:
    """Enc(Σ m) from Enc(m_i): the product mod 𝒩²."""
    n2 = gmpy2.mpz(public.nsquare)
    total = gmpy2.mpz(1)
    for c in ciphertexts:
        total = total * c % n2
    return int(total)


def scale(public: paillier.PaillierPublicKey, ciphertext: int, k: int) -> int:
    """Enc(k·m) from Enc(m) and a plaintext integer k ≥ 0."""
    return int(gmpy2.powmod(gmpy2.mpz(ciphertext), gmpy2.mpz(k), gmpy2.mpz(public.nsquare)))


def joint_power(modulus: gmpy2.mpz, g1: gmpy2.mpz, e1: int, g2: gmpy2.mpz, e2: int) -> gmpy2.mpz:
    """g1^e1 · g2^e2 mod `modulus` (e1, e2 ≥ 0) in one square-and-multiply (Straus/Shamir): the
    squarings are shared, about two thirds of the cost of two exponentiations."""
    table = [gmpy2.mpz(1), g1, g2, g1 * g2 % modulus]
    acc = gmpy2.mpz(1)
    for i in range(max(e1.bit_length(), e2.bit_length()) - 1, -1, -1):
        acc = acc * acc % modulus
        digit = (e1 >> i & 1) | (e2 >> i & 1) << 1
        if digit:
            acc = acc * table[digit] % modulus
    return acc


def invert_all(values: list[int], modulus: gmpy2.mpz) -> list[gmpy2.mpz]:
    """The inverses of all `values` mod `modulus` with one modular inversion (Montgomery's trick:
    three multiplications each instead of an inversion each); ZeroDivisionError if one has none."""
    prefix = [gmpy2.mpz(1)]
    for v in values:
        prefix.append(prefix[-1] * v % modulus)
    inverse = gmpy2.invert(prefix[-1], modulus)
    out = [gmpy2.mpz(0)] * len(values)
    for i in range(len(values) - 1, -1, -1):
        out[i] = inverse * prefix[i] % modulus
        inverse = inverse * values[i] % modulus
    return out


def check(public: paillier.PaillierPublicKey, ciphertext: object, key_id: str, who: str) -> int:
    """A well-formed ciphertext under `public`, or a named CiphertextError."""
    if key_id != fingerprint(public):
        raise CiphertextError(f"{who}: ciphertext under key {key_id}, expected "
                              f"{fingerprint(public)} for this window")
    if not isinstance(ciphertext, int) or isinstance(ciphertext, bool):
        raise CiphertextError(f"{who}: ciphertext is not an integer")
    n2 = public.nsquare
    if not 0 < ciphertext < n2 or gmpy2.gcd(ciphertext, public.n) != 1:
        raise CiphertextError(f"{who}: malformed ciphertext (not a unit modulo 𝒩²)")
    return ciphertext

