"""CC: aggregates its cluster's bids and computes masked costs, all on ciphertexts."""

from __future__ import annotations

from phe import paillier

from lemcosim.federates.auction.aggregate import ClusterError, aggregate
from lemcosim.federates.auction.bids import EncryptedBid
from lemcosim.federates.auction.codec import CodecError
from lemcosim.federates.auction.keys import add
from lemcosim.federates.auction.role import Role, majority, parse_int, public_key
from lemcosim.federates.auction.settlement import masked_amount
from lemcosim.federates.common.app import FederateContext, FederateSettings


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
        bids = [EncryptedBid(b["prosumer"], b["key_id"], parse_int(b["buy"]), parse_int(b["sell"]))
                for m in self.take("bids") for b in m["bids"]]
        key_id = majority([b.key_id for b in bids])
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
                        cleared_sum[q] = (add(public, cleared_sum[q], parse_int(entry[q]))
                                          if q in cleared_sum else parse_int(entry[q]))
                mcp = cleared["mcp"] if cleared else 0.0
                cost = masked_amount(public, parse_int(entry["b"]), mcp,
                                     cleared["bcfl"] if cleared else 0.0, parse_int(entry["mb"]))
                revenue = masked_amount(public, parse_int(entry["s"]), mcp,
                                        cleared["scf"] if cleared else 0.0, parse_int(entry["ms"]))
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
