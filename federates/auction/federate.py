"""The auction's roles as HELICS federates, exchanging messages only (never plaintext publications).

Window w, sub-step k (δ each): 0 prosumers publish positions (KG sends a new cycle's public keys);
1 PT: encrypted bids → CCs; 2 CC: homomorphic aggregates → KG; 3 KG: decrypted aggregate curves →
MO; 4 MO: joint clearing, curves → DSO; 5 DSO: PTDF check, price areas → MO; 6 MO: results → CCs,
PT; 7 PT: encrypted cleared quantities and zero-sum masks → CCs; 8 CC: masked costs and revenues,
summed per key; at a billing cycle's last window the sums → KG; 9 KG: bills → PT; 10 PT logs them.
What each role may learn is in docs/privacy.md; CC, MO and DSO log no individual value.
"""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
from phe import paillier

from lemcosim.federates.auction.aggregate import ClusterError, aggregate
from lemcosim.federates.auction.bids import Bid, EncryptedBid, encrypt_bid, price_levels
from lemcosim.federates.auction.clearing import clear
from lemcosim.federates.auction.codec import QTY_SCALE, CodecError, SlotLayout, encode_qty
from lemcosim.federates.auction.config import AuctionConfig
from lemcosim.federates.auction.congestion import clear_with_network
from lemcosim.federates.auction.keys import (
    Encryptor,
    add,
    decrypt_signed,
    fingerprint,
    generate_key_set,
    key_schedule,
)
from lemcosim.federates.auction.settlement import (
    FACTOR_SCALE,
    masked_amount,
    plaintext_amount,
    zero_sum_masks,
)
from lemcosim.federates.common.app import FederateContext, FederateModel, FederateSettings
from lemcosim.federates.common.errors import LemcosimError

MASK_BOUND = 10**15


class Role(FederateModel):
    """Common plumbing: config, layout, one endpoint `{name}/msg`, timed steps in a window."""

    def __init__(self, settings: FederateSettings) -> None:
        self.name = settings.name
        self.config = AuctionConfig.model_validate(settings.params["auction"])
        self.names: dict[str, str] = settings.params["roles"]  # role → federate name
        self.layout = SlotLayout(self.config.levels, self.config.max_qty_kwh,
                                 max_cluster=self_max_cluster(settings),
                                 key_bits=self.config.key_bits)
        self.prices = price_levels(self.config.fit, self.config.retail, self.config.levels)
        self.inbox: list[dict] = []
        self.audit = (settings.run_dir / "logs" / f"{self.name}.messages.jsonl"
                      if self.config.audit_messages else None)

    def at(self, ctx: FederateContext, window: int, substep: int) -> None:
        ctx.advance_to(ctx.clock.time_of(window, substep))
        self.receive(ctx)

    def receive(self, ctx: FederateContext) -> None:
        for source, text, _ in ctx.receive(f"{self.name}/msg"):
            self._write_audit("in", source, text)
            self.inbox.append(json.loads(text))

    def _write_audit(self, direction: str, peer: str, text: str) -> None:
        if self.audit is not None:
            with open(self.audit, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"dir": direction, "peer": peer, "text": text}) + "\n")

    def take(self, kind: str) -> list[dict]:
        found = [m for m in self.inbox if m.get("type") == kind]
        self.inbox = [m for m in self.inbox if m.get("type") != kind]
        return found

    def send(self, ctx: FederateContext, role_or_name: str, message: dict) -> None:
        target = self.names.get(role_or_name, role_or_name)
        text = json.dumps(message)
        self._write_audit("out", target, text)
        ctx.send(f"{self.name}/msg", f"{target}/msg", text)

    def cycle_of(self, window: int) -> tuple[int, int]:
        return divmod(window, self.config.cycle_windows)

    def log(self, ctx: FederateContext, window: int, entity: str, quantity: str, value, unit=""):
        ctx.log.record(ctx.time_s, window, entity, quantity, value, unit,
                       ctx.clock.substep_of(ctx.time_s))


def self_max_cluster(settings: FederateSettings) -> int:
    return int(settings.params["auction"].get("max_cluster", 1000))


def public_key(n: str) -> paillier.PaillierPublicKey:
    return paillier.PaillierPublicKey(int(n))


