"""Paillier obfuscators in the Damgård–Jurik–Nielsen short-exponent form, precomputed off the
critical path (fixed-base tables, worker processes).

A Paillier ciphertext is (1 + m·𝒩)·ρ mod 𝒩² with ρ a random 𝒩-th residue. Textbook (and `phe`)
take ρ = r^𝒩 for a uniform r < 𝒩: a 2048-bit exponent, about 10 ms per ρ at 2048-bit keys. Damgård,
Jurik and Nielsen [DJN10, §4.2] fix h = −y² mod 𝒩 for one random unit y and take ρ = (h^𝒩)^x with
x a short random exponent. Here x has EXPONENT_BITS = 2λ = 256 bits for λ = 128, and (h^𝒩)^x comes
from a fixed-base table (ρ costs ⌈256/WINDOW_BITS⌉ − 1 multiplications mod 𝒩²): 50–60× cheaper.
Every ρ is still an 𝒩-th residue, so `phe` decrypts the ciphertexts and adds them like its own.

Security. Semantic security rests on the decisional composite residuosity assumption (as for
Paillier) and on the short-exponent assumption: with x uniform in [0, 2^{2λ}), h^x cannot be told
apart from a uniform element of ⟨h⟩ [KK04]. The best known attacks on a 2λ-bit exponent (Pollard's
λ, van Oorschot–Wiener [vOW96]) take about 2^λ = 2^128 group operations, more than factoring a
2048-bit 𝒩 (about 2^112), so the key length stays the weakest link. DJN themselves use ⌈k/2⌉-bit
exponents (k = bits of 𝒩); EXPONENT_BITS follows the 2λ rule of [vOW96, KK04] instead. y and
every x come from `secrets` (OS randomness); y stays in the process that draws it (a PT), and a
fresh y is drawn for every public key.

[DJN10] I. Damgård, M. Jurik, J. B. Nielsen, "A generalization of Paillier's public-key system
        with applications to electronic voting", Int. J. Inf. Secur. 9(6):371–385, 2010.
[KK04]  T. Koshiba, K. Kurosawa, "Short exponent Diffie–Hellman problems", PKC 2004, LNCS 2947.
[vOW96] P. C. van Oorschot, M. J. Wiener, "On Diffie–Hellman key agreement with short
        exponents", EUROCRYPT 1996, LNCS 1070.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import secrets
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

import gmpy2

SECURITY_BITS = 128  # λ
EXPONENT_BITS = 2 * SECURITY_BITS
WINDOW_BITS = 8  # 32 rows × 256 entries: 4 MB per 2048-bit key, built in about 0.05 s
_MIN_CHUNK = 256  # obfuscators per task sent to a worker process
WORKER_NICENESS = 10


@dataclass(frozen=True)
class ObfuscatorBase:
    """h^𝒩 mod 𝒩² with h = −y² mod 𝒩, for one public key 𝒩 and a secret random unit y."""

    n: int
    h_n: int

    @classmethod
    def fresh(cls, n: int) -> ObfuscatorBase:
        while True:
            y = secrets.randbelow(n - 2) + 2
            if math.gcd(y, n) == 1:
                break
        n_mpz = gmpy2.mpz(n)
        return cls(n, int(gmpy2.powmod(-(gmpy2.mpz(y) ** 2) % n_mpz, n_mpz, n_mpz * n_mpz)))


class FixedBaseTable:
    """g^x mod `modulus` for any x < 2^bits: row i holds g^(d·2^(w·i)) for every w-bit digit d, so
    g^x is the product of one entry per row."""

    def __init__(self, base: int, modulus: int, bits: int = EXPONENT_BITS,
                 window_bits: int = WINDOW_BITS) -> None:
        self.modulus = gmpy2.mpz(modulus)
        self.window_bits = window_bits
        self.bits = bits
        self.rows: list[list[gmpy2.mpz]] = []
        step = gmpy2.mpz(base) % self.modulus
        for _ in range(-(-bits // window_bits)):
            row = [gmpy2.mpz(1), step]
            for _ in range(2, 1 << window_bits):
                row.append(row[-1] * step % self.modulus)
            self.rows.append(row)
            step = row[-1] * step % self.modulus  # g^(2^(w·(i+1)))

    def power(self, x: int) -> gmpy2.mpz:
        if not 0 <= x < 1 << self.bits:
            raise ValueError(f"exponent outside [0, 2^{self.bits})")
        mask = (1 << self.window_bits) - 1
        acc = gmpy2.mpz(1)
        for row in self.rows:
            digit = x & mask
            if digit:
                acc = acc * row[digit] % self.modulus
            x >>= self.window_bits
        return acc


_TABLES: dict[ObfuscatorBase, FixedBaseTable] = {}  # per process: the keys of a billing cycle


def _table(base: ObfuscatorBase) -> FixedBaseTable:
    if base not in _TABLES:
        if len(_TABLES) >= 8:  # older cycles' keys are no longer used
            _TABLES.clear()
        _TABLES[base] = FixedBaseTable(base.h_n, base.n * base.n)
    return _TABLES[base]


def compute(base: ObfuscatorBase, count: int) -> list[gmpy2.mpz]:
    """`count` fresh obfuscators (h^𝒩)^x mod 𝒩², each x drawn from `secrets`, in this process."""
    if count <= 0:
        return []
    table = _table(base)
    return [table.power(secrets.randbits(EXPONENT_BITS)) for _ in range(count)]


def _background(niceness: int) -> None:
    """Worker processes yield the CPU to the federates' online work (they fill idle time)."""
    os.nice(niceness)


