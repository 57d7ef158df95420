"""MO: clears the aggregate curves, asks the DSO, announces per-cluster results."""

from __future__ import annotations

import numpy as np

from lemcosim.federates.auction.clearing import clear
from lemcosim.federates.auction.config import JOINT_ENTITY
from lemcosim.federates.auction.role import Role
from lemcosim.federates.common.app import FederateContext


class MarketOperator(Role):
    """MO: clears the aggregate curves, asks the DSO, announces per-cluster results."""

    substep = 4
    accepts = {"curves": ("kg",), "result": ("dso",)}

    def on_window(self, ctx: FederateContext, window: int) -> None:
        self.receive(ctx)
        curves = {c: v for m in self.take("curves") for c, v in m["curves"].items()}
        names = sorted(curves)
        if names:
            demand = np.array([curves[c]["buy"] for c in names]).sum(axis=0)
            supply = np.array([curves[c]["sell"] for c in names]).sum(axis=0)
            joint = clear(self.prices, demand, supply)
            self.log(ctx, window, JOINT_ENTITY, "joint_mcp", joint.mcp, "M/kWh")
            self.log(ctx, window, JOINT_ENTITY, "mcv_kwh", joint.mcv_kwh, "kWh")
            for c in names:
                for side in ("buy", "sell"):
                    for p, q in enumerate(curves[c][side]):
                        self.log(ctx, window, c, f"aggregate_{side}_{p}", q, "kWh")
        self.send(ctx, "dso", {"type": "curves", "window": window, "curves": curves})
        self.at(ctx, window, 6)
        result = next((m for m in self.take("result")), {"clusters": {}})
        for c, r in result["clusters"].items():
            for quantity in ("mcp", "mcv_kwh", "bcf", "scf", "bcfl", "area"):
                self.log(ctx, window, c, quantity, float(r[quantity]))
        message = {"type": "result", "window": window, "clusters": result["clusters"],
                   "binding_line": result.get("binding_line")}
        for role in ["pt", *self.config.clusters]:
            self.send(ctx, role, message)
