"""Verdicts: the annotation a claim contradicts, readable, judged from a record's `Facts`
(boxes, vocabulary, annotated relations, and the geometry of the boxes). A box that may
hold an unboxed part (a laptop and its keyboard) counts as a possible box of the part."""

from __future__ import annotations

from mminstruct.checks.grounding.known import Facts
from mminstruct.checks.grounding.sentences import Claim
from mminstruct.context import derive_relation
from mminstruct.geometry import gap
from mminstruct.lexicon import UNCOUNTABLE
from mminstruct.records import ObjectBox

CLEAR_SIDE = 0.6  # a box is clearly on the right when its center is past 60% of the width
CLEAR_EDGE = 0.4  # ... and its near edge past 40% (likewise for left, top and bottom)
SHIFT = 0.1  # "X left of Y" is false when X's box is shifted right by 10% of the width
FAR_APART = 0.25  # "next to" is false when boxes are apart by a quarter of the image
APART = 0.1  # "on" is false when boxes are apart by a tenth of the image: it needs contact


# --------------------------------------------------------------------------- verdicts


def verdict(claim: Claim, known: Facts) -> str | None:
    """The annotation a claim contradicts, readable; None when it holds or is undecided."""
    return _VERDICTS[claim.kind](claim, known)


def _count_verdict(claim: Claim, known: Facts) -> str | None:
    (category,) = claim.subject
    (n,) = claim.value
    boxes = known.boxes.get(category, [])
    if category not in known.vocabulary or category in UNCOUNTABLE or not boxes:
        return None  # not exhaustive, not countable, or absent (the object check's case)
    single = sum(1 for b in boxes if not b.iscrowd)
    crowd = len(boxes) > single
    most = single + len(known.hosts.get(category, []))  # each host may hold one more
    if (n > most and not crowd) or (claim.exact and n < single):
        return _count_truth(category, single, crowd, most - single)
    return None


def _count_truth(category: str, single: int, crowd: bool, parts: int) -> str:
    boxes = "box" if single == 1 else "boxes"
    text = f"{single} {category} {boxes} annotated"
    if parts:
        text += f" (and {parts} that may be part of another box)"
    return text + (" plus a crowd box (so more than that)" if crowd else "")


def _object_verdict(claim: Claim, known: Facts) -> str | None:
    cats = claim.subject
    if not all(c in known.vocabulary for c in cats):
        return None
    if any(c in known.boxes or c in known.mentioned or c in known.hosts for c in cats):
        return None
    names = " or ".join(cats)
    return f"no {names} box annotated (the annotation lists every {names}), no caption names one"


def _absence_verdict(claim: Claim, known: Facts) -> str | None:
    (category,) = claim.subject
    boxes = known.boxes.get(category, [])
    if not boxes:
        return None
    single = sum(1 for b in boxes if not b.iscrowd)
    crowd = " including a crowd box" if single < len(boxes) else ""
    return f"{len(boxes)} {category} {'box' if len(boxes) == 1 else 'boxes'} annotated{crowd}"


def _position_verdict(claim: Claim, known: Facts) -> str | None:
    boxes = _possible_boxes(claim.subject, known)
    if not boxes or known.width <= 0 or known.height <= 0:
        return None
    for side in claim.value:
        if all(_clearly_not(b, side, known.width, known.height) for b in boxes):
            return _where(claim.subject, boxes, known)
    return None


def _possible_boxes(categories: tuple[str, ...], known: Facts) -> list[ObjectBox]:
    """The boxes of the categories and, when there are some, the boxes of the things one
    may be an unboxed part of: hosts widen what may be meant, never decide alone."""
    boxes = [b for c in categories for b in known.boxes.get(c, ())]
    return boxes + [b for c in categories for b in known.hosts.get(c, ())] if boxes else []


def _clearly_not(box: ObjectBox, side: str, width: int, height: int) -> bool:
    """Whether a box is clearly on the other side from `side` of the image."""
    x1, x2 = box.x / width, (box.x + box.w) / width
    y1, y2 = box.y / height, (box.y + box.h) / height
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return {
        "left": cx > CLEAR_SIDE and x1 > CLEAR_EDGE,
        "right": cx < 1 - CLEAR_SIDE and x2 < 1 - CLEAR_EDGE,
        "top": cy > CLEAR_SIDE and y1 > CLEAR_EDGE,
        "bottom": cy < 1 - CLEAR_SIDE and y2 < 1 - CLEAR_EDGE,
    }[side]


