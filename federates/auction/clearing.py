"""Market operator (MO): uniform-price double auction on aggregate curves.

Rule: MCP is the lowest price level at which the aggregate supply covers the aggregate demand
(S(ρ_p) ≥ D(ρ_p)); MCV = D(ρ_p) at that level, so BCF = 1 and SCF = MCV/S(ρ_p) (sellers are
curtailed pro rata). If supply never covers demand, MCP is the highest level, MCV = S(ρ_P),
BCF = MCV/D(ρ_P), SCF = 1 (buyers curtailed). No demand or no supply: no trade.
Hand example (levels 0.1, 0.2, 0.3; D = 10, 8, 4; S = 2, 6, 9): at 0.2 supply 6 < 8; at 0.3
supply 9 ≥ 4 → MCP 0.3, MCV 4, BCF 1, SCF 4/9.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Clearing:
    level: int  # index of MCP, −1 without trade
    mcp: float
    mcv_kwh: float
    bcf: float
    scf: float


def clear(prices: np.ndarray, demand_kwh: np.ndarray, supply_kwh: np.ndarray) -> Clearing:
    demand = np.asarray(demand_kwh, float)
    supply = np.asarray(supply_kwh, float)
    if demand.max(initial=0) <= 0 or supply.max(initial=0) <= 0:
        return Clearing(-1, float("nan"), 0.0, 0.0, 0.0)
    covered = np.flatnonzero(supply >= demand - 1e-12)
    if covered.size:
        p = int(covered[0])
        mcv = demand[p]
        return Clearing(p, float(prices[p]), float(mcv), 1.0 if mcv > 0 else 0.0,
                        float(mcv / supply[p]) if supply[p] > 0 else 0.0)
    p = len(prices) - 1
    mcv = supply[p]
    return Clearing(p, float(prices[p]), float(mcv), float(mcv / demand[p]), 1.0)


def clear_with_exchange(prices: np.ndarray, demand_kwh: np.ndarray, supply_kwh: np.ndarray,
                        import_kwh: float) -> Clearing:
    """Clear an area that imports `import_kwh` (exports if negative) at every price level."""
    demand = np.asarray(demand_kwh, float) + max(-import_kwh, 0.0)
    supply = np.asarray(supply_kwh, float) + max(import_kwh, 0.0)
    return clear(prices, demand, supply)
