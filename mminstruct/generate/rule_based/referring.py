"""Phrases that pick out exactly one object of an image, and boxes written as LLaVA-1.5 does.

A category alone when it has one box; else the category with what no other object of it
shares: an attribute ("the red car"), a side with a clear margin ("the man on the left")
or a relation to a one-of-a-kind object ("the dog under the table"). Region descriptions
(Visual Genome) and referring expressions (RefCOCO) are phrases about one box already.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from mminstruct.geometry import area
from mminstruct.lexicon import PAIRED
from mminstruct.records import ImageRecord, ObjectBox, Region, Relation, bare_predicate
from mminstruct.words import noun

SIDE_MARGIN = 0.1  # a side phrase needs this gap (of the width) to the next object's center
MIN_AREA = 0.005  # objects smaller than this fraction of the image are never referred to
MAX_PHRASE_WORDS = 10  # longer region descriptions are not short descriptions


@dataclass(frozen=True)
class Referent:
    """One object (or annotated region) and a phrase naming it alone."""

    phrase: str  # without an article: "red car", "man on the left", "dog under table"
    box: tuple[float, float, float, float]  # x, y, w, h in pixels
    category: str | None  # the object's category; None for a free-form region phrase
    how: str  # "category", "attribute", "position", "relation", "region", "refexp"


def llava_box(
    box: tuple[float, float, float, float], width: int, height: int, square: bool = True
) -> str:
    """`[x1, y1, x2, y2]` as LLaVA-1.5's mix writes them: fractions with two decimals, of the
    image padded to a centered square (`square`, as LLaVA-1.5 trains) or of its own sides."""
    x, y, w, h = box
    if square:
        side = max(width, height)
        left, top, across, down = (side - width) / 2, (side - height) / 2, side, side
    else:
        left, top, across, down = 0.0, 0.0, width, height
    values = ((x + left) / across, (y + top) / down)
    values += ((x + w + left) / across, (y + h + top) / down)
    return "[" + ", ".join(f"{min(max(v, 0.0), 1.0):.2f}" for v in values) + "]"


def referents(record: ImageRecord, relations: tuple = ()) -> list[Referent]:
    """Every object the annotations let us name alone, then regions and expressions."""
    if record.width <= 0 or record.height <= 0:
        return []
    found = list(_object_referents(record, relations))
    found += _given(record.referring, "refexp")
    found += _given(record.regions, "region")
    return found


def _given(regions: tuple[Region, ...], how: str) -> list[Referent]:
    phrases = []
    for region in regions:
        text = " ".join(region.phrase.split()).strip(" .").lower()
        if text and len(text.split()) <= MAX_PHRASE_WORDS and region.w > 0 and region.h > 0:
            phrases.append(Referent(text, (region.x, region.y, region.w, region.h), None, how))
    return phrases


def _object_referents(record: ImageRecord, relations: tuple) -> Iterator[Referent]:
    by_category: dict[str, list[int]] = {}
    for i, obj in enumerate(record.objects):
        by_category.setdefault(obj.category, []).append(i)
    big = MIN_AREA * record.width * record.height
    for category, members in by_category.items():
        if any(record.objects[i].iscrowd for i in members) or category in PAIRED:
            continue  # a crowd box covers several; "the skis" may be a pair or one of them
        for i in members:
            obj = record.objects[i]
            if area(obj) < big:
                continue
            phrase = _unique_phrase(i, members, record, relations)
            if phrase is not None:
                yield Referent(phrase[0], (obj.x, obj.y, obj.w, obj.h), category, phrase[1])


def _unique_phrase(
    i: int, members: list[int], record: ImageRecord, relations: tuple
) -> tuple[str, str] | None:
    """(phrase, how) naming object `i` alone among the objects of its category."""
    obj = record.objects[i]
    name = noun(obj.category).singular
    if len(members) == 1:
        return name, "category"
    others = [record.objects[j] for j in members if j != i]
    attribute = next(
        (a for a in obj.attributes if all(a not in o.attributes for o in others)), None
    )
    if attribute is not None:
        return f"{attribute} {name}", "attribute"
    side = _side(obj, others, record.width)
    if side is not None:
        return f"{name} on the {side}", "position"
    related = _relation(i, members, record, relations)
    return (f"{name} {related}", "relation") if related else None


def _side(obj: ObjectBox, others: list[ObjectBox], width: int) -> str | None:
    """ "left" when the object is clearly left of every other of its category (its center at
    least `SIDE_MARGIN` of the width further left, its box ending before their centers)."""
    mid = obj.x + obj.w / 2
    centers = [o.x + o.w / 2 for o in others]
    margin = SIDE_MARGIN * width
    if all(mid + margin <= c and obj.x + obj.w <= c for c in centers):
        return "left"
    if all(mid - margin >= c and obj.x >= c for c in centers):
        return "right"
    return None


def annotated_relation(relation: Relation) -> Relation:
    """The relation with its predicate bare ("wearing a" -> "wearing"), as `Scene` has it."""
    predicate = bare_predicate(relation.predicate)
    return Relation(relation.subject, predicate, relation.object, relation.derived)


def _relation(i: int, members: list[int], record: ImageRecord, relations: tuple) -> str | None:
    """ "under the table" when object i is under the only table and no other object of its
    category is under a table (annotated relations only: derived ones are too loose). All
    of the record's relations are searched for a rival, not only those given."""
    counts: dict[str, int] = {}
    for obj in record.objects:
        counts[obj.category] = counts.get(obj.category, 0) + 1
    for rel in relations:
        if rel.subject != i or rel.derived or not 0 <= rel.object < len(record.objects):
            continue
        target = record.objects[rel.object].category
        if counts[target] != 1 or record.objects[rel.object].iscrowd:
            continue
        shared = any(
            r.subject in members
            and r.subject != i
            and r.predicate == rel.predicate
            and 0 <= r.object < len(record.objects)
            and record.objects[r.object].category == target
            for r in map(annotated_relation, record.relations)
        )
        if not shared:
            return f"{rel.predicate} the {noun(target).singular}"
    return None
