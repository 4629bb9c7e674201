"""LLaVA's symbolic context: captions, a blank line, then `category: [x1, y1, x2, y2]` lines."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from mminstruct.config import ContextConfig
from mminstruct.records import ImageRecord, ObjectBox


def render_context(record: ImageRecord, options: ContextConfig) -> str:
    """The text a model reads instead of the image.

    Captions come one per line; then, after a blank line, one line per visible object with
    its box normalized to [0, 1] by the image size (`person: [0.0, 0.24, 0.214, 1.0]`).
    """
    lines = list(record.captions)
    if options.boxes:
        objects = visible_objects(record, options)
        boxes = box_lines(objects, record.width, record.height, options.decimals)
        if boxes:
            lines += ["", *boxes] if lines else boxes
    return "\n".join(lines)


def visible_objects(record: ImageRecord, options: ContextConfig) -> Sequence[ObjectBox]:
    """The objects the context shows, in annotation order, after the crowd/size/cap options."""
    objects = record.objects
    if options.crowd == "keep" and options.min_box_fraction == 0 and options.max_objects is None:
        return objects
    if options.crowd == "drop":
        objects = [o for o in objects if not o.iscrowd]
    if options.min_box_fraction > 0:
        smallest = options.min_box_fraction * record.width * record.height
        objects = [o for o in objects if o.w * o.h >= smallest]
    if options.max_objects is not None and len(objects) > options.max_objects:
        largest = sorted(range(len(objects)), key=lambda i: -objects[i].w * objects[i].h)
        keep = set(largest[: options.max_objects])
        objects = [o for i, o in enumerate(objects) if i in keep]
    return objects


def box_line(obj: ObjectBox, width: int, height: int, decimals: int = 3) -> str:
    """`category: [x1, y1, x2, y2]` with coordinates in [0, 1], trailing zeros dropped."""
    return box_lines([obj], width, height, decimals)[0]


def box_lines(
    objects: Sequence[ObjectBox], width: int, height: int, decimals: int = 3
) -> list[str]:
    """`box_line` for many objects of one image, through a table of the possible numbers.

    A context holds every box of every image, so this is the renderer's hot loop: each
    coordinate becomes an integer number of steps (1/1000 for 3 decimals) looked up in a
    table of ready-made strings instead of being rounded and formatted one by one.
    """
    table = _number_table(decimals)
    steps = len(table) - 1
    sx, sy = steps / width, steps / height
    lines = []
    for obj in objects:
        x, y = obj.x, obj.y
        a, b = int(x * sx + 0.5), int(y * sy + 0.5)
        c, d = int((x + obj.w) * sx + 0.5), int((y + obj.h) * sy + 0.5)
        if not (0 <= a <= c <= steps and 0 <= b <= d <= steps):
            a, b, c, d = (min(steps, max(0, v)) for v in (a, b, c, d))
        lines.append(f"{obj.category}: [{table[a]}, {table[b]}, {table[c]}, {table[d]}]")
    return lines


@functools.cache
def _number_table(decimals: int) -> tuple[str, ...]:
    steps = 10**decimals
    return tuple(repr(k / steps) for k in range(steps + 1))