class KeyGenerator(Role):
    """KG: issues a key set per billing cycle, decrypts aggregates and cycle sums only."""

    substep = 0

    def on_window(self, ctx: FederateContext, window: int) -> None:
        cycle, position = self.cycle_of(window)
        if position == 0:
            self.pairs = generate_key_set(self.config.keys_per_cycle, self.config.key_bits,
                                          self.config.allow_short_keys)
            self.by_id = {p.fingerprint: p for p in self.pairs}
            keys = [{"id": p.fingerprint, "n": str(p.public.n)} for p in self.pairs]
            for role in ["pt", *self.config.clusters]:
                self.send(ctx, role, {"type": "keys", "cycle": cycle, "keys": keys})
            self.log(ctx, window, "keys", "issued", float(len(keys)), "count")
        self.at(ctx, window, 3)
        curves = {}
        slots: dict[str, dict[str, np.ndarray]] = {}
        for agg in self.take("aggregate"):
            pair = self.by_id[agg["key_id"]]
            slots[agg["cluster"]] = {side: self.layout.unpack(pair.private.raw_decrypt(int(agg[side])))
                                     for side in ("buy", "sell")}
            curves[agg["cluster"]] = {side: (units.astype(float) / QTY_SCALE).tolist()
                                      for side, units in slots[agg["cluster"]].items()}
        self.send(ctx, "mo", {"type": "curves", "window": window, "curves": curves})
        self.at(ctx, window, 9)
        for check in self.take("cleared_sum"):
            self._check_settlement(ctx, window, check, slots)
        if position == self.config.cycle_windows - 1 or window == ctx.clock.windows - 1:
            bills: dict[str, float] = defaultdict(float)
            for message in self.take("cycle_sums"):
                for entry in message["sums"]:
                    pair = self.by_id[entry["key_id"]]
                    units = decrypt_signed(pair, int(entry["cost"])) - decrypt_signed(
                        pair, int(entry["revenue"]))
                    bills[entry["prosumer"]] += units / (QTY_SCALE * 10_000 * FACTOR_SCALE)
            self.send(ctx, "pt", {"type": "bills", "cycle": cycle, "bills": bills})
            self.log(ctx, window, "bills", "sent", float(len(bills)), "count")


    def _check_settlement(self, ctx: FederateContext, window: int, check: dict,
                          slots: dict[str, dict[str, np.ndarray]]) -> None:
        """Σ_i b_i(MCP) and Σ_i s_i(MCP) the PTs reported in the settlement must equal slot MCP
        of the aggregate curves: a PT that misreports shows up as its cluster's mismatch."""
        cluster, level = check["cluster"], int(check["level"])
        if cluster not in slots or level < 0:
            return
        pair = self.by_id[check["key_id"]]
        for side, key in (("buy", "b"), ("sell", "s")):
            reported = decrypt_signed(pair, int(check[key]))
            expected = int(slots[cluster][side][level])
            if reported != expected:
                self.log(ctx, window, cluster, "settlement_mismatch",
                         f"{side}: PTs reported {reported / QTY_SCALE:g} kWh at the cleared level, "
                         f"the aggregate bid holds {expected / QTY_SCALE:g} kWh")


