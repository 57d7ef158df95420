"""Grid federate: solves the feeder each window and answers power-flow queries and device commands.

Inputs are the net injections of its sources (prosumer populations, a market's schedule), summed
per bus and phase; an injection counts for the window it was published in. A source may announce
injections for a coming window (`{source}/exchange`: a market's ESU utility exchange, published
with the window before's schedule); they count for that window until the source publishes in it.
At T_w + δ the window's power flow is solved and published; when a source publishes later in the
window (a market's approved schedule) the window is solved and published again at that sub-step.
Between its own steps the federate is woken by messages on `{name}/query` (answered in the same
sub-step without touching the committed state) and `{name}/control` (a new regulator setting,
committed for the following solves); those that reached it by T_w + δ (a market's first batch)
are served right after that step's solve.
"""

from __future__ import annotations

import json
import time
from typing import Any

from lemcosim.federates.common import wire
from lemcosim.federates.common.app import FederateContext, FederateModel, FederateSettings
from lemcosim.federates.common.clock import GRID_SUBSTEP
from lemcosim.federates.common.errors import LemcosimError
from lemcosim.federates.grid.service import GridService


class GridFederate(FederateModel):
    substep = GRID_SUBSTEP
    interruptible = True

    def __init__(self, settings: FederateSettings) -> None:
        self.name = settings.name
        self.service = GridService.from_params(settings.params)
        self.sources: list[str] = list(settings.params.get("injection_sources", []))
        # sources that announce injections for a coming window (`{source}/exchange`)
        self.announcing: list[str] = list(settings.params.get("exchange_sources", []))
        self._latest: dict[str, tuple[int, dict]] = {}  # source -> (window published, injections)
        self._announced: dict[str, dict[int, dict]] = {}  # source -> window -> injections
        # per-query answers in the log only on request; by default a summary per window
        self.log_queries = str(settings.params.get("log_queries", "summary"))
        if self.log_queries not in ("summary", "full"):
            raise LemcosimError(f"{self.name}: log_queries must be summary or full, "
                                f"got {self.log_queries!r}")
        self._requests = {"query": 0, "control": 0}
        self._solves_before = 0

    def on_window(self, ctx: FederateContext, window: int) -> None:
        if window > 0:
            self._summarise(ctx, window - 1)
        started_at = time.time()
        self._solve(ctx, window)
        # wall clock, shared with the market (benchmarks/cosim.py: HELICS's part of a round trip)
        ctx.stats["step_started_at_s"], ctx.stats["step_ended_at_s"] = started_at, time.time()
        # a market's first batch of the window may be queued already (sent at this sub-step,
        # it is evaluated on the state just solved)
        self.on_interrupt(ctx, window)

    def finish(self, ctx: FederateContext) -> None:
        self._summarise(ctx, ctx.clock.windows - 1)

    def _summarise(self, ctx: FederateContext, window: int) -> None:
        """Requests served and power flows solved in `window` (its last sub-step's rows)."""
        solves = self.service.model.solves
        for quantity, value in (("query_requests", self._requests["query"]),
                                ("control_requests", self._requests["control"]),
                                ("power_flows", solves - self._solves_before),
                                ("power_flows_failed", self.service.failed_flows)):
            ctx.log.record(ctx.time_s, window, "feeder", quantity, float(value), "count",
                           ctx.clock.substep_of(ctx.time_s))
        self._requests = dict.fromkeys(self._requests, 0)
        self._solves_before = solves
        self.service.failed_flows = 0

    def _solve(self, ctx: FederateContext, window: int) -> None:
        self._take_updates(ctx, window)
        injections: dict[str, list[float]] = {}
        for source in [*self._latest, *(s for s in self._announced if s not in self._latest)]:
            # an injection counts for the window it was published in; until a source publishes
            # in this window, what it announced for the window
            published_in, values = self._latest.get(source, (-1, {}))
            if published_in != window:
                values = self._announced.get(source, {}).get(window, {})
            for bus_phase, pq in values.items():
                total = injections.setdefault(bus_phase, [0.0, 0.0])
                total[0] += pq[0]
                total[1] += pq[1]
        report = self.service.solve_window(injections)
        for quantity, value in report.publications().items():
            ctx.publish(f"{self.name}/{quantity}", value)
        substep = ctx.clock.substep_of(ctx.time_s)
        for entity, quantity, value, unit in report.rows():
            ctx.log.record(ctx.time_s, window, entity, quantity, value, unit, substep)

    def on_interrupt(self, ctx: FederateContext, window: int) -> None:
        started = time.perf_counter()
        self._serve(ctx, window, "query", self._query)
        self._serve(ctx, window, "control", self.service.apply_control)
        ctx.stats["serve_s"] += time.perf_counter() - started  # requests: benchmarks/cosim.py
        own_step = ctx.clock.time_of(window, self.substep)
        if self._take_updates(ctx, window) and ctx.time_s > own_step:
            self._solve(ctx, window)  # a source published after the window's first solve

    def _take_updates(self, ctx: FederateContext, window: int) -> bool:
        """Store every newly published injection set with its window; True if any arrived."""
        arrived = False
        for source in self.sources:
            key = f"{source}/injections"
            if not ctx.updated(key):
                continue
            values = ctx.read_json(key)
            if not isinstance(values, dict):
                raise LemcosimError(f"{self.name}: {key} must carry a JSON object "
                                    f"{{\"BUS.PHASE\": [p_kw, q_kvar]}}, got {str(values)[:60]}")
            self._latest[source] = (window, values)
            arrived = True
        for source in self.announcing:
            key = f"{source}/exchange"
            if not ctx.updated(key):
                continue
            announced = ctx.read_json(key)
            if not (isinstance(announced, dict) and isinstance(announced.get("window"), int)
                    and isinstance(announced.get("injections"), dict)):
                raise LemcosimError(f"{self.name}: {key} must carry a JSON object {{\"window\": W, "
                                    f"\"injections\": {{\"BUS.PHASE\": [p_kw, q_kvar]}}}}, got "
                                    f"{str(announced)[:60]}")
            ahead = self._announced.setdefault(source, {})
            for past in [w for w in ahead if w < window]:  # solved already
                del ahead[past]
            if announced["window"] >= window:
                ahead[announced["window"]] = announced["injections"]
        return arrived

    def _query(self, request: Any) -> dict:
        """One power-flow query, or a market's batch of intents (docs/interfaces.md)."""
        if isinstance(request, dict) and "intents" in request:
            return self.service.answer_sequence(request)
        return self.service.answer_query(request)

    def _serve(self, ctx: FederateContext, window: int, endpoint: str, handler) -> None:
        key = f"{self.name}/{endpoint}"
        started_at = time.time()  # benchmarks/cosim.py: reading a request is the grid's work
        for source, text, _ in ctx.receive(key):
            ctx.stats.setdefault("serve_started_at_s", started_at)
            self._requests[endpoint] += 1
            request_id: Any = None
            try:
                request = wire.decode(text)
                request_id = request.get("id") if isinstance(request, dict) else None
                answer = handler(request)
            except (json.JSONDecodeError, LemcosimError, TypeError, ValueError) as exc:
                answer = {"accepted": False, "feasible": False, "reason": f"bad request: {exc}"}
            answer["id"] = request_id
            ctx.send(key, source, answer)
            ctx.stats.setdefault("answer_sent_at_s", time.time())
            if self.log_queries == "full" or endpoint == "control":
                ctx.log.record(ctx.time_s, window, source, f"{endpoint}_answer",
                               wire.encode_text(answer), "", ctx.clock.substep_of(ctx.time_s))

