"""PT population: bids from energy positions, encrypted; cleared quantities and masks."""

from __future__ import annotations

import json
import time
from collections import defaultdict

import numpy as np
from phe import paillier

from lemcosim.federates.auction.bids import Bid, encrypt_bid
from lemcosim.federates.auction.codec import encode_qty
from lemcosim.federates.auction.keys import Encryptor, fingerprint, generate_key_set, key_schedule
from lemcosim.federates.auction.obfuscation import ObfuscatorPool
from lemcosim.federates.auction.role import Role, public_key
from lemcosim.federates.auction.settlement import plaintext_amount, zero_sum_masks
from lemcosim.federates.common.app import FederateContext, FederateSettings
from lemcosim.runner.errors import LemcosimError

MASK_BOUND = 10**15


class ProsumerTerminals(Role):
    """PT population: bids from energy positions, encrypted; cleared quantities and masks."""

    substep = 1

    def __init__(self, settings: FederateSettings) -> None:
        super().__init__(settings)
        self.keys: list[paillier.PaillierPublicKey] = []
        self.encryptors: dict[str, Encryptor] = {}
        self.schedule: list[int] = []
        self.masks: dict[str, tuple[dict[int, int], dict[int, int]]] = {}
        self.own_bill: dict[str, float] = defaultdict(float)
        self.rng = np.random.default_rng(self.config.key_seed + 99)
        # this federate serves members i with i mod terminals == index of the positions
        self.index, self.terminals = settings.params.get("terminal", (0, 1))
        workers = self.config.obfuscator_workers
        self.pool = ObfuscatorPool(workers) if workers > 0 else None
        self.timing = settings.run_dir / "logs" / f"{self.name}.timing.jsonl"
        self.served: set[str] = set()  # members this federate bid for: only their bills are its

    def on_window(self, ctx: FederateContext, window: int) -> None:
        started_wall = time.time()
        self.receive(ctx)
        cycle, position = self.cycle_of(window)
        for message in self.take("keys"):
            self.keys = [public_key(k["n"]) for k in message["keys"]]
            self.encryptors = {fingerprint(k): Encryptor(k) for k in self.keys}
            self.schedule = key_schedule(self.config.cycle_windows, len(self.keys),
                                         self.config.key_seed + cycle)
            self.masks = {}
        key = self.keys[self.schedule[position]]
        enc = self.encryptors[fingerprint(key)]
        positions = ctx.read_json(f"{self.config.source}/positions") or {}
        bids: dict[str, list[Bid]] = defaultdict(list)
        members: dict[str, str] = {}
        for i, (pid, bus, e) in enumerate(zip(positions.get("id", []), positions.get("bus", []),
                                              positions.get("e_kwh", []), strict=False)):
            cluster = self.config.cluster_of(str(bus))
            if cluster is None or i % self.terminals != self.index:
                continue
            members[pid] = cluster
            self.served.add(pid)
            bids[cluster].append(self._bid(pid, float(e)))
        need = 6 * len(members)  # 2 bid curves, 2 cleared quantities, 2 masks per member
        wait = time.perf_counter()
        enc.precompute(max(0, need - enc.stock))  # only what the previous window did not
        enc.collect()
        wait = time.perf_counter() - wait
        for cluster, cluster_bids in bids.items():
            encrypted = []
            for bid in cluster_bids:
                try:
                    encrypted.append(self._faulty(encrypt_bid(bid, self.layout, enc).message()))
                except LemcosimError as exc:
                    self.log(ctx, window, bid.prosumer, "bid_refused", str(exc))
            self.send(ctx, cluster, {"type": "bids", "window": window, "bids": encrypted})
        if self.pool is not None and position + 1 < len(self.schedule):
            # the next window's obfuscators, computed while the rest of this window runs
            upcoming = self.encryptors[fingerprint(self.keys[self.schedule[position + 1]])]
            in_use = 4 * len(members) if upcoming is enc else 0  # this window's settlement
            upcoming.prefetch(max(0, need + in_use - upcoming.stock), self.pool)
        self.at(ctx, window, 7)
        result = next((m for m in self.take("result")), {"clusters": {}})
        windows_of_key = {j: [t for t, k in enumerate(self.schedule) if k == j]
                          for j in range(len(self.keys))}
        entries: dict[str, list[dict]] = defaultdict(list)
        for cluster, cluster_bids in bids.items():
            cleared = result["clusters"].get(cluster)
            for bid in cluster_bids:
                if bid.prosumer not in self.masks:
                    self.masks[bid.prosumer] = (
                        zero_sum_masks(windows_of_key, MASK_BOUND, self.rng),
                        zero_sum_masks(windows_of_key, MASK_BOUND, self.rng))
                level = cleared["level"] if cleared else -1
                b = bid.buy[level] if level >= 0 else 0.0
                s = bid.sell[level] if level >= 0 else 0.0
                if bid.prosumer in self.config.faults.misreport:
                    b, s = b / 2, s / 2  # a terminal that understates its cleared energy
                mask_cost, mask_rev = (m[position] for m in self.masks[bid.prosumer])
                entries[cluster].append({
                    "prosumer": bid.prosumer, "key_id": fingerprint(key),
                    "b": str(enc.encrypt(int(encode_qty(b)))),
                    "s": str(enc.encrypt(int(encode_qty(s)))),
                    "mb": str(enc.encrypt(mask_cost)), "ms": str(enc.encrypt(mask_rev))})
                if cleared:  # the prosumer's own record, to check the bill against
                    self.own_bill[bid.prosumer] += (
                        plaintext_amount(b, cleared["mcp"], cleared["bcfl"])
                        - plaintext_amount(s, cleared["mcp"], cleared["scf"]))
        for cluster, cluster_entries in entries.items():
            self.send(ctx, cluster, {"type": "settle", "window": window, "entries": cluster_entries})
        if position == self.config.cycle_windows - 1 or window == ctx.clock.windows - 1:
            self.at(ctx, window, 10)
            for message in self.take("bills"):
                for prosumer, bill in message["bills"].items():
                    if prosumer not in self.served:
                        continue
                    self.log(ctx, window, prosumer, "bill", bill, "M")
                    self.log(ctx, window, prosumer, "own_record", self.own_bill[prosumer], "M")
            self.own_bill = defaultdict(float)
        with open(self.timing, "a", encoding="utf-8") as fh:  # for benchmarks/auction.py
            fh.write(json.dumps({"window": window, "start": started_wall, "end": time.time(),
                                 "obfuscator_wait_s": wait}) + "\n")

    def finish(self, ctx: FederateContext) -> None:
        if self.pool is not None:
            self.pool.close()

    def _faulty(self, message: dict) -> dict:
        """Apply `auction.faults` (robustness studies) to one bid message."""
        faults = self.config.faults
        if message["prosumer"] in faults.malformed:
            return message | {"buy": "not a ciphertext"}
        if message["prosumer"] in faults.wrong_key:
            if not hasattr(self, "_rogue"):
                self._rogue = Encryptor(generate_key_set(1, self.config.key_bits,
                                                         self.config.allow_short_keys)[0].public)
            return message | {"key_id": fingerprint(self._rogue.public),
                              "buy": str(self._rogue.encrypt(1)), "sell": str(self._rogue.encrypt(1))}
        return message

    def _bid(self, prosumer: str, e_kwh: float) -> Bid:
        """A buyer's quantity falls with price, a seller's rises (elasticity), both ≤ max_qty."""
        ramp = np.linspace(0.0, 1.0, self.config.levels)
        el = self.config.elasticity
        qty = min(abs(e_kwh), self.config.max_qty_kwh)
        zero = np.zeros(self.config.levels)
        if e_kwh < 0:
            return Bid(prosumer, np.round(qty * (1 - el * ramp), 3), zero)
        return Bid(prosumer, zero, np.round(qty * (1 - el + el * ramp), 3))
