"""KG: issues a key set and its schedule per billing cycle; decrypts aggregates and cycle sums only,
after the checks of decryption.py. Refused messages are logged as `protocol_violation` naming the
sender, and are never decrypted."""

from __future__ import annotations

from lemcosim.federates.auction.codec import QTY_SCALE
from lemcosim.federates.auction.decryption import SIDES, Aggregate, Decryptor, ProtocolViolation
from lemcosim.federates.auction.keys import generate_key_set, key_schedule
from lemcosim.federates.auction.role import Role
from lemcosim.federates.auction.settlement import bill_bound_units
from lemcosim.federates.common.app import FederateContext, FederateSettings


class KeyGenerator(Role):
    """KG: keys and schedule per billing cycle; decrypts what the protocol allows, nothing else."""

    substep = 0
    accepts = {"aggregate": ("cc",), "cleared_sum": ("cc",), "cycle_sums": ("cc",)}

    def __init__(self, settings: FederateSettings) -> None:
        super().__init__(settings)
        self.ahead: dict[int, tuple[list, list[str]]] = {}  # cycle → key set sent to PTs early

    def on_window(self, ctx: FederateContext, window: int) -> None:
        cycle, position = self.cycle_of(window)
        if position == 0:
            self._issue_keys(ctx, window, cycle)
        if position == self.config.cycle_windows - 1 and window + 1 < ctx.clock.windows:
            # the next cycle's keys reach the PTs a window early: they precompute its first
            # window's obfuscators during this one (docs/privacy.md, pipelining)
            self.ahead[cycle + 1] = self._key_set()
            self._send_pt_keys(ctx, cycle + 1, *self.ahead[cycle + 1])
        self.at(ctx, window, 3)
        aggregates: dict[str, Aggregate] = {}
        for message in self.take("aggregate"):
            self._guarded(ctx, self.decryptor.aggregate, message, position, aggregates)
        curves, suppressed = {}, {}
        for cluster, aggregate in aggregates.items():
            thin = aggregate.thin(self.config.k_min)
            self.log(ctx, window, cluster, "thin_slots",
                     float(sum(len(v) for v in thin.values())), "count")
            units = {side: aggregate.units[side].copy() for side in SIDES}
            if self.config.thin_slots == "suppress":
                for side in SIDES:
                    units[side][thin[side]] = 0
                suppressed[cluster] = thin
            curves[cluster] = {side: (units[side].astype(float) / QTY_SCALE).tolist()
                               for side in SIDES}
            aggregates[cluster] = Aggregate(aggregate.members, units, aggregate.counts)
        self.send(ctx, "mo", {"type": "curves", "window": window, "curves": curves})
        # the PTs settle a suppressed slot's members at 0: their bids never reached the clearing
        self.send(ctx, "pt", {"type": "suppressed", "window": window, "slots": suppressed})
        self.at(ctx, window, 9)
        checked: set[str] = set()
        for message in self.take("cleared_sum"):
            found = self._guarded(ctx, self.decryptor.check_sum, message, position, aggregates,
                                  checked)
            for side in found[1] if found else []:
                self.log(ctx, window, found[0], "settlement_mismatch",
                         f"{side}: what the PTs reported at the cleared level (check sum from "
                         f"{message['from']}) differs from the aggregate's slot; compared blinded, "
                         "no value decrypted")
        if self.closes_cycle(ctx, window):
            self._bills(ctx, window, cycle, position)
        for message in self.inbox:  # what no step of this window expects
            self.violation(ctx, message["from"], f"unexpected {str(message.get('type'))[:40]!r} "
                           f"message in window {window}")
        self.inbox = []

    def _key_set(self) -> tuple[list, list[str]]:
        pairs = generate_key_set(self.config.keys_per_cycle, self.config.key_bits,
                                 self.config.allow_short_keys)
        return pairs, [pairs[j].fingerprint for j in key_schedule(self.config.cycle_windows,
                                                                  len(pairs))]

    def _send_pt_keys(self, ctx: FederateContext, cycle: int, pairs: list,
                      schedule: list[str]) -> None:
        keys = [{"id": p.fingerprint, "n": str(p.public.n)} for p in pairs]
        self.send(ctx, "pt", {"type": "keys", "cycle": cycle, "keys": keys, "schedule": schedule})

    def _issue_keys(self, ctx: FederateContext, window: int, cycle: int) -> None:
        if cycle in self.ahead:  # the PTs have them since the previous window
            pairs, schedule = self.ahead.pop(cycle)
        else:
            pairs, schedule = self._key_set()
            self._send_pt_keys(ctx, cycle, pairs, schedule)
        self.decryptor = Decryptor(pairs, schedule, self.layout, self.config.k_min,
                                   {self.names[c]: c for c in self.config.clusters})
        keys = [{"id": p.fingerprint, "n": str(p.public.n)} for p in pairs]
        for cluster in self.config.clusters:  # CCs see each window's key id: docs/privacy.md
            self.send(ctx, cluster, {"type": "keys", "cycle": cycle, "keys": keys})
        self.log(ctx, window, "keys", "issued", float(len(keys)), "count")

    def _guarded(self, ctx: FederateContext, step, message: dict, *args):
        try:
            return step(message, *args)
        except ProtocolViolation as exc:
            self.violation(ctx, exc.sender, str(exc))
            return None

    def _bills(self, ctx: FederateContext, window: int, cycle: int, position: int) -> None:
        settled = position + 1
        bound = bill_bound_units(settled, self.config.max_qty_kwh, self.config.retail)
        bills, refused, violations = self.decryptor.bills(self.take("cycle_sums"), position, bound)
        for exc in violations:
            self.violation(ctx, exc.sender, str(exc))
        for prosumer, reason in refused.items():
            self.log(ctx, window, prosumer, "bill_refused", reason)
        if settled < self.config.cycle_windows:
            self.log(ctx, window, "bills", "partial_cycle",
                     f"the run ends after {settled} of cycle {cycle}'s {self.config.cycle_windows} "
                     f"windows: the bills settle those {settled} windows")
        self.send(ctx, "pt", {"type": "bills", "cycle": cycle, "windows": settled,
                              # integer units (1e-11 M), exact: a float in M misreads one bill
                              # in six between 10⁴ and 10⁵ M by a unit
                              "bills": bills,
                              "refused": refused})
        self.log(ctx, window, "bills", "sent", float(len(bills)), "count")
