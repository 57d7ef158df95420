"""DSO: inter-area flows from the clearing via PTDFs (clusters are areas) and, when a line limit
binds, the split into two price areas with the exchange fixed at the limit.

Convention: `ptdf[l, c]` is the flow on line l (kW, positive in its reference direction) per kW
injected in area c and withdrawn at the slack (the upstream grid). One binding line is resolved
per call — the most overloaded one; areas whose PTDF on it exceeds half the largest form one price
area, the others the second. The exporting side clears with extra demand = limit·Δt, the importing side with
extra supply = limit·Δt. Losses: BCFL_C = BCF_C·(1 − λ_C) with the DSO's loss factor λ_C of
area C, so that sellers' cleared energy covers what buyers receive plus the losses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lemcosim.federates.auction.clearing import Clearing, clear, clear_with_exchange


@dataclass(frozen=True)
class AreaResult:
    clearing: Clearing  # of the price area the cluster belongs to
    price_area: int
    bcfl: float


@dataclass(frozen=True)
class CongestionResult:
    areas: list[AreaResult]  # per cluster
    flows_kw: np.ndarray  # line flows of the final clearing
    binding_line: int | None


def net_injection_kw(clearing: Clearing, demand: np.ndarray, supply: np.ndarray,
                     dt_h: float) -> np.ndarray:
    """Cluster injections (C,) at a clearing: sellers' cleared minus buyers' cleared energy / Δt."""
    if clearing.level < 0:
        return np.zeros(demand.shape[0])
    p = clearing.level
    return (clearing.scf * supply[:, p] - clearing.bcf * demand[:, p]) / dt_h


def clear_with_network(prices: np.ndarray, demand: np.ndarray, supply: np.ndarray,
                       ptdf: np.ndarray, limits_kw: np.ndarray, dt_h: float,
                       loss_factor: np.ndarray | None = None) -> CongestionResult:
    """demand, supply: (clusters, levels) kWh; ptdf: (lines, clusters); limits_kw: (lines,)."""
    n = demand.shape[0]
    losses = np.zeros(n) if loss_factor is None else np.asarray(loss_factor, float)
    joint = clear(prices, demand.sum(axis=0), supply.sum(axis=0))
    flows = ptdf @ net_injection_kw(joint, demand, supply, dt_h)
    overload = np.abs(flows) / limits_kw
    if overload.max(initial=0) <= 1 + 1e-9:
        return CongestionResult([AreaResult(joint, 0, joint.bcf * (1 - losses[c])) for c in range(n)],
                                flows, None)
    line = int(np.argmax(overload))
    # areas whose injection flows through the line (PTDF near ±1; losses leave small non-zero
    # values, of order 1e-3, on the others)
    side_b = np.abs(ptdf[line]) > 0.5 * np.abs(ptdf[line]).max()
    groups = [np.flatnonzero(~side_b), np.flatnonzero(side_b)]
    # exchange from side A to side B, fixed at the limit in the direction of the overload
    b_injection = net_injection_kw(joint, demand, supply, dt_h)[side_b].sum()
    exchange_kwh = -np.sign(b_injection) * limits_kw[line] * dt_h  # import into B if B is short
    results: list[AreaResult | None] = [None] * n
    for area, (members, b_import) in enumerate(((groups[0], -exchange_kwh), (groups[1], exchange_kwh))):
        c_area = clear_with_exchange(prices, demand[members].sum(axis=0),
                                     supply[members].sum(axis=0), b_import)
        for c in members:
            results[c] = AreaResult(c_area, area, c_area.bcf * (1 - losses[c]))
    final = [r.clearing for r in results]  # type: ignore[union-attr]
    injections = np.array([
        (final[c].scf * supply[c, final[c].level] - final[c].bcf * demand[c, final[c].level]) / dt_h
        if final[c].level >= 0 else 0.0 for c in range(n)])
    return CongestionResult(results, ptdf @ injections, line)  # type: ignore[arg-type]
