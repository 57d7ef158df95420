"""Scenario loading end to end: files → merged layers → schema, with errors that name their origin."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from lemcosim.runner.schema import Scenario
from lemcosim.runner.sources import (
    KeyPath,
    Layered,
    ScenarioError,
    apply_overrides,
    load_layers,
    resolve_scenario_path,
)


def load_scenario(ref: str | Path, overrides: list[str] | None = None) -> tuple[Scenario, Layered]:
    """Read, compose and validate a scenario given as a path or a shipped name."""
    path = resolve_scenario_path(ref)
    layered = apply_overrides(load_layers(path), overrides or [])
    _anchor_file_paths(layered)
    try:
        scenario = Scenario.model_validate(layered.data)
    except ValidationError as exc:
        raise ScenarioError([_describe(err, layered) for err in exc.errors()]) from None
    infinite = [f"{layered.origin_of(path) or layered.files[-1]}: key {'.'.join(map(str, path))}: "
                f"given {value!r}; expected a finite number"
                for path, value in _non_finite(scenario.model_dump(), ())]
    if infinite:
        raise ScenarioError(infinite)
    return scenario, layered


def _non_finite(node: Any, path: KeyPath):
    """Every NaN or ±inf in a dumped scenario (a YAML `.inf` or `.nan` passes pydantic's floats)."""
    if isinstance(node, float) and not math.isfinite(node):
        yield path, node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _non_finite(value, path + (key,))
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _non_finite(value, path + (i,))


# key paths whose values may be files; "*" steps over list items
_FILE_KEYS: tuple[tuple[str, ...], ...] = (
    ("network", "dss"),
    ("prosumers", "members"),
    ("prosumers", "groups", "*", "load_profile"),
    ("prosumers", "groups", "*", "pv_profile"),
)
_FILE_SUFFIXES = {".csv", ".parquet", ".dss", ".yaml", ".yml", ".json"}


def _anchor_file_paths(layered: Layered) -> None:
    """Relative file paths are read against the folder of the file that names them (cwd for --set)."""
    for pattern in _FILE_KEYS:
        for path, value in _walk(layered.data, pattern, ()):
            if not isinstance(value, str) or Path(value).suffix.lower() not in _FILE_SUFFIXES:
                continue
            if Path(value).is_absolute():
                continue
            origin = layered.origin_of(path)
            base = Path(origin.file).parent if origin and not origin.file.startswith("--set") else Path.cwd()
            parent: Any = layered.data
            for part in path[:-1]:
                parent = parent[part]
            parent[path[-1]] = str((base / value).resolve())


def _walk(node: Any, pattern: tuple[str, ...], path: KeyPath):
    if not pattern:
        yield path, node
        return
    head, rest = pattern[0], pattern[1:]
    if head == "*" and isinstance(node, list):
        for i, item in enumerate(node):
            yield from _walk(item, rest, path + (i,))
    elif isinstance(node, dict) and head in node:
        yield from _walk(node[head], rest, path + (head,))


def _describe(err: dict[str, Any], layered: Layered) -> str:
    loc: KeyPath = tuple(p for p in err["loc"] if not _is_union_tag(p))
    origin = layered.origin_of(loc)
    where = str(origin) if origin else layered.files[-1]
    key = ".".join(str(p) for p in loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        hint = f"; allowed here: {', '.join(allowed)}" if allowed else ""
        return f"{where}: key {key}: unknown key{hint}"
    if err["type"] == "missing":
        return f"{where}: key {key}: required but not given"
    given = _short(err.get("input"))
    return f"{where}: key {key}: given {given}; expected {err['msg'].removeprefix('Value error, ')}"


def _is_union_tag(part: str | int) -> bool:
    # pydantic puts the union member's type name into `loc` (e.g. 'float', 'function-after[...]')
    return isinstance(part, str) and ("[" in part or part in {"float", "int", "str", "bool"})


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _allowed_keys(loc: KeyPath) -> list[str]:
    """Field names of the model at `loc` (list indices and dict keys on the way are stepped over)."""
    model: Any = Scenario
    for part in loc:
        if isinstance(part, str) and part in model.model_fields:
            model = _inner_model(model.model_fields[part].annotation)
            if model is None:
                return []
    return sorted(model.model_fields)


def _inner_model(annotation: Any) -> Any:
    """The pydantic model inside `X | None`, `list[X]` or `dict[str, X]`, else None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def load_checked(ref: str | Path, overrides: list[str] | None = None) -> tuple[Scenario, Layered]:
    """`load_scenario`, then every semantic check (runner/checks.py): what `lemcosim validate`,
    `compose` and `run` do before any process starts."""
    from lemcosim.runner.checks import check_scenario

    scenario, layered = load_scenario(ref, overrides)
    check_scenario(scenario, layered)
    return scenario, layered
