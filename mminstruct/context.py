"""LLaVA's symbolic context: captions, a blank line, then `category: [x1, y1, x2, y2]` lines."""

from __future__ import annotations

from mminstruct.config import ContextConfig
from mminstruct.records import ImageRecord, ObjectBox


def render_context(record: ImageRecord, options: ContextConfig) -> str:
    """The text a model reads instead of the image.

    Captions come one per line; then, after a blank line, one line per visible object with
    its box normalized to [0, 1] by the image size (`person: [0.0, 0.24, 0.214, 1.0]`).
    """
    lines = list(record.captions)
    if options.boxes:
        boxes = [
            box_line(obj, record.width, record.height, options.decimals)
            for obj in visible_objects(record, options)
        ]
        if boxes:
            lines += ["", *boxes] if lines else boxes
    return "\n".join(lines)


def visible_objects(record: ImageRecord, options: ContextConfig) -> list[ObjectBox]:
    """The objects the context shows, in annotation order, after the crowd/size/cap options."""
    objects = record.objects
    if options.crowd == "drop":
        objects = [o for o in objects if not o.iscrowd]
    if options.min_box_fraction > 0:
        smallest = options.min_box_fraction * record.width * record.height
        objects = [o for o in objects if o.w * o.h >= smallest]
    if options.max_objects is not None and len(objects) > options.max_objects:
        largest = sorted(range(len(objects)), key=lambda i: -objects[i].w * objects[i].h)
        keep = set(largest[: options.max_objects])
        objects = [o for i, o in enumerate(objects) if i in keep]
    return list(objects)


def box_line(obj: ObjectBox, width: int, height: int, decimals: int = 3) -> str:
    """`category: [x1, y1, x2, y2]` with coordinates in [0, 1], trailing zeros dropped."""
    x1, y1, x2, y2 = normalized_box(obj, width, height, decimals)
    return f"{obj.category}: [{x1!r}, {y1!r}, {x2!r}, {y2!r}]"


def normalized_box(
    obj: ObjectBox, width: int, height: int, decimals: int = 3
) -> tuple[float, float, float, float]:
    """Corners divided by the image size, clipped to [0, 1] and rounded."""
    return (
        _unit(obj.x / width, decimals),
        _unit(obj.y / height, decimals),
        _unit((obj.x + obj.w) / width, decimals),
        _unit((obj.y + obj.h) / height, decimals),
    )


def _unit(value: float, decimals: int) -> float:
    # `+ 0.0` turns a -0.0 from rounding into 0.0.
    return round(min(1.0, max(0.0, value)), decimals) + 0.0
