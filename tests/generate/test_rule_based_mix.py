"""The rule-based mix as training data: balanced question types, yes/no answers, fused
descriptions, reasoning from the knowledge table, and no claims the annotations leave in doubt.

Measured on the real COCO excerpts as the converter reads them (segment areas included).
"""

from __future__ import annotations

import re
from collections import Counter

import pytest
from mminstruct.converters import READERS

from mminstruct.checks.grounding import find_mentions
from mminstruct.config import config_from_dict
from mminstruct.generate.rule_based import (
    RuleBasedGenerator,
    clean_caption,
    describe_scene,
    load_phrasings,
)
from mminstruct.generate.rule_based.knowledge import KNOWLEDGE
from mminstruct.lexicon import COCO_CATEGORIES, tokens
from mminstruct.records import ImageRecord, ObjectBox
from mminstruct.resources import shipped_dir
from mminstruct.words import NUMBER_WORDS

PHRASINGS = load_phrasings(shipped_dir("templates"))


def read(source: dict) -> list[ImageRecord]:
    config = config_from_dict({"sources": [source]}).sources[0]
    return [r for r in READERS[config.kind](config) if isinstance(r, ImageRecord)]


def generate(records: list[ImageRecord], seeds=range(2), **tasks) -> list:
    """(record, instruction) for every instruction over `seeds`, derived relations on."""
    out = []
    for seed in seeds:
        config = config_from_dict(
            {
                "sources": [{"kind": "coco", "images": ".", "instances": "i.json"}],
                "generator": {"seed": seed},
                "context": {"derive_relations": "missing"},
                "tasks": tasks,
            }
        )
        for record, result in zip(
            records, RuleBasedGenerator(config).generate(records), strict=True
        ):
            out += [(record, instruction) for instruction in result.instructions]
    return out


def question_kind(question: str, task: str) -> str:
    """The pool whose phrasing asked `question` (of `task`'s `*.question` pools); where
    several match ("What {verb} the {object}?" also matches "What is the dog for?"), the
    phrasing with the most fixed text."""
    matches = []
    for key, texts in PHRASINGS.pools.items():
        if key.startswith(task) and key.endswith("question"):
            for text in texts:
                parts = re.split(r"\{\w+\}", text)
                if re.fullmatch(".+?".join(map(re.escape, parts)), question.strip()):
                    matches.append((len("".join(parts)), key.removesuffix(".question")))
    assert matches, f"no {task} question pool asks {question!r}"
    return max(matches)[1]


@pytest.fixture
def coco(tiny_coco, coco_mini) -> list[ImageRecord]:
    return read(tiny_coco) + read(coco_mini)


# --------------------------------------------------------------------------- conversation


def test_conversation_question_types_and_yes_no_answers_are_balanced(coco):
    kinds, verdicts = Counter(), Counter()
    for _, instruction in generate(coco, range(3), reasoning={"enabled": False}):
        for question, answer in instruction.turns if instruction.task == "conversation" else ():
            kinds[question_kind(question, "conversation")] += 1
            verdicts[answer.split()[0].strip(",.:").lower()] += 1
    turns = sum(kinds.values())
    polar = verdicts["yes"] + verdicts["no"]
    assert turns > 500
    assert max(kinds.values()) / turns <= 0.20, kinds.most_common(3)
    assert polar / turns <= 0.25, (polar, turns)
    assert 0.40 <= verdicts["yes"] / polar <= 0.60, verdicts
    assert len(kinds) >= 10, kinds  # count, where, purpose, relations, checks, ...


def test_derived_relations_are_asked_about(coco):
    """COCO has no annotated relations: the ones derived from boxes now make turns."""
    relation_turns = turns = 0
    for _, instruction in generate(coco, range(2)):
        if instruction.task == "conversation":
            for question, _ in instruction.turns:
                turns += 1
                relation_turns += question_kind(question, "conversation").startswith(
                    ("conversation.relation", "conversation.count_check")
                ) and "relation" in question_kind(question, "conversation")
    assert relation_turns / turns >= 0.05, (relation_turns, turns)


# --------------------------------------------------------------------------- detail


