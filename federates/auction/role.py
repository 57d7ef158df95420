"""What every auction role shares: config, slot layout, one message endpoint `{name}/msg`, and the
timed sub-steps of a window.

Window w, sub-step k (δ each): 0 prosumers publish positions (KG sends a new cycle's public keys);
1 PT: encrypted bids → CCs; 2 CC: homomorphic aggregates → KG; 3 KG: decrypted aggregate curves →
MO; 4 MO: joint clearing, curves → DSO; 5 DSO: PTDF check, price areas → MO; 6 MO: results → CCs,
PT; 7 PT: encrypted cleared quantities and zero-sum masks → CCs; 8 CC: masked costs and revenues,
summed per key; at a billing cycle's last window the sums → KG; 9 KG: bills → PT; 10 PT logs them.
One module per role (kg, pt, cc, mo, dso); what each may learn is in docs/privacy.md.
"""

from __future__ import annotations

import json

from phe import paillier

from lemcosim.federates.auction.bids import price_levels
from lemcosim.federates.auction.codec import SlotLayout
from lemcosim.federates.auction.config import AuctionConfig
from lemcosim.federates.auction.keys import from_text
from lemcosim.federates.common.app import FederateContext, FederateModel, FederateSettings


class Role(FederateModel):
    """Common plumbing: config, layout, one endpoint `{name}/msg`, timed steps in a window."""

    # key material, worker processes and a cycle's masks are not checkpointed: an auction run
    # cannot be resumed yet
    resumable = False

    # message type → the roles that may send it ("cc": any cluster's coordinator); any other
    # message is refused as a protocol violation naming its sender
    accepts: dict[str, tuple[str, ...]] = {}

    def __init__(self, settings: FederateSettings) -> None:
        self.name = settings.name
        self.config = AuctionConfig.model_validate(settings.params["auction"])
        # role → federate name; "pt" → a list when the population is split across PT federates
        self.names: dict[str, str | list[str]] = settings.params["roles"]
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
        """Queue every message as a JSON object, with `from` = the sending federate (as HELICS
        reports it, not as the message claims)."""
        for source, text, _ in ctx.receive(f"{self.name}/msg"):
            self._write_audit("in", source, text)
            sender = sender_of(source)
            if sender is None:
                self.violation(ctx, source, "a message from an endpoint that is no role's "
                               "`NAME/msg`")
                continue
            try:
                message = json.loads(text)
            except json.JSONDecodeError:
                message = None
            if not isinstance(message, dict):
                self.violation(ctx, sender, "a message that is not a JSON object")
                continue
            kind = message.get("type")
            roles = self.accepts.get(kind) if isinstance(kind, str) else None
            if roles is None or sender not in self._federates(roles):
                self.violation(ctx, sender, f"a {str(kind)[:40]!r} message, which {self.name} "
                               f"accepts only from {', '.join(roles) if roles else 'no one'}")
                continue
            self.inbox.append(message | {"from": sender})

    def _federates(self, roles: tuple[str, ...]) -> set[str]:
        names: set[str] = set()
        for role in roles:
            for r in self.config.clusters if role == "cc" else [role]:
                found = self.names.get(r, r)
                names |= {found} if isinstance(found, str) else set(found)
        return names

    def violation(self, ctx: FederateContext, sender: str, what: str) -> None:
        """A message the protocol does not allow: refused, logged naming its sender."""
        self.log(ctx, ctx.window, sender, "protocol_violation", f"{sender}: {what}; refused")

    def _write_audit(self, direction: str, peer: str, text: str) -> None:
        if self.audit is not None:
            with open(self.audit, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"dir": direction, "peer": peer, "text": text}) + "\n")

    def take(self, kind: str) -> list[dict]:
        found = [m for m in self.inbox if m.get("type") == kind]
        self.inbox = [m for m in self.inbox if m.get("type") != kind]
        return found

    def send(self, ctx: FederateContext, role_or_name: str, message: dict) -> None:
        targets = self.names.get(role_or_name, role_or_name)
        text = json.dumps(message)
        for target in [targets] if isinstance(targets, str) else targets:
            self._write_audit("out", target, text)
            ctx.send(f"{self.name}/msg", f"{target}/msg", text)

    def cycle_of(self, window: int) -> tuple[int, int]:
        return divmod(window, self.config.cycle_windows)

    def closes_cycle(self, ctx: FederateContext, window: int) -> bool:
        """A billing cycle's last window, or the run's: a cycle cut short by the end of the run
        is settled over the windows it had (settlement.py)."""
        return (self.cycle_of(window)[1] == self.config.cycle_windows - 1
                or window == ctx.clock.windows - 1)

    def log(self, ctx: FederateContext, window: int, entity: str, quantity: str, value, unit=""):
        ctx.log.record(ctx.time_s, window, entity, quantity, value, unit,
                       ctx.clock.substep_of(ctx.time_s))


def sender_of(source: str) -> str | None:
    """The federate behind a message's source endpoint, or None. Every role sends from its local
    endpoint `NAME/msg`, which HELICS names after the federate; any federate may register a
    *global* endpoint such as `kg/x`, so only the exact `NAME/msg` names a sender (HELICS refuses
    a second `kg/msg`)."""
    name, slash, endpoint = source.partition("/")
    return name if slash and endpoint == "msg" and name else None


def self_max_cluster(settings: FederateSettings) -> int:
    return int(settings.params["auction"].get("max_cluster", 1000))


def public_key(n: str) -> paillier.PaillierPublicKey:
    return paillier.PaillierPublicKey(int(n))


def parse_int(text: str | int) -> int:
    try:
        return from_text(text)
    except (TypeError, ValueError):
        return -1  # a malformed ciphertext: the aggregation rejects it with its reason


def majority(ids: list[str]) -> str | None:
    return max(set(ids), key=ids.count) if ids else None
