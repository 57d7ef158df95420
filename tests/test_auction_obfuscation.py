"""Obfuscators in the Damgård–Jurik–Nielsen short-exponent form (federates/auction/obfuscation.py):
ciphertexts made with them are ordinary Paillier ciphertexts for real `phe` keys."""

from __future__ import annotations

import secrets

import gmpy2
import pytest
from phe import paillier

from lemcosim.federates.auction import obfuscation
from lemcosim.federates.auction.keys import Encryptor
from lemcosim.federates.auction.obfuscation import (
    EXPONENT_BITS,
    FixedBaseTable,
    ObfuscatorBase,
    ObfuscatorPool,
    compute,
)


@pytest.fixture(scope="module")
def keypair():
    return paillier.generate_paillier_keypair(n_length=1024)


def ciphertext(public, m: int, rho) -> paillier.EncryptedNumber:
    """Enc(m) = (1 + m·𝒩)·ρ mod 𝒩², handed to phe as one of its own encrypted numbers."""
    return paillier.EncryptedNumber(public, int((1 + (m % public.n) * public.n) * rho
                                                % public.nsquare))


def test_security_parameters():
    assert obfuscation.SECURITY_BITS == 128
    assert EXPONENT_BITS == 256  # 2λ: Pollard-λ on the exponent costs 2^128 (module docstring)


def test_fixed_base_table_equals_powmod_at_the_edges():
    n2 = gmpy2.mpz(1009 * 1013) ** 2
    table = FixedBaseTable(12345, n2, bits=EXPONENT_BITS, window_bits=8)
    assert len(table.rows) == 32 and len(table.rows[0]) == 256  # 256 bits in 8-bit digits
    for x in (0, 1, 255, 256, 2**255, 2**256 - 1, secrets.randbits(256)):
        assert table.power(x) == pow(12345, x, int(n2))
    with pytest.raises(ValueError):
        table.power(2**256)  # beyond the table: would silently drop the top digits


def test_phe_decrypts_and_adds_short_exponent_ciphertexts(keypair):
    public, private = keypair
    rhos = compute(ObfuscatorBase.fresh(public.n), 6)
    assert private.raw_decrypt(int(rhos[0])) == 0  # ρ alone is Enc(0): an 𝒩-th residue
    values = [0, 1, 123_456_789, -42, public.max_int, -public.max_int]
    encrypted = [ciphertext(public, m, rho) for m, rho in zip(values, rhos, strict=True)]
    assert [private.decrypt(c) for c in encrypted] == values
    # phe's own arithmetic on them: sum, plaintext factor, and a sum with phe's own ciphertext
    assert private.decrypt(encrypted[1] + encrypted[2] + encrypted[3]) == 1 + 123_456_789 - 42
    assert private.decrypt(encrypted[2] * 3) == 370_370_367
    assert private.decrypt(encrypted[3] + public.encrypt(50)) == 8
    assert private.decrypt(encrypted[2] - encrypted[1]) == 123_456_788


def test_homomorphic_sum_of_many_bids(keypair):
    public, private = keypair
    enc = Encryptor(public)
    enc.precompute(200)
    quantities = [secrets.randbelow(10_000) for _ in range(200)]
    total = sum((paillier.EncryptedNumber(public, enc.encrypt(q)) for q in quantities[1:]),
                paillier.EncryptedNumber(public, enc.encrypt(quantities[0])))
    assert private.decrypt(total) == sum(quantities)


def test_obfuscators_never_repeat(keypair):
    public, _ = keypair
    base = ObfuscatorBase.fresh(public.n)
    rhos = compute(base, 2000)
    assert len(set(rhos)) == 2000 and 1 not in rhos
    other = ObfuscatorBase.fresh(public.n)
    assert other.h_n != base.h_n  # a fresh y per Encryptor
    assert not set(compute(other, 200)) & set(rhos)
    # two worker processes draw independently (no RNG state copied into both)
    with ObfuscatorPool(workers=2) as pool:
        batch = pool.submit(base, 1024)  # 4 chunks of 256 over 2 workers
        pooled = batch.result()
    assert batch.done() and len(pooled) == 1024
    assert len(set(pooled) | set(rhos)) == 1024 + 2000


