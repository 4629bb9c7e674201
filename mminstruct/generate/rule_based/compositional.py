"""Compositional questions from the scene graph, in GQA's manner, with short answers.

Question types: `verify` ("Is there a dog?"), `choose` ("Is the cup to the left or to the
right of the laptop?", "Which is in the image, the cat or the dog?"), `relate` (an annotated relation: "What
is the man riding?"), `logical` ("Are there both ...?", "Is there either ...?") and
`compare` ("Are there more cups than bowls?", "Is the bus larger than the car?"). A "no"
about presence is only said of a category that is certainly absent (`absent_categories`).
Yes/no answers alternate from a seeded start, so "yes" is about half of them.
"""

from __future__ import annotations

import itertools
import random

from mminstruct.generate.rule_based.phrasing import _Say
from mminstruct.generate.rule_based.scene import Scene, absent_categories, clearly_larger
from mminstruct.generate.rule_based.short_vqa import _relation_turns, with_suffix
from mminstruct.generate.rule_based.turns import _Turn, typed_pairs
from mminstruct.records import ImageRecord
from mminstruct.words import noun

YES_NO = ("verify", "logical", "compare")  # the question types answered "Yes" or "No"
MAX_ABSENT = 6  # absent categories drawn per image for "no" questions


def _a(category: str) -> str:
    return noun(category).a


def _yes_no(kind: str, subjects: set[str], question: str, holds: bool) -> _Turn:
    return _Turn(kind, frozenset(subjects), question, "Yes" if holds else "No")


def _verify(present: list[str], absent: list[str]) -> list[_Turn]:
    turns = [_yes_no("verify", {c}, f"Is there {_a(c)} in the image?", True) for c in present]
    return turns + [
        _yes_no("verify", {c}, f"Is there {_a(c)} in the image?", False) for c in absent
    ]


def _logical(present: list[str], absent: list[str], rng: random.Random) -> list[_Turn]:
    turns = []
    for x, y in itertools.combinations(present, 2):
        turns.append(_yes_no("logical", {x, y}, f"Are there both {_a(x)} and {_a(y)}?", True))
    for x, y in itertools.product(present, absent):
        x, y = (x, y) if rng.random() < 0.5 else (y, x)
        turns.append(_yes_no("logical", {x, y}, f"Are there both {_a(x)} and {_a(y)}?", False))
        turns.append(_yes_no("logical", {x, y}, f"Is there either {_a(x)} or {_a(y)}?", True))
    for x, y in itertools.combinations(absent, 2):
        turns.append(_yes_no("logical", {x, y}, f"Is there either {_a(x)} or {_a(y)}?", False))
    return turns


def _compare(scene: Scene) -> list[_Turn]:
    turns = []
    for x, y in itertools.permutations(scene.countable, 2):
        nx, ny = scene.counts[x], scene.counts[y]
        if nx != ny:
            q = f"Are there more {noun(x).plural} than {noun(y).plural}?"
            turns.append(_yes_no("compare", {x, y}, q, nx > ny))
    for (x, bx), (y, by) in itertools.permutations(scene.singles.items(), 2):
        x_larger = clearly_larger(bx, by)
        if x_larger is not None:
            q = f"Is the {noun(x).singular} larger than the {noun(y).singular}?"
            turns.append(_yes_no("compare", {x, y}, q, x_larger))
    return turns


def _choose_turns(
    scene: Scene, present: list[str], absent: list[str], rng: random.Random
) -> list[_Turn]:
    turns = []
    for (x, bx), (y, by) in itertools.permutations(scene.singles.items(), 2):
        if bx.x + bx.w <= by.x:  # x's box ends before y's begins: clearly to its left
            q = f"Is the {noun(x).singular} to the left or to the right of the {noun(y).singular}?"
            turns.append(_Turn("choose", frozenset({x, y}), q, "left"))
            q = f"Is the {noun(y).singular} to the left or to the right of the {noun(x).singular}?"
            turns.append(_Turn("choose", frozenset({x, y}), q, "right"))
    for x, y in itertools.product(present, absent):
        first, second = (x, y) if rng.random() < 0.5 else (y, x)
        q = f"Which is in the image, the {noun(first).singular} or the {noun(second).singular}?"
        turns.append(_Turn("choose", frozenset({x, y}), q, noun(x).singular))
    return turns


def _pick(candidates: list[_Turn], limit: int, rng: random.Random) -> list[_Turn]:
    """Up to `limit` turns, question types in turn; yes/no answers alternate (seeded start),
    and a type with no fresh turn of the wanted answer waits for the next round."""
    by_kind: dict[str, list[_Turn]] = {}
    for turn in candidates:
        by_kind.setdefault(turn.kind, []).append(turn)
    kinds = sorted(by_kind)
    rng.shuffle(kinds)
    for kind in kinds:
        rng.shuffle(by_kind[kind])
    want, chosen, used = rng.choice(("Yes", "No")), [], set()
    progress = True
    while len(chosen) < limit and progress:
        progress = False
        for kind in kinds:
            fits = [t for t in by_kind[kind] if not t.subjects & used]
            if kind in YES_NO:
                fits = [t for t in fits if t.answer == want]
            if fits and len(chosen) < limit:
                chosen.append(fits[0])
                by_kind[kind].remove(fits[0])
                used |= fits[0].subjects
                want = ("No" if want == "Yes" else "Yes") if kind in YES_NO else want
                progress = True
    return chosen


def _compositional(
    record: ImageRecord, scene: Scene, say: _Say, rng: random.Random, limit: int
) -> list[tuple[str, str]]:
    present = [c for c in scene.counts if c in scene.vocabulary or not scene.exhaustive]
    absent = absent_categories(record)
    rng.shuffle(absent)
    absent = absent[:MAX_ABSENT]
    candidates = _verify(present, absent) + _logical(present, absent, rng) + _compare(scene)
    candidates += _choose_turns(scene, present, absent, rng)
    candidates += [
        _Turn("relate", t.subjects, t.question, t.answer) for t in _relation_turns(scene, record)
    ]
    chosen = _balanced(_pick(candidates, limit, rng))
    return typed_pairs(chosen, with_suffix)


def _balanced(turns: list[_Turn]) -> list[_Turn]:
    """The turns without the last yes/no answers of whichever of "Yes" and "No" outnumbers
    the other: every image asks as many of each, so neither answer can be learnt as a prior."""
    answers = [t.answer for t in turns if t.kind in YES_NO]
    surplus = answers.count("Yes") - answers.count("No")
    extra = "Yes" if surplus > 0 else "No"
    kept: list[_Turn] = []
    for turn in reversed(turns):
        if surplus and turn.kind in YES_NO and turn.answer == extra:
            surplus += -1 if surplus > 0 else 1
            continue
        kept.append(turn)
    return kept[::-1]
