"""Regression tests for reviewed defects in the rule-based generator, on the real COCO
excerpts as the converter reads them (segment areas included)."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from mminstruct.converters import READERS

from mminstruct.config import config_from_dict
from mminstruct.generate.rule_based import MAX_INVENTORY, RuleBasedGenerator, load_phrasings
from mminstruct.generate.rule_based.captions import named
from mminstruct.generate.rule_based.knowledge import KNOWLEDGE
from mminstruct.records import ImageRecord, ObjectBox
from mminstruct.resources import shipped_dir
from mminstruct.words import noun


def read(source: dict) -> list[ImageRecord]:
    config = config_from_dict({"sources": [source]}).sources[0]
    return [r for r in READERS[config.kind](config) if isinstance(r, ImageRecord)]


def generate(records: list[ImageRecord], seeds=range(3), names=("short_vqa", "compositional")):
    """(record, instruction) for every instruction over `seeds`, the `names` families on."""
    out = []
    families = {name: {"enabled": True} for name in names}
    for seed in seeds:
        config = config_from_dict(
            {
                "sources": [{"kind": "coco", "images": ".", "instances": "i.json"}],
                "generator": {"seed": seed},
                "tasks": families,
            }
        )
        results = RuleBasedGenerator(config).generate(records)
        for record, result in zip(records, results, strict=True):
            out += [(record, instruction) for instruction in result.instructions]
    return out


@pytest.fixture
def coco(tiny_coco, coco_mini) -> list[ImageRecord]:
    return read(tiny_coco) + read(coco_mini)


def _segment(record: ImageRecord, name: str) -> float:
    (obj,) = [o for o in record.objects if noun(o.category).singular == name]
    return obj.segment_area


WHICH = re.compile(r"Which takes up more of the picture, the (.+?) or the (.+?)\?")
LARGER = re.compile(r"Is the (.+?) larger than the (.+?)\?")


def test_size_answers_agree_with_segment_areas(coco):
    checked = 0
    for record, instruction in generate(coco):
        if instruction.task not in ("short_vqa", "compositional"):
            continue  # reasoning's size turns are checked by its own tests
        for question, answer in instruction.turns:
            if which := WHICH.match(question):
                big = answer.strip().rstrip(".").removeprefix("the ").removeprefix("The ")
                small = which[2] if big == which[1] else which[1]
                assert big in which.groups(), (question, answer)
                assert _segment(record, big) > _segment(record, small), (record.image_id, question)
                checked += 1
            elif larger := LARGER.match(question):
                holds = _segment(record, larger[1]) > _segment(record, larger[2])
                assert answer.startswith("Yes" if holds else "No"), (record.image_id, question)
                checked += 1
    assert checked > 20, checked


def detail_records(records: list[ImageRecord]) -> list[tuple[ImageRecord, str]]:
    config = config_from_dict(
        {
            "sources": [{"kind": "coco", "images": ".", "instances": "i.json"}],
            "tasks": {"detail": {"enabled": True}},
        }
    )
    out = []
    for record, result in zip(records, RuleBasedGenerator(config).generate(records), strict=True):
        out += [(record, i.turns[0][1]) for i in result.instructions if i.task == "detail"]
    return out


def sample_source() -> dict:
    sample = shipped_dir("sample")
    return {
        "kind": "coco",
        "name": "sample",
        "images": str(sample / "images"),
        "instances": str(sample / "instances.json"),
        "captions": str(sample / "captions.json"),
    }


def test_detail_names_every_boxed_category_unless_the_list_is_capped(coco_mini):
    described = detail_records(read(sample_source()) + read(coco_mini))
    assert len(described) > 50
    for record, text in described:
        categories = {o.category for o in record.objects}
        told = {c for c in categories if named(c, [text])}
        if "other objects" in text:  # the cap: MAX_INVENTORY listed, the rest summed up
            assert len(told) >= MAX_INVENTORY, (record.image_id, text)
        else:
            assert told == categories, (record.image_id, categories - told, text)


def test_inventory_verb_agrees_with_the_first_object(tiny_coco, coco_mini):
    described = detail_records(read(sample_source()) + read(tiny_coco) + read(coco_mini))
    singular = re.compile(r"\b(?:are also|are) an? (?!few\b|couple\b|number\b)")
    plural = re.compile(r"\bis (?:also )?(?:two|three|four|five|six|seven|eight|nine|\d+)\b")
    agreeing = 0
    for record, text in described:
        assert not singular.search(text), (record.image_id, text)
        assert not plural.search(text), (record.image_id, text)
        agreeing += bool(re.search(r"\bthere (?:is|are) also |\bIn view (?:is|are) ", text))
    assert agreeing > 0


LOCATIVE = ("in", "on", "at", "near", "by", "under", "inside", "along", "beside", "around", "over")


def test_every_place_is_a_locative_phrase():
    """Each place reads after "is usually found ": it opens with a preposition."""
    for category, entry in KNOWLEDGE.items():
        first = entry.place.split()[0]
        assert first in LOCATIVE, (category, f"is usually found {entry.place}")
        assert not re.search(r"\b(?:worn|carried|grazing|used)\b", entry.place), category


def _question_patterns() -> list[re.Pattern[str]]:
    """The knowledge questions' phrasings as patterns naming the object asked about."""
    phrasings = load_phrasings(shipped_dir("templates"))
    keys = ("conversation.purpose", "conversation.purpose_many", "reasoning.purpose")
    patterns = []
    for text in (t for k in keys for t in phrasings.pools[f"{k}.question"]):
        parts = re.split(r"(\{\w+\})", text)
        slots = {"{object}": "(?P<object>.+?)", "{a_object}": "an? (?P<object>.+?)"}
        slots["{objects}"] = "(?P<object>.+?)"
        patterns.append(re.compile("".join(slots.get(p, re.escape(p)) for p in parts)))
    return sorted(patterns, key=lambda p: -len(p.pattern))  # the most literal text first


