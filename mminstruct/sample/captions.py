"""Captions of a demo scene: settings, templates, and overview, layout and detail captions.

Captions are written from the same scene description as the picture, so they only say
what was drawn.
"""

from __future__ import annotations

import random

from mminstruct.sample.coco import mask_bbox
from mminstruct.sample.things import Scene, Thing
from mminstruct.words import join_phrases, number_word, plural, with_article

# What captions call a category when they count it: "three balls", not "three sports balls".
DISPLAY_NAMES = {"sports ball": "ball"}
SETTINGS = {
    ("park", False): [
        "in a grassy park on a sunny day",
        "on a green lawn under a blue sky",
        "on the grass in a sunny park",
    ],
    ("park", True): [
        "in a park at sunset",
        "on the grass under an orange evening sky",
        "in a park in the evening",
    ],
    ("street", False): [
        "on a city street on a sunny day",
        "on a street lined with buildings",
        "along a road in the city",
    ],
    ("street", True): [
        "on a city street at sunset",
        "on a street in the evening light",
        "along a road lined with buildings at dusk",
    ],
    ("table", False): [
        "on a wooden table",
        "on a wooden table in front of a {wall} wall",
        "on a brown wooden table",
    ],
}

TEMPLATES = {
    "left_right": [
        "{a} is on the left, and {b} is on the right",
        "on the left there is {a}, while {b} is on the right",
        "{a} appears on the left side and {b} on the right",
    ],
    "above": ["{high} flies above {low}", "{low} is below {high}"],
    "count": [
        "there are {n} {name} in this picture",
        "the picture shows {n} {name} in total",
        "{n} {name} can be seen here",
    ],
    "size": [
        "the {big} looks much bigger than the {small}",
        "the {small} is much smaller than the {big}",
    ],
}


def noun(t: Thing) -> str:
    """What captions call one thing, without an article: `red kite`, `person in a blue shirt`."""
    if t.zone == "flock":
        return "flock of birds"
    if t.category == "person":
        return f"person in {with_article(t.color + ' shirt')}"
    if t.category == "traffic light":
        return f"traffic light showing {t.variant}"
    if t.category == "sports ball":
        return {"soccer": "soccer ball", "basketball": "orange basketball"}.get(
            t.variant, f"{t.color} ball"
        )
    if t.category == "clock":
        return f"round clock with a {t.color} frame"
    return f"{t.color} {t.category}".strip()


def count_word(n: int) -> str:
    """How captions write a count: "no" for zero, else the number word."""
    return "no" if n == 0 else number_word(n)


def plural_name(category: str) -> str:
    """The plural of a category name as captions use it: "people", "balls"."""
    return plural(DISPLAY_NAMES.get(category, category))


def group(things: list[Thing]) -> list[list[Thing]]:
    """`things` (left to right) grouped by category, in order of first appearance."""
    groups: dict[tuple[str, str], list[Thing]] = {}
    for t in sorted(things, key=lambda t: mask_bbox(t.mask)[0]):
        groups.setdefault((t.category, t.zone), []).append(t)
    return list(groups.values())


def group_phrases(things: list[Thing], rng: random.Random) -> list[str]:
    """`["a red kite"]`, `["three kites"]`, or `["a red kite", "a blue kite"]`."""
    if len(things) > 1 and rng.random() < 0.5:
        return [f"{count_word(len(things))} {plural_name(things[0].category)}"]
    return [with_article(noun(t)) for t in things]


def zone_phrase(s: Scene, zone: str, rng: random.Random) -> str:
    """All things in `zone` ("ground", "sky" or "wall") as one phrase, or ""."""
    things = [t for t in s.things if (t.zone == "flock" and zone == "sky") or t.zone == zone]
    return join_phrases([p for g in group(things) for p in group_phrases(g, rng)]) if things else ""


def sentence(text: str) -> str:
    """`text` with a capital first letter and a full stop."""
    return f"{text[0].upper()}{text[1:]}."


