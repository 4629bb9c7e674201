"""Planning a demo scene and rendering it: which objects, where they go, and the picture.

Each object is drawn on its own transparent layer; its box, area and outline come from
the pixels of that layer still visible in the final picture, so boxes are exact.
"""

from __future__ import annotations

import random

import numpy as np
from PIL import Image, ImageDraw

from mminstruct.sample.drawing import BACKGROUNDS, COLORS, DRAWERS, HAIRS, PANTS, SKINS, WALLS
from mminstruct.sample.things import Frame, Scene, Thing

SIZES = [(320, 240), (400, 300), (240, 320), (360, 270)]
KINDS = ("park", "street", "table")
MAX_OBJECTS = 7

# Size of each object as a share of the image height, and its half width in those units.
UNIT = {
    "person": 0.42,
    "dog": 0.16,
    "sports ball": 0.075,
    "car": 0.17,
    "bus": 0.25,
    "traffic light": 0.5,
    "stop sign": 0.4,
    "cup": 0.22,
    "potted plant": 0.36,
    "kite": 0.15,
    "bird": 0.12,
    "clock": 0.22,
    "flock": 0.15,
}
HALF_WIDTH = {
    "person": 0.3,
    "dog": 0.95,
    "sports ball": 0.5,
    "car": 1.2,
    "bus": 1.4,
    "traffic light": 0.15,
    "stop sign": 0.22,
    "cup": 0.62,
    "potted plant": 0.5,
    "kite": 0.4,
    "bird": 0.55,
    "clock": 0.5,
    "flock": 1.3,
}
MARGIN = 3  # pixels kept free between every object and the image border
MAX_COVERED = 0.35  # the most of an object that objects in front of it may hide


# ---------------------------------------------------------------- planning a scene


def counts_for(kind: str, rng: random.Random, flock: bool) -> list[tuple[str, int]]:
    """How many objects of each category a scene of `kind` gets, most important first."""
    if kind == "park":
        plan = [("person", rng.choice([1, 2, 2, 3])), ("kite", rng.choice([0, 1, 2, 3, 3]))]
        plan += [("dog", rng.choice([0, 1, 1, 2])), ("sports ball", rng.choice([0, 0, 1]))]
        plan += [("bird", 0 if flock else rng.choice([0, 0, 1, 2]))]
    elif kind == "street":
        plan = [("car", rng.choice([1, 1, 2, 2, 3])), ("person", rng.choice([0, 1, 1, 2]))]
        plan += [("bus", rng.choice([0, 1])), ("traffic light", rng.choice([0, 1]))]
        plan += [("stop sign", rng.choice([0, 0, 1]))]
    else:
        plan = [("cup", rng.choice([1, 1, 2, 3])), ("potted plant", rng.choice([0, 1, 1]))]
        plan += [("clock", rng.choice([0, 1, 1]))]
    if sum(n for _, n in plan) == 0:
        plan[0] = (plan[0][0], 1)
    return plan


def zone_of(category: str) -> str:
    """Where a category lives: in the sky, on the wall, or on the ground."""
    return {"kite": "sky", "bird": "sky", "clock": "wall"}.get(category, "ground")


def new_thing(category: str, colors: list[str], rng: random.Random) -> Thing:
    """A thing of `category` with random looks; its colour comes from `colors` when given."""
    t = Thing(category, zone_of(category))
    if category in COLORS:
        t.color = rng.choice(colors or COLORS[category])
    if category == "person":
        t.extra = (rng.choice(SKINS), rng.choice(HAIRS), rng.choice(PANTS))
    elif category == "traffic light":
        t.variant = rng.choice(["red", "yellow", "green"])
    elif category == "stop sign":
        t.color = "red"
    elif category == "sports ball":
        t.variant = rng.choice(["soccer", "basketball", "plain"])
    return t


def plan_things(kind: str, rng: random.Random, flock: bool) -> list[Thing]:
    """The objects for one scene: at most seven, repeated ones in different colours."""
    things = [Thing("bird", "flock", variant=str(rng.randrange(10**6)))] if flock else []
    for category, count in counts_for(kind, rng, flock):
        free = list(COLORS.get(category, []))
        for _ in range(count):
            if len(things) < MAX_OBJECTS:
                things.append(new_thing(category, free, rng))
                if things[-1].color in free:
                    free.remove(things[-1].color)
    return things


