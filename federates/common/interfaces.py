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
    Interface("prosumers", "publication", "{name}/total_net_kw", "double", "kW",
              "net injection of the whole population"),
    Interface("recorder", "subscription", "{source}", "string", "as published",
              "any publication named in `recorder.subscribe` (all of the scenario's by default)"),
)


def interfaces_of(federate_type: str) -> list[Interface]:
    return [i for i in REGISTRY if i.federate == federate_type]

