"""Box geometry, in one place: areas, centers, overlaps and gaps of annotated boxes.

Boxes are `ObjectBox`es in pixels (COCO `x, y, w, h`); converters clip them to the image, so a
width or height is never negative, but these functions stay safe if one is.
"""

from __future__ import annotations

from mminstruct.records import ObjectBox


def area(obj: ObjectBox) -> float:
    """The box's area in pixels."""
    return max(obj.w, 0.0) * max(obj.h, 0.0)


def center(obj: ObjectBox, width: int, height: int) -> tuple[float, float]:
    """The box's center as fractions of the image width and height."""
    return (obj.x + obj.w / 2) / width, (obj.y + obj.h / 2) / height


def overlap(start_a: float, size_a: float, start_b: float, size_b: float) -> float:
    """How long two spans along one axis overlap (0 when they do not)."""
    return max(0.0, min(start_a + size_a, start_b + size_b) - max(start_a, start_b))


def gap(a: ObjectBox, b: ObjectBox) -> float:
    """The empty space between two boxes along the axis where they are furthest apart."""
    dx = max(b.x - (a.x + a.w), a.x - (b.x + b.w), 0.0)
    dy = max(b.y - (a.y + a.h), a.y - (b.y + b.h), 0.0)
    return max(dx, dy)
