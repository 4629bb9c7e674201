"""LLaVA's symbolic context: captions, then `category: [x1, y1, x2, y2]` lines, then relations.

Blocks are separated by blank lines. When relations are shown, objects whose category
repeats are numbered in the box lines (`person 1`, `person 2`) and the relation lines use
the same names (`person 2 riding horse`); attributes are folded into names (`red car`).
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Sequence

from mminstruct.config import ContextConfig
from mminstruct.context.spatial import derive_relations
from mminstruct.geometry import area
from mminstruct.records import ImageRecord, ObjectBox, Relation


def render_context(record: ImageRecord, options: ContextConfig) -> str:
    """The text a model reads instead of the image.

    Captions come one per line (or, without captions, up to `options.regions` region
    descriptions); then, after a blank line, one line per visible object with its box
    normalized to [0, 1] by the image size (`person: [0.0, 0.24, 0.214, 1.0]`); then, after
    another blank line, one `subject predicate object` line per relation (only with boxes).
    """
    indices = visible_indices(record, options)
    shown = options.relations and options.boxes  # relations name objects of the box lines
    relations = context_relations(record, options, indices) if shown else []
    blocks = [list(record.captions) or region_phrases(record, options.regions)]
    objects = [record.objects[i] for i in indices]
    labels: dict[int, str] = {}
    if relations or any(o.attributes for o in objects):  # else the names are the categories
        labels = object_labels(record, indices, options, numbered=bool(relations))
    if options.boxes:
        names = [labels[i] for i in indices] if labels else None
        blocks.append(box_lines(objects, record.width, record.height, options.decimals, names))
    blocks.append([f"{labels[r.subject]} {r.predicate} {labels[r.object]}" for r in relations])
    return "\n\n".join("\n".join(block) for block in blocks if block)


def visible_indices(record: ImageRecord, options: ContextConfig) -> list[int]:
    """Indices of the objects the context shows, in annotation order, after the
    crowd/size/cap options."""
    objects = record.objects
    indices = list(range(len(objects)))
    if options.crowd == "keep" and options.min_box_fraction == 0 and options.max_objects is None:
        return indices
    if options.crowd == "drop":
        indices = [i for i in indices if not objects[i].iscrowd]
    if options.min_box_fraction > 0:
        smallest = options.min_box_fraction * record.width * record.height
        indices = [i for i in indices if objects[i].w * objects[i].h >= smallest]
    if options.max_objects is not None and len(indices) > options.max_objects:
        largest = sorted(indices, key=lambda i: -objects[i].w * objects[i].h)
        keep = set(largest[: options.max_objects])
        indices = [i for i in indices if i in keep]
    return indices


def visible_objects(record: ImageRecord, options: ContextConfig) -> Sequence[ObjectBox]:
    """The objects the context shows, in annotation order, after the crowd/size/cap options."""
    return [record.objects[i] for i in visible_indices(record, options)]


def context_relations(
    record: ImageRecord, options: ContextConfig, indices: Sequence[int] | None = None
) -> list[Relation]:
    """The relations the context shows: between visible objects, annotated and (per
    `derive_relations`) derived from boxes, most prominent first, at most `max_relations`.

    A relation's prominence is the geometric mean of its two box areas, so relations
    between large objects come before those that involve a small part of the picture.
    """
    if indices is None:
        indices = visible_indices(record, options)
    visible = set(indices)
    chosen = [r for r in record.relations if r.subject in visible and r.object in visible]
    mode = options.derive_relations
    if mode == "always" or (mode == "missing" and not record.relations):
        related = {frozenset((r.subject, r.object)) for r in chosen}
        derived = derive_relations(record.objects, indices)
        chosen += [r for r in derived if frozenset((r.subject, r.object)) not in related]
    objects = record.objects
    chosen.sort(key=lambda r: -math.sqrt(area(objects[r.subject]) * area(objects[r.object])))
    return chosen[: options.max_relations]


def object_labels(
    record: ImageRecord, indices: Sequence[int], options: ContextConfig, numbered: bool
) -> dict[int, str]:
    """The name of each visible object: attributes, category, and a number when `numbered`
    and its category repeats (`red car 2`)."""
    objects = record.objects
    totals = Counter(objects[i].category for i in indices)
    seen: Counter[str] = Counter()
    labels = {}
    for i in indices:
        obj = objects[i]
        attributes = [a for a in obj.attributes if a not in obj.category.split()]
        name = " ".join([*attributes[: options.max_attributes], obj.category])
        seen[obj.category] += 1
        if numbered and totals[obj.category] > 1:
            name = f"{name} {seen[obj.category]}"
        labels[i] = name
    return labels


def region_phrases(record: ImageRecord, limit: int) -> list[str]:
    """Up to `limit` region descriptions, those of the largest regions first."""
    regions = sorted(record.regions, key=lambda r: -r.w * r.h)
    return [r.phrase for r in regions[:limit]]


def box_line(obj: ObjectBox, width: int, height: int, decimals: int = 3) -> str:
    """`category: [x1, y1, x2, y2]` with coordinates in [0, 1], trailing zeros dropped."""
    return box_lines([obj], width, height, decimals)[0]


def box_lines(
    objects: Sequence[ObjectBox],
    width: int,
    height: int,
    decimals: int = 3,
    names: Sequence[str] | None = None,
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
    for k, obj in enumerate(objects):
        x, y = obj.x, obj.y
        a, b = int(x * sx + 0.5), int(y * sy + 0.5)
        c, d = int((x + obj.w) * sx + 0.5), int((y + obj.h) * sy + 0.5)
        if not (0 <= a <= c <= steps and 0 <= b <= d <= steps):
            a, b, c, d = (min(steps, max(0, v)) for v in (a, b, c, d))
        name = obj.category if names is None else names[k]
        lines.append(f"{name}: [{table[a]}, {table[b]}, {table[c]}, {table[d]}]")
    return lines


@functools.cache
def _number_table(decimals: int) -> tuple[str, ...]:
    steps = 10**decimals
    return tuple(repr(k / steps) for k in range(steps + 1))