class ClusterCoordinator(Role):
    """CC: aggregates its cluster's bids and computes masked costs, all on ciphertexts."""

    substep = 2

    def __init__(self, settings: FederateSettings) -> None:
        super().__init__(settings)
        self.cluster: str = settings.params["cluster"]
        self.keys: dict[str, paillier.PaillierPublicKey] = {}
        self.sums: dict[tuple[str, str], list[int]] = {}

    def on_window(self, ctx: FederateContext, window: int) -> None:
        self.receive(ctx)
        self.aggregated: set[str] = set()
        for message in self.take("keys"):
            self.keys = {k["id"]: public_key(k["n"]) for k in message["keys"]}
        bids = [EncryptedBid(b["prosumer"], b["key_id"], _int(b["buy"]), _int(b["sell"]))
                for m in self.take("bids") for b in m["bids"]]
        key_id = _majority([b.key_id for b in bids])
        if key_id in self.keys:
            try:
                agg = aggregate(self.cluster, bids, self.keys[key_id], self.layout,
                                self.config.k_min)
                self.send(ctx, "kg", {"type": "aggregate", "cluster": self.cluster,
                                      "key_id": key_id, "buy": str(agg.buy), "sell": str(agg.sell)})
                self.aggregated = set(agg.members)
                self.log(ctx, window, self.cluster, "bids_aggregated", float(len(agg.members)),
                         "count")
                for _prosumer, reason in agg.rejected:  # the reason names the prosumer
                    self.log(ctx, window, self.cluster, "bid_rejected", reason)
            except (ClusterError, CodecError) as exc:
                self.log(ctx, window, self.cluster, "refused", str(exc))
        elif bids:
            self.log(ctx, window, self.cluster, "refused", f"bids under unknown key {key_id}")
        self.at(ctx, window, 8)
        result = next((m for m in self.take("result")), None)
        cleared = (result or {}).get("clusters", {}).get(self.cluster)
        cycle, position = self.cycle_of(window)
        cleared_sum: dict[str, int] = {}
        check_key = None
        for message in self.take("settle"):
            for entry in message["entries"]:
                public = self.keys.get(entry["key_id"])
                if public is None:
                    continue
                if entry["prosumer"] in self.aggregated:  # for KG's consistency check
                    check_key = entry["key_id"]
                    for q in ("b", "s"):
                        cleared_sum[q] = (add(public, cleared_sum[q], _int(entry[q]))
                                          if q in cleared_sum else _int(entry[q]))
                mcp = cleared["mcp"] if cleared else 0.0
                cost = masked_amount(public, _int(entry["b"]), mcp,
                                     cleared["bcfl"] if cleared else 0.0, _int(entry["mb"]))
                revenue = masked_amount(public, _int(entry["s"]), mcp,
                                        cleared["scf"] if cleared else 0.0, _int(entry["ms"]))
                key = (entry["prosumer"], entry["key_id"])
                if key in self.sums:
                    self.sums[key] = [add(public, self.sums[key][0], cost),
                                      add(public, self.sums[key][1], revenue)]
                else:
                    self.sums[key] = [cost, revenue]
        if cleared and check_key is not None:
            self.send(ctx, "kg", {"type": "cleared_sum", "cluster": self.cluster,
                                  "key_id": check_key, "level": cleared["level"],
                                  "b": str(cleared_sum["b"]), "s": str(cleared_sum["s"])})
        if position == self.config.cycle_windows - 1 or window == ctx.clock.windows - 1:
            sums = [{"prosumer": p, "key_id": k, "cost": str(c), "revenue": str(r)}
                    for (p, k), (c, r) in self.sums.items()]
            self.send(ctx, "kg", {"type": "cycle_sums", "cluster": self.cluster, "sums": sums})
            self.log(ctx, window, self.cluster, "cycle_sums_sent", float(len(sums)), "count")
            self.sums = {}


class MarketOperator(Role):
    """MO: clears the aggregate curves, asks the DSO, announces per-cluster results."""

    substep = 4

    def on_window(self, ctx: FederateContext, window: int) -> None:
        self.receive(ctx)
        curves = {c: v for m in self.take("curves") for c, v in m["curves"].items()}
        names = sorted(curves)
        if names:
            demand = np.array([curves[c]["buy"] for c in names]).sum(axis=0)
            supply = np.array([curves[c]["sell"] for c in names]).sum(axis=0)
            joint = clear(self.prices, demand, supply)
            self.log(ctx, window, "market", "joint_mcp", joint.mcp, "M/kWh")
            self.log(ctx, window, "market", "mcv_kwh", joint.mcv_kwh, "kWh")
            for c in names:
                for side in ("buy", "sell"):
                    for p, q in enumerate(curves[c][side]):
                        self.log(ctx, window, c, f"aggregate_{side}_{p}", q, "kWh")
        self.send(ctx, "dso", {"type": "curves", "window": window, "curves": curves})
        self.at(ctx, window, 6)
        result = next((m for m in self.take("result")), {"clusters": {}})
        for c, r in result["clusters"].items():
            for quantity in ("mcp", "mcv_kwh", "bcf", "scf", "bcfl", "area"):
                self.log(ctx, window, c, quantity, float(r[quantity]))
        message = {"type": "result", "window": window, "clusters": result["clusters"],
                   "binding_line": result.get("binding_line")}
        for role in ["pt", *self.config.clusters]:
            self.send(ctx, role, message)


