"""The network data model: one pydantic model per table row of networks/FORMAT.md."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, field_validator, model_validator

LengthUnit = Literal["ft", "kft", "mi", "m", "km"]
PHASE_LETTERS = "abc"


class Row(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _phases(value: str) -> str:
    value = str(value).lower()
    if not value or any(p not in PHASE_LETTERS for p in value) or len(set(value)) != len(value):
        raise ValueError(f"phases {value!r}: give distinct letters of a, b, c")
    return value


def _lower(value: object) -> str:
    return str(value).strip().lower()


class Source(Row):
    bus: str
    kv: PositiveFloat
    pu: PositiveFloat = 1.0
    angle_deg: float = 0.0
    mvasc3: PositiveFloat | None = None
    mvasc1: PositiveFloat | None = None
    r1_ohm: float | None = None
    x1_ohm: float | None = None
    r0_ohm: float | None = None
    x0_ohm: float | None = None

    _bus = field_validator("bus", mode="before")(_lower)

    @model_validator(mode="after")
    def _strength(self) -> Source:
        if self.mvasc3 is None and self.x1_ohm is None:
            raise ValueError("give the source strength: mvasc3 (and mvasc1) or r1_ohm/x1_ohm")
        return self


class LineCode(Row):
    units: LengthUnit
    r_ohm: list[list[float]] | None = None
    x_ohm: list[list[float]] | None = None
    c_nf: list[list[float]] | None = None
    r1_ohm: float | None = None
    x1_ohm: float | None = None
    r0_ohm: float | None = None
    x0_ohm: float | None = None
    c1_nf: float | None = None
    c0_nf: float | None = None
    normamps: PositiveFloat | None = None

    @model_validator(mode="after")
    def _impedance(self) -> LineCode:
        matrix = self.r_ohm is not None or self.x_ohm is not None
        sequence = self.r1_ohm is not None or self.x1_ohm is not None
        if matrix == sequence:
            raise ValueError("give either matrices r_ohm and x_ohm or sequence data r1_ohm, x1_ohm")
        if matrix:
            if self.r_ohm is None or self.x_ohm is None:
                raise ValueError("a matrix linecode needs both r_ohm and x_ohm")
            for key, tri in (("r_ohm", self.r_ohm), ("x_ohm", self.x_ohm), ("c_nf", self.c_nf)):
                if tri is not None and [len(r) for r in tri] != list(range(1, len(tri) + 1)):
                    raise ValueError(f"{key} must be a lower triangle: rows of length 1, 2, 3")
            if self.c_nf is not None and len(self.c_nf) != len(self.r_ohm):
                raise ValueError("c_nf has another size than r_ohm")
            if len(self.r_ohm) != len(self.x_ohm):
                raise ValueError("r_ohm and x_ohm differ in size")
        elif self.r1_ohm is None or self.x1_ohm is None:
            raise ValueError("sequence data need both r1_ohm and x1_ohm")
        return self

    @property
    def size(self) -> int | None:
        """Number of conductors of a matrix code; None for sequence data (any)."""
        return len(self.r_ohm) if self.r_ohm is not None else None


class Line(Row):
    name: str
    bus1: str
    bus2: str
    phases: str = "abc"
    linecode: str | None = None
    length: PositiveFloat | None = None
    units: LengthUnit | None = None
    switch: bool = False
    open: bool = False
    normamps: PositiveFloat | None = None
    # or the whole line's sequence impedance in ohms (balanced feeders published as branch data)
    r1_ohm: float | None = Field(None, ge=0)
    x1_ohm: float | None = None

    _names = field_validator("name", "bus1", "bus2", "linecode", mode="before")(
        lambda v: None if v is None else _lower(v))
    _ph = field_validator("phases", mode="before")(_phases)

    @model_validator(mode="after")
    def _complete(self) -> Line:
        direct = self.r1_ohm is not None and self.x1_ohm is not None
        coded = self.linecode is not None and self.length is not None
        if not self.switch and not (direct or coded):
            raise ValueError("a line needs linecode and length, or r1_ohm and x1_ohm (or switch: true)")
        if direct and coded:
            raise ValueError("give linecode and length, or r1_ohm and x1_ohm, not both")
        return self


class Winding(Row):
    bus: str
    phases: str | None = None
    conn: Literal["wye", "delta"] = "wye"
    kv: PositiveFloat
    kva: PositiveFloat
    r_pct: float = Field(0.0, ge=0)
    tap: PositiveFloat = 1.0

    _bus = field_validator("bus", mode="before")(_lower)
    _ph = field_validator("phases", mode="before")(lambda v: None if v is None else _phases(v))


class Transformer(Row):
    name: str
    phases: Literal[1, 3] = 3
    windings: list[Winding] = Field(min_length=2, max_length=3)
    x_pct: PositiveFloat
    x_ht_pct: PositiveFloat | None = None
    x_lt_pct: PositiveFloat | None = None
    noloadloss_pct: float = Field(0.0, ge=0)
    imag_pct: float = Field(0.0, ge=0)

    _name = field_validator("name", mode="before")(_lower)

    @model_validator(mode="after")
    def _three_winding(self) -> Transformer:
        if len(self.windings) == 3 and (self.x_ht_pct is None or self.x_lt_pct is None):
            raise ValueError("a three-winding transformer needs x_ht_pct and x_lt_pct")
        return self


class Regulator(Row):
    name: str
    bus1: str
    bus2: str
    phases: str
    conn: Literal["wye", "delta"] = "wye"
    kv: PositiveFloat
    kva: PositiveFloat
    x_pct: float = Field(0.01, ge=0)
    loadloss_pct: float = Field(0.01, ge=0)
    tap: float = Field(1.0, ge=0.9, le=1.1, description="published tap, pu")
    vreg: PositiveFloat = 120.0
    band: PositiveFloat = 2.0
    ptratio: PositiveFloat = 20.0
    ctprim: PositiveFloat = 600.0
    r: float = 0.0
    x: float = 0.0
    ptphase: int | None = None

    _names = field_validator("name", "bus1", "bus2", mode="before")(_lower)
    _ph = field_validator("phases", mode="before")(_phases)


class Load(Row):
    name: str
    bus: str
    phases: str = "abc"
    conn: Literal["wye", "delta"] = "wye"
    model: Literal["pq", "z", "i", "linear_p_quadratic_q"] = "pq"
    kw: float
    kvar: float = 0.0

    _names = field_validator("name", "bus", mode="before")(_lower)
    _ph = field_validator("phases", mode="before")(_phases)

    @model_validator(mode="after")
    def _connection(self) -> Load:
        if self.conn == "delta" and len(self.phases) == 1:
            raise ValueError("a delta load sits between two or three phases")
        if self.conn == "wye" and len(self.phases) == 2:
            raise ValueError("a two-phase load must be delta (between the two phases)")
        return self


class Capacitor(Row):
    name: str
    bus: str
    phases: str = "abc"
    kvar: PositiveFloat
    conn: Literal["wye", "delta"] = "wye"

    _names = field_validator("name", "bus", mode="before")(_lower)
    _ph = field_validator("phases", mode="before")(_phases)


class Network(Row):
    name: str
    title: str
    citation: str
    frequency_hz: PositiveFloat = 60.0
    voltage_bases_kv: list[PositiveFloat] = Field(min_length=1)
    balanced: bool = False
    substation_bus: str | None = None
    load_vmin_pu: PositiveFloat | None = Field(
        None, description="below it OpenDSS turns constant-power loads into constant impedance; "
        "None keeps OpenDSS's 0.95 (as the IEEE reference models do)")
    source: Source
    linecodes: dict[str, LineCode] = Field(default_factory=dict)
    lines: list[Line] = Field(default_factory=list)
    transformers: list[Transformer] = Field(default_factory=list)
    regulators: list[Regulator] = Field(default_factory=list)
    loads: list[Load] = Field(default_factory=list)
    capacitors: list[Capacitor] = Field(default_factory=list)
    folder: str = ""

    @property
    def buses(self) -> list[str]:
        """Every bus reached by a branch, the source bus first."""
        seen = {self.source.bus: None}
        for br in self.lines + self.regulators:
            seen.setdefault(br.bus1)
            seen.setdefault(br.bus2)
        for tr in self.transformers:
            for w in tr.windings:
                seen.setdefault(w.bus)
        return list(seen)
