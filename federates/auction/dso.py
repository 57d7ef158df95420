"""DSO: PTDFs with clusters as areas; splits price areas when a monitored line binds, with the
exchange corrected by AC power flows until the line carries its limit (congestion.py)."""

from __future__ import annotations

import numpy as np

from lemcosim.federates.auction.congestion import clear_with_network
from lemcosim.federates.auction.ptdf import AreaFlows
from lemcosim.federates.auction.role import Role
from lemcosim.federates.common.app import FederateContext, FederateSettings


class SystemOperator(Role):
    """DSO: PTDFs with clusters as areas; splits price areas when a monitored line binds, with the
exchange corrected by AC power flows until the line carries its limit (congestion.py)."""

    substep = 5
    accepts = {"curves": ("mo",)}

    def __init__(self, settings: FederateSettings) -> None:
        super().__init__(settings)
        lines = [line.name for line in self.config.dso.lines]
        self.areas = sorted(self.config.clusters)
        self.grid = AreaFlows(settings.params["network"],
                              [self.config.clusters[a] for a in self.areas], lines) if lines else None
        self.ptdf = self.grid.ptdf() if self.grid else np.zeros((0, len(self.areas)))
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
                                        np.full(len(present), self.config.dso.loss_factor),
                                        flows=self._ac_flows(idx))
            for a, r in zip(present, result.areas, strict=True):
                clusters[a] = {"mcp": r.clearing.mcp if r.clearing.level >= 0 else 0.0,
                               "level": r.clearing.level, "mcv_kwh": r.clearing.mcv_kwh,
                               "bcf": r.clearing.bcf, "scf": r.clearing.scf, "bcfl": r.bcfl,
                               "area": r.price_area}
            binding = None if result.binding_line is None else \
                self.config.dso.lines[result.binding_line].name
            for line, flow in zip(self.config.dso.lines, result.flows_kw, strict=False):
                self.log(ctx, window, line.name, "flow_kw", float(flow), "kW")
                self.log(ctx, window, line.name, "limit_kw", line.limit_kw, "kW")
            if binding is not None:
                self.log(ctx, window, binding, "exchange_kw", result.exchange_kw, "kW")
                self.log(ctx, window, binding, "split_iterations", float(result.iterations), "count")
            self.log(ctx, window, "network", "price_areas",
                     float(len({c["area"] for c in clusters.values()})), "count")
        self.send(ctx, "mo", {"type": "result", "clusters": clusters, "binding_line": binding})

    def _ac_flows(self, idx: list[int]):
        """The AC power flow as the split's flow model (injections of the present areas)."""
        if self.grid is None:
            return None

        def flows(injections_kw: np.ndarray) -> np.ndarray:
            full = np.zeros(len(self.areas))
            full[idx] = injections_kw
            return self.grid.flows_kw(full)

        return flows
