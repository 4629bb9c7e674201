"""The short-answer VQA task (LLaVA-1.5's VQAv2/GQA format): one word or phrase per answer.

Question types: `count` (exact counts only), `color` (a Visual Genome colour attribute of a
one-of-a-kind object), `what` and `which_subject` (annotated relations: "What is the man
riding?"), `where` (a lone object's part of the picture), `which` (the one of two lone
objects that clearly covers more of the picture).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from mminstruct.generate.rule_based.phrasing import _Say
from mminstruct.generate.rule_based.referring import annotated_relation
from mminstruct.generate.rule_based.scene import Scene, clearly_larger
from mminstruct.generate.rule_based.turns import _choose, _Turn, typed_pairs
from mminstruct.geometry import center
from mminstruct.lexicon import COLORS, FORMAT_PROMPTS, PAIRED, UNCOUNTABLE
from mminstruct.records import ImageRecord, ObjectBox, Relation
from mminstruct.words import noun

SUFFIX = FORMAT_PROMPTS["short_vqa"]
MAX_COUNT = 12  # larger counts are not asked: VQA counts past a dozen are guesses
# Predicates a "What is the man ...?" question reads well with: verbs in -ing and places.
PLACES = frozenset({"on", "in", "under", "above", "below", "behind", "near", "beside", "inside"})
PLACES |= {"on top of", "next to", "in front of", "sitting on", "standing on", "hanging on"}
_WHERE = {  # a 3x3 grid cell -> a short answer
    (0, 0): "upper left",
    (1, 0): "top",
    (2, 0): "upper right",
    (0, 1): "left",
    (1, 1): "center",
    (2, 1): "right",
    (0, 2): "lower left",
    (1, 2): "bottom",
    (2, 2): "lower right",
}


def with_suffix(question: str) -> str:
    """The question and LLaVA-1.5's short-answer format prompt on its own line."""
    return f"{question}\n{SUFFIX}"


def _count_turns(scene: Scene) -> list[_Turn]:
    turns = []
    for category in scene.countable:
        n = scene.counts[category]
        if category in UNCOUNTABLE or category in PAIRED or n > MAX_COUNT:
            continue
        question = f"How many {noun(category).plural} are there?"
        turns.append(_Turn("count", frozenset({category}), question, str(n)))
    return turns


def _color_turns(scene: Scene) -> list[_Turn]:
    turns = []
    for category, obj in scene.singles.items():
        colors = [a for a in obj.attributes if a in COLORS]
        if len(set(colors)) == 1:
            question = f"What color is the {noun(category).singular}?"
            turns.append(_Turn("color", frozenset({category}), question, colors[0]))
    return turns


def _relation_turns(scene: Scene, record: ImageRecord) -> list[_Turn]:
    """The man riding one thing, asked "What is the man riding?" (the man the only one);
    "What is on the table?" when everything on the only table is of one category.
    Every annotated relation of the record counts, not only those the context shows."""
    turns = []
    objects = scene.objects
    annotated = [annotated_relation(r) for r in record.relations if not r.derived]
    for rel in annotated:
        subject, target = objects[rel.subject].category, objects[rel.object].category
        if subject == target or not (rel.predicate in PLACES or rel.predicate.endswith("ing")):
            continue
        same = {objects[r.object].category for r in annotated if _same(r, rel, objects, "s")}
        if subject in scene.singles and same == {target}:
            q = f"What is the {noun(subject).singular} {rel.predicate}?"
            turns.append(_Turn("what", frozenset({subject}), q, noun(target).singular))
        who = {objects[r.subject].category for r in annotated if _same(r, rel, objects, "o")}
        if target in scene.singles and who == {subject} and rel.predicate in PLACES:
            q = f"What is {rel.predicate} the {noun(target).singular}?"
            turns.append(_Turn("which_subject", frozenset({target}), q, noun(subject).singular))
    return turns


def _same(r: Relation, rel: Relation, objects: Sequence[ObjectBox], side: str) -> bool:
    """Whether `r` has `rel`'s predicate and the same subject (side "s") or object ("o")."""
    if r.predicate != rel.predicate:
        return False
    if side == "s":
        return objects[r.subject].category == objects[rel.subject].category
    return objects[r.object].category == objects[rel.object].category


def _where_turns(scene: Scene) -> list[_Turn]:
    turns = []
    for category, obj in scene.singles.items():
        cx, cy = center(obj, scene.width, scene.height)
        cell = (min(int(cx * 3), 2), min(int(cy * 3), 2))
        if _near_edge(cx) or _near_edge(cy):
            continue  # a center close to a grid line has no clear answer
        question = f"Where in the picture is the {noun(category).singular}?"
        turns.append(_Turn("where", frozenset({category}), question, _WHERE[cell]))
    return turns


def _near_edge(value: float) -> bool:
    return any(abs(value - line) < 0.05 for line in (1 / 3, 2 / 3))


def _which_turns(scene: Scene, rng: random.Random) -> list[_Turn]:
    turns = []
    singles = list(scene.singles.items())
    for i, (a, box_a) in enumerate(singles):
        for b, box_b in singles[i + 1 :]:
            a_larger = clearly_larger(box_a, box_b)
            if a_larger is None:
                continue  # segments too close in size, or the boxes disagree
            big = a if a_larger else b
            first, second = (a, b) if rng.random() < 0.5 else (b, a)
            question = (
                f"Which takes up more of the picture, the {noun(first).singular} "
                f"or the {noun(second).singular}?"
            )
            turns.append(_Turn("which", frozenset({a, b}), question, noun(big).singular))
    return turns


def _short_vqa(
    record: ImageRecord, scene: Scene, say: _Say, rng: random.Random, limit: int
) -> list[tuple[str, str]]:
    if record.width <= 0 or record.height <= 0:
        return []
    candidates = _count_turns(scene) + _color_turns(scene) + _relation_turns(scene, record)
    candidates += _where_turns(scene) + _which_turns(scene, rng)
    chosen = _choose(candidates, limit, rng)
    return typed_pairs(chosen, with_suffix)
