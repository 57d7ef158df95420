"""Recorder federate: logs every update of the publications it subscribes to."""

from __future__ import annotations

from lemcosim.federates.common.app import FederateContext, FederateModel, FederateSettings
from lemcosim.federates.recorder.model import rows_from_value


class Recorder(FederateModel):
    interruptible = True

    def __init__(self, settings: FederateSettings) -> None:
        self.keys: list[str] = list(settings.params.get("keys", []))

    def setup(self, ctx: FederateContext) -> None:
        import helics as h

        self._h = h
        self.units = {k: h.helicsInputGetInjectionUnits(ctx.inputs[k]) or "" for k in self.keys}

    def on_window(self, ctx: FederateContext, window: int) -> None:
        self._record_updates(ctx)

    def on_interrupt(self, ctx: FederateContext, window: int) -> None:
        self._record_updates(ctx)

    def finish(self, ctx: FederateContext) -> None:
        self._record_updates(ctx)

    def _record_updates(self, ctx: FederateContext) -> None:
        for key in self.keys:
            if not ctx.updated(key):
                continue
            time_s = self._h.helicsInputLastUpdateTime(ctx.inputs[key])
            window = ctx.clock.window_of(time_s)
            substep = ctx.clock.substep_of(time_s)
            for entity, quantity, value, unit in rows_from_value(
                key, ctx.read_string(key), self.units[key]
            ):
                ctx.log.record(time_s, window, entity, quantity, value, unit, substep)
