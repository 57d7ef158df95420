"""Prosumer population federate: publishes net injections and energy positions at T_w, and the
positions of window w + 1 with them (`{name}/positions_next`: its members commit them a window
ahead, so a market can open that window while it waits for its grant)."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from lemcosim.federates.common.app import FederateContext, FederateModel, FederateSettings
from lemcosim.federates.common.clock import PROSUMER_SUBSTEP
from lemcosim.federates.prosumers.config import PopulationConfig
from lemcosim.federates.prosumers.population import Population, WindowState, part_slice


class ProsumerFederate(FederateModel):
    substep = PROSUMER_SUBSTEP

    def __init__(self, settings: FederateSettings) -> None:
        self.name = settings.name
        params = dict(settings.params)
        part, parts = params.pop("part", (0, 1))  # one of a split population's federates
        config = PopulationConfig.model_validate(params)
        start = datetime.fromisoformat(settings.start) if settings.start else datetime(2026, 6, 21)
        self.population = Population.from_config(config, settings.clock.window_s, start)
        self.own = part_slice(len(self.population.members), part, parts)
        self._ahead: WindowState | None = None  # window w + 1, stepped in window w

    def setup(self, ctx: FederateContext) -> None:
        # a split population's parts each log their own members: the parts' rows sum to the whole
        members, own = self.population.members, self.own
        ctx.log.record(0.0, 0, "population", "members", own.stop - own.start, "count")
        ctx.log.record(0.0, 0, "population", "pv_kwp", float(members.pv_kwp[own].sum()), "kW")
        ctx.log.record(0.0, 0, "population", "storage_kwh", float(members.storage_kwh[own].sum()), "kWh")

    def on_window(self, ctx: FederateContext, window: int) -> None:
        ahead = self._ahead
        state = ahead if ahead is not None and ahead.window == window else self.population.step(window)
        # the population steps in window order either way: the same states as one step a window
        self._ahead = self.population.step(window + 1) if window + 1 < ctx.clock.windows else None
        injections = self.population.injections(state, self.own)
        positions = self.population.positions(state, self.own)
        own = self.own
        total_kw = float(state.net_kw[own].sum())
        ctx.publish(f"{self.name}/injections", injections)
        ctx.publish(f"{self.name}/positions", positions)
        if self._ahead is not None:
            ctx.publish(f"{self.name}/positions_next",
                        {"window": window + 1} | self.population.positions(self._ahead, own))
        ctx.publish(f"{self.name}/total_net_kw", total_kw)
        t = ctx.time_s
        for quantity, values in (("net_kw", state.net_kw), ("load_kw", state.load_kw),
                                 ("pv_kw", state.pv_kw), ("storage_kw", state.storage_kw)):
            ctx.log.record(t, window, "population", quantity, float(values[own].sum()), "kW")
        capacity = self.population.members.storage_kwh[own]
        if capacity.sum() > 0:
            soc = float(np.sum(state.soc[own] * capacity) / capacity.sum())
            ctx.log.record(t, window, "population", "soc_pu", soc, "pu")
        ctx.log.record_many(t, window, {k: v[0] for k, v in injections.items()}, "p_kw", "kW")
        ctx.log.record_many(t, window, {k: v[1] for k, v in injections.items()}, "q_kvar", "kvar")
        if self.population.config.log_members:
            ctx.log.record_many(t, window, dict(zip(positions["id"], positions["e_kwh"], strict=True)),
                                "e_kwh", "kWh")
