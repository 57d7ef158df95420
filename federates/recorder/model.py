"""Turning published values into tidy rows (pure: text in, rows out)."""

from __future__ import annotations

import json
from typing import Any

from lemcosim.federates.common import wire

Row = tuple[str, str, float | str, str]  # entity, quantity, value, unit


def rows_from_value(key: str, text: str, unit: str) -> list[Row]:
    """Flatten one published value into (entity, quantity, value, unit) rows.

    A number → one row (entity = publishing federate); a JSON mapping of numbers → one row per
    entity; a mapping of [p, q]-like pairs → one row per entity and component, with the components'
    units taken in order from a comma-separated unit ("kW, kvar"); anything else is kept as text.
    """
    source, _, quantity = key.partition("/")
    quantity = quantity or key
    try:
        value: Any = wire.decode(text) if text else None
    except json.JSONDecodeError:
        return [(source, quantity, text, unit)]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [(source, quantity, float(value), unit)]
    if isinstance(value, dict) and value and all(_is_number(v) for v in value.values()):
        return [(str(k), quantity, float(v), unit) for k, v in value.items()]
    if isinstance(value, dict) and value and all(_is_number_list(v) for v in value.values()):
        units = [u.strip() for u in unit.split(",")]
        return [
            (str(k), f"{quantity}[{i}]", float(x), units[i] if i < len(units) else unit)
            for k, v in value.items()
            for i, x in enumerate(v)
        ]
    return [(source, quantity, text, unit)]


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_number_list(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(_is_number(x) for x in v)
