"""Auction scale: online window time and offline precomputation, packed vs one ciphertext per number,
and the same window measured in a real federation.

usage: python benchmarks/auction.py [--prosumers 1000 10000] [--levels 20] [--key-bits 2048]
                                    [--clusters 10] [--naive-sample 20] [--phe-sample 200]
                                    [--workers 2]
       python benchmarks/auction.py --federation [--prosumers 1000 10000] [--windows 4]

Pure model. Online (per window): PT encryption with precomputed obfuscators (2 packed ciphertexts
per prosumer), CC aggregation, KG decryption of aggregates, clearing, and the encrypted settlement
(one net masked amount per prosumer from 3 precomputed-obfuscator encryptions), in one process
(the CCs one after the other). Offline: the window's obfuscators (5 per prosumer) in the
Damgård–Jurik–Nielsen short-exponent form with fixed-base tables (federates/auction/obfuscation.py),
all of them, on `--workers` worker processes; next to it, phe's plain obfuscation (r^𝒩 mod 𝒩²,
full-length r) timed on `--phe-sample` ciphertexts and scaled linearly to the window (printed as
such). Baseline for the online part, in the same run: phe's own encryption of every number (2·P
per prosumer, obfuscation online) and ciphertext additions — measured on `--naive-sample`
prosumers and scaled linearly (printed as such).

--federation runs scenario ch6_cigre_lv_10k (every role a HELICS federate, 2 PT federates, 3
CCs as parallel processes, obfuscators for the next window precomputed by a niced background
worker per PT) with the population scaled to each `--prosumers` value, `--windows` windows and
one billing cycle longer than the run. Each PT logs when its windows start and end; the online
window time is the interval between the ends of consecutive windows once the pipeline runs
(windows 1 to W−2: the whole window — next positions, bids, aggregation, clearing, congestion
check, encrypted settlement). The run is stopped after window W−2: its last window would close
the billing cycle, and the bill decryptions (one per member and key, at the KG) belong to no
trading window. Printed next to it: the CPU every process of the run spent in those windows
(online, and the obfuscator workers apart) — on a shared machine the wall times scale with its
load, CPU seconds do not —, the first window (key generation and that window's obfuscators on
the critical path), the time PTs waited for obfuscators, and the pure model's online time for
the same population and clusters in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lemcosim.federates.auction.aggregate import aggregate
from lemcosim.federates.auction.bids import Bid, encrypt_bid, price_levels
from lemcosim.federates.auction.clearing import clear
from lemcosim.federates.auction.codec import QTY_SCALE, SlotLayout, encode_qty
from lemcosim.federates.auction.keys import Encryptor, generate_key_set
from lemcosim.federates.auction.obfuscation import ObfuscatorPool
from lemcosim.federates.auction.settlement import net_masked_amounts

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runs import run_command  # noqa: E402

OBFUSCATORS_PER_MEMBER = 5  # 2 bid curves; settlement: b(MCP), s(MCP) and one mask


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


def phe_obfuscation_s(public, count: int) -> tuple[float, float]:
    """Wall and CPU seconds phe takes to re-obfuscate `count` ciphertexts (a fresh r^𝒩 mod 𝒩²
    each)."""
    ciphertexts = [public.encrypt(1, r_value=1) for _ in range(count)]  # r = 1: not obfuscated
    start, cpu = time.perf_counter(), time.process_time()
    for c in ciphertexts:
        c.obfuscate()
    return time.perf_counter() - start, time.process_time() - cpu


def run(n: int, levels: int, key_bits: int, clusters: int, naive_sample: int, phe_sample: int,
        pool: ObfuscatorPool) -> tuple[float, float]:
    """Print the pure model's offline and online times; return the online wall and CPU time."""
    rng = np.random.default_rng(1)
    pair = generate_key_set(1, key_bits, allow_short_keys=key_bits < 2048)[0]
    size = -(-n // clusters)
    layout = SlotLayout(levels, 5.0, size, key_bits)
    bids = bids_for(n, levels, rng)
    prices = price_levels(0.08, 0.30, levels)
    enc = Encryptor(pair.public)

    start, cpu = time.perf_counter(), _pool_cpu_s(pool)
    enc.prefetch(OBFUSCATORS_PER_MEMBER * n, pool)
    enc.collect()
    offline, offline_cpu = time.perf_counter() - start, _pool_cpu_s(pool) - cpu
    phe_offline, phe_cpu = (t / phe_sample * OBFUSCATORS_PER_MEMBER * n
                            for t in phe_obfuscation_s(pair.public, phe_sample))

    start, cpu = time.perf_counter(), time.process_time()
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
    entries = [(enc.encrypt(int(encode_qty(b.buy[level]))),
                enc.encrypt(int(encode_qty(b.sell[level]))),
                enc.encrypt(secrets.randbelow(pair.public.n))) for b in bids]
    for c in range(clusters):  # each CC: its members' net amounts
        net_masked_amounts(pair.public, entries[c * size:(c + 1) * size], result.mcp or 0.0,
                           result.bcf, result.scf)
    online, online_cpu = time.perf_counter() - start, time.process_time() - cpu

    sample = bids[:naive_sample]
    start = time.perf_counter()
    totals = None
    for b in sample:  # one phe ciphertext per number, obfuscated online, added with phe
        cts = [pair.public.encrypt(int(v)) for v in encode_qty(np.r_[b.buy, b.sell])]
        totals = cts if totals is None else [t + c for t, c in zip(totals, cts, strict=True)]
    naive = (time.perf_counter() - start) / len(sample) * n

    print(f"{n} prosumers × {levels} levels, {key_bits}-bit keys, {clusters} clusters: "
          f"MCP {result.mcp:.3f}, MCV {result.mcv_kwh:.1f} kWh")
    print(f"  offline precomputation: {offline:8.2f} s  ({OBFUSCATORS_PER_MEMBER * n} obfuscators, "
          f"short-exponent form, fixed-base tables, {pool.workers} worker processes and the "
          f"waiting process, all computed; CPU {offline_cpu:.2f} s, "
          f"÷ {os.cpu_count()} cores = {offline_cpu / os.cpu_count():.2f} s)")
    print(f"  phe plain obfuscation:  {phe_offline:8.2f} s  (r^𝒩 mod 𝒩², one process, scaled from "
          f"{phe_sample}; CPU {phe_cpu:.2f} s); ratio phe/ours {phe_offline / offline:6.1f}x wall, "
          f"{phe_cpu / offline_cpu:6.1f}x CPU")
    print(f"  online window:          {online:8.2f} s  (bids in → clearing → encrypted settlement; "
          f"CPU {online_cpu:.2f} s, one process)")
    print(f"  naive bid encryption:   {naive:8.2f} s  (one phe ciphertext per number, scaled "
          f"from {len(sample)}); ratio naive/online {naive / online:6.1f}x")
    print(f"  machine load average:   {os.getloadavg()[0]:8.1f}    on {os.cpu_count()} cores (wall "
          "times above scale with it; the ratios are measured side by side)")
    return online, online_cpu


GROUP_SHARES = (0.4, 0.3, 0.3)  # ch6_cigre_lv_10k's up/mid/end groups (4000/3000/3000)


def _pool_cpu_s(pool: ObfuscatorPool) -> float:
    """CPU seconds so far of this process and the pool's workers."""
    return time.process_time() + sum(_cpu_s(pid)[0] for pid in pool.pids)


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        found.append(todo.pop())
        for task in Path(f"/proc/{found[-1]}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
    return found


def _cpu_s(pid: int) -> tuple[float, bool]:
    """CPU seconds (user + system) of one process, and whether it is an obfuscator worker."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        worker = b"multiprocessing" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return 0.0, False
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), worker


def _run_cpu_s(run_dir: Path) -> tuple[float, float]:
    """CPU seconds so far of every process of the run: (broker and federates, obfuscator
    workers)."""
    pids = json.loads((run_dir / "logs" / "pids.json").read_text())
    online = workers = 0.0
    for pid in {p for root in pids.values() for p in _descendants(root)}:
        cpu, worker = _cpu_s(pid)
        workers += cpu if worker else 0.0
        online += 0.0 if worker else cpu
    return online, workers


def _timing(run_dir: Path) -> list[dict]:
    return [json.loads(line) for path in sorted((run_dir / "logs").glob("pt*.timing.jsonl"))
            for line in path.read_text().splitlines() if line.endswith("}")]


def federation(n: int, windows: int, levels: int, key_bits: int, out: Path) -> dict[str, float]:
    """Run ch6_cigre_lv_10k scaled to `n` prosumers until every PT has finished window W−2;
    window times from the PTs' logs, CPU of the run's processes sampled here as each window
    ends. The run is then stopped: its last window would close the billing cycle, whose bill
    decryptions (one per member and key, at the KG) are no part of a trading window."""
    counts = [round(n * share) for share in GROUP_SHARES]
    counts[0] += n - sum(counts)
    overrides = [f"time.windows={windows}", f"auction.cycle_windows={windows + 1}",
                 f"auction.levels={levels}", f"auction.key_bits={key_bits}",
                 f"auction.allow_short_keys={str(key_bits < 2048).lower()}",
                 f"auction.dso.lines.0.limit_kw={15 * n / 60:g}",  # the ch6 limit per household
                 *(f"prosumers.groups.{i}.count={c}" for i, c in enumerate(counts))]
    run_dir = out / f"federation_{n}"
    start = time.perf_counter()
    proc = subprocess.Popen(run_command("ch6_cigre_lv_10k", run_dir, overrides),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cpu_at_end: dict[int, tuple[float, float]] = {}  # window → CPU when every PT had ended it
    ends: dict[int, float] = {}
    while proc.poll() is None and len(ends) < windows - 1:
        time.sleep(0.05)
        if not (run_dir / "logs" / "pids.json").exists():
            continue
        pts = [name for name in json.loads((run_dir / "logs" / "pids.json").read_text())
               if name.startswith("pt")]
        rows = _timing(run_dir)
        for w in range(len(ends), windows - 1):
            done = [r for r in rows if r["window"] == w]
            if len(done) < len(pts):
                break
            cpu_at_end[w], ends[w] = _run_cpu_s(run_dir), max(r["end"] for r in done)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # the runner stops every federate
    _, stderr = proc.communicate()
    total = time.perf_counter() - start
    if len(ends) < windows - 1:
        raise SystemExit(f"federation with {n} prosumers failed:\n{stderr}")
    first = ends[0] - min(r["start"] for r in _timing(run_dir) if r["window"] == 0)
    steady = [ends[w + 1] - ends[w] for w in range(windows - 2)]
    cpu = [[b - a for a, b in zip(cpu_at_end[w], cpu_at_end[w + 1], strict=True)]
           for w in range(windows - 2)]
    return {"online": statistics.median(steady), "min": min(steady), "max": max(steady),
            "first": first, "total": total, "load": os.getloadavg()[0],
            "wait": max(sum(r["obfuscator_wait_s"] for r in _timing(run_dir) if r["window"] == w)
                        for w in range(1, windows - 1)),
            "cpu_online": statistics.median(c[0] for c in cpu),
            "cpu_workers": statistics.median(c[1] for c in cpu)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prosumers", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--levels", type=int, default=20)
    parser.add_argument("--key-bits", type=int, default=2048)
    parser.add_argument("--clusters", type=int, default=10)
    parser.add_argument("--naive-sample", type=int, default=20)
    parser.add_argument("--phe-sample", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--federation", action="store_true",
                        help="also time the window in a real federation (ch6_cigre_lv_10k)")
    parser.add_argument("--windows", type=int, default=4, help="federation: windows per run (≥ 3)")
    args = parser.parse_args()
    if args.federation and args.windows < 3:
        parser.error("--windows must be at least 3: window 0 fills the pipeline")
    for n in args.prosumers:
        with ObfuscatorPool(args.workers, niceness=0) as pool:  # nothing of ours to yield to
            pool.start()  # the worker processes, before timing
            clusters = 3 if args.federation else args.clusters  # the scenario's three clusters
            floor, floor_cpu = run(n, args.levels, args.key_bits, clusters, args.naive_sample,
                        args.phe_sample, pool)
        if args.federation:
            with tempfile.TemporaryDirectory() as tmp:
                fed = federation(n, args.windows, args.levels, args.key_bits, Path(tmp))
            print(f"  federation, online window: {fed['online']:6.2f} s  (median of windows 1.."
                  f"{args.windows - 2}, wall, range {fed['min']:.2f}–{fed['max']:.2f} s; 2 PT "
                  f"federates, 3 CCs, KG, MO, DSO, prosumers, broker on this machine's cores)")
            print(f"    pure-model floor:        {floor:6.2f} s  (same run, one process, CPU "
                  f"{floor_cpu:.2f} s); federation/floor {fed['online'] / floor:5.1f}x wall, "
                  f"{fed['cpu_online'] / floor_cpu:5.1f}x CPU")
            print(f"    obfuscator wait:         {fed['wait']:6.2f} s  (worst measured window, PTs "
                  "summed: time at the window's start spent waiting for workers or computing the "
                  "chunks they had not started — offline work on the critical path)")
            print(f"    first window:            {fed['first']:6.2f} s  (keys and that window's "
                  f"obfuscators on the critical path); whole run {fed['total']:.1f} s")
            print(f"    CPU per window:          {fed['cpu_online']:6.2f} s  (broker and federates, "
                  "incl. obfuscators a PT computed itself; "
                  f"÷ {os.cpu_count()} cores = {fed['cpu_online'] / os.cpu_count():.2f} s, the "
                  "online window's lower bound on dedicated cores) + "
                  f"{fed['cpu_workers']:.2f} s in obfuscator workers")
            print(f"    machine load average at the end: {fed['load']:.1f} on {os.cpu_count()} cores "
                  "(other processes share them: wall times scale with it)")


if __name__ == "__main__":
    main()