def _chunks(count: int, workers: int) -> list[int]:
    # many chunks per worker: a PT that needs them early takes back all a worker has not started
    size = max(_MIN_CHUNK, -(-count // (16 * workers)))
    return [min(size, count - start) for start in range(0, count, size)]


class Batch:
    """Obfuscators being computed in worker processes, in chunks. `result()` returns them all: a
    chunk no worker has started yet is computed by the caller instead of waited for."""

    def __init__(self, base: ObfuscatorBase, chunks: list[tuple[Future, int]]) -> None:
        self.base = base
        self._chunks = chunks
        self.count = sum(size for _, size in chunks)

    def done(self) -> bool:
        return all(f.done() for f, _ in self._chunks)

    def result(self) -> list[gmpy2.mpz]:
        # take back every chunk not yet handed to a worker first, then wait for the others
        stolen = [f.cancel() for f, _ in self._chunks]
        return [rho for (f, size), own in zip(self._chunks, stolen, strict=True)
                for rho in (compute(self.base, size) if own else f.result())]


class ObfuscatorPool:
    """Worker processes that compute obfuscators in the background: `submit` ahead of the window,
    `Batch.result()` when the window needs them. Workers start from a fresh interpreter
    (forkserver), never by forking a process that already runs HELICS threads, and run at a
    lower priority than the federates."""

    def __init__(self, workers: int = 2, niceness: int = WORKER_NICENESS) -> None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        self.workers = workers
        self._executor = ProcessPoolExecutor(workers, mp_context=context, initializer=_background,
                                             initargs=(niceness,))

    def start(self) -> None:
        """Start every worker now (a worker otherwise starts with the first task it is needed for)."""
        for future in [self._executor.submit(os.getpid) for _ in range(self.workers)]:
            future.result()

    @property
    def pids(self) -> list[int]:
        """The worker processes (benchmarks read their CPU time)."""
        return list(self._executor._processes or {})

    def submit(self, base: ObfuscatorBase, count: int) -> Batch:
        return Batch(base, [(self._executor.submit(compute, base, size), size)
                            for size in _chunks(count, self.workers)])

    def compute(self, base: ObfuscatorBase, count: int) -> list[gmpy2.mpz]:
        return self.submit(base, count).result()

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ObfuscatorPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
