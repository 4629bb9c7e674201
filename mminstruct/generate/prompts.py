"""Prompts for the model backends: task templates in, chat messages out.

Each task has a YAML file in the templates folder (`conversation.yaml`, `detail.yaml`,
`reasoning.yaml`) with a system message, few-shot examples and a query around the image's
context. `build_messages` turns one template and one context into the messages a backend
sends. The detail task's requests come from `rule_based.yaml`, shared with the rule-based
generator, so both backends ask for descriptions in the same words.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mminstruct.errors import ConfigError
from mminstruct.generate.backends import Message
from mminstruct.generate.rule_based import TEMPLATE_FILE, load_phrasings
from mminstruct.resources import shipped_dir

TASKS = ("conversation", "detail", "reasoning")  # one template file per task: <task>.yaml
KEYS = ("system", "examples", "query")  # the keys every template file holds
EXAMPLE_KEYS = ("context", "answer")  # the keys of one few-shot example
PLACEHOLDER = "{context}"  # where the image's context goes in the query

# The only placeholder a query may hold; everything else in a template stays literal.
_CONTEXT = re.compile(re.escape(PLACEHOLDER))


@dataclass(frozen=True)
class TaskTemplate:
    """The prompt of one task, as read from its template file."""

    task: str  # "conversation", "detail" or "reasoning"
    system: str  # the system message
    examples: tuple[tuple[str, str], ...]  # few-shot (context, ideal completion) pairs
    query: str  # the user message, with a `{context}` placeholder
    file: str  # file name, recorded with every instruction
    sha256: str  # first 16 hex digits of the file's sha256


def load_task_templates(folder: Path | None = None) -> dict[str, TaskTemplate]:
    """The templates of every task from `folder` (None: the shipped ones).

    Every problem in every file is reported at once, as a ConfigError naming file and key.
    """
    folder = Path(folder) if folder is not None else shipped_dir("templates")
    errors: list[str] = []
    templates = {}
    for task in TASKS:
        template = _load_template(folder, task, errors)
        if template is not None:
            templates[task] = template
    if errors:
        raise ConfigError(errors, str(folder))
    return templates


def load_template(name: str, folder: Path | None = None) -> TaskTemplate:
    """One template file, `<name>.yaml`, from `folder` when it has it, else the shipped one
    (e.g. `preference`, the prompt that rewrites a rejected answer)."""
    shipped = shipped_dir("templates")
    folder = Path(folder) if folder is not None else shipped
    if not (folder / f"{name}.yaml").is_file():
        folder = shipped
    errors: list[str] = []
    template = _load_template(folder, name, errors)
    if template is None:
        raise ConfigError(errors, str(folder))
    return template


def build_messages(template: TaskTemplate, context: str) -> tuple[Message, ...]:
    """System message, one user/assistant pair per example, then the query for `context`."""
    messages = [{"role": "system", "content": template.system}]
    for example_context, answer in template.examples:
        messages.append({"role": "user", "content": render_query(template.query, example_context)})
        messages.append({"role": "assistant", "content": answer})
    messages.append({"role": "user", "content": render_query(template.query, context)})
    return tuple(messages)


def render_query(query: str, context: str) -> str:
    """The query with `{context}` replaced; nothing else in either text is interpreted."""
    return _CONTEXT.sub(lambda _: context, query)


def detail_questions(folder: Path | None = None) -> tuple[str, ...]:
    """The requests for a detailed description: `detail.question` of `rule_based.yaml`.

    Read from `folder` when it has a `rule_based.yaml`, else from the shipped one.
    """
    shipped = shipped_dir("templates")
    folder = Path(folder) if folder is not None else shipped
    if not (folder / TEMPLATE_FILE).is_file():
        folder = shipped
    return load_phrasings(folder).pools["detail.question"]


# --------------------------------------------------------------------------- checking


def _load_template(folder: Path, task: str, errors: list[str]) -> TaskTemplate | None:
    name = f"{task}.yaml"
    raw, data = _read_yaml(folder / name, errors)
    if raw is None:
        return None
    found: list[str] = []
    _check_unknown(raw, KEYS, name, found)
    system = _text(raw, "system", f"{name}: system", found)
    examples = _examples(raw.get("examples"), name, found)
    query = _text(raw, "query", f"{name}: query", found)
    if query and PLACEHOLDER not in query:
        found.append(f"{name}: query: must contain {PLACEHOLDER}, where the context goes")
    errors.extend(found)
    if found:
        return None
    sha = hashlib.sha256(data).hexdigest()[:16]
    return TaskTemplate(task, system, examples, query, file=name, sha256=sha)


def _read_yaml(path: Path, errors: list[str]) -> tuple[dict[str, Any] | None, bytes]:
    if not path.is_file():
        shipped = shipped_dir("templates") / path.name
        errors.append(
            f"{path.name}: missing; every templates folder needs it (start from {shipped})"
        )
        return None, b""
    data = path.read_bytes()
    try:
        raw = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        errors.append(f"{path.name}: not valid YAML: {exc}")
        return None, data
    if not isinstance(raw, dict):
        errors.append(f"{path.name}: expected a mapping with keys {', '.join(KEYS)}")
        return None, data
    return raw, data


def _check_unknown(
    raw: dict[str, Any], known: tuple[str, ...], where: str, found: list[str]
) -> None:
    for key in raw:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            found.append(f"{where}: unknown key '{key}'{hint}")


def _text(raw: dict[str, Any], key: str, where: str, found: list[str]) -> str:
    value = raw.get(key)
    if key not in raw:
        found.append(f"{where}: missing")
        return ""
    if not isinstance(value, str) or not value.strip():
        found.append(f"{where}: must be a non-empty string")
        return ""
    return value.strip()


def _examples(value: Any, name: str, found: list[str]) -> tuple[tuple[str, str], ...]:
    where = f"{name}: examples"
    if value is None:
        found.append(f"{where}: missing; give at least one {{context, answer}} example")
        return ()
    if not isinstance(value, list) or not value:
        found.append(f"{where}: must be a list of at least one {{context, answer}} example")
        return ()
    examples = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            found.append(f"{where}.{i}: must be a mapping with keys context, answer")
            continue
        _check_unknown(item, EXAMPLE_KEYS, f"{where}.{i}", found)
        context = _text(item, "context", f"{where}.{i}.context", found)
        answer = _text(item, "answer", f"{where}.{i}.answer", found)
        examples.append((context, answer))
    return tuple(examples)
