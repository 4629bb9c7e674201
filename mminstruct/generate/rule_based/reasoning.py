"""The reasoning task: which category has more objects, which object is larger, which side."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence

from mminstruct.generate.rule_based.phrasing import _Say
from mminstruct.generate.rule_based.scene import Scene
from mminstruct.generate.rule_based.turns import _choose, _Turn
from mminstruct.geometry import area, center
from mminstruct.records import ImageRecord
from mminstruct.words import counted, noun, number_word

LARGER_RATIO = 1.5  # size comparisons only between boxes whose areas differ this much
SIDE_GAP = 0.15  # left/right questions only when box centers differ by this much of the width


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
    area_a, area_b = area(scene.singles[a]), area(scene.singles[b])
    if min(area_a, area_b) <= 0 or max(area_a, area_b) < LARGER_RATIO * min(area_a, area_b):
        return None
    larger, smaller = (a, b) if area_a > area_b else (b, a)
    ratio = max(area_a, area_b) / min(area_a, area_b)
    question = say("reasoning.larger.question", first=noun(a).singular, second=noun(b).singular)
    answer = say(
        "reasoning.larger.answer",
        larger=noun(larger).singular,
        smaller=noun(smaller).singular,
        ratio=ratio_words(ratio),
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
    answer = say(
        f"reasoning.side.answer_{'yes' if holds else 'no'}",
        other_side=other,
        first_pos=f"{round(xa * 100)}%",
        second_pos=f"{round(xb * 100)}%",
        **values,
    )
    return _Turn("side", frozenset({f"{a}|{b}", f"{b}|{a}"}), question, answer)


def _reasoning(
    record: ImageRecord, scene: Scene, say: _Say, rng: random.Random, limit: int
) -> list[tuple[str, str]]:
    candidates = [_more_turn(a, b, scene, say) for a, b in _pairs(scene.countable, rng)]
    for a, b in _pairs(list(scene.singles), rng):
        candidates += [_larger_turn(a, b, scene, say), _side_turn(a, b, scene, say, rng)]
    chosen = _choose([t for t in candidates if t is not None], limit, rng)
    return [(t.question, t.answer) for t in chosen]
