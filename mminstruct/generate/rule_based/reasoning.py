"""The reasoning task: which category has more objects, which object is larger, which side,
and what an object is for and where one usually is (from the knowledge table), tied to what
the image shows. Sizes compare segment areas, with a clear margin; no ratios are stated."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence

from mminstruct.generate.rule_based.knowledge import knowledge_of
from mminstruct.generate.rule_based.phrasing import _Say
from mminstruct.generate.rule_based.scene import (
    Scene,
    clear_region,
    clearly_larger,
    one_object,
    some,
)
from mminstruct.generate.rule_based.turns import _choose, _Turn, typed_pairs
from mminstruct.geometry import center
from mminstruct.records import ImageRecord
from mminstruct.words import counted, noun, number_word

SIDE_GAP = 0.2  # left/right questions only when box centers differ by this much of the width
# "Why / what for / where" questions from the knowledge table come first more readily than
# count and size comparisons: they are what reasoning data lacks.
_WEIGHTS = {"purpose": 2.0, "place": 2.0}


def _pairs(categories: Sequence[str], rng: random.Random) -> list[tuple[str, str]]:
    """Every pair of categories once, each in a random order."""
    pairs = itertools.combinations(categories, 2)
    return [(a, b) if rng.random() < 0.5 else (b, a) for a, b in pairs]


def _more_turn(a: str, b: str, scene: Scene, say: _Say) -> _Turn:
    na, nb = scene.counts[a], scene.counts[b]
    values = {"first": noun(a).plural, "second": noun(b).plural}
    question = say("reasoning.more.question", **values)
    verdict = "answer_yes" if na > nb else "answer_fewer" if na < nb else "answer_equal"
    answer = say(
        f"reasoning.more.{verdict}", first_some=counted(na, a), second_some=counted(nb, b), **values
    )
    return _Turn("more", frozenset({f"{a}|{b}", f"{b}|{a}"}), question, answer)


def ratio_words(ratio: float) -> str:
    """A size ratio in words, rounded: "about twice", "about three times"."""
    if ratio < 1.75:
        return "about one and a half times"
    if ratio < 2.5:
        return "about twice"
    return f"about {number_word(round(ratio))} times"


def _larger_turn(a: str, b: str, scene: Scene, say: _Say) -> _Turn | None:
    a_larger = clearly_larger(scene.singles[a], scene.singles[b])
    if a_larger is None:
        return None
    larger, smaller = (a, b) if a_larger else (b, a)
    question = say("reasoning.larger.question", first=noun(a).singular, second=noun(b).singular)
    answer = say(
        "reasoning.larger.answer", larger=noun(larger).singular, smaller=noun(smaller).singular
    )
    return _Turn("larger", frozenset({f"{a}|{b}", f"{b}|{a}"}), question, answer)


def _side_turn(a: str, b: str, scene: Scene, say: _Say, rng: random.Random) -> _Turn | None:
    xa = center(scene.singles[a], scene.width, scene.height)[0]
    xb = center(scene.singles[b], scene.width, scene.height)[0]
    if abs(xa - xb) < SIDE_GAP:
        return None
    side, other = rng.choice((("left", "right"), ("right", "left")))
    values = {"first": noun(a).singular, "second": noun(b).singular, "side": side}
    question = say("reasoning.side.question", **values)
    holds = (xa < xb) == (side == "left")
    answer = say(f"reasoning.side.answer_{'yes' if holds else 'no'}", other_side=other, **values)
    return _Turn("side", frozenset({f"{a}|{b}", f"{b}|{a}"}), question, answer)


def _seen(category: str, scene: Scene) -> str:
    """What the image shows of the category, as a clause: "the kite is at the top center
    of the image", or "two kites can be seen"."""
    obj = scene.singles.get(category)
    where = clear_region(obj, scene) if obj is not None else None
    if where is not None:
        return f"the {noun(category).singular} is {where} of the image"
    shown = some(category, scene)
    if shown[:1].isdigit():  # "13 donuts" may open a sentence: never start with a digit
        return f"there are {shown}"
    return f"{shown} can be seen"


def _knowledge_turns(scene: Scene, say: _Say) -> list[_Turn]:
    """ "What is the surfboard for?" / "Where would one usually find ...?": the knowledge
    table's answer, tied to what the image shows; "what for" only of a category with one
    object, as its phrasings say "the X" and "it"."""
    turns = []
    for category in scene.counts:
        known = knowledge_of(category) if category != "person" else None
        if known is None or not known.use or category not in scene.vocabulary:
            continue
        forms = noun(category)
        values = {"object": forms.singular, "a_object": forms.a, "use": known.use}
        values |= {"place": known.place, "seen": _seen(category, scene)}
        kinds = ("purpose", "place") if one_object(category, scene) else ("place",)
        for kind in kinds:
            question = say(f"reasoning.{kind}.question", **values)
            answer = say(f"reasoning.{kind}.answer", **values)
            turns.append(_Turn(kind, frozenset({category}), question, answer))
    return turns


def _reasoning(
    record: ImageRecord, scene: Scene, say: _Say, rng: random.Random, limit: int
) -> list[tuple[str, str]]:
    candidates = [_more_turn(a, b, scene, say) for a, b in _pairs(scene.countable, rng)]
    for a, b in _pairs(list(scene.singles), rng):
        candidates += [_larger_turn(a, b, scene, say), _side_turn(a, b, scene, say, rng)]
    candidates += _knowledge_turns(scene, say)
    chosen = _choose([t for t in candidates if t is not None], limit, rng, _WEIGHTS)
    return typed_pairs(chosen)
