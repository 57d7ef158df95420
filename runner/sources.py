"""Reading scenario files: YAML/JSON with line numbers, `extends:`, `include:` and `--set` overrides.

Every value of the merged scenario remembers where it came from (file and line, or the `--set`
option), so a validation error can name the file, the line and the key path.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lemcosim.federates.common.errors import LemcosimError

KeyPath = tuple[str | int, ...]


def shipped_configs_dir() -> Path:
    """Folder of the scenarios shipped with lemcosim (works installed and from a checkout)."""
    import lemcosim.configs

    return Path(lemcosim.configs.__file__).resolve().parent


class ScenarioError(LemcosimError):
    """A scenario that cannot be read or does not validate; `problems` lists every finding."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class Origin:
    file: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line is not None else self.file


@dataclass
class Layered:
    """A merged document and the origin of each key path in it."""

    data: dict[str, Any] = field(default_factory=dict)
    origins: dict[KeyPath, Origin] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    def origin_of(self, path: KeyPath) -> Origin | None:
        for n in range(len(path), -1, -1):
            if path[:n] in self.origins:
                return self.origins[path[:n]]
        return None


def resolve_scenario_path(ref: str | Path, relative_to: Path | None = None) -> Path:
    """A scenario given as a path, or as the name of a shipped scenario (`quickstart`)."""
    ref_path = Path(ref)
    candidates = []
    if relative_to is not None and not ref_path.is_absolute():
        candidates.append(relative_to / ref_path)
    candidates.append(ref_path)
    shipped = shipped_configs_dir()
    candidates.append(shipped / ref_path)
    if not ref_path.suffix:
        candidates += [shipped / f"{ref}.yaml", shipped / f"{ref}.json"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    names = ", ".join(sorted(p.stem for p in shipped.glob("*.yaml")))
    where = f" (from {relative_to})" if relative_to else ""
    raise ScenarioError(
        [f"{ref}: no such scenario file{where}, and no shipped scenario of that name "
         f"(shipped: {names})"]
    )


def read_document(path: Path) -> Layered:
    """One YAML or JSON file with the line of every key; duplicate keys are errors."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError([f"{path}: cannot read: {exc.strerror}"]) from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError([f"{path}{line}: not valid YAML/JSON: {problem}"]) from None
    except ValueError as exc:  # a well-formed scalar that is no value, e.g. the date 2026-13-45
        raise ScenarioError([_bad_scalar(node, str(path), exc)]) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ScenarioError(
            [f"{path}:1: a scenario must be a mapping of keys, got {type(data).__name__}"]
        )
    layer = Layered(data=data, files=[str(path)])
    if node is not None:
        _collect_origins(node, (), str(path), layer.origins)
    return layer


def _bad_scalar(root: yaml.Node, file: str, exc: ValueError) -> str:
    """Name the scalar YAML could not construct: its line, key path and text."""
    for path, node in _scalars(root, ()):
        try:
            yaml.SafeLoader("").construct_object(node)
        except ValueError:
            kind = node.tag.rpartition(":")[2]
            expected = ("a valid date, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS" if kind == "timestamp"
                        else f"a valid {kind}")
            return (f"{file}:{node.start_mark.line + 1}: key {'.'.join(map(str, path))}: given "
                    f"{node.value!r}; expected {expected} ({exc})")
    return f"{file}: {exc}"


def _scalars(node: yaml.Node, path: KeyPath):
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            yield from _scalars(value_node, path + (key_node.value,))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _scalars(item, path + (i,))
    elif isinstance(node, yaml.ScalarNode):
        yield path, node


def _collect_origins(node: yaml.Node, path: KeyPath, file: str, out: dict[KeyPath, Origin]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ScenarioError(
                    [f"{file}:{line}: key {'.'.join(map(str, path + (key,)))!r} "
                     f"given twice (first on line {seen[key]})"]
                )
            seen[key] = line
            out[path + (key,)] = Origin(file, line)
            _collect_origins(value_node, path + (key,), file, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[path + (i,)] = Origin(file, item.start_mark.line + 1)
            _collect_origins(item, path + (i,), file, out)


def merge(base: Layered, top: Layered) -> Layered:
    """`top` over `base`: mappings merge key by key, anything else is replaced."""
    out = Layered(copy.deepcopy(base.data), dict(base.origins), base.files + top.files)
    _merge_into(out.data, top.data, (), out.origins, top.origins)
    return out


def _merge_into(
    dst: dict, src: dict, path: KeyPath, dst_origins: dict, src_origins: dict
) -> None:
    for key, value in src.items():
        sub = path + (key,)
        if isinstance(value, dict) and isinstance(dst.get(key), dict):
            _merge_into(dst[key], value, sub, dst_origins, src_origins)
            if sub in src_origins:
                dst_origins.setdefault(sub, src_origins[sub])
            continue
        for stale in [p for p in dst_origins if p[: len(sub)] == sub]:
            del dst_origins[stale]
        dst[key] = copy.deepcopy(value)
        dst_origins.update({p: o for p, o in src_origins.items() if p[: len(sub)] == sub})


def load_layers(path: Path, _chain: tuple[Path, ...] = ()) -> Layered:
    """A file with its `extends:` base and `include:` fragments merged under it."""
    if path in _chain:
        cycle = " -> ".join(str(p) for p in _chain + (path,))
        raise ScenarioError([f"{path}: extends/include cycle: {cycle}"])
    own = read_document(path)
    extends = own.data.pop("extends", None)
    includes = own.data.pop("include", [])
    result = Layered()
    if extends is not None:
        if not isinstance(extends, str):
            raise ScenarioError([f"{own.origin_of(('extends',))}: `extends` must be one file name"])
        base_path = resolve_scenario_path(extends, path.parent)
        result = merge(result, load_layers(base_path, _chain + (path,)))
    if isinstance(includes, str):
        includes = [includes]
    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        raise ScenarioError([f"{own.origin_of(('include',))}: `include` must be a list of file names"])
    for ref in includes:
        result = merge(result, load_layers(resolve_scenario_path(ref, path.parent), _chain + (path,)))
    own.origins = {p: o for p, o in own.origins.items() if p[:1] not in (("extends",), ("include",))}
    return merge(result, own)


def apply_overrides(layer: Layered, overrides: list[str]) -> Layered:
    """Apply `--set dotted.key=value` options; values are read as YAML scalars (`1`, `true`, `[a]`)."""
    for item in overrides:
        if "=" not in item:
            raise ScenarioError([f"--set {item}: expected dotted.key=value"])
        dotted, raw = item.split("=", 1)
        keys = [k for k in dotted.strip().split(".")]
        if not all(keys):
            raise ScenarioError([f"--set {item}: empty key in {dotted!r}"])
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node: Any = layer.data
        path: KeyPath = ()
        for key in keys[:-1]:
            step: str | int = int(key) if isinstance(node, list) and key.isdigit() else key
            path += (step,)
            if isinstance(node, dict):
                node = node.setdefault(step, {})
            elif isinstance(node, list) and isinstance(step, int) and step < len(node):
                node = node[step]
            else:
                raise ScenarioError([f"--set {item}: {'.'.join(map(str, path))} is not a mapping"])
            if not isinstance(node, (dict, list)):
                raise ScenarioError(
                    [f"--set {item}: {'.'.join(map(str, path))} is a value, not a mapping"]
                )
        last: str | int = int(keys[-1]) if isinstance(node, list) and keys[-1].isdigit() else keys[-1]
        if isinstance(node, list) and not (isinstance(last, int) and last < len(node)):
            raise ScenarioError([f"--set {item}: index {keys[-1]} out of range"])
        node[last] = value
        full = path + (last,)
        for stale in [p for p in layer.origins if p[: len(full)] == full]:
            del layer.origins[stale]
        layer.origins[full] = Origin(f"--set {item}")
    return layer
