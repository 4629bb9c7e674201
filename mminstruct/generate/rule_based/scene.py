"""The `Scene` an image record becomes: counts, areas, crowds and single objects per category.

Also what is read off the boxes alone: where a box lies (`region`), how many there are in
words (`some`), the clearly biggest category and the categories certainly absent.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec

from mminstruct.generate.rule_based.captions import _mentioned, _words
from mminstruct.geometry import area, center
from mminstruct.records import ImageRecord, ObjectBox, Relation, bare_predicate
from mminstruct.words import PLURAL_WORDS, counted, noun

BIGGEST_MARGIN = 1.5  # the biggest object must beat any other category's object by this factor
MIN_PROMINENT = 0.05  # ... and cover at least this fraction of the image
CELL_MARGIN = 0.04  # a box center this close to a line of the 3x3 grid has no clear region


# Visual Genome names that are not one countable thing ("a grass", "an outside").
_MASS = frozenset(
    {"grass", "sky", "water", "snow", "sand", "ground", "dirt", "hair", "air", "ocean", "sea"}
    | {"outside", "inside", "background", "foreground", "distance", "scene", "area", "part"}
    | {"shade", "sunlight", "mud", "gravel", "pavement", "side", "top", "edge", "front"}
)
_REGIONS = {
    ("top", "left"): "in the upper left part",
    ("top", "center"): "at the top center",
    ("top", "right"): "in the upper right part",
    ("middle", "left"): "on the left side",
    ("middle", "center"): "in the center",
    ("middle", "right"): "on the right side",
    ("bottom", "left"): "in the lower left part",
    ("bottom", "center"): "at the bottom center",
    ("bottom", "right"): "in the lower right part",
}

# Words after which a predicate says where something is ("on", "parked on").
_PLACES = frozenset({"on", "in", "under", "above", "below", "behind", "near", "beside"})
_PLACES |= {"inside", "along", "at", "by", "over", "against", "atop", "beneath"}


@dataclass(frozen=True)
class Scene:
    """What the boxes say, per category, in order of first appearance."""

    width: int
    height: int
    counts: dict[str, int]  # boxes per category, crowd boxes included
    areas: dict[str, float]  # summed box area per category
    crowd: frozenset[str]  # categories with at least one crowd box: counts are lower bounds
    singles: dict[str, ObjectBox]  # categories with exactly one box, not a crowd
    # Every object of the annotated categories is boxed (COCO). Visual Genome boxes only
    # some objects, often one of them twice: no counts are stated then.
    exhaustive: bool = True
    objects: tuple[ObjectBox, ...] = ()  # the record's objects, which relations index
    relations: tuple[Relation, ...] = ()  # what the context shows (`context_relations`)
    vocabulary: frozenset[str] = frozenset()  # categories whose boxes are exhaustive
    # Side words ("left", "right") the captions use in a sentence naming the category: a
    # region that disagrees with one is not stated.
    said_sides: dict[str, frozenset[str]] = field(default_factory=dict)

    @property
    def countable(self) -> list[str]:
        """Categories whose count is exact."""
        if not self.exhaustive:
            return []
        return [c for c in self.counts if c not in self.crowd and c in self.vocabulary]


def describe_scene(record: ImageRecord, relations: Sequence[Relation] = ()) -> Scene:
    """Counts, areas, crowd categories and single objects of a record (all its objects).

    Without an exhaustive vocabulary (Visual Genome), objects with plural names ("trees")
    are left out: the sentences about them would need a count we do not know.
    """
    exhaustive = bool(record.vocabulary) or not record.objects
    objects = record.objects if exhaustive else [o for o in record.objects if _singular(o)]
    counts: dict[str, int] = {}
    areas: dict[str, float] = {}
    for obj in objects:
        counts[obj.category] = counts.get(obj.category, 0) + 1
        areas[obj.category] = areas.get(obj.category, 0.0) + extent(obj)
    crowd = frozenset(o.category for o in objects if o.iscrowd)
    sized = record.width > 0 and record.height > 0
    singles = {
        o.category: o
        for o in objects
        if sized and counts[o.category] == 1 and o.category not in crowd
    }
    return Scene(
        width=record.width,
        height=record.height,
        counts=counts,
        areas=areas,
        crowd=crowd,
        singles=singles,
        exhaustive=exhaustive,
        objects=record.objects,
        relations=tuple(_bare(r) for r in relations),
        vocabulary=frozenset(record.vocabulary) if record.vocabulary else frozenset(counts),
        said_sides=_said_sides(record.captions, counts),
    )


def extent(obj: ObjectBox) -> float:
    """How much of the picture the object itself covers: its segment's area when the
    annotation gives one (a thin bottle's box may span a wall), else its box's."""
    return obj.segment_area if obj.segment_area > 0 else area(obj)


LARGER_RATIO = 2.0  # size comparisons only between objects whose areas differ this much


def clearly_larger(a: ObjectBox, b: ObjectBox) -> bool | None:
    """Whether `a` is clearly larger than `b` (None when unclear): the segment areas differ
    by LARGER_RATIO and the box areas point the same way."""
    seg_a, seg_b, box_a, box_b = extent(a), extent(b), area(a), area(b)
    if min(seg_a, seg_b, box_a, box_b) <= 0:
        return None
    if max(seg_a, seg_b) < LARGER_RATIO * min(seg_a, seg_b) or (box_a > box_b) != (seg_a > seg_b):
        return None  # no clear margin, or the boxes say otherwise
    return seg_a > seg_b


_SIDE_WORDS = {"left": "left", "right": "right"}


def _said_sides(captions: Sequence[str], counts: dict[str, int]) -> dict[str, frozenset[str]]:
    """For each category, the side words of the caption sentences that name it."""
    said: dict[str, set[str]] = {}
    for caption in captions:
        for sentence in re.split(r"[.!?;]", caption):
            words = _words(sentence)
            sides = {_SIDE_WORDS[w] for w in words.split() if w in _SIDE_WORDS}
            for category in counts if sides else ():
                if _mentioned(category, words):
                    said.setdefault(category, set()).update(sides)
    return {c: frozenset(s) for c, s in said.items()}


def _bare(relation: Relation) -> Relation:
    """The relation with no trailing article on its predicate ("wearing a" -> "wearing"):
    records made without a converter (tests, preview annotations) may still have one."""
    return msgspec.structs.replace(relation, predicate=bare_predicate(relation.predicate))


def _singular(obj: ObjectBox) -> bool:
    """Whether a free-form object name reads as one countable thing ("tree", not "trees"
    or "grass")."""
    words = obj.category.split(" ")
    if len(words) > 3 or any(w in _PLACES or w in ("of", "with", "and", "is") for w in words):
        return False  # "trees on roadside", "screen is black": a phrase, not a name
    last = words[-1]
    if last in PLURAL_WORDS or last in _MASS or not last.isalpha():
        return False
    return not (last.endswith("s") and not last.endswith(("ss", "us", "is")))


def region(obj: ObjectBox, width: int, height: int) -> str:
    """Where the box center falls in a 3x3 grid: "in the upper left part", "in the center"."""
    cx, cy = center(obj, width, height)
    column = "left" if cx < 1 / 3 else "right" if cx > 2 / 3 else "center"
    row = "top" if cy < 1 / 3 else "bottom" if cy > 2 / 3 else "middle"
    return _REGIONS[row, column]


def clear_region(obj: ObjectBox, scene: Scene) -> str | None:
    """`region`, only when the box center is clearly inside its cell of the 3x3 grid and no
    caption puts the object on another side; otherwise None (say nothing about where)."""
    if scene.width <= 0 or scene.height <= 0:
        return None
    cx, cy = center(obj, scene.width, scene.height)
    lines = (1 / 3, 2 / 3)
    if any(abs(v - line) < CELL_MARGIN for v in (cx, cy) for line in lines):
        return None
    where = region(obj, scene.width, scene.height)
    sides = scene.said_sides.get(obj.category, frozenset())
    return None if any(side not in where for side in sides) else where


def some(category: str, scene: Scene) -> str:
    """How many there are, in words: "a dog", "three dogs", "a crowd of people"."""
    if category in scene.crowd:
        group = "crowd" if category == "person" else "group"
        return f"a {group} of {noun(category).plural}"
    if not scene.exhaustive:
        return noun(category).a  # at least one is certain; how many is not
    n = scene.counts[category]
    return noun(category).a if n == 1 else counted(n, category)


def one_object(category: str, scene: Scene) -> bool:
    """Whether the image shows exactly one object of the category (not a crowd), so "the X"
    and "it" fit."""
    return scene.counts.get(category) == 1 and category not in scene.crowd


def biggest_category(record: ImageRecord) -> str | None:
    """The category of the largest single object (by segment area, else box area), when it
    clearly beats every other category's objects by both measures."""
    boxes = sorted(record.objects, key=extent, reverse=True)
    top = next((b for b in boxes if not b.iscrowd), None)
    if top is None or extent(top) < MIN_PROMINENT * record.width * record.height:
        return None
    rival = next((b for b in boxes if b.category != top.category), None)
    if rival is None or extent(top) < BIGGEST_MARGIN * extent(rival):
        return None
    if area(top) < BIGGEST_MARGIN * max(area(b) for b in boxes if b.category != top.category):
        return None  # by its box, something else looks as big: no clear margin
    return top.category


def absent_categories(record: ImageRecord) -> list[str]:
    """Categories that are certainly not in the image: exhaustive, unboxed, never mentioned."""
    present = {o.category for o in record.objects}
    words = _words(" ".join([*record.captions, *present]))
    return [c for c in record.vocabulary if c not in present and not _mentioned(c, words)]
