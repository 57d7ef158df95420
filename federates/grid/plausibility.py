"""Whether a converged power flow is a plausible operating point or a collapsed one.

OpenDSS can "converge" to a voltage-collapse state (the low-voltage branch of the PV curve): the
solution is self-consistent, but almost no power reaches the loads and the feeder burns what the
source delivers. Such a state is reported as not converged, with the reason. The grid federate,
its queries and `lemcosim powerflow` all solve through `GridModel.solve`, which applies this rule.
"""

from __future__ import annotations

V_COLLAPSE_PU = 0.5
# the loads receive less than this share of what they ask for: they are not being served
SERVED_SHARE_MIN = 0.5
# power balances close to ~1e-4 kW (tolerance 1e-8 on MW flows): below this a shortfall is noise
BALANCE_NOISE_KW = 0.01


def collapse_reason(v_min_pu: float, losses_kw: float, served_kw: float, demand_kw: float) -> str | None:
    """Why the state is implausible, or None.

    `served_kw` is the consumption the loads actually draw in the solved state, `demand_kw` what
    they ask for at nominal voltage. Losses above the served load count only while the load is
    not served: an unloaded feeder has no-load losses (transformer cores, charging) above its
    (zero) load, and that is a real state.
    """
    if v_min_pu < V_COLLAPSE_PU:
        return (f"voltage collapse: V_min {v_min_pu:.4g} pu < {V_COLLAPSE_PU} pu (OpenDSS converged "
                "to an implausible state; reported as not converged)")
    if losses_kw > served_kw and served_kw < SERVED_SHARE_MIN * demand_kw - BALANCE_NOISE_KW:
        return (f"voltage collapse: losses {losses_kw:.6g} kW exceed the load served "
                f"{served_kw:.6g} kW (of {demand_kw:.6g} kW asked for); reported as not converged")
    return None
