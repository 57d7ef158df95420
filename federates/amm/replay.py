"""Replaying a batch of grid answers against the market's real decisions (docs/amm.md).

The market sends the grid a batch of intents that a fork of the window listed as if every one
were approved. The grid evaluates them in order and applies only those it approves (a refused
intent, or one a storage unit cannot serve, is skipped and the next is evaluated without it). The
market then decides for real, transaction by transaction. An answer is valid for the market's
next asked intent only while the grid's approval state equals the market's: every intent the grid
applied before it was applied by the market too, and none other. `BatchReplay` keeps that
account; the first mismatch ends the batch (the market asks the rest in the next one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lemcosim.federates.common.approval import Intent


@dataclass
class BatchReplay:
    intents: list[Intent]  # as sent: asked and local, in the fork's order
    answers: dict[str, dict[str, Any]]  # the grid's answer per asked intent id
    cursor: int = 0  # the next listed intent the market has not accounted for
    aligned: bool = True  # the grid's approval state at `cursor` equals the market's

    def answer(self, intent: Intent) -> dict[str, Any] | None:
        """The grid's answer to the market's next asked intent, or None if the batch holds no
        valid one (another intent, a mismatch before it, or one the grid skipped)."""
        listed = self._next()
        if listed is None or listed.local or listed != intent:
            return None
        answer = self.answers.get(listed.id)
        if answer is None or "stopped" in answer:
            return None
        self.cursor += 1
        return answer

    def settle(self, tx_id: str, logged: list[Intent]) -> None:
        """Account for a transaction the market decided; `logged`: the intents it created (its
        asked intent, already taken by `answer`, or a local settlement)."""
        if logged and not logged[-1].local:
            return
        listed = self._next()
        if logged:  # settled with the utility alone: the grid added the same trade, or not
            if listed == logged[-1]:
                self.cursor += 1
            else:
                self.aligned = False
        elif listed is not None and listed.id == tx_id:  # the fork traded, the market did not
            if self._applied(listed):
                self.aligned = False
            else:
                self.cursor += 1  # the grid skipped it too

    def misalign(self) -> None:
        """The grid's state changed outside the batch (an FSVR setting was committed)."""
        self.aligned = False

    def _next(self) -> Intent | None:
        if not self.aligned or self.cursor >= len(self.intents):
            return None
        return self.intents[self.cursor]

    def _applied(self, intent: Intent) -> bool:
        if intent.local:
            return True
        answer = self.answers.get(intent.id) or {}
        return bool(answer.get("feasible")) and "stopped" not in answer
