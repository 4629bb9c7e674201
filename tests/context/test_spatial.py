"""Relations derived from two boxes: each predicate on hand-checked pairs, and the cases
where the boxes leave the relation open."""

from __future__ import annotations

import pytest

from mminstruct.context.spatial import PREDICATES, derive_relation, derive_relations
from mminstruct.records import ObjectBox, Relation


def box(x: float, y: float, w: float, h: float, category: str = "thing", crowd: bool = False):
    return ObjectBox(category, x, y, w, h, iscrowd=crowd)


# (a, b, predicate for `a <predicate> b`); the comment says why, in pixels.
CASES = [
    # a (100 px) lies wholly in b (10,000 px), and is at most half of it
    (box(10, 10, 10, 10), box(0, 0, 100, 100), "inside"),
    # exactly 90% of a inside b, and a a tenth of b: still inside
    (box(0, 0, 10, 20), box(1, 0, 100, 20), "inside"),
    # intersection 50, union 150: IoU 1/3
    (box(0, 0, 10, 10), box(5, 0, 10, 10), "overlapping"),
    # a wholly in b but 60% of b's area: too big to be "inside", IoU 0.6
    (box(0, 0, 60, 10), box(0, 0, 100, 10), "overlapping"),
    # same rows, a ends at x=10, b starts at 30: gap 20 > half the narrower (5)
    (box(0, 0, 10, 10), box(30, 0, 10, 10), "left of"),
    (box(30, 0, 10, 10), box(0, 0, 10, 10), "right of"),
    # sharing 40% of the smaller height is enough to be side by side
    (box(0, 0, 10, 10), box(30, 6, 10, 10), "left of"),
    # gap 2 <= 5: close, so "next to" in either order
    (box(0, 0, 10, 10), box(12, 0, 10, 10), "next to"),
    (box(12, 0, 10, 10), box(0, 0, 10, 10), "next to"),
    # touching by 0.5 px (within the 10% slack): next to
    (box(0, 0, 10, 10), box(9.5, 0, 10, 10), "next to"),
    # overlapping by 2 px in x (past the slack), IoU 200/10,800 < 0.1: next to
    (box(0, 0, 10, 100), box(8, 0, 100, 100), "next to"),
    # same columns, a ends at y=10, b starts at 30
    (box(0, 0, 10, 10), box(0, 30, 10, 10), "above"),
    (box(0, 30, 10, 10), box(0, 0, 10, 10), "below"),
    # stacked and close (gap 2) is still above: no "next to" vertically
    (box(0, 0, 10, 10), box(0, 12, 10, 10), "above"),
]


@pytest.mark.parametrize(("a", "b", "predicate"), CASES)
def test_each_predicate_on_hand_checked_boxes(a, b, predicate):
    assert derive_relation(a, b) == predicate


def test_every_predicate_is_covered():
    assert {p for *_, p in CASES} == set(PREDICATES)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        # diagonal: neither rows nor columns shared
        (box(0, 0, 10, 10), box(30, 30, 10, 10)),
        # rows shared by only 20% of the smaller height (needs 30%), and no columns shared
        (box(0, 0, 10, 10), box(30, 8, 10, 10)),
        # stacked but overlapping by 2 px (IoU 20/1,080): neither above nor below it
        (box(0, 0, 10, 10), box(0, 8, 10, 100)),
    ],
)
def test_open_cases_give_nothing(a, b):
    assert derive_relation(a, b) is None


def test_the_smaller_object_is_the_subject():
    table = box(0, 0, 100, 100, "dining table")
    cup = box(10, 10, 10, 10, "cup")
    assert derive_relations([table, cup], [0, 1]) == [Relation(1, "inside", 0, derived=True)]
    assert derive_relations([cup, table], [0, 1]) == [Relation(0, "inside", 1, derived=True)]
    person = box(0, 0, 30, 90, "person")
    dog = box(100, 60, 30, 30, "dog")  # smaller, to the right
    assert derive_relations([person, dog], [0, 1]) == [Relation(1, "right of", 0, derived=True)]


def test_only_given_non_crowd_objects_take_part():
    objects = [
        box(0, 0, 10, 10, "cup"),
        box(30, 0, 10, 10, "cup"),
        box(0, 0, 200, 200, "person", crowd=True),
        box(60, 0, 10, 10, "cup"),
    ]
    relations = derive_relations(objects, [0, 1, 2])
    assert relations == [Relation(0, "left of", 1, derived=True)]  # no crowd, no object 3
    assert all(r.derived for r in derive_relations(objects, [0, 1, 3]))


def test_only_the_eight_largest_objects_are_related():
    # ten boxes in a row, 40 px apart; boxes 0 and 1 are the smallest
    sides = [4, 5, 10, 11, 12, 13, 14, 15, 16, 17]
    objects = [box(40 * i, 0, side, side, f"o{i}") for i, side in enumerate(sides)]
    relations = derive_relations(objects, range(10))
    involved = {i for r in relations for i in (r.subject, r.object)}
    assert involved == set(range(2, 10))
    assert len(relations) == 8 * 7 // 2  # every pair of the eight is side by side
