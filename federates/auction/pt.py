"""PT population: bids from energy positions, encrypted; cleared quantities and masks."""

from __future__ import annotations

import json
import time
from collections import defaultdict

import numpy as np
from phe import paillier

from lemcosim.federates.auction.bids import Bid, encrypt_bid
from lemcosim.federates.auction.codec import encode_qty
from lemcosim.federates.auction.keys import Encryptor, fingerprint, generate_key_set, to_text
from lemcosim.federates.auction.obfuscation import ObfuscatorPool
from lemcosim.federates.auction.role import Role, public_key
from lemcosim.federates.auction.settlement import UNITS_PER_M, CycleMasks, net_units
from lemcosim.federates.common.app import FederateContext, FederateSettings
from lemcosim.federates.common.errors import LemcosimError


class ProsumerTerminals(Role):
    """PT population: bids from energy positions, encrypted; cleared quantities and masks."""

    substep = 1
    accepts = {"keys": ("kg",), "suppressed": ("kg",), "bills": ("kg",), "result": ("mo",),
               "rejected": ("cc",)}

    def __init__(self, settings: FederateSettings) -> None:
        super().__init__(settings)
        self.keys: dict[str, paillier.PaillierPublicKey] = {}  # key id → public key
        self.encryptors: dict[str, Encryptor] = {}
        self.schedule: list[str] = []  # position in the cycle → key id (from the KG)
        self.masks: dict[str, CycleMasks] = {}  # member → this cycle's masks
        self.cluster_of: dict[str, str] = {}  # member → its cluster in this cycle
        self.own_units: dict[str, int] = defaultdict(int)  # member → own record of the cycle
        # this federate serves members i with i mod terminals == index of the positions
        self.index, self.terminals = settings.params.get("terminal", (0, 1))
        workers = self.config.obfuscator_workers
        self.pool = ObfuscatorPool(workers) if workers > 0 else None
        self.timing = settings.run_dir / "logs" / f"{self.name}.timing.jsonl"
        # cycle → its public keys, their encryptors and schedule, until the cycle starts
        self.issued: dict[int, tuple[dict, dict[str, Encryptor], list[str]]] = {}

    def on_window(self, ctx: FederateContext, window: int) -> None:
        started_wall = time.time()
        self.receive(ctx)
        cycle, position = self.cycle_of(window)
        for message in self.take("keys"):  # this cycle's, or the next one's a window early
            keys = {k["id"]: public_key(k["n"]) for k in message["keys"]}
            self.issued[message["cycle"]] = (keys, {i: Encryptor(k) for i, k in keys.items()},
                                             message["schedule"])
        if cycle in self.issued:
            self.keys, self.encryptors, self.schedule = self.issued.pop(cycle)
            self.masks, self.cluster_of = {}, {}
        key_id = self.schedule[position]
        enc = self.encryptors[key_id]
        positions = ctx.read_json(f"{self.config.source}/positions") or {}
        bids: dict[str, list[Bid]] = defaultdict(list)
        members: dict[str, str] = {}
        for i, (pid, bus, e) in enumerate(zip(positions.get("id", []), positions.get("bus", []),
                                              positions.get("e_kwh", []), strict=False)):
            cluster = self.config.cluster_of(str(bus))
            if cluster is None or i % self.terminals != self.index:
                continue
            members[pid] = cluster
            bids[cluster].append(self._bid(pid, float(e)))
        need = 5 * len(members)  # 2 bid curves, 2 cleared quantities, 1 mask per member
        ahead = min(enc.stock, need)  # requested during the previous window
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
        upcoming = self._next_encryptor(cycle, position)
        if self.pool is not None and upcoming is not None:
            # the next window's obfuscators, computed while the rest of this window runs
            in_use = 3 * len(members) if upcoming is enc else 0  # this window's settlement
            upcoming.prefetch(max(0, need + in_use - upcoming.stock), self.pool)
        self.at(ctx, window, 7)
        result = next((m for m in self.take("result")), {"clusters": {}})
        rejected = {p for m in self.take("rejected") for p in m["prosumers"]}
        suppressed = next((m["slots"] for m in self.take("suppressed")), {})
        closing = self.closes_cycle(ctx, window)
        entries: dict[str, list[dict]] = defaultdict(list)
        for cluster, cluster_bids in bids.items():
            cleared = result["clusters"].get(cluster) or {"level": -1}
            level = cleared["level"]
            thin = suppressed.get(cluster, {})
            for bid in cluster_bids:
                # what cleared of this bid: nothing if the CC rejected it, the cluster did not
                # clear, or KG suppressed its side's slot at the cleared level
                b, s = (0.0 if level < 0 or bid.prosumer in rejected or level in thin.get(side, [])
                        else float(curve[level])
                        for side, curve in (("buy", bid.buy), ("sell", bid.sell)))
                if bid.prosumer in self.config.faults.misreport:
                    b, s = b / 2, s / 2  # a terminal that understates its cleared energy
                amount = net_units(b, s, cleared["mcp"], cleared["bcfl"], cleared["scf"]) \
                    if level >= 0 else 0
                entries[cluster].append(self._entry(bid.prosumer, key_id, enc, b, s, amount,
                                                    closing))
                self.cluster_of[bid.prosumer] = cluster
                self.own_units[bid.prosumer] += amount
        if closing:  # members without a bid now still need their closing mask
            for prosumer in self.masks.keys() - {b.prosumer for v in bids.values() for b in v}:
                entries[self.cluster_of[prosumer]].append(
                    self._entry(prosumer, key_id, enc, 0.0, 0.0, 0, closing))
        for cluster, cluster_entries in entries.items():
            self.send(ctx, cluster, {"type": "settle", "window": window, "entries": cluster_entries})
        if closing:
            self.at(ctx, window, 10)
            for message in self.take("bills"):
                for prosumer in self.masks:  # this terminal's members of the cycle
                    self._log_bill(ctx, window, prosumer, message)
            self.own_units = defaultdict(int)
        with open(self.timing, "a", encoding="utf-8") as fh:  # for benchmarks/auction.py
            fh.write(json.dumps({"window": window, "start": started_wall, "end": time.time(),
                                 "obfuscators_ahead": ahead, "obfuscator_wait_s": wait}) + "\n")

    def _next_encryptor(self, cycle: int, position: int) -> Encryptor | None:
        """The next window's encryptor: this cycle's, or the next cycle's first if the KG has
        sent its keys (a window early); None at the end of the run."""
        if position + 1 < len(self.schedule):
            return self.encryptors[self.schedule[position + 1]]
        if cycle + 1 in self.issued:
            _, encryptors, schedule = self.issued[cycle + 1]
            return encryptors[schedule[0]]
        return None

    def finish(self, ctx: FederateContext) -> None:
        if self.pool is not None:
            self.pool.close()

    def _entry(self, prosumer: str, key_id: str, enc: Encryptor, b: float, s: float, amount: int,
               closing: bool) -> dict:
        """Enc(b), Enc(s) and Enc(mask) of one member for this window's settlement."""
        masks = self.masks.setdefault(prosumer, CycleMasks())
        mask = masks.mask(key_id, self.keys[key_id].n, amount, closing)
        return {"prosumer": prosumer, "key_id": key_id,
                "b": to_text(enc.encrypt(int(encode_qty(b)))),
                "s": to_text(enc.encrypt(int(encode_qty(s)))), "m": to_text(enc.encrypt(mask))}

    def _log_bill(self, ctx: FederateContext, window: int, prosumer: str, message: dict) -> None:
        """The KG's bill next to the member's own record; a bill that differs is disputed."""
        own = self.own_units[prosumer]
        self.log(ctx, window, prosumer, "own_record", own / UNITS_PER_M, "M")
        self.log(ctx, window, prosumer, "bill_windows", float(message["windows"]), "count")
        if prosumer in message["refused"]:
            self.log(ctx, window, prosumer, "bill_refused", message["refused"][prosumer])
            return
        bill = message["bills"].get(prosumer)  # integer units, compared exactly
        if bill is None:
            self.log(ctx, window, prosumer, "bill_refused", "the KG sent no bill")
            return
        self.log(ctx, window, prosumer, "bill", bill / UNITS_PER_M, "M")
        if bill != own:
            self.log(ctx, window, prosumer, "bill_disputed", "the bill differs from own record")

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
