"""Power transfer distribution factors with clusters as areas, from the DSO's own power flows.

PTDF[l, a] = ΔP_l / ΔP_a: the change of active power entering line l at its sending terminal when
area a injects ΔP (spread evenly over its buses' phases) and the slack absorbs it; computed by
finite differences on the real feeder (one power flow per area).
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


def area_ptdf(network: str, areas: list[list[str]], lines: list[str]) -> np.ndarray:
    model = GridModel(network)
    model.solve()
    base = line_flows_kw(lines)
    ptdf = np.zeros((len(lines), len(areas)))
    phases = model.bus_phases()
    for a, buses in enumerate(areas):
        keys = [k for k in phases if k.rpartition(".")[0] in {b.lower() for b in buses}]
        model.set_injections({k: [_DELTA_KW / len(keys), 0.0] for k in keys})
        model.solve()
        ptdf[:, a] = (line_flows_kw(lines) - base) / _DELTA_KW
    model.set_injections({})
    return np.round(ptdf, 6)
