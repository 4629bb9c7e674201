"""Relations computed from two boxes, for datasets without annotated relations.

One predicate per pair, the first rule that holds, in this order (a = subject, b = object):

1. `inside`: at least 90% of a's box lies in b's, and a's box is at most half of b's.
2. `overlapping`: the boxes' intersection over union is at least 0.1.
3. Side by side: the boxes share at least 30% of the smaller box's height. Then
   `left of` / `right of` when a ends before b starts (or starts after b ends; the boxes
   may share 10% of the narrower width) with a gap wider than half the narrower box;
   `next to` when they are closer than that, or overlap a little (IoU under 0.1).
4. Stacked: the boxes share at least 30% of the narrower box's width, and a ends above
   where b starts (`above`) or starts below where b ends (`below`), 10% slack as in 3.
Anything else (diagonal, overlapping a little while stacked) yields nothing: a derived
relation is only stated when the picture leaves no doubt about it.
"""

from __future__ import annotations

from collections.abc import Sequence

from mminstruct.geometry import area, overlap
from mminstruct.records import ObjectBox, Relation

INSIDE_COVER = 0.9  # share of a's area inside b
INSIDE_RATIO = 0.5  # a's area at most this share of b's
OVERLAP_IOU = 0.1  # at least this intersection over union: overlapping
SIDE_SLACK = 0.1  # boxes side by side may share this much of the narrower extent
SHARED_SPAN = 0.3  # ... and must share this much of the other axis
NEXT_TO_GAP = 0.5  # `next to`: apart by at most this share of the narrower box
MAX_DERIVED_OBJECTS = 8  # relations are derived among this many largest objects
PREDICATES = ("inside", "overlapping", "left of", "right of", "above", "below", "next to")


def derive_relation(a: ObjectBox, b: ObjectBox) -> str | None:
    """The spatial predicate for `a <predicate> b`, or None when the boxes leave it open."""
    area_a, area_b = a.w * a.h, b.w * b.h
    inter = overlap(a.x, a.w, b.x, b.w) * overlap(a.y, a.h, b.y, b.h)
    if area_a > 0 and inter >= INSIDE_COVER * area_a and area_a <= INSIDE_RATIO * area_b:
        return "inside"
    union = area_a + area_b - inter
    if union > 0 and inter / union >= OVERLAP_IOU:
        return "overlapping"
    side = _side(a.x, a.w, b.x, b.w, overlap(a.y, a.h, b.y, b.h), min(a.h, b.h), True)
    if side:
        return {"before": "left of", "after": "right of"}.get(side, side)
    side = _side(a.y, a.h, b.y, b.h, overlap(a.x, a.w, b.x, b.w), min(a.w, b.w), False)
    return {"before": "above", "after": "below"}.get(side) if side else None


def derive_relations(objects: Sequence[ObjectBox], indices: Sequence[int]) -> list[Relation]:
    """Derived relations among the largest non-crowd objects of `indices`, one per pair.

    The subject is the smaller object of a pair (`cup inside bowl`, not the reverse).
    """
    candidates = [i for i in indices if not objects[i].iscrowd]
    candidates.sort(key=lambda i: -objects[i].w * objects[i].h)
    candidates = sorted(candidates[:MAX_DERIVED_OBJECTS])
    relations = []
    for n, i in enumerate(candidates):
        for j in candidates[n + 1 :]:
            small, large = (j, i) if area(objects[j]) < area(objects[i]) else (i, j)
            predicate = derive_relation(objects[small], objects[large])
            if predicate:
                relations.append(Relation(small, predicate, large, derived=True))
    return relations


def _side(
    start_a: float,
    size_a: float,
    start_b: float,
    size_b: float,
    shared: float,
    span: float,
    close_is_next_to: bool,
) -> str | None:
    """ "before"/"after" when a lies before/after b along one axis, sharing enough of the
    other axis (`shared` of `span`); "next to" for close boxes if asked; else None."""
    if span <= 0 or shared < SHARED_SPAN * span:
        return None
    narrower = min(size_a, size_b)
    slack = SIDE_SLACK * narrower
    if start_a + size_a <= start_b + slack:
        gap, side = start_b - (start_a + size_a), "before"
    elif start_b + size_b <= start_a + slack:
        gap, side = start_a - (start_b + size_b), "after"
    else:  # overlapping a little (IoU under the threshold)
        return "next to" if close_is_next_to else None
    if close_is_next_to and gap <= NEXT_TO_GAP * narrower:
        return "next to"
    return side
