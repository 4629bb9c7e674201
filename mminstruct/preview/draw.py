"""An image with its annotations drawn on it: boxes, labels and relation arrows.

Pillow only (no matplotlib), sized to the image so it reads at a glance: lines and text
grow with the image. Objects the context shows are drawn in colour, one colour per
category, labelled with the context's names (`person 2`); objects the context options leave
out are drawn thin and grey. Arrows show the context's relations, derived ones included.
Labels never cover one another where there is room (`labels.py` places them).
"""

from __future__ import annotations

import io
import math
from collections.abc import Collection, Mapping, Sequence

from PIL import Image, ImageDraw, ImageFont

from mminstruct.preview.labels import PAD_X, PAD_Y, Label, picture_labels
from mminstruct.records import ImageRecord, ObjectBox, Relation

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
    data: bytes,
    record: ImageRecord,
    shown: Collection[int] | None = None,
    names: Mapping[int, str] | None = None,
    relations: Sequence[Relation] | None = None,
) -> Image.Image:
    """The image of `data` with `record`'s objects and relations drawn on it.

    `shown` holds the indices of the objects the context shows (None: all of them), `names`
    the context's name of each (`person 2`; None: their categories), and `relations` the
    relations the context shows, derived ones included (None: the annotated ones).
    """
    image = Image.open(io.BytesIO(data)).convert("RGB")
    canvas = ImageDraw.Draw(image)
    width = max(2, round(max(image.size) / 250))
    colors = category_colors(record.objects)
    shown = set(range(len(record.objects))) if shown is None else set(shown)
    for i, obj in enumerate(record.objects):
        color = colors[obj.category] if i in shown else HIDDEN
        canvas.rectangle(_corners(obj), outline=color, width=width if i in shown else 1)
    relations = _drawable(record, relations)
    for relation in relations:
        subject, target = record.objects[relation.subject], record.objects[relation.object]
        _arrow(canvas, _center(subject), _center(target), width)
    font = _font(image.size)
    for label in annotation_labels(record, image.size, shown, names, relations):
        _label(canvas, label, font)
    return image


def annotation_labels(
    record: ImageRecord,
    size: tuple[int, int],
    shown: Collection[int] | None = None,
    names: Mapping[int, str] | None = None,
    relations: Sequence[Relation] | None = None,
) -> list[Label]:
    """The labels `draw_annotations` paints on a `size` image (same arguments): one per shown
    object, its context name, then one per relation, its predicate; placed apart."""
    shown = range(len(record.objects)) if shown is None else shown
    if names is None:
        names = {i: record.objects[i].category for i in sorted(shown)}
    colors = category_colors(record.objects)
    label_colors = {i: colors[record.objects[i].category] for i in names}
    relations = _drawable(record, relations)
    return picture_labels(record, names, relations, label_colors, DARK, size, _font(size))


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


def _font(size: tuple[int, int]) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=max(11, round(max(size) / 40)))


def _drawable(record: ImageRecord, relations: Sequence[Relation] | None) -> list[Relation]:
    """`relations` (None: the annotated ones) whose two ends are objects of `record`."""
    relations = record.relations if relations is None else relations
    return [r for r in relations if _valid(r.subject, record) and _valid(r.object, record)]


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


def _label(canvas: ImageDraw.ImageDraw, label: Label, font: ImageFont.FreeTypeFont) -> None:
    """`label`'s text on its filled box, in black or white, whichever reads on its colour."""
    left, top, _, _ = font.getbbox(label.text)
    x, y = label.box[0], label.box[1]
    canvas.rectangle(label.box, fill=label.color)
    ink = DARK if sum(label.color) > 380 else (255, 255, 255)
    canvas.text((x + PAD_X / 2 - left, y + PAD_Y / 2 - top), label.text, fill=ink, font=font)
