"""An image with its annotations drawn on it: boxes, category labels and relation arrows.

Pillow only (no matplotlib), sized to the image so it reads at a glance: lines and text
grow with the image. Objects the context shows are drawn in colour, one colour per
category; objects the context options leave out are drawn thin and grey.
"""

from __future__ import annotations

import io
import math
from collections.abc import Collection

from PIL import Image, ImageDraw, ImageFont

from mminstruct.records import ImageRecord, ObjectBox

PALETTE = (
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 212),
    (0, 128, 128),
    (170, 110, 40),
)
HIDDEN = (160, 160, 160)  # objects left out of the context
ARROW = (255, 255, 255)
DARK = (0, 0, 0)


def draw_annotations(
    data: bytes, record: ImageRecord, shown: Collection[int] | None = None
) -> Image.Image:
    """The image of `data` with `record`'s objects and relations drawn on it.

    `shown` holds the indices of the objects the context shows (None: all of them).
    """
    image = Image.open(io.BytesIO(data)).convert("RGB")
    canvas = ImageDraw.Draw(image)
    scale = max(image.size)
    width = max(2, round(scale / 250))
    font = ImageFont.load_default(size=max(11, round(scale / 40)))
    colors = category_colors(record.objects)
    shown = set(range(len(record.objects))) if shown is None else set(shown)
    for i, obj in enumerate(record.objects):
        color = colors[obj.category] if i in shown else HIDDEN
        canvas.rectangle(_corners(obj), outline=color, width=width if i in shown else 1)
    for relation in record.relations:
        if _valid(relation.subject, record) and _valid(relation.object, record):
            subject, target = record.objects[relation.subject], record.objects[relation.object]
            _arrow(canvas, _center(subject), _center(target), width)
            _label(canvas, _midpoint(subject, target), relation.predicate, DARK, font, True)
    for i, obj in enumerate(record.objects):
        if i in shown:
            _label(canvas, (obj.x, obj.y), obj.category, colors[obj.category], font, False)
    return image


def category_colors(objects: Collection[ObjectBox]) -> dict[str, tuple[int, int, int]]:
    """One palette colour per category, in order of first appearance."""
    categories = dict.fromkeys(o.category for o in objects)
    return {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(categories)}


def _corners(obj: ObjectBox) -> tuple[int, int, int, int]:
    """The first and last pixel rows and columns a box covers."""
    x0, y0 = round(obj.x), round(obj.y)
    return (x0, y0, max(x0, round(obj.x + obj.w) - 1), max(y0, round(obj.y + obj.h) - 1))


def _center(obj: ObjectBox) -> tuple[float, float]:
    return (obj.x + obj.w / 2, obj.y + obj.h / 2)


def _midpoint(a: ObjectBox, b: ObjectBox) -> tuple[float, float]:
    (ax, ay), (bx, by) = _center(a), _center(b)
    return ((ax + bx) / 2, (ay + by) / 2)


def _valid(index: int, record: ImageRecord) -> bool:
    return 0 <= index < len(record.objects)


def _arrow(canvas: ImageDraw.ImageDraw, start: tuple, end: tuple, width: int) -> None:
    """A line from `start` to `end` with a head at `end`, outlined so it shows on any image."""
    angle = math.atan2(end[1] - start[1], end[0] - start[0])
    size = 4 * width + 6
    head = [end] + [
        (end[0] - size * math.cos(angle + s), end[1] - size * math.sin(angle + s))
        for s in (0.4, -0.4)
    ]
    canvas.line([start, end], fill=DARK, width=width + 2)
    canvas.polygon(head, fill=ARROW, outline=DARK)
    canvas.line([start, end], fill=ARROW, width=width)


def _label(
    canvas: ImageDraw.ImageDraw,
    at: tuple[float, float],
    text: str,
    color: tuple[int, int, int],
    font: ImageFont.FreeTypeFont,
    centered: bool,
) -> None:
    """`text` on a filled box: above the point (or below it at the top edge), or centred."""
    left, top, right, bottom = canvas.textbbox((0, 0), text, font=font)
    w, h = right - left + 6, bottom - top + 4
    x, y = (at[0] - w / 2, at[1] - h / 2) if centered else (at[0], at[1] - h)
    if y < 0:
        y = at[1] if not centered else 0
    x = min(max(x, 0), max(canvas.im.size[0] - w, 0))
    canvas.rectangle((x, y, x + w, y + h), fill=color)
    ink = DARK if sum(color) > 380 else (255, 255, 255)
    canvas.text((x + 3 - left, y + 2 - top), text, fill=ink, font=font)
