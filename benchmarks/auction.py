"""Auction scale: online window time and offline precomputation, packed vs one ciphertext per number.

usage: python benchmarks/auction.py [--prosumers 1000 10000] [--levels 20] [--key-bits 2048]
                                    [--clusters 10] [--naive-sample 20] [--phe-sample 200]
                                    [--workers 2]

Online (per window): PT encryption with precomputed obfuscators (2 packed ciphertexts per
prosumer), CC aggregation, KG decryption of aggregates, clearing, and the encrypted settlement
(2 masked amounts per prosumer, from 4 precomputed-obfuscator encryptions). Offline: the window's
obfuscators (6 per prosumer) in the Damgård–Jurik–Nielsen short-exponent form with fixed-base tables
(federates/auction/obfuscation.py), all of them, on `--workers` worker processes; next to it, phe's
plain obfuscation (r^𝒩 mod 𝒩², full-length r) timed on `--phe-sample` ciphertexts and scaled
linearly to the window (printed as such). Baseline for the online part, in the same run: phe's
own encryption of every number (2·P per prosumer, obfuscation online) and ciphertext additions —
measured on `--naive-sample` prosumers and scaled linearly (printed as such). CCs run in parallel
in a real deployment; here they run one after the other and the online time is the sum.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from lemcosim.federates.auction.aggregate import aggregate
from lemcosim.federates.auction.bids import Bid, encrypt_bid, price_levels
from lemcosim.federates.auction.clearing import clear
from lemcosim.federates.auction.codec import QTY_SCALE, SlotLayout, encode_qty
from lemcosim.federates.auction.keys import Encryptor, generate_key_set
from lemcosim.federates.auction.obfuscation import ObfuscatorPool
from lemcosim.federates.auction.settlement import masked_amount


def bids_for(n: int, levels: int, rng: np.random.Generator) -> list[Bid]:
    ramp = np.linspace(0, 1, levels)
    out = []
    for i in range(n):
        q = round(float(rng.uniform(0.1, 5.0)), 3)
        zero = np.zeros(levels)
        if rng.random() < 0.5:
            out.append(Bid(f"p{i}", np.round(q * (1 - 0.5 * ramp), 3), zero))
        else:
            out.append(Bid(f"p{i}", zero, np.round(q * (0.5 + 0.5 * ramp), 3)))
    return out


def phe_obfuscation_s(public, count: int) -> float:
    """Seconds phe takes to re-obfuscate `count` ciphertexts (a fresh r^𝒩 mod 𝒩² each)."""
    ciphertexts = [public.encrypt(1, r_value=1) for _ in range(count)]  # r = 1: not obfuscated
    start = time.perf_counter()
    for c in ciphertexts:
        c.obfuscate()
    return time.perf_counter() - start


def run(n: int, levels: int, key_bits: int, clusters: int, naive_sample: int, phe_sample: int,
        pool: ObfuscatorPool) -> None:
    rng = np.random.default_rng(1)
    pair = generate_key_set(1, key_bits, allow_short_keys=key_bits < 2048)[0]
    size = -(-n // clusters)
    layout = SlotLayout(levels, 5.0, size, key_bits)
    bids = bids_for(n, levels, rng)
    prices = price_levels(0.08, 0.30, levels)
    enc = Encryptor(pair.public)

    start = time.perf_counter()
    enc.prefetch(6 * n, pool).result()
    offline = time.perf_counter() - start
    phe_offline = phe_obfuscation_s(pair.public, phe_sample) / phe_sample * 6 * n

    start = time.perf_counter()
    encrypted = [encrypt_bid(b, layout, enc) for b in bids]
    aggregates = [aggregate(f"c{c}", encrypted[c * size:(c + 1) * size], pair.public, layout)
                  for c in range(clusters) if encrypted[c * size:(c + 1) * size]]
    demand = np.zeros(levels)
    supply = np.zeros(levels)
    for agg in aggregates:
        demand += layout.unpack(pair.private.raw_decrypt(agg.buy)).astype(float) / QTY_SCALE
        supply += layout.unpack(pair.private.raw_decrypt(agg.sell)).astype(float) / QTY_SCALE
    result = clear(prices, demand, supply)
    level = max(result.level, 0)
    for b in bids:
        masked_amount(pair.public, enc.encrypt(int(encode_qty(b.buy[level]))), result.mcp or 0.0,
                      result.bcf, enc.encrypt(int(rng.integers(-1000, 1000))))
        masked_amount(pair.public, enc.encrypt(int(encode_qty(b.sell[level]))), result.mcp or 0.0,
                      result.scf, enc.encrypt(int(rng.integers(-1000, 1000))))
    online = time.perf_counter() - start

    sample = bids[:naive_sample]
    start = time.perf_counter()
    totals = None
    for b in sample:  # one phe ciphertext per number, obfuscated online, added with phe
        cts = [pair.public.encrypt(int(v)) for v in encode_qty(np.r_[b.buy, b.sell])]
        totals = cts if totals is None else [t + c for t, c in zip(totals, cts, strict=True)]
    naive = (time.perf_counter() - start) / len(sample) * n

    print(f"{n} prosumers × {levels} levels, {key_bits}-bit keys, {clusters} clusters: "
          f"MCP {result.mcp:.3f}, MCV {result.mcv_kwh:.1f} kWh")
    print(f"  offline precomputation: {offline:8.2f} s  ({6 * n} obfuscators, short-exponent "
          f"form, fixed-base tables, {pool.workers} worker processes, all computed)")
    print(f"  phe plain obfuscation:  {phe_offline:8.2f} s  (r^𝒩 mod 𝒩², one process, scaled from "
          f"{phe_sample}); ratio phe/ours {phe_offline / offline:6.1f}x")
    print(f"  online window:          {online:8.2f} s  (bids in → clearing → encrypted settlement)")
    print(f"  naive bid encryption:   {naive:8.2f} s  (one phe ciphertext per number, scaled "
          f"from {len(sample)}); ratio naive/online {naive / online:6.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prosumers", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--levels", type=int, default=20)
    parser.add_argument("--key-bits", type=int, default=2048)
    parser.add_argument("--clusters", type=int, default=10)
    parser.add_argument("--naive-sample", type=int, default=20)
    parser.add_argument("--phe-sample", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with ObfuscatorPool(args.workers) as pool:
        pool.compute(Encryptor(generate_key_set(1, 512, allow_short_keys=True)[0].public).base,
                     1)  # start the worker processes before timing
        for n in args.prosumers:
            run(n, args.levels, args.key_bits, args.clusters, args.naive_sample, args.phe_sample,
                pool)


if __name__ == "__main__":
    main()