def ground_range(s: Scene, category: str) -> tuple[float, float]:
    """The rows where the bottom of a ground object of `category` may rest."""
    if s.kind == "street" and category in ("car", "bus"):
        return 0.78 * s.height, s.height - MARGIN - 1
    if s.kind == "street":
        return s.horizon + 0.05 * s.height, 0.6 * s.height
    return s.horizon + 0.1 * s.height, s.height - MARGIN - 1


def anchor_row(s: Scene, t: Thing, rng: random.Random) -> tuple[float, float]:
    """A row for the anchor of `t` and its size in pixels (nearer ground objects are bigger)."""
    unit = UNIT[t.kind] * s.height * rng.uniform(0.9, 1.1)
    if t.zone == "ground":
        low, high = ground_range(s, t.category)
        y = rng.uniform(low, high)
        return y, unit * (0.65 + 0.45 * (y - low) / max(1.0, high - low))
    if t.zone == "wall":
        return rng.uniform(0.1 * s.height + unit / 2, s.horizon - 0.6 * unit), unit
    if t.zone == "flock":
        return rng.uniform(0.15, 0.3) * s.height, unit
    low = 0.06 * s.height + 0.5 * unit
    return rng.uniform(low, max(low, s.horizon - 0.2 * s.height - 1.1 * unit)), unit


def sample_frame(s: Scene, t: Thing, y: float, unit: float, rng: random.Random) -> Frame:
    """A frame at row `y` and a random column that keeps the object inside the picture."""
    half = HALF_WIDTH[t.kind]
    unit = min(unit, (s.width - 2 * MARGIN - 2) / (2 * half))
    if t.zone == "ground":  # ground objects reach from v=0 up to v=1
        unit = min(unit, y - MARGIN - 2)
    low, high = MARGIN + 1 + half * unit, s.width - MARGIN - 1 - half * unit
    return Frame(rng.uniform(low, high), y, unit, flip=rng.random() < 0.5)


# ---------------------------------------------------------------- drawing a scene


def draw_layer(t: Thing, size: tuple[int, int]) -> Image.Image:
    """`t` drawn alone on a transparent layer of the picture's size."""
    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    DRAWERS[t.kind](ImageDraw.Draw(layer), t.frame, t)
    return layer


def fits(mask: np.ndarray, placed: list[Thing]) -> bool:
    """Whether `mask` stays off the border and hides little of what is already placed."""
    height, width = mask.shape
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    if len(rows) == 0 or rows[0] < MARGIN or cols[0] < MARGIN:
        return False
    if rows[-1] >= height - MARGIN or cols[-1] >= width - MARGIN:
        return False
    for other in placed:
        assert other.mask is not None
        still = int(other.mask.sum()) - int((other.mask & mask).sum())
        if still < (1 - MAX_COVERED) * other.area_drawn:
            return False
    return True


def place(
    s: Scene, t: Thing, canvas: Image.Image, rng: random.Random, row: tuple[float, float]
) -> bool:
    """Draw `t` at the first of 30 random columns where it fits; False when none does."""
    placed = [p for p in s.things if p.mask is not None]
    for _ in range(30):
        t.frame = sample_frame(s, t, *row, rng)
        layer = draw_layer(t, canvas.size)
        mask = np.asarray(layer)[..., 3] > 0
        if fits(mask, placed):
            for other in placed:
                other.mask &= ~mask
            t.mask, t.area_drawn = mask, int(mask.sum())
            canvas.alpha_composite(layer)
            return True
    return False


def render(s: Scene, rng: random.Random) -> Image.Image:
    """Draw the background, then the objects far to near; drop any that find no room."""
    canvas = Image.new("RGBA", (s.width, s.height), (0, 0, 0, 255))
    BACKGROUNDS[s.kind](ImageDraw.Draw(canvas), s, rng)
    rows = [anchor_row(s, t, rng) for t in s.things]
    order = sorted(range(len(s.things)), key=lambda i: (s.things[i].zone == "ground", rows[i][0]))
    for i in order:
        place(s, s.things[i], canvas, rng, rows[i])
    s.things = [t for t in s.things if t.mask is not None]
    return canvas.convert("RGB")


def make_scene(image_id: int, kind: str, flock: bool, rng: random.Random) -> Scene:
    """A planned scene: setting, size, time of day, wall colour and objects."""
    width, height = rng.choice(SIZES)
    evening = kind != "table" and rng.random() < 0.35
    horizon = round(height * {"park": rng.uniform(0.5, 0.6), "street": 0.45, "table": 0.5}[kind])
    scene = Scene(image_id, kind, evening, width, height, horizon, rng.choice(list(WALLS)))
    scene.things = plan_things(kind, rng, flock)
    return scene
