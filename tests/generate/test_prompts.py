"""Task templates and chat messages: every shipped template loads, renders and agrees with
the parser; user folders override them; bad folders report every problem at once."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pytest
import yaml

from mminstruct.errors import ConfigError
from mminstruct.generate.parse import parse_completion
from mminstruct.generate.prompts import (
    TASKS,
    TaskTemplate,
    build_messages,
    detail_questions,
    load_task_templates,
)
from mminstruct.generate.rule_based import load_phrasings
from mminstruct.resources import shipped_dir

SHIPPED = shipped_dir("templates")
EXAMPLES = [
    (task, i, example)
    for task, template in load_task_templates().items()
    for i, example in enumerate(template.examples)
]
# One object line of the context, as `mminstruct.context.render` writes it.
BOX_LINE = re.compile(r"^([^:\n]+): \[([0-9.]+), ([0-9.]+), ([0-9.]+), ([0-9.]+)\]$")


def copy_shipped(folder: Path) -> Path:
    """A user templates folder that starts as a copy of the shipped one."""
    for task in TASKS:
        shutil.copy(SHIPPED / f"{task}.yaml", folder / f"{task}.yaml")
    return folder


def test_every_shipped_template_loads():
    templates = load_task_templates()
    assert list(templates) == list(TASKS)
    for task, template in templates.items():
        data = (SHIPPED / f"{task}.yaml").read_bytes()
        assert data.startswith(b"#"), "each template starts with a comment"
        assert template.task == task
        assert template.file == f"{task}.yaml"
        assert template.sha256 == hashlib.sha256(data).hexdigest()[:16]
        assert len(template.examples) >= 2
        assert "{context}" in template.query


@pytest.mark.parametrize("task", ["conversation", "reasoning"])
def test_system_message_states_the_block_format(task: str):
    system = load_task_templates()[task].system
    assert '"Question:"' in system and '"Answer:"' in system and '"==="' in system


def test_detail_system_message_asks_for_the_description_only():
    system = load_task_templates()["detail"].system
    assert "Question:" not in system and "===" not in system
    assert "only the description" in system


@pytest.mark.parametrize(("task", "index", "example"), EXAMPLES)
def test_shipped_example_answers_parse_cleanly(task: str, index: int, example: tuple[str, str]):
    _, answer = example
    parsed = parse_completion(task, answer)
    assert parsed.reason is None, f"{task}.yaml examples.{index}: {parsed.detail}"
    if task == "detail":
        assert parsed.turns == (("", answer),)
    elif task == "conversation":
        assert len(parsed.turns) >= 3
        assert any(a.startswith("No") for _, a in parsed.turns), "a confident no"
    else:
        assert all(len(a.split()) >= 40 for _, a in parsed.turns), "answers that reason"


@pytest.mark.parametrize(("task", "index", "example"), EXAMPLES)
def test_shipped_example_contexts_follow_the_context_format(
    task: str, index: int, example: tuple[str, str]
):
    captions, _, boxes = example[0].partition("\n\n")
    boxes, _, relations = boxes.partition("\n\n")
    assert captions and all(line.strip() == line and line for line in captions.split("\n"))
    if task == "conversation":
        assert not boxes, "the conversation context holds captions only"
        return
    assert boxes, f"{task} contexts hold boxes"
    for line in boxes.split("\n"):
        match = BOX_LINE.match(line)
        assert match, line
        x1, y1, x2, y2 = (float(v) for v in match.groups()[1:])
        assert 0 <= x1 <= x2 <= 1 and 0 <= y1 <= y2 <= 1, line
        for text in match.groups()[1:]:
            assert repr(round(float(text) * 1000) / 1000) == text, f"not 3-decimal form: {line}"
    names = [BOX_LINE.match(line).group(1) for line in boxes.split("\n")]
    for line in filter(None, relations.split("\n")):  # `subject predicate object`, by box name
        assert any(
            line.startswith(f"{a} ") and line.endswith(f" {b}") for a in names for b in names
        ), line


def test_messages_alternate_system_user_assistant_then_user():
    for template in load_task_templates().values():
        messages = build_messages(template, "A cat on a sofa.\n\ncat: [0.1, 0.2, 0.6, 0.9]")
        roles = [m["role"] for m in messages]
        assert roles == ["system", *["user", "assistant"] * len(template.examples), "user"]
        assert messages[0]["content"] == template.system
        for i, (context, answer) in enumerate(template.examples):
            assert context in messages[1 + 2 * i]["content"]
            assert messages[2 + 2 * i]["content"] == answer
        assert "cat: [0.1, 0.2, 0.6, 0.9]" in messages[-1]["content"]
        assert all("{context}" not in m["content"] for m in messages)


def test_braces_in_contexts_and_queries_are_left_alone():
    template = TaskTemplate(
        task="conversation",
        system="Answer in {json}.",
        examples=(("a {0} b {{c}}", "Question: x?\nAnswer: y."),),
        query="See {image} and {context} then {{done}} {0}",
        file="conversation.yaml",
        sha256="0" * 16,
    )
    context = r"A sign reads {name} \1 \g<0> {context} {}"
    messages = build_messages(template, context)
    assert messages[0]["content"] == "Answer in {json}."
    assert messages[1]["content"] == "See {image} and a {0} b {{c}} then {{done}} {0}"
    assert messages[-1]["content"] == f"See {{image}} and {context} then {{{{done}}}} {{0}}"


def test_user_folder_overrides_the_shipped_templates(tmp_path: Path):
    folder = copy_shipped(tmp_path)
    path = folder / "reasoning.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw["system"] = "Our own reasoning prompt."
    raw["examples"] = raw["examples"][:1]
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    templates = load_task_templates(folder)
    shipped = load_task_templates()
    assert templates["reasoning"].system == "Our own reasoning prompt."
    assert len(templates["reasoning"].examples) == 1
    assert templates["reasoning"].sha256 != shipped["reasoning"].sha256
    assert templates["conversation"] == shipped["conversation"]


def test_bad_folder_reports_every_problem_at_once(tmp_path: Path):
    folder = copy_shipped(tmp_path)
    (folder / "conversation.yaml").write_text(
        "examples: []\nquery: 'Look at the photo.'\n", encoding="utf-8"
    )
    (folder / "detail.yaml").write_text(
        "sytem: hi\nsystem: '  '\nexamples:\n  - context: a\n    answr: b\nquery: '{context}'\n",
        encoding="utf-8",
    )
    (folder / "reasoning.yaml").unlink()
    with pytest.raises(ConfigError) as caught:
        load_task_templates(folder)
    assert sorted(caught.value.problems) == sorted(
        [
            "conversation.yaml: system: missing",
            "conversation.yaml: examples: must be a list of at least one {context, answer} example",
            "conversation.yaml: query: must contain {context}, where the context goes",
            "detail.yaml: unknown key 'sytem' (did you mean 'system'?)",
            "detail.yaml: system: must be a non-empty string",
            "detail.yaml: examples.0: unknown key 'answr' (did you mean 'answer'?)",
            "detail.yaml: examples.0.answer: missing",
            f"reasoning.yaml: missing; every templates folder needs it (start from {SHIPPED / 'reasoning.yaml'})",
        ]
    )
    assert str(folder) in str(caught.value)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("system: [unclosed", "conversation.yaml: not valid YAML"),
        ("- just\n- a list\n", "conversation.yaml: expected a mapping"),
    ],
)
def test_unreadable_template_is_reported(tmp_path: Path, text: str, problem: str):
    folder = copy_shipped(tmp_path)
    (folder / "conversation.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_task_templates(folder)
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(problem)


def test_detail_questions_come_from_rule_based_yaml():
    questions = detail_questions()
    assert len(questions) >= 15
    assert questions == load_phrasings(SHIPPED).pools["detail.question"]
    assert detail_questions(SHIPPED) == questions


def test_detail_questions_follow_the_user_folder(tmp_path: Path):
    assert detail_questions(tmp_path) == detail_questions(), "no rule_based.yaml: shipped"
    raw = yaml.safe_load((SHIPPED / "rule_based.yaml").read_text(encoding="utf-8"))
    raw["detail"]["question"] = ["Describe it.", "Tell me all about this picture."]
    (tmp_path / "rule_based.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    assert detail_questions(tmp_path) == ("Describe it.", "Tell me all about this picture.")