def test_detail_fuses_captions_without_repeating_a_fact(coco_mini):
    records = read(coco_mini)
    words = []
    counts_said = re.compile(rf"\b({'|'.join(NUMBER_WORDS[2:])}) ([a-z]+)")
    for record, instruction in generate(records, range(2)):
        if instruction.task != "detail":
            continue
        (_, answer) = instruction.turns[0]
        words.append(len(answer.split()))
        sentences = [s.strip().lower() for s in re.split(r"(?<=[.!?])\s+", answer)]
        assert len(sentences) == len(set(sentences)), answer
        nouns = [noun for _, noun in counts_said.findall(answer.lower())]
        assert len(nouns) == len(set(nouns)), f"a count said twice: {answer!r}"
        assert "here is what the image shows" not in answer.lower()
        assert any(answer.startswith(clean_caption(c)) for c in record.captions), answer
    assert sum(words) / len(words) >= 60, sum(words) / len(words)


# --------------------------------------------------------------------------- reasoning


def test_knowledge_table_covers_coco_and_names_no_other_object():
    assert set(KNOWLEDGE) == set(COCO_CATEGORIES) and len(KNOWLEDGE) == 80
    for category, entry in KNOWLEDGE.items():
        for text in (entry.use, entry.place):
            named = {c for m in find_mentions(tokens(text)) for c in m.term.categories}
            assert named <= {category}, (category, text, named)


def test_reasoning_answers_from_knowledge_without_ratios(coco):
    kinds = Counter()
    for _, instruction in generate(coco, range(2), reasoning={"questions": 3}):
        if instruction.task != "reasoning":
            continue
        for question, answer in instruction.turns:
            kind = question_kind(question, "reasoning")
            kinds[kind] += 1
            assert "times as much" not in answer and "%" not in answer, answer
            if kind in ("reasoning.purpose", "reasoning.place"):
                assert any(e.use in answer and e.place in answer for e in KNOWLEDGE.values())
    assert kinds["reasoning.purpose"] and kinds["reasoning.place"], kinds


# --------------------------------------------------------------------------- noisy annotations


def _record(objects, captions=()) -> ImageRecord:
    return ImageRecord(
        "t",
        1,
        "1.jpg",
        None,
        600,
        300,
        tuple(captions),
        tuple(objects),
        ("bottle", "cup", "potted plant", "person"),
    )


def test_prominence_is_judged_by_segment_area():
    """A bottle whose box spans a wall but whose outline is thin is not "most prominent"."""
    bottle = ObjectBox("bottle", 0, 0, 400, 290, segment_area=4000.0)
    cup = ObjectBox("cup", 450, 100, 120, 150, segment_area=15000.0)
    answers = " ".join(
        a for _, i in generate([_record([bottle, cup])], range(10)) for _, a in i.turns
    )
    assert "a bottle takes up the most space" not in answers.lower()
    assert not re.search(r"(bottle|cup)[^.]*(most prominent|largest|most space)", answers.lower())
    whole = ObjectBox("bottle", 0, 0, 400, 290, segment_area=100000.0)
    answers = " ".join(
        a for _, i in generate([_record([whole, cup])], range(10)) for _, a in i.turns
    )
    assert re.search(
        r"bottle[^.]*(most prominent|largest|most space)|(largest|prominent)[^.]*bottle",
        answers.lower(),
    )


def test_a_caption_that_disagrees_with_the_box_silences_the_position():
    """The caption says the plant is on the left; its box is in the center: say neither."""
    plant = ObjectBox("potted plant", 270, 120, 60, 60)
    cup = ObjectBox("cup", 40, 230, 40, 40)
    disagreeing = _record([plant, cup], ["A potted plant on the left side of a shelf."])
    said = " ".join(a for _, i in generate([disagreeing], range(15)) for _, a in i.turns)
    assert not re.search(r"plant (is|appears|sits)[^.]*(center|left)", said), said
    assert "the cup" in said.lower() and "lower left" in said  # the cup's place is still said
    scene = describe_scene(disagreeing)
    assert scene.said_sides == {"potted plant": frozenset({"left"})}


def test_coco_segment_areas_are_the_annotations_own(coco_mini):
    """The converter keeps each annotation's `area` (what pycocotools computes from the
    segment), which the generator compares instead of box areas."""
    from pycocotools.coco import COCO

    coco = COCO(coco_mini["instances"])
    record = read(coco_mini)[0]
    areas = sorted(a["area"] for a in coco.imgToAnns[record.image_id])
    assert sorted(o.segment_area for o in record.objects) == pytest.approx(areas)
    assert all(0 < o.segment_area <= o.w * o.h + 1 for o in record.objects)
