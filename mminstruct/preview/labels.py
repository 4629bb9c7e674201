"""Where the preview picture's labels go: near what they name, never on one another where
the image has room.

Each label has a wanted place (above its box's top-left corner, or centred on its relation's
arrow). Labels are placed one by one; a label that would cover one already placed moves to
the nearest free place on a grid of label-sized steps around the wanted one (a row up or
down before a column sideways). Only when no place is free does it keep the wanted one.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import ImageFont

from mminstruct.records import ImageRecord, ObjectBox, Relation

Color = tuple[int, int, int]
Box = tuple[float, float, float, float]  # left, top, right, bottom, in pixels
MAX_TEXT = 60  # characters of a label; a longer name is cut (a name can be megabytes)
COLUMNS = 3  # sideways steps (of a label's width) tried each way
PAD_X, PAD_Y = 6, 4  # room around the text inside its box


@dataclass(frozen=True)
class Label:
    """A text on a filled box at `box`."""

    text: str
    box: Box
    color: Color


def picture_labels(
    record: ImageRecord,
    names: Mapping[int, str],
    relations: Sequence[Relation],
    colors: Mapping[int, Color],
    relation_color: Color,
    size: tuple[int, int],
    font: ImageFont.FreeTypeFont,
) -> list[Label]:
    """The labels of the objects in `names` (the context's names, by object index) and of
    `relations` (their predicates), placed so that none covers another where possible."""
    placed: list[Label] = []
    for i, name in names.items():
        obj = record.objects[i]
        placed.append(_place(short(name), (obj.x, obj.y), False, colors[i], size, font, placed))
    for relation in relations:
        a, b = record.objects[relation.subject], record.objects[relation.object]
        at = _midpoint(a, b)
        placed.append(
            _place(short(relation.predicate), at, True, relation_color, size, font, placed)
        )
    return placed


def short(text: str) -> str:
    """`text`, cut to `MAX_TEXT` characters."""
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."


def overlaps(a: Box, b: Box) -> bool:
    """Whether two boxes share pixels (touching edges do not count)."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _place(
    text: str,
    at: tuple[float, float],
    centered: bool,
    color: Color,
    size: tuple[int, int],
    font: ImageFont.FreeTypeFont,
    placed: Collection[Label],
) -> Label:
    left, top, right, bottom = font.getbbox(text)
    w, h = right - left + PAD_X, bottom - top + PAD_Y
    x, y = (at[0] - w / 2, at[1] - h / 2) if centered else (at[0], at[1] - h)
    if y < 0:  # no room above the box: just inside its top edge
        y = 0 if centered else at[1]
    x, y = _clamp(x, w, size[0]), _clamp(y, h, size[1])
    free = _first_free(_candidates(x, y, w, h, size), w, h, placed)
    x, y = (x, y) if free is None else free
    return Label(text, (x, y, x + w, y + h), color)


def _candidates(x: float, y: float, w: float, h: float, size: tuple[int, int]) -> np.ndarray:
    """Places for a w x h label, nearest to (x, y) first: rows of the whole image height in
    steps of h, in columns up to `COLUMNS` label widths to either side."""
    rows = int(size[1] // h) + 1
    dy = np.arange(-rows, rows + 1) * h
    dx = np.arange(-COLUMNS, COLUMNS + 1) * w
    xs = np.clip(x + dx, 0, max(size[0] - w, 0))
    ys = np.clip(y + dy, 0, max(size[1] - h, 0))
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    grid = np.unique(grid, axis=0)
    distance = (grid[:, 0] - x) ** 2 + (grid[:, 1] - y) ** 2
    return grid[np.argsort(distance, kind="stable")]


def _first_free(
    candidates: np.ndarray, w: float, h: float, placed: Collection[Label]
) -> tuple[float, float] | None:
    """The first candidate top-left corner whose w x h label covers none of `placed`."""
    if not placed:
        return None  # the wanted place is free
    boxes = np.array([label.box for label in placed])
    x, y = candidates[:, :1], candidates[:, 1:]
    covers = (x < boxes[:, 2]) & (boxes[:, 0] < x + w) & (y < boxes[:, 3]) & (boxes[:, 1] < y + h)
    free = np.flatnonzero(~covers.any(axis=1))
    return (float(candidates[free[0], 0]), float(candidates[free[0], 1])) if len(free) else None


def _clamp(value: float, extent: float, limit: int) -> float:
    return min(max(value, 0.0), max(limit - extent, 0.0))


def _midpoint(a: ObjectBox, b: ObjectBox) -> tuple[float, float]:
    return ((a.x + a.w / 2 + b.x + b.w / 2) / 2, (a.y + a.h / 2 + b.y + b.h / 2) / 2)