class SystemOperator(Role):
    """DSO: PTDFs with clusters as areas; splits price areas when a monitored line binds."""

    substep = 5

    def __init__(self, settings: FederateSettings) -> None:
        super().__init__(settings)
        from lemcosim.federates.auction.ptdf import area_ptdf

        lines = [line.name for line in self.config.dso.lines]
        self.areas = sorted(self.config.clusters)
        self.ptdf = area_ptdf(settings.params["network"], [self.config.clusters[a] for a in self.areas],
                              lines) if lines else np.zeros((0, len(self.areas)))
        self.limits = np.array([line.limit_kw for line in self.config.dso.lines])

    def on_window(self, ctx: FederateContext, window: int) -> None:
        self.receive(ctx)
        curves = {c: v for m in self.take("curves") for c, v in m["curves"].items()}
        clusters: dict[str, dict] = {}
        binding = None
        if curves:
            present = [a for a in self.areas if a in curves]
            idx = [self.areas.index(a) for a in present]
            demand = np.array([curves[a]["buy"] for a in present])
            supply = np.array([curves[a]["sell"] for a in present])
            ptdf = self.ptdf[:, idx] if len(self.limits) else np.zeros((1, len(present)))
            limits = self.limits if len(self.limits) else np.array([np.inf])
            result = clear_with_network(self.prices, demand, supply, ptdf, limits,
                                        ctx.clock.window_s / 3600,
                                        np.full(len(present), self.config.dso.loss_factor))
            for a, r in zip(present, result.areas, strict=True):
                clusters[a] = {"mcp": r.clearing.mcp if r.clearing.level >= 0 else 0.0,
                               "level": r.clearing.level, "mcv_kwh": r.clearing.mcv_kwh,
                               "bcf": r.clearing.bcf, "scf": r.clearing.scf, "bcfl": r.bcfl,
                               "area": r.price_area}
            binding = None if result.binding_line is None else \
                self.config.dso.lines[result.binding_line].name
            for line, flow in zip(self.config.dso.lines, result.flows_kw, strict=False):
                self.log(ctx, window, line.name, "flow_kw", float(flow), "kW")
            self.log(ctx, window, "network", "price_areas",
                     float(len({c["area"] for c in clusters.values()})), "count")
        self.send(ctx, "mo", {"type": "result", "clusters": clusters, "binding_line": binding})


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

    def on_window(self, ctx: FederateContext, window: int) -> None:
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
        for pid, bus, e in zip(positions.get("id", []), positions.get("bus", []),
                               positions.get("e_kwh", []), strict=False):
            cluster = self.config.cluster_of(str(bus))
            if cluster is None:
                continue
            members[pid] = cluster
            bids[cluster].append(self._bid(pid, float(e)))
        enc.precompute(6 * len(members))  # this window's obfuscators, ahead of the bids
        for cluster, cluster_bids in bids.items():
            encrypted = []
            for bid in cluster_bids:
                try:
                    encrypted.append(self._faulty(encrypt_bid(bid, self.layout, enc).message()))
                except LemcosimError as exc:
                    self.log(ctx, window, bid.prosumer, "bid_refused", str(exc))
            self.send(ctx, cluster, {"type": "bids", "window": window, "bids": encrypted})
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
                    self.log(ctx, window, prosumer, "bill", bill, "M")
                    self.log(ctx, window, prosumer, "own_record", self.own_bill[prosumer], "M")
            self.own_bill = defaultdict(float)

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


def _int(text: str | int) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        return -1  # a malformed ciphertext: the aggregation rejects it with its reason


def _majority(ids: list[str]) -> str | None:
    return max(set(ids), key=ids.count) if ids else None


ROLES = {"auction_kg": KeyGenerator, "auction_cc": ClusterCoordinator,
         "auction_mo": MarketOperator, "auction_dso": SystemOperator,
         "auction_pt": ProsumerTerminals}


def make_role(settings: FederateSettings) -> FederateModel:
    return ROLES[settings.type](settings)