def _where(categories: tuple[str, ...], boxes: list[ObjectBox], known: Facts) -> str:
    centers = ", ".join(
        f"({(b.x + b.w / 2) / known.width:.0%}, {(b.y + b.h / 2) / known.height:.0%})"
        for b in boxes[:4]
    )
    name = " or ".join(categories)
    return f"{name} box centers at {centers} of the width and height"


def _relation_verdict(claim: Claim, known: Facts) -> str | None:
    family, objects = claim.value
    subjects = _possible_boxes(claim.subject, known)
    targets = _possible_boxes(objects, known)
    if not subjects or not targets:
        return None
    support, against = _annotated(claim.subject, family, objects, known)
    if support:
        return None
    if against:
        return f"annotated: {against}"
    pairs = [(a, b) for a in subjects for b in targets]
    if all(_disagrees(family, a, b, known) for a, b in pairs):
        return _geometry_truth(claim, family, known)
    return None


_UP = frozenset({"on", "above"})


def _annotated(
    subject: tuple[str, ...], family: str, objects: tuple[str, ...], known: Facts
) -> tuple[bool, str | None]:
    """(an annotated relation supports the claim, the annotated relation against it)."""
    support, against = False, None
    for subjects, predicate, annotated, targets in known.relations:
        forward = set(subjects) & set(subject) and set(targets) & set(objects)
        backward = set(subjects) & set(objects) and set(targets) & set(subject)
        same = annotated == family or (family in _UP and annotated in _UP)
        if (forward and same) or (backward and family == "next to" == annotated):
            support = True
        elif (forward and _opposed(family, annotated)) or (backward and same):
            against = against or f"{subjects[0]} {predicate} {targets[0]}"
    return support, against


def _opposed(family: str, annotated: str) -> bool:
    """Whether "a <annotated> b" says the opposite of "a <family> b"."""
    if family in _UP or annotated in _UP:
        return bool({family, annotated} & _UP) and "under" in (family, annotated)
    return {family, annotated} == {"left of", "right of"}


def _disagrees(family: str, a: ObjectBox, b: ObjectBox, known: Facts) -> bool:
    """Whether boxes a and b clearly contradict "a <family> b"."""
    derived = derive_relation(a, b)
    if family == "on":
        apart = gap(a, b) > APART * max(known.width, known.height)
        return apart or derived in ("left of", "right of", "below")
    if family == "next to":
        return gap(a, b) > FAR_APART * max(known.width, known.height)
    opposite = {"left of": "right of", "right of": "left of", "above": "below"}
    opposite["under"] = "above"
    if derived == opposite[family]:
        return True
    if family in ("left of", "right of"):
        first, second = (a, b) if family == "left of" else (b, a)
        return _shifted(first.x, first.w, second.x, second.w, known.width)
    first, second = (a, b) if family == "above" else (b, a)
    return _shifted(first.y, first.h, second.y, second.h, known.height)


def _shifted(start_a: float, size_a: float, start_b: float, size_b: float, size: int) -> bool:
    """Whether box a lies past box b along one axis: both edges further, center by SHIFT."""
    center_gap = (start_a + size_a / 2) - (start_b + size_b / 2)
    return (
        center_gap >= SHIFT * size and start_a >= start_b and start_a + size_a >= start_b + size_b
    )


def _geometry_truth(claim: Claim, family: str, known: Facts) -> str:
    subject = " or ".join(claim.subject)
    target = " or ".join(claim.value[1])
    if family == "next to":
        return f"every {subject} box is far from every {target} box"
    return f"no {subject} box is {family} a {target} box; their boxes say otherwise"


_VERDICTS = {
    "count": _count_verdict,
    "object": _object_verdict,
    "absence": _absence_verdict,
    "position": _position_verdict,
    "relation": _relation_verdict,
}
