"""docs/interfaces.md is the one table external federates rely on: it must match the registry."""

from __future__ import annotations

from pathlib import Path

from lemcosim.federates.common.interfaces import REGISTRY

DOC = Path(__file__).resolve().parent.parent / "docs" / "interfaces.md"


def documented_rows() -> set[tuple[str, ...]]:
    rows = set()
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[0] not in ("federate", "---"):
            rows.add((cells[0], cells[1], cells[2].strip("`"), cells[3], cells[4]))
    return rows


def test_every_interface_is_documented_and_nothing_else():
    in_code = {(i.federate, i.kind, i.key, i.type, i.unit) for i in REGISTRY}
    documented = documented_rows()
    assert in_code - documented == set(), "interfaces missing from docs/interfaces.md"
    assert documented - in_code == set(), "docs/interfaces.md lists interfaces the code lacks"


def test_every_publication_has_a_unit():
    assert all(i.unit for i in REGISTRY if i.kind == "publication")
