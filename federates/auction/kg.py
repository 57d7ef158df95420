"""KG: issues a key set per billing cycle, decrypts aggregates and cycle sums only."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from lemcosim.federates.auction.codec import QTY_SCALE
from lemcosim.federates.auction.keys import decrypt_signed, generate_key_set
from lemcosim.federates.auction.role import Role
from lemcosim.federates.auction.settlement import FACTOR_SCALE
from lemcosim.federates.common.app import FederateContext


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