def check_number(record: ImageRecord, name: str, question: str) -> None:
    """ "the dog" only of a single dog, "the dogs" only of several."""
    counts = Counter(o.category for o in record.objects)
    singular = [c for c in counts if noun(c).singular == name]
    plural = [c for c in counts if noun(c).plural == name]
    assert singular or plural, (record.image_id, question)
    if singular and not plural:
        assert counts[singular[0]] == 1, (record.image_id, question)
    elif plural and not singular:
        assert counts[plural[0]] > 1, (record.image_id, question)


def test_knowledge_questions_ask_only_of_a_single_object(coco):
    patterns, asked = _question_patterns(), 0
    tasks = {"reasoning": {"enabled": True}, "conversation": {"enabled": True}}
    for seed in range(3):
        config = config_from_dict(
            {
                "sources": [{"kind": "coco", "images": ".", "instances": "i.json"}],
                "generator": {"seed": seed},
                "tasks": tasks,
            }
        )
        results = RuleBasedGenerator(config).generate(coco)
        for record, result in zip(coco, results, strict=True):
            for instruction in result.instructions:
                for question, answer in instruction.turns:
                    if instruction.task == "reasoning":
                        for sentence in re.split(r"(?<=[.!?;:])\s+", answer):
                            assert not sentence[:1].isdigit(), (record.image_id, answer)
                    match = next((m for p in patterns if (m := p.fullmatch(question))), None)
                    if match:
                        asked += 1
                        check_number(record, match["object"], question)
    assert asked > 30, asked


def test_a_knowledge_answer_about_many_objects_never_opens_with_a_digit():
    donuts = tuple(ObjectBox("donut", 40 * i, 20, 30, 30) for i in range(13))
    rec = ImageRecord(
        dataset="test",
        image_id=1,
        file_name="1.jpg",
        images_dir=None,
        width=600,
        height=300,
        captions=(),
        objects=donuts,
        vocabulary=("donut", "dog"),
    )
    made = generate([rec], range(8), ("reasoning", "conversation"))
    answers = [a for _, i in made if i.task != "detail" for _, a in i.turns]
    assert any("13 donuts" in a for a in answers), answers
    for answer in answers:
        for sentence in re.split(r"(?<=[.!?;:])\s+", answer):
            assert not sentence[:1].isdigit(), answer
