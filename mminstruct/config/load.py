"""Loading a config: YAML reading, `--set` overrides, type-checked building, and dumping back.

Every problem is collected and reported at once; unknown keys get a did-you-mean hint, and a
problem that a `--set key=value` caused says so. `read.py` bounds what the YAML may cost.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from mminstruct.config.read import YamlProblem, parse_yaml, read_config_text
from mminstruct.config.schema import SOURCE_KINDS, Config
from mminstruct.config.validate import check_consistency
from mminstruct.errors import ConfigError
from mminstruct.resources import find_config

# --------------------------------------------------------------------------- loading


def load_config(path_or_name: str | Path, overrides: list[str] = ()) -> Config:
    """Load a YAML config (a path, or the name of a shipped config) and apply overrides."""
    path = find_config(path_or_name)
    origin = str(path)
    try:
        raw = parse_yaml(read_config_text(path))
    except YamlProblem as exc:
        raise ConfigError([str(exc)], origin) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"not valid YAML: {exc}"], origin) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError([f"top level must be a mapping, got {type(raw).__name__}"], origin)
    return config_from_dict(raw, overrides, origin)


def config_from_dict(raw: dict, overrides: list[str] = (), origin: str = "config") -> Config:
    """Build a Config from plain data, applying `key=value` overrides first."""
    errors: list[str] = []
    raw = _copy_tree(raw)
    for item in overrides:
        _apply_override(raw, item, errors)
    config = _build(Config, raw, "", errors)
    if config is not None:
        check_consistency(config, errors)
    if errors:
        if overrides:
            errors = [_attributed(problem, overrides) for problem in errors]
            origin = f"{origin} (with {len(overrides)} --set override(s))"
        raise ConfigError(errors, origin)
    return config


def config_to_dict(config: Any) -> Any:
    """Plain data for a config (tuples become lists), ready for YAML or hashing."""
    if dataclasses.is_dataclass(config):
        return {f.name: config_to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, tuple | list):
        return [config_to_dict(v) for v in config]
    return config


def dump_config(config: Config) -> str:
    """The resolved config as YAML, loadable again by `load_config`."""
    return yaml.safe_dump(config_to_dict(config), sort_keys=False, allow_unicode=True)


# --------------------------------------------------------------------------- overrides


@dataclass(frozen=True)
class _Override:
    """A `--set` value: parsed as YAML, but kept as text for string fields."""

    text: str
    value: Any


def _apply_override(raw: dict, item: str, errors: list[str]) -> None:
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        errors.append(f"--set {_shown(item)}: expected KEY=VALUE, e.g. --set output.dir=out/coco")
        return
    try:
        value = parse_yaml(text) if text.strip() else ""
    except YamlProblem as exc:
        errors.append(f"--set {_shown(item, quote=False)}: {exc}")
        return
    except yaml.YAMLError:
        value = text
    parts = key.split(".")
    node: Any = raw
    for depth, part in enumerate(parts[:-1]):
        where = ".".join(parts[: depth + 1])
        node = _step_into(node, part, where, errors)
        if node is None:
            return
    last = parts[-1]
    if isinstance(node, list):
        index = _list_index(node, last, key, errors)
        if index is not None:
            node[index] = _Override(text, value)
    else:
        node[last] = _Override(text, value)


def _step_into(node: Any, part: str, where: str, errors: list[str]) -> Any:
    if isinstance(node, list):
        index = _list_index(node, part, where, errors)
        return None if index is None else node[index]
    child = node.get(part)
    if child is None:
        child = node[part] = {}
    if isinstance(child, _Override):
        child = node[part] = child.value if isinstance(child.value, dict) else {}
    if not isinstance(child, dict | list):
        errors.append(f"--set {where}: is a value, not a section")
        return None
    return child


def _list_index(node: list, part: str, where: str, errors: list[str]) -> int | None:
    if not part.isdigit() or int(part) >= len(node):
        errors.append(f"--set {where}: no such list item (there are {len(node)}, numbered from 0)")
        return None
    return int(part)


def _attributed(problem: str, overrides: list[str]) -> str:
    """`problem`, led by the `--set` item that gave the value it is about (if one did: the
    last one that set it or a section around it, as later items win)."""
    found = _PROBLEM_PATH.match(problem)
    if problem.startswith("--set ") or not found:
        return problem
    path = found.group(1)
    causes = [item for item in overrides if _sets(item.partition("=")[0].strip(), path)]
    return f"--set {_shown(causes[-1], quote=False)}: {problem}" if causes else problem


# The dotted path a problem starts with: `generator.seed: ...`, `unknown key 'a.b' ...`.
_PROBLEM_PATH = re.compile(r"(?:unknown key ')?(\w+(?:\.\w+)*)")


def _sets(key: str, path: str) -> bool:
    """Whether `--set key=...` gives the value at `path` (itself, or a section around it)."""
    return path == key or path.startswith(key + ".")


def _copy_tree(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_tree(v) for v in value]
    return value


# --------------------------------------------------------------------------- typed building


def _build(cls: type, raw: Any, path: str, errors: list[str]) -> Any:
    """Build dataclass `cls` from `raw`, appending every problem to `errors`."""
    raw = raw.value if isinstance(raw, _Override) else raw
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        errors.append(f"{path or 'config'}: expected a mapping of keys, got {_describe(raw)}")
        return None
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in fields:
            name = key if isinstance(key, str) else _shown(key)
            errors.append(_unknown_key(name, _join(path, name), list(fields)))
    values: dict[str, Any] = {}
    ok = True
    for name, f in fields.items():
        where = _join(path, name)
        if name in raw:
            good, value = _convert(hints[name], raw[name], where, errors)
            ok &= good
            values[name] = value
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            errors.append(f"{where}: required key is missing")
            ok = False
    return cls(**values) if ok else None


def _convert(tp: Any, raw: Any, where: str, errors: list[str]) -> tuple[bool, Any]:
    if isinstance(raw, _Override):
        wants_text = tp is str or (_is_optional(tp) and _strip_none(tp) is str)
        raw = raw.text if wants_text and raw.value is not None else raw.value
    if where == "sources":
        return _convert_sources(raw, errors)
    origin = typing.get_origin(tp)
    if _is_optional(tp):
        return (True, None) if raw is None else _convert(_strip_none(tp), raw, where, errors)
    if dataclasses.is_dataclass(tp):
        value = _build(tp, raw, where, errors)
        return value is not None, value
    if origin is Literal:
        choices = typing.get_args(tp)
        if isinstance(raw, bool) and _YAML_SWITCHES[raw] in choices:
            raw = _YAML_SWITCHES[raw]  # YAML reads a bare `off` as false
        if raw in choices:
            return True, raw
        errors.append(
            f"{where}: {_shown(raw)} is not a valid choice; choose one of {_names(choices)}"
        )
        return False, None
    if origin is tuple:
        items = [raw] if isinstance(raw, str) else raw
        if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
            errors.append(f"{where}: expected a string or a list of strings, got {_describe(raw)}")
            return False, None
        return True, tuple(items)
    return _convert_scalar(tp, raw, where, errors)


_YAML_SWITCHES = {False: "off", True: "on"}


_INT_RANGE = (-(2**63), 2**63 - 1)  # what a config's integers are used as: 64-bit at most


def _convert_scalar(tp: Any, raw: Any, where: str, errors: list[str]) -> tuple[bool, Any]:
    if tp is bool and isinstance(raw, bool):
        return True, raw
    number = isinstance(raw, int | float) and not isinstance(raw, bool)
    if tp is int and number and isinstance(raw, int):
        if _INT_RANGE[0] <= raw <= _INT_RANGE[1]:
            return True, raw
        errors.append(f"{where}: {_describe(raw)} is out of range; give a 64-bit integer")
        return False, None
    if tp is float and number:
        try:
            value = float(raw)
        except OverflowError:  # an integer past any float
            value = math.inf
        if math.isfinite(value):
            return True, value
        errors.append(f"{where}: expected a finite number, got {_describe(raw)}")
        return False, None
    if tp is str and isinstance(raw, str):
        return True, raw
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    errors.append(f"{where}: expected {names.get(tp, tp)}, got {_describe(raw)}")
    return False, None


def _convert_sources(raw: Any, errors: list[str]) -> tuple[bool, Any]:
    if not isinstance(raw, list):
        errors.append(f"sources: expected a list of sources, got {_describe(raw)}")
        return False, None
    sources = []
    for i, item in enumerate(raw):
        item = item.value if isinstance(item, _Override) else item
        kind = item.get("kind") if isinstance(item, dict) else None
        kind = kind.value if isinstance(kind, _Override) else kind
        if not isinstance(kind, str) or kind not in SOURCE_KINDS:
            errors.append(
                f"sources.{i}.kind: {_shown(kind)} is not a known source kind; "
                f"choose one of {_names(SOURCE_KINDS)}"
            )
            continue
        sources.append(_build(SOURCE_KINDS[kind], item, f"sources.{i}", errors))
    ok = len(sources) == len(raw) and all(s is not None for s in sources)
    return ok, tuple(sources)


def _unknown_key(key: str, where: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown key '{where}'{hint}; valid keys here: {_names(valid)}"


def _is_optional(tp: Any) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType) and type(None) in typing.get_args(tp)


def _strip_none(tp: Any) -> Any:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return args[0] if len(args) == 1 else Union[tuple(args)]  # noqa: UP007


def _describe(value: Any) -> str:
    return f"{_shown(value)} ({type(value).__name__})"


def _shown(value: Any, quote: bool = True) -> str:
    """`value` as a user wrote it (repr, or the text itself), cut to 60 characters."""
    if isinstance(value, int) and value.bit_length() > 200:  # over 60 digits: say its size
        return f"an integer of {value.bit_length():,} bits"
    try:
        text = repr(value) if quote else str(value)
    except ValueError:  # holds an integer too long to print
        return f"a {type(value).__name__} too large to show"
    return text if len(text) <= 60 else text[:57] + "..."


def _names(items: Any) -> str:
    return ", ".join(f"'{i}'" for i in items)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
