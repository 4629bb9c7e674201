"""The region grounding task (LLaVA-1.5's RefCOCO/VG formats): phrase -> box, box -> phrase.

Every phrase names exactly one object (`referring.referents`); half the turns ask for the
box of a phrase, half for a short description of a box, in a seeded order.
"""

from __future__ import annotations

import random

from mminstruct.generate.rule_based.phrasing import _Say
from mminstruct.generate.rule_based.referring import Referent, llava_box, referents
from mminstruct.generate.rule_based.scene import Scene
from mminstruct.generate.rule_based.turns import Asked
from mminstruct.records import ImageRecord

# LLaVA-1.5's two requests, word for word (its 665K mix: RefCOCO, RefCOCO+, RefCOCOg, VG).
BOX_REQUEST = "Please provide the bounding box coordinate of the region this sentence describes: "
PHRASE_REQUEST = "Please provide a short description for this region: "


def _usable(referent: Referent, scene: Scene) -> bool:
    """Objects of a free-form vocabulary (Visual Genome) only when the name is one countable
    thing (`Scene.counts` leaves out "trees", "grass")."""
    return referent.category is None or referent.category in scene.counts


def _one_box_each(found: list[Referent]) -> list[Referent]:
    """The referents whose phrase means one box: a region description that reads like an
    object's phrase ("plate on the table") but has another box makes both ambiguous."""
    boxes: dict[str, set[tuple[float, ...]]] = {}
    for referent in found:
        boxes.setdefault(referent.phrase, set()).add(referent.box)
    kept = {r.phrase: r for r in found if len(boxes[r.phrase]) == 1}
    return list(kept.values())


def _regions(
    record: ImageRecord,
    scene: Scene,
    say: _Say,
    rng: random.Random,
    limit: int,
    square: bool = True,
) -> list[tuple[str, str]]:
    found = [r for r in referents(record, scene.relations) if _usable(r, scene)]
    unique = _one_box_each(found)
    rng.shuffle(unique)
    boxes_first = rng.random() < 0.5
    turns = []
    for n, referent in enumerate(unique[:limit]):
        box = llava_box(referent.box, record.width, record.height, square)
        if (n % 2 == 0) == boxes_first:
            turns.append(Asked(BOX_REQUEST + referent.phrase + ".", box, "phrase_to_box"))
        else:
            phrase = referent.phrase[:1].upper() + referent.phrase[1:] + "."
            turns.append(Asked(PHRASE_REQUEST + box, phrase, "box_to_phrase"))
    return turns