def test_y_and_every_exponent_come_from_secrets(keypair, monkeypatch):
    public, private = keypair
    n, n2 = public.n, public.nsquare
    monkeypatch.setattr(obfuscation.secrets, "randbelow", lambda bound: 7 - 2)  # y = 7
    base = ObfuscatorBase.fresh(n)
    assert base.h_n == pow(-49 % n, n, n2)  # h^𝒩 with h = −y² mod 𝒩
    monkeypatch.undo()
    drawn: list[tuple[int, int]] = []

    def spy(bits: int) -> int:
        x = secrets.SystemRandom().getrandbits(bits)
        drawn.append((bits, x))
        return x

    monkeypatch.setattr(obfuscation.secrets, "randbits", spy)
    rhos = compute(base, 5)
    assert [bits for bits, _ in drawn] == [256] * 5
    assert [int(r) for r in rhos] == [pow(base.h_n, x, n2) for _, x in drawn]
    assert private.raw_decrypt(int(rhos[0]) * (1 + 9 * n) % n2) == 9


def test_encryptor_takes_prefetched_obfuscators_first(keypair):
    public, private = keypair
    enc = Encryptor(public)
    with ObfuscatorPool(workers=2) as pool:
        enc.prefetch(300, pool)
        assert len(enc._pending) == 1
        values = [enc.encrypt(m) for m in range(300)]
        assert not enc._pending and not enc._ready  # all 300 came from the background batch
    assert [private.raw_decrypt(c) for c in values[:5]] == [0, 1, 2, 3, 4]
    assert private.raw_decrypt(values[299]) == 299


def test_workers_yield_the_cpu_to_the_federates():
    """Background workers run at a lower priority (niceness +10): they use idle CPU, so the
    online work of a window is not slowed by the next window's precomputation."""
    import os

    with ObfuscatorPool(workers=1) as pool:
        worker = pool._executor.submit(os.nice, 0).result()
    assert worker == min(19, os.nice(0) + obfuscation.WORKER_NICENESS)


def test_chunks_no_worker_has_started_are_computed_by_the_caller(keypair):
    """A PT never waits for a queue: with the only worker busy, `result()` computes the chunks
    still queued itself and waits only for the one the worker holds."""
    import time

    public, private = keypair
    base = ObfuscatorBase.fresh(public.n)
    with ObfuscatorPool(workers=1) as pool:
        pool.start()
        pool._executor.submit(time.sleep, 1.0)  # the worker is busy
        batch = pool.submit(base, 1024)  # 4 chunks of 256 queued behind it
        rhos = batch.result()
        stolen = sum(future.cancelled() for future, _ in batch._chunks)
    assert stolen >= 2  # the executor hands a busy worker at most two tasks ahead
    assert len(set(rhos)) == 1024
    assert all(private.raw_decrypt(int(r)) == 0 for r in rhos[::97])


def test_ciphertext_text_is_plain_decimal():
    """Messages carry ciphertexts as decimal text; GMP converts them (to_text/from_text) exactly
    as Python's str/int would."""
    from lemcosim.federates.auction.keys import from_text, to_text

    c = secrets.randbits(4096) | 1 << 4095
    assert to_text(c) == str(c) and from_text(str(c)) == c and from_text(c) == c
    with pytest.raises(ValueError):
        from_text("not a ciphertext")


def test_net_amounts_in_one_joint_exponentiation_and_one_inversion(keypair):
    """The CC's net amounts Enc(f_b·b − f_s·s + m) of a window: joint exponentiations and one
    modular inversion for all entries (keys.joint_power, keys.invert_all)."""
    from lemcosim.federates.auction.keys import invert_all, joint_power
    from lemcosim.federates.auction.settlement import amount_factor, net_masked_amounts

    public, private = keypair
    n2 = public.nsquare
    enc = Encryptor(public)
    values = [secrets.randbits(4000) | 1 for _ in range(6)]
    assert [int(v) for v in invert_all(values, gmpy2.mpz(n2))] == [pow(v, -1, n2) for v in values]
    k1, k2 = secrets.randbelow(2**26), secrets.randbelow(2**26)
    assert joint_power(gmpy2.mpz(n2), gmpy2.mpz(values[0]), k1, gmpy2.mpz(values[1]), k2) \
        == pow(values[0], k1, n2) * pow(values[1], k2, n2) % n2
    # b = 3 kWh bought and s = 0, b = 0 and s = 2 kWh sold, both: at MCP 0.2, BCFL 0.98, SCF 0.5
    quantities = [(3000, 0, 7), (0, 2000, -5), (1000, 1000, 0)]
    entries = [(enc.encrypt(b), enc.encrypt(s), enc.encrypt(m)) for b, s, m in quantities]
    f_b, f_s = amount_factor(0.2, 0.98), amount_factor(0.2, 0.5)
    assert (f_b, f_s) == (2000 * 9800, 2000 * 5000)
    nets = net_masked_amounts(public, entries, 0.2, 0.98, 0.5)
    assert [private.decrypt(paillier.EncryptedNumber(public, c)) for c in nets] == [
        3000 * f_b + 7, -2000 * f_s - 5, 1000 * (f_b - f_s)]
