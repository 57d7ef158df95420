"""The one registry of every lemcosim interface; docs/interfaces.md is checked against it.

Keys follow `{federate}/{quantity}`: `{name}` is the federate's own name in the scenario, `{source}`
the name of the federate it subscribes to. JSON payloads travel as HELICS `string` values/messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["publication", "subscription", "endpoint"]


@dataclass(frozen=True)
class Interface:
    federate: str  # federate type
    kind: Kind
    key: str
    type: str  # HELICS data type (string = JSON text)
    unit: str
    description: str

    def resolve(self, name: str, source: str = "") -> str:
        return self.key.format(name=name, source=source)


REGISTRY: tuple[Interface, ...] = (
    Interface("prosumers", "publication", "{name}/injections", "string", "kW, kvar",
              'JSON {"BUS.PHASE": [p_kw, q_kvar]}: net injection per bus and phase, '
              "positive into the grid, at T_w"),
    Interface("prosumers", "publication", "{name}/positions", "string", "kWh",
              'JSON {"id": [...], "bus": [...], "phase": [...], "e_kwh": [...]}: energy '
              "position of each prosumer over the window, positive = surplus"),
    Interface("prosumers", "publication", "{name}/positions_next", "string", "kWh",
              'JSON {"window": W, "id": [...], "bus": [...], "phase": [...], "e_kwh": [...]}: the '
              "positions of window W = w + 1, published with window w's (committed a window "
              "ahead: a market opens window W while it waits for its grant)"),
    Interface("prosumers", "publication", "{name}/total_net_kw", "double", "kW",
              "net injection of the whole population"),
    Interface("grid", "subscription", "{source}/injections", "string", "kW, kvar",
              "net injections of every prosumer population (summed per bus and phase)"),
    Interface("grid", "publication", "{name}/voltages", "string", "pu",
              'JSON {"BUS.PHASE": v_pu}: solved voltage magnitude of every bus phase, at T_w + δ'),
    Interface("grid", "publication", "{name}/losses_kw", "double", "kW", "feeder real-power losses"),
    Interface("grid", "publication", "{name}/losses_kvar", "double", "kvar",
              "feeder reactive-power losses"),
    Interface("grid", "publication", "{name}/vuf_pct", "string", "%",
              'JSON {"BUS": vuf}: IEC voltage unbalance factor 100·abs(V−)/abs(V+) of every three-phase bus'),
    Interface("grid", "publication", "{name}/max_vuf_pct", "double", "%", "feeder maximum VUF"),
    Interface("grid", "publication", "{name}/line_loading_pct", "string", "%",
              'JSON {"LINE": loading}: current over normal rating of every line with a rating'),
    Interface("grid", "publication", "{name}/max_line_loading_pct", "double", "%",
              "highest line loading"),
    Interface("grid", "publication", "{name}/v_min_pu", "double", "pu", "lowest phase voltage"),
    Interface("grid", "publication", "{name}/v_max_pu", "double", "pu", "highest phase voltage"),
    Interface("grid", "publication", "{name}/converged", "double", "1/0",
              "1 if the window's power flow converged"),
    Interface("grid", "publication", "{name}/device_v_in", "string", "pu",
              'JSON {"re": [a, b, c], "im": [a, b, c]}: solved input phasors of the regulator '
              "device (only when the feeder has one), for a voltage-correction controller"),
    Interface("grid", "endpoint", "{name}/query", "string", "kW, kvar",
              'request JSON {"id", "injections": {"BUS.PHASE": [p_kw, q_kvar]}, "device"?}; '
              'answer JSON {"id", "feasible", "converged", "reason", "violations", "losses_kw", "extremes"} '
              "to the sender in the same sub-step; the committed state does not change. A batch "
              '{"id", "chain", "intents": [...]} is answered {"id", "answers": [...]}, in order, up '
              "to the first refusal (see Batched approval below)"),
    Interface("grid", "endpoint", "{name}/control", "string", "-",
              'JSON {"id", "device": {...}}: commit a regulator setting from the next solve on; '
              'answered {"id", "accepted", "reason"}; a bad setting keeps the last valid one'),
    Interface("amm", "subscription", "{source}/positions", "string", "kWh",
              "energy positions of the prosumer population whose members trade"),
    Interface("amm", "subscription", "{source}/positions_next", "string", "kWh",
              "the next window's positions: with them the market opens that window (pool, "
              "liquidity, first batch) while it waits for its grant; without, at T_w + δ"),
    Interface("amm", "publication", "{name}/injections", "string", "kW, kvar",
              'JSON {"BUS.PHASE": [p_kw, q_kvar]}: the window\'s approved schedule (trades and ESU '
              "deliveries), published after the last transaction; the grid re-solves with it"),
    Interface("amm", "publication", "{name}/exchange", "string", "kW, kvar",
              'JSON {"window": W, "injections": {"BUS.PHASE": [p_kw, q_kvar]}}: with '
              "`amm.esu_policy`, the ESUs' utility exchange for window W (a contract with the "
              "utility, not a trade), published with window W − 1's schedule (window 0's at the "
              "start); the grid commits it in window W's base state"),
    Interface("grid", "subscription", "{source}/exchange", "string", "kW, kvar",
              "injections a source announces for a coming window (a market's ESU utility "
              "exchange): they count for that window until the source publishes in it"),
    Interface("amm", "publication", "{name}/price", "double", "M/kWh",
              "closing pool price ρ_LP of the window"),
    Interface("amm", "publication", "{name}/volume_kwh", "double", "kWh",
              "energy traded through the pool in the window"),
    Interface("amm", "endpoint", "{name}/dso", "string", "kW, kvar",
              "sends the window's coming transactions as one batch of intents to the grid's "
              "query endpoint and reads the answers one sub-step later; one more batch after each "
              "refusal (with a pool per phase, one query per transaction)"),
    Interface("fsvr_controller", "subscription", "{source}/device_v_in", "string", "pu",
              "the FSVR's measured input phasors"),
    Interface("fsvr_controller", "endpoint", "{name}/ctl", "string", "-",
              "sends the chosen setting to the grid's control endpoint at T_w + 2δ and reads "
              "its acknowledgement; the grid applies it from its next solve"),
    Interface("fsvr_controller", "endpoint", "{name}/assist", "string", "kW, kvar",
              'assist mode: request {"id", "injections"} from a market; answer {"id", "feasible", '
              '"device", "flows", "losses_kw", "extremes"}: an FSVR setting that makes the '
              "injections feasible at least loss + VUF, found by queries to the grid"),
    Interface("auction_pt", "subscription", "{source}/positions", "string", "kWh",
              "energy positions of the population whose members bid"),
    Interface("auction_pt", "endpoint", "{name}/msg", "string", "ciphertexts",
              "prosumer terminals: encrypted bids and encrypted cleared quantities with masks "
              "that cancel over the billing cycle to their CC; receives keys and schedule (KG), "
              "results (MO), bills (KG)"),
    Interface("auction_cc", "endpoint", "{name}/msg", "string", "ciphertexts",
              "cluster coordinator: homomorphic aggregates and check sums to KG, masked net-amount "
              "sums per key to KG at the end of a billing cycle"),
    Interface("auction_kg", "endpoint", "{name}/msg", "string", "kWh, M",
              "key generator: public keys to PT and CCs, decrypted aggregate curves to MO, bills "
              "to PT"),
    Interface("auction_mo", "endpoint", "{name}/msg", "string", "kWh, M/kWh",
              "market operator: aggregate curves to the DSO, per-cluster MCP, BCF, SCF, BCFL to "
              "PT and CCs"),
    Interface("auction_dso", "endpoint", "{name}/msg", "string", "M/kWh",
              "DSO: per-cluster clearing after the line-limit check with AC power flows (price "
              "areas) to MO"),
    Interface("recorder", "subscription", "{source}", "string", "as published",
              "any publication named in `recorder.subscribe` (all of the scenario's by default)"),
)


def interfaces_of(federate_type: str) -> list[Interface]:
    return [i for i in REGISTRY if i.federate == federate_type]

