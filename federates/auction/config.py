"""Configuration of the privacy-preserving double auction (the `auction:` section); docs/privacy.md."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    field_validator,
    model_validator,
)

from lemcosim.federates.common.errors import LemcosimError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MonitoredLine(_Strict):
    name: str = Field(description="a line of the network")
    limit_kw: PositiveFloat


class DsoConfig(_Strict):
    lines: list[MonitoredLine] = Field(default_factory=list, description="lines whose limits bind")
    loss_factor: float = Field(0.0, ge=0, lt=1, description="λ: share of traded energy lost")


class FaultConfig(_Strict):
    """Robustness studies: terminals that send bad ciphertexts (the CC must reject them by name
    and the window still clear for everyone else)."""

    malformed: list[str] = Field(default_factory=list, description="prosumer ids")
    wrong_key: list[str] = Field(default_factory=list, description="prosumer ids")
    misreport: list[str] = Field(default_factory=list, description="prosumer ids that report half "
                                 "their cleared quantities in the settlement")
    forged_cleared_sum: list[str] = Field(default_factory=list, description="clusters whose CC "
                                          "sends KG one member's cleared quantity as its check sum "
                                          "(a decryption-oracle attempt)")
    fake_curves: list[str] = Field(default_factory=list, description="clusters whose CC poses as "
                                   "the KG and sends the MO made-up aggregate curves")


class AuctionConfig(_Strict):
    levels: int = Field(10, ge=2, le=64, description="P price levels from fit to retail")
    fit: PositiveFloat = 0.08
    retail: PositiveFloat = 0.30
    key_bits: int = Field(2048, ge=256)
    allow_short_keys: bool = Field(False, description="tests only: keys below 2048 bits")
    keys_per_cycle: PositiveInt = 3
    cycle_windows: PositiveInt = Field(24, description="billing cycle, windows")
    k_min: int = Field(3, ge=2, description="fewest members of a cluster, and of the non-zero "
                       "contributors to an aggregate slot the MO may see")
    thin_slots: Literal["suppress", "report"] = Field(
        "suppress", description="aggregate slots with 1..k_min-1 non-zero contributors: KG zeroes "
        "them before the MO sees them (suppress) or only counts them (report)")
    max_cluster: int = Field(1000, ge=2, description="largest cluster: sets the slot headroom")
    terminals: PositiveInt = Field(1, description="PT federates sharing the population "
                                   "(member i of the positions goes to PT i mod terminals)")
    obfuscator_workers: int = Field(2, ge=0, description="worker processes per PT that compute "
                                    "the next window's obfuscators in the background; 0: in the "
                                    "PT, on the window's critical path")
    audit_messages: bool = Field(False, description="write every message each role sends and "
                                 "receives to logs/NAME.messages.jsonl (privacy audits)")
    max_qty_kwh: PositiveFloat = Field(20.0, description="largest bid quantity at one level")
    elasticity: float = Field(0.5, ge=0, le=1, description="how much bids move with price")
    clusters: dict[str, list[str]] = Field(min_length=1, description="cluster -> its buses")
    source: str = Field("prosumers", description="the population whose positions bid")
    network: str | None = Field(None, description="DSO's feeder for PTDFs (default: scenario's)")
    dso: DsoConfig = Field(default_factory=DsoConfig)
    faults: FaultConfig = Field(default_factory=FaultConfig)

    @field_validator("clusters")
    @classmethod
    def _cluster_names(cls, clusters: dict[str, list[str]]) -> dict[str, list[str]]:
        check_cluster_names(list(clusters))
        return clusters

    @field_validator("source")
    @classmethod
    def _source_name(cls, source: str) -> str:
        if source.lower() in RESERVED_NAMES or source.lower().startswith(("cc_", "pt_")):
            raise RoleNameError(f"source {source!r} is the name of an auction role's federate")
        return source

    @model_validator(mode="after")
    def _consistent(self) -> AuctionConfig:
        if self.fit >= self.retail:
            raise ValueError(f"fit {self.fit} must be below retail {self.retail}")
        if self.cycle_windows < self.keys_per_cycle:
            raise ValueError("every key of a billing cycle needs a window: raise cycle_windows "
                             "or lower keys_per_cycle")
        seen: dict[str, str] = {}
        for cluster, buses in self.clusters.items():
            for bus in buses:
                if bus.lower() in seen:
                    raise ValueError(f"bus {bus} is in clusters {seen[bus.lower()]} and {cluster}")
                seen[bus.lower()] = cluster
        return self

    def cluster_of(self, bus: str) -> str | None:
        for cluster, buses in self.clusters.items():
            if bus.lower() in (b.lower() for b in buses):
                return cluster
        return None


# federate names of the roles (runner/compose.py): a cluster or population of the same name would
# merge two roles into one federate (a KG that receives individual bids while holding the keys)
RESERVED_NAMES = frozenset({"kg", "mo", "dso", "pt"})
_NAME = re.compile(r"[a-z][a-z0-9_]*")
# the MO logs the joint clearing under this entity, next to one entity per cluster (same
# quantities: mcv_kwh), and analysis/auction.py leaves it out of the per-cluster tables
JOINT_ENTITY = "market"



class RoleNameError(LemcosimError, ValueError):
    """A cluster or population name that would merge two auction roles into one federate."""


def check_cluster_names(clusters: list[str]) -> None:
    """Cluster names become CC federates `cc_NAME`: lower-case identifiers, none a role's name
    (a name given twice is a duplicate YAML key, which runner/sources.py refuses)."""
    for cluster in clusters:
        if not _NAME.fullmatch(cluster):
            raise RoleNameError(f"cluster name {cluster!r} must be a lower-case identifier "
                                "(letters, digits, _)")
        if cluster in RESERVED_NAMES or cluster.startswith(("pt_", "cc_")):
            raise RoleNameError(f"cluster name {cluster!r} is reserved for an auction role "
                                f"({', '.join(sorted(RESERVED_NAMES))}, pt_*, cc_*)")
        if cluster == JOINT_ENTITY:
            raise RoleNameError(f"cluster name {cluster!r} is the MO's entity of the joint "
                                "clearing: its results would be logged as the joint ones")
