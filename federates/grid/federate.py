"""Grid federate: solves the feeder each window and answers power-flow queries and device commands.

Inputs are the net injections of every prosumer population (summed per bus and phase). At
T_w + δ the window's power flow is solved and published; between windows the federate is woken by
messages on `{name}/query` (answered in the same sub-step without touching the committed state)
and `{name}/control` (a new regulator setting, committed for the following solves).
"""

from __future__ import annotations

import json
from typing import Any

from lemcosim.federates.common.app import FederateContext, FederateModel, FederateSettings
from lemcosim.federates.common.clock import GRID_SUBSTEP
from lemcosim.federates.grid.service import GridService
from lemcosim.runner.errors import LemcosimError


class GridFederate(FederateModel):
    substep = GRID_SUBSTEP
    interruptible = True

    def __init__(self, settings: FederateSettings) -> None:
        self.name = settings.name
        self.service = GridService.from_params(settings.params)
        self.sources: list[str] = list(settings.params.get("injection_sources", []))

    def on_window(self, ctx: FederateContext, window: int) -> None:
        injections: dict[str, list[float]] = {}
        for source in self.sources:
            for bus_phase, pq in (ctx.read_json(f"{source}/injections") or {}).items():
                total = injections.setdefault(bus_phase, [0.0, 0.0])
                total[0] += pq[0]
                total[1] += pq[1]
        report = self.service.solve_window(injections)
        for quantity, value in report.publications().items():
            ctx.publish(f"{self.name}/{quantity}", value)
        for entity, quantity, value, unit in report.rows():
            ctx.log.record(ctx.time_s, window, entity, quantity, value, unit, self.substep)

    def on_interrupt(self, ctx: FederateContext, window: int) -> None:
        self._serve(ctx, window, "query", self.service.answer_query)
        self._serve(ctx, window, "control", self.service.apply_control)

    def _serve(self, ctx: FederateContext, window: int, endpoint: str, handler) -> None:
        key = f"{self.name}/{endpoint}"
        for source, text, _ in ctx.receive(key):
            request_id: Any = None
            try:
                request = json.loads(text)
                request_id = request.get("id") if isinstance(request, dict) else None
                answer = handler(request)
            except (json.JSONDecodeError, LemcosimError, TypeError, ValueError) as exc:
                answer = {"accepted": False, "feasible": False, "reason": f"bad request: {exc}"}
            answer["id"] = request_id
            ctx.send(key, source, answer)
            ctx.log.record(ctx.time_s, window, source, f"{endpoint}_answer", json.dumps(answer),
                           "", ctx.clock.substep_of(ctx.time_s))