def overview_caption(s: Scene, rng: random.Random) -> str:
    """Everything in the picture, in its setting."""
    ground, sky, wall = (zone_phrase(s, zone, rng) for zone in ("ground", "sky", "wall"))
    setting = rng.choice(SETTINGS[(s.kind, s.evening)]).format(wall=s.wall)
    if not ground and sky:
        place = "a park at sunset" if s.evening else "a grassy park on a sunny day"
        return sentence(f"{sky} in the sky above {place}")
    if not ground:
        return sentence(f"{wall} hangs on a {s.wall} wall above an empty wooden table")
    text = rng.choice(["", "a drawing of ", "a simple picture of ", "an illustration of "])
    text += f"{ground} {setting}"
    if sky:
        text += rng.choice([f", with {sky} in the sky", f", and {sky} up in the sky"])
    if wall:
        text += rng.choice([f", with {wall} on the wall", f", and {wall} on the wall behind"])
    return sentence(text)


def where(t: Thing, s: Scene) -> str:
    """Where `t` is in the picture: `on the left side`, `in the upper right part`, ..."""
    x, y, w, h = mask_bbox(t.mask)
    cx, cy = (x + w / 2) / s.width, (y + h / 2) / s.height
    side = "left" if cx < 0.38 else "right" if cx > 0.62 else ""
    level = "upper" if cy < 0.33 else "lower" if cy > 0.67 else ""
    if side and level:
        return f"in the {level} {side} part of the picture"
    if level:
        return f"near the {'top' if level == 'upper' else 'bottom'} of the picture"
    return f"on the {side} side of the picture" if side else "near the middle of the picture"


def above_pair(s: Scene) -> tuple[Thing, Thing] | None:
    """A thing in the sky wholly above a thing on the ground, if there is one."""
    for high in s.things:
        for low in s.things:
            if high.zone == "sky" and low.zone == "ground":
                hb, lb = mask_bbox(high.mask), mask_bbox(low.mask)
                if hb[1] + hb[3] < lb[1]:
                    return high, low
    return None


def layout_caption(s: Scene, rng: random.Random) -> str:
    """Where things are: left and right, above and below, or one thing's place."""
    things = [t for t in s.things if t.zone != "flock"] or s.things
    things = sorted(things, key=lambda t: mask_bbox(t.mask))
    left, right = things[0], things[-1]
    if len(things) > 1 and "left" in where(left, s) and "right" in where(right, s):
        a, b = with_article(noun(left)), with_article(noun(right))
        return sentence(rng.choice(TEMPLATES["left_right"]).format(a=a, b=b))
    pair = above_pair(s)
    if pair:
        high, low = (with_article(noun(t)) for t in pair)
        return sentence(rng.choice(TEMPLATES["above"]).format(high=high, low=low))
    big = max(things, key=lambda t: t.area_drawn)
    return sentence(f"{with_article(noun(big))} is {where(big, s)}")


def detail_caption(s: Scene, rng: random.Random) -> str:
    """A count of the most repeated category, or the flock, or a size comparison."""
    groups = sorted(group([t for t in s.things if t.zone != "flock"]), key=len, reverse=True)
    if groups and len(groups[0]) > 1:
        n, name = count_word(len(groups[0])), plural_name(groups[0][0].category)
        return sentence(rng.choice(TEMPLATES["count"]).format(n=n, name=name))
    if any(t.zone == "flock" for t in s.things):
        return sentence(
            f"a flock of small birds flies across the {'evening' if s.evening else 'blue'} sky"
        )
    things = sorted((g[0] for g in groups), key=lambda t: t.area_drawn)
    if len(things) > 1 and things[-1].area_drawn > 3 * things[0].area_drawn:
        big, small = noun(things[-1]), noun(things[0])
        return sentence(rng.choice(TEMPLATES["size"]).format(big=big, small=small))
    return sentence(
        f"the picture contains exactly {join_phrases([f'one {t.category}' for t in things])}"
    )


def captions(s: Scene, rng: random.Random) -> list[str]:
    """Three true captions of one scene, in different styles."""
    return [overview_caption(s, rng), layout_caption(s, rng), detail_caption(s, rng)]
