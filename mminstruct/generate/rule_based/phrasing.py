"""The wording file: `rule_based.yaml`, its phrasing pools, and filling in a phrasing.

`POOLS` lists every pool and the placeholders it may use; `load_phrasings` reads and checks
the file (from `templates_dir`), and `_Say` draws phrasings with one task's RNG.
"""

from __future__ import annotations

import difflib
import hashlib
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mminstruct.errors import ConfigError
from mminstruct.resources import resolve_path, shipped_dir

TEMPLATE_FILE = "rule_based.yaml"

# Every phrasing pool, by dotted key, with the placeholders its phrasings may use.
_NOUN = ("object", "a_object")
_KNOWN = ("object", "a_object", "use", "place", "seen")  # knowledge table entries
POOLS: dict[str, frozenset[str]] = {
    key: frozenset(names)
    for key, names in {
        "conversation.count.question": ("objects",),
        "conversation.count.answer_one": _NOUN,
        "conversation.count.answer_many": ("count", "object", "objects"),
        "conversation.exists.question": _NOUN,
        "conversation.exists.answer_yes": (*_NOUN, "some"),
        "conversation.exists.answer_no": _NOUN,
        "conversation.where.question": ("object",),
        "conversation.where.answer": ("object", "region"),
        "conversation.biggest.question": (),
        "conversation.biggest.answer": ("a_object",),  # there may be several: never "the"
        "conversation.caption.question": (),
        "conversation.caption.answer": ("caption",),
        "detail.question": (),
        "detail.inventory": ("objects", "be"),  # be: "is" or "are", as the first object
        "detail.inventory_more": ("objects", "be"),
        "detail.layout": ("placements",),
        "detail.knowledge": ("a_object", "use", "place"),
        "detail.biggest": ("a_object",),
        "detail.relations": ("facts",),
        "conversation.relation_doing.question": ("subject", "object"),
        "conversation.relation_doing.answer": ("subject", "action", "object"),
        "conversation.relation_choice.question": ("subject", "object", "first", "second"),
        "conversation.relation_choice.answer": ("subject", "predicate", "object"),
        "conversation.relation_what.question": ("verb", "object"),
        "conversation.relation_what.answer": ("subjects", "verb", "object"),
        "conversation.relation_where.question": ("subject", "object"),
        "conversation.relation_where.answer": ("subject", "predicate", "object"),
        "conversation.relation_check.question": ("subject", "predicate", "object"),
        "conversation.relation_check.answer_yes": ("subject", "predicate", "object"),
        "conversation.relation_check.answer_no": ("subject", "predicate", "object"),
        "conversation.count_check.question": ("some",),
        "conversation.count_check.answer_yes": ("some",),
        "conversation.count_check.answer_no": ("some",),
        "conversation.purpose.question": ("object",),
        "conversation.purpose.answer": ("a_object", "use"),
        "conversation.purpose_many.question": ("objects",),
        "conversation.purpose_many.answer": ("objects", "use"),
        "conversation.attribute.question": ("object", "attributes"),
        "conversation.attribute.answer": ("object", "attributes"),
        "reasoning.more.question": ("first", "second"),
        "reasoning.more.answer_yes": ("first", "second", "first_some", "second_some"),
        "reasoning.more.answer_fewer": ("first", "second", "first_some", "second_some"),
        "reasoning.more.answer_equal": ("first", "second", "first_some", "second_some"),
        "reasoning.larger.question": ("first", "second"),
        "reasoning.larger.answer": ("larger", "smaller"),
        "reasoning.side.question": ("first", "second", "side"),
        "reasoning.side.answer_yes": ("first", "second", "side"),
        "reasoning.side.answer_no": ("first", "second", "side", "other_side"),
        "reasoning.purpose.question": _KNOWN,
        "reasoning.purpose.answer": _KNOWN,
        "reasoning.place.question": _KNOWN,
        "reasoning.place.answer": _KNOWN,
    }.items()
}

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Phrasings:
    """The phrasing pools of one `rule_based.yaml`, checked against `POOLS`."""

    pools: Mapping[str, tuple[str, ...]]  # dotted key -> phrasings
    source: str  # file name, recorded in every instruction
    sha256: str  # first 16 hex digits of the file's sha256

    def say(self, key: str, rng: random.Random, **values: str) -> str:
        """One phrasing of `key`, drawn by `rng`, filled in and capitalized."""
        text = render(rng.choice(self.pools[key]), values, key)
        return text[:1].upper() + text[1:]


def render(template: str, values: Mapping[str, str], key: str = "template") -> str:
    """Replace each `{name}` by its value; nothing else in the template is interpreted."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            names = ", ".join(f"{{{n}}}" for n in sorted(values)) or "none"
            problem = f"{key}: no value for {{{name}}} (available: {names})"
            raise ConfigError([problem], TEMPLATE_FILE)
        return values[name]

    return _PLACEHOLDER.sub(fill, template)


def templates_dir(setting: str | None) -> Path:
    """The folder `generator.templates` names, or the shipped templates."""
    return resolve_path(setting) if setting else shipped_dir("templates")


def load_phrasings(folder: Path) -> Phrasings:
    """Read and check `rule_based.yaml` from `folder`; every problem is reported at once."""
    path = Path(folder) / TEMPLATE_FILE
    if not path.is_file():
        hint = shipped_dir("templates") / TEMPLATE_FILE
        raise ConfigError(
            [f"generator.templates: no {TEMPLATE_FILE} here; start from {hint}"], str(path)
        )
    data = path.read_bytes()
    try:
        raw = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise ConfigError([f"not valid YAML: {exc}"], str(path)) from None
    errors: list[str] = []
    pools = _check_pools(_flatten(raw, "", errors), errors)
    if errors:
        raise ConfigError(errors, str(path))
    return Phrasings(pools=pools, source=path.name, sha256=hashlib.sha256(data).hexdigest()[:16])


def _flatten(raw: Any, prefix: str, errors: list[str]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        errors.append(f"{prefix or 'top level'}: expected a mapping of keys")
        return {}
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        is_section = isinstance(value, dict) and path not in POOLS
        flat.update(_flatten(value, path, errors) if is_section else {path: value})
    return flat


def _check_pools(flat: dict[str, Any], errors: list[str]) -> dict[str, tuple[str, ...]]:
    for key in flat.keys() - POOLS.keys():
        close = difflib.get_close_matches(key, list(POOLS), n=1)
        errors.append(f"unknown key '{key}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
    pools = {}
    for key, allowed in POOLS.items():
        value = flat.get(key)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            errors.append(f"{key}: expected a non-empty list of phrasings")
            continue
        for text in value:
            for name in set(_PLACEHOLDER.findall(text)) - allowed:
                names = ", ".join(f"{{{n}}}" for n in sorted(allowed)) or "none"
                errors.append(f"{key}: unknown placeholder {{{name}}} in {text!r} (use: {names})")
        pools[key] = tuple(value)
    return pools


class _Say:
    """`say(key, **values)`: a phrasing drawn with this task's RNG."""

    def __init__(self, phrasings: Phrasings, rng: random.Random):
        self.phrasings = phrasings
        self.rng = rng

    def __call__(self, key: str, **values: str) -> str:
        return self.phrasings.say(key, self.rng, **values)
