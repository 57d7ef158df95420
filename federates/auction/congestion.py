"""DSO: inter-area flows from the clearing (clusters are areas) and, when a line limit binds, the
split into two price areas with the inter-area exchange set so that the line carries its limit.

Convention: `ptdf[l, c]` is the flow on line l (kW, positive in its reference direction) per kW
injected in area c and withdrawn at the slack (the upstream grid). `flows` maps area injections
(kW) to the monitored lines' flows; by default the linear PTDF model, in the federation the DSO's
AC power flow (ptdf.AreaFlows). One binding line is resolved per call — the most overloaded one;
areas whose PTDF on it exceeds half the largest form one price area (B), the others the second
(A). B imports the exchange E from A (or exports it): A clears with extra demand E·Δt, B with extra
supply E·Δt (or the reverse). The line does not carry E but about |PTDF|·E (losses make |PTDF| > 1
on a long cable), so E starts at limit/|PTDF_B| (PTDF_B: B's areas weighted by their injections)
and is corrected with the flow the `flows` model reports, E ← E·target/|flow|, bracketed by the
largest E known to hold the limit and the smallest known to break it, until the flow lies within
[1 − tolerance, 1]·limit (0.5 % by default). If the clearing's price levels make that band
unreachable, the largest E that holds the limit is kept. Losses: BCFL_C = BCF_C·(1 − λ_C) with the
DSO's loss factor λ_C of area C, so that sellers' cleared energy covers what buyers receive plus
the losses.
"""

from __future__ import annotations

from collections.abc import Callable
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
    exchange_kw: float = 0.0  # into price area B, after the split
    iterations: int = 0  # flow evaluations of the split


def net_injection_kw(clearing: Clearing, demand: np.ndarray, supply: np.ndarray,
                     dt_h: float) -> np.ndarray:
    """Cluster injections (C,) at a clearing: sellers' cleared minus buyers' cleared energy / Δt."""
    if clearing.level < 0:
        return np.zeros(demand.shape[0])
    p = clearing.level
    return (clearing.scf * supply[:, p] - clearing.bcf * demand[:, p]) / dt_h


def clear_with_network(prices: np.ndarray, demand: np.ndarray, supply: np.ndarray,
                       ptdf: np.ndarray, limits_kw: np.ndarray, dt_h: float,
                       loss_factor: np.ndarray | None = None,
                       flows: Callable[[np.ndarray], np.ndarray] | None = None,
                       tolerance: float = 0.005, max_iterations: int = 30) -> CongestionResult:
    """demand, supply: (clusters, levels) kWh; ptdf: (lines, clusters); limits_kw: (lines,)."""
    n = demand.shape[0]
    losses = np.zeros(n) if loss_factor is None else np.asarray(loss_factor, float)
    flows = flows or (lambda injections: ptdf @ injections)
    joint = clear(prices, demand.sum(axis=0), supply.sum(axis=0))
    joint_injection = net_injection_kw(joint, demand, supply, dt_h)
    joint_flows = flows(joint_injection)
    overload = np.abs(joint_flows) / limits_kw
    if overload.max(initial=0) <= 1:
        return CongestionResult([AreaResult(joint, 0, joint.bcf * (1 - losses[c])) for c in range(n)],
                                joint_flows, None)
    line = int(np.argmax(overload))
    limit = limits_kw[line]
    # areas whose injection flows through the line (PTDF near ±1; losses leave small non-zero
    # values, of order 1e-3, on the others)
    side_b = np.abs(ptdf[line]) > 0.5 * np.abs(ptdf[line]).max()
    groups = [np.flatnonzero(~side_b), np.flatnonzero(side_b)]
    b_injection = joint_injection[side_b]
    direction = -np.sign(b_injection.sum())  # +1: B imports (it is short), −1: B exports
    weights = np.abs(b_injection) if np.abs(b_injection).sum() > 0 else np.ones(side_b.sum())
    ptdf_b = float(np.average(np.abs(ptdf[line, side_b]), weights=weights))

    def split(exchange_kw: float) -> tuple[list[AreaResult], np.ndarray]:
        b_import_kwh = direction * exchange_kw * dt_h
        results: list[AreaResult | None] = [None] * n
        for area, (members, imported) in enumerate(((groups[0], -b_import_kwh),
                                                    (groups[1], b_import_kwh))):
            cleared = clear_with_exchange(prices, demand[members].sum(axis=0),
                                          supply[members].sum(axis=0), imported)
            for c in members:
                results[c] = AreaResult(cleared, area, cleared.bcf * (1 - losses[c]))
        injections = np.array([net_injection_kw(r.clearing, demand[c:c + 1], supply[c:c + 1],
                                                dt_h)[0] for c, r in enumerate(results)])
        return results, flows(injections)  # type: ignore[arg-type]

    target = limit * (1 - tolerance / 2)
    exchange = limit / ptdf_b
    holds, breaks = 0.0, np.inf  # largest E known to hold the limit, smallest known to break it
    best = None
    for iteration in range(1, max_iterations + 1):
        results, line_flows = split(exchange)
        carried = abs(line_flows[line])
        if carried <= limit:
            if exchange >= holds:
                holds, best = exchange, (results, line_flows, iteration)
            if carried >= limit * (1 - tolerance):
                break
        else:
            breaks = min(breaks, exchange)
        step = exchange * target / carried if carried > 0 else 2 * exchange
        exchange = step if holds < step < breaks else (holds + min(breaks, 2 * exchange + limit)) / 2
    if best is None:  # nothing held the limit: no exchange at all
        holds = 0.0
        results, line_flows = split(0.0)
        best = (results, line_flows, max_iterations + 1)
    results, line_flows, iteration = best
    return CongestionResult(results, line_flows, line, holds, iteration)
