"""The multiple-choice task (LLaVA-1.5's A-OKVQA format): options lettered A, B, C...,
answered with the letter alone.

Question types: `region` (which category a one-of-a-kind object's box holds), `present`
(which of these is in the image; the others certainly are not), `count`. Distractors of a
category come from its COCO supercategory (`lexicon.COCO_SUPERCATEGORIES`) and are never
in the image. The right letter turns round the options from a seeded start, so over many
images every letter is right equally often.
"""

from __future__ import annotations

import random
from functools import cache

from mminstruct.generate.rule_based.phrasing import _Say
from mminstruct.generate.rule_based.referring import llava_box, referents
from mminstruct.generate.rule_based.scene import Scene, absent_categories
from mminstruct.generate.rule_based.turns import Asked, _choose, _Turn
from mminstruct.lexicon import COCO_SUPERCATEGORIES, FORMAT_PROMPTS, PAIRED, UNCOUNTABLE
from mminstruct.records import ImageRecord
from mminstruct.words import noun

SUFFIX = FORMAT_PROMPTS["choice"]
LETTERS = "ABCDEF"
MAX_COUNT = 10  # count questions only up to this many objects


@cache
def _members(supercategory: str) -> tuple[str, ...]:
    return tuple(c for c, s in COCO_SUPERCATEGORIES.items() if s == supercategory)


def distractors(category: str, record: ImageRecord, rng: random.Random) -> list[str]:
    """Categories of `category`'s supercategory that the image does not hold, shuffled."""
    present = {o.category for o in record.objects}
    supercategory = COCO_SUPERCATEGORIES.get(category)
    pool = [c for c in _members(supercategory) if c not in present] if supercategory else []
    rng.shuffle(pool)
    return pool


def _region_turns(
    record: ImageRecord, scene: Scene, rng: random.Random, square: bool
) -> list[_Turn]:
    turns = []
    for referent in referents(record, scene.relations):
        category = referent.category
        if category is None or category not in COCO_SUPERCATEGORIES or referent.how != "category":
            continue
        box = llava_box(referent.box, record.width, record.height, square)
        question = f"What is the object in the region {box}?"
        wrong = [noun(c).singular for c in distractors(category, record, rng)]
        turns.append(_Turn("region", frozenset({category}), question, noun(category).singular))
        turns[-1] = _with_wrong(turns[-1], wrong)
    return turns


def _present_turns(record: ImageRecord, scene: Scene, rng: random.Random) -> list[_Turn]:
    absent = set(absent_categories(record))
    turns = []
    for category in scene.counts:
        if category not in COCO_SUPERCATEGORIES:
            continue
        wrong = [noun(c).singular for c in distractors(category, record, rng) if c in absent]
        question = "Which of these objects can be seen in the image?"
        turn = _Turn("present", frozenset({category}), question, noun(category).singular)
        turns.append(_with_wrong(turn, wrong))
    return turns


def _count_turns(scene: Scene, rng: random.Random) -> list[_Turn]:
    turns = []
    for category in scene.countable:
        n = scene.counts[category]
        if category in UNCOUNTABLE or category in PAIRED or n > MAX_COUNT:
            continue
        wrong = [str(k) for k in range(max(1, n - 3), n + 4) if k != n]
        rng.shuffle(wrong)
        question = f"How many {noun(category).plural} are in the image?"
        turns.append(_with_wrong(_Turn("count", frozenset({category}), question, str(n)), wrong))
    return turns


def _with_wrong(turn: _Turn, wrong: list[str]) -> _Turn:
    """The turn with its options packed into `answer` ("right|wrong|wrong"; no category name
    holds a "|") until `_choice` letters them."""
    return _Turn(turn.kind, turn.subjects, turn.question, "|".join([turn.answer, *wrong]))


def lettered(question: str, right: str, wrong: list[str], slot: int) -> tuple[str, str]:
    """The question with its options, the right one at `slot`; the answer is its letter."""
    options = [*wrong[:slot], right, *wrong[slot:]]
    lines = [f"{LETTERS[i]}. {option}" for i, option in enumerate(options)]
    return "\n".join([question, *lines, SUFFIX]), LETTERS[slot]


def _choice(
    record: ImageRecord,
    scene: Scene,
    say: _Say,
    rng: random.Random,
    limit: int,
    options: int = 4,
    square: bool = True,
) -> list[tuple[str, str]]:
    if record.width <= 0 or record.height <= 0:
        return []
    candidates = _region_turns(record, scene, rng, square) + _present_turns(record, scene, rng)
    candidates += _count_turns(scene, rng)
    usable = [t for t in candidates if len(t.answer.split("|")) >= options]
    start = rng.randrange(options)
    turns = []
    for n, turn in enumerate(_choose(usable, limit, rng)):
        right, *wrong = turn.answer.split("|")
        question, letter = lettered(
            turn.question, right, wrong[: options - 1], (start + n) % options
        )
        turns.append(Asked(question, letter, turn.kind))
    return turns
