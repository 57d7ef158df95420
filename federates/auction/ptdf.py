"""The DSO's view of its feeder with clusters as areas: PTDFs and AC line flows from real power
flows (OpenDSS through the grid model).

An area's injection is spread evenly over its buses' phases; the slack (the upstream grid)
absorbs it. `flows_kw(injections)` is the change of active power entering each monitored line at
its sending terminal that the area injections cause, relative to the feeder without them — the
flow the market's trades add, which the DSO's line limits bound. PTDF[l, a] is its finite
difference for a 10 kW injection in area a.
"""

from __future__ import annotations

import numpy as np

from lemcosim.federates.grid.model import GridModel
from lemcosim.networks.builder import dss

_DELTA_KW = 10.0


def line_flows_kw(lines: list[str]) -> np.ndarray:
    engine = dss()
    flows = []
    for line in lines:
        engine.Circuit.SetActiveElement(f"line.{line}")
        powers = engine.CktElement.Powers()
        n = engine.CktElement.NumConductors()
        flows.append(sum(powers[0:2 * n:2]))
    return np.array(flows)


class AreaFlows:
    """AC flows on `lines` caused by injections (kW) of `areas` (lists of buses)."""

    def __init__(self, network: str, areas: list[list[str]], lines: list[str]) -> None:
        self.model = GridModel(network)
        self.lines = lines
        phases = self.model.bus_phases()
        self.keys = [[k for k in phases if k.rpartition(".")[0] in {b.lower() for b in buses}]
                     for buses in areas]
        self.model.solve()
        self.base = line_flows_kw(lines)

    def flows_kw(self, injections_kw: np.ndarray) -> np.ndarray:
        self.model.set_injections({k: [p / len(keys), 0.0]
                                   for keys, p in zip(self.keys, injections_kw, strict=True)
                                   for k in keys})
        self.model.solve()
        return line_flows_kw(self.lines) - self.base

    def ptdf(self) -> np.ndarray:
        columns = [self.flows_kw(_DELTA_KW * np.eye(len(self.keys))[a]) / _DELTA_KW
                   for a in range(len(self.keys))]
        self.flows_kw(np.zeros(len(self.keys)))
        return np.round(np.array(columns).T.reshape(len(self.lines), len(self.keys)), 6)

