"""Draw the bundled demo sample: simple scenes with exact COCO boxes and true captions.

`make_sample(out_dir)` writes `images/`, `instances.json` and `captions.json`. Every scene
is drawn here with Pillow from a seeded `random.Random`, so one seed always gives the same
bytes. Each object is drawn on its own transparent layer; its box, area and outline come
from the pixels of that layer still visible in the final picture, so boxes are exact.
Captions are written from the same scene description, so they only say what was drawn.

Regenerate the shipped copy with `python -m mminstruct.sample mminstruct/sample`.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

RGB = tuple[int, int, int]
Draw = ImageDraw.ImageDraw

# (id, name, supercategory), exactly as in COCO 2017.
CATEGORIES = [
    (1, "person", "person"),
    (3, "car", "vehicle"),
    (6, "bus", "vehicle"),
    (10, "traffic light", "outdoor"),
    (13, "stop sign", "outdoor"),
    (16, "bird", "animal"),
    (18, "dog", "animal"),
    (37, "sports ball", "sports"),
    (38, "kite", "sports"),
    (47, "cup", "kitchen"),
    (64, "potted plant", "furniture"),
    (85, "clock", "indoor"),
]
CATEGORY_ID = {name: cid for cid, name, _ in CATEGORIES}
LICENSES = [
    {"id": 1, "name": "CC BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/"},
    {"id": 2, "name": "CC0 1.0", "url": "https://creativecommons.org/publicdomain/zero/1.0/"},
]
INFO = {
    "description": "mminstruct demo sample: procedurally drawn scenes",
    "version": "1.0",
    "contributor": "mminstruct",
    "url": "",
}
SIZES = [(320, 240), (400, 300), (240, 320), (360, 270)]
KINDS = ("park", "street", "table")
PNG_COUNT = 2
MAX_OBJECTS = 7

PALETTE: dict[str, RGB] = {
    "red": (205, 40, 40),
    "blue": (40, 90, 205),
    "green": (40, 150, 70),
    "yellow": (245, 205, 40),
    "orange": (245, 140, 30),
    "purple": (135, 60, 170),
    "pink": (240, 130, 180),
    "white": (245, 245, 245),
    "black": (30, 30, 30),
    "brown": (120, 75, 35),
    "golden": (215, 165, 80),
}
COLORS = {
    "person": ["red", "blue", "green", "yellow", "orange", "purple", "white"],
    "dog": ["brown", "black", "white", "golden"],
    "car": ["red", "blue", "white", "black", "yellow", "green"],
    "bus": ["yellow", "red", "blue"],
    "bird": ["black", "white", "blue"],
    "kite": ["red", "blue", "green", "yellow", "orange", "purple", "pink"],
    "sports ball": ["red", "blue", "yellow"],
    "cup": ["white", "red", "blue", "yellow", "green"],
    "clock": ["black", "brown", "red"],
}
SKINS: list[RGB] = [(240, 200, 170), (200, 150, 110), (140, 95, 60), (95, 65, 45)]
HAIRS: list[RGB] = [(40, 30, 25), (90, 60, 30), (210, 180, 110), (20, 20, 20)]
PANTS: list[RGB] = [(40, 50, 90), (50, 50, 50), (110, 90, 70), (70, 80, 110)]
WALLS: dict[str, RGB] = {
    "beige": (225, 210, 180),
    "light blue": (180, 205, 230),
    "pale green": (195, 225, 190),
}

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


@dataclass(frozen=True)
class Frame:
    """Where an object sits: an anchor pixel, a size in pixels, and a mirror flag.

    Drawers use local units: `u` to the right (mirrored when `flip`), `v` upwards,
    both multiplied by `unit` pixels.
    """

    x: float
    y: float
    unit: float
    flip: bool = False

    def pt(self, u: float, v: float) -> tuple[float, float]:
        """The pixel of the local point (u, v)."""
        return (self.x + (-u if self.flip else u) * self.unit, self.y - v * self.unit)

    def pts(self, *uv: tuple[float, float]) -> list[tuple[float, float]]:
        """Pixels of several local points, for polygons and lines."""
        return [self.pt(u, v) for u, v in uv]

    def box(self, u0: float, v0: float, u1: float, v1: float) -> list[float]:
        """The pixel box [x0, y0, x1, y1] spanned by two local corners."""
        (x0, y0), (x1, y1) = self.pt(u0, v0), self.pt(u1, v1)
        return [min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)]

    def width(self, share: float) -> int:
        """A line width of `share` units, at least one pixel."""
        return max(1, round(share * self.unit))


@dataclass
class Thing:
    """One drawn object: what it is, how it looks, and (once drawn) its visible pixels."""

    category: str
    zone: str  # "ground", "sky", "wall" or "flock"
    color: str = ""  # the colour name captions use; "" when captions name none
    variant: str = ""  # lit lamp, ball kind, or the flock's pattern seed
    extra: tuple[RGB, ...] = ()  # secondary colours (skin, hair, trousers)
    frame: Frame = Frame(0.0, 0.0, 1.0)
    mask: np.ndarray | None = None  # visible pixels in the final picture
    area_drawn: int = 0  # pixels drawn before anything covered it

    @property
    def kind(self) -> str:
        """The key for drawers and sizes: the category, or "flock" for the crowd."""
        return "flock" if self.zone == "flock" else self.category


@dataclass
class Scene:
    """One picture: its setting, size, and the objects drawn in it."""

    image_id: int
    kind: str  # "park", "street" or "table"
    evening: bool
    width: int
    height: int
    horizon: int  # first row below the sky or wall
    wall: str = ""
    things: list[Thing] = field(default_factory=list)


# ---------------------------------------------------------------- colours and shapes


def shade(color: RGB, factor: float) -> RGB:
    """`color` made darker (factor < 1) or lighter (factor > 1)."""
    r, g, b = (max(0, min(255, round(c * factor))) for c in color)
    return (r, g, b)


def mix(a: RGB, b: RGB, t: float) -> RGB:
    """The colour a share `t` of the way from `a` to `b`."""
    r, g, b = (round(x + (y - x) * t) for x, y in zip(a, b, strict=True))
    return (r, g, b)


def draw_person(d: Draw, f: Frame, t: Thing) -> None:
    """A standing person seen from the front, `unit` pixels tall."""
    skin, hair, pants = t.extra
    shirt = PALETTE[t.color]
    for side in (-1, 1):
        d.rectangle(f.box(side * 0.015, 0.03, side * 0.11, 0.5), fill=pants)
        d.rectangle(f.box(side * 0.01, 0.0, side * 0.125, 0.04), fill=(35, 30, 30))
        d.polygon(
            f.pts((side * 0.12, 0.8), (side * 0.2, 0.77), (side * 0.25, 0.53), (side * 0.18, 0.52)),
            fill=shade(shirt, 0.85),
        )
        d.ellipse(f.box(side * 0.18, 0.47, side * 0.255, 0.54), fill=skin)
    d.rectangle(f.box(-0.035, 0.76, 0.035, 0.84), fill=skin)
    d.rounded_rectangle(f.box(-0.15, 0.47, 0.15, 0.81), radius=f.width(0.05), fill=shirt)
    d.ellipse(f.box(-0.09, 0.82, 0.09, 1.0), fill=skin)
    d.chord(f.box(-0.095, 0.83, 0.095, 1.0), 180, 360, fill=hair)


def draw_dog(d: Draw, f: Frame, t: Thing) -> None:
    """A dog seen from the side, facing right (left when mirrored)."""
    fur = PALETTE[t.color]
    dark = shade(fur, 0.7) if t.color != "black" else (70, 70, 70)
    d.line(f.pts((-0.5, 0.6), (-0.72, 0.62), (-0.85, 0.85)), fill=fur, width=f.width(0.07))
    for u in (-0.45, -0.3, 0.25, 0.4):
        d.rectangle(f.box(u - 0.045, 0.0, u + 0.045, 0.5), fill=shade(fur, 0.9))
    d.ellipse(f.box(-0.6, 0.35, 0.55, 0.72), fill=fur)
    d.ellipse(f.box(0.36, 0.6, 0.74, 0.98), fill=fur)
    d.ellipse(f.box(0.6, 0.62, 0.92, 0.8), fill=shade(fur, 1.08))
    d.ellipse(f.box(0.85, 0.7, 0.95, 0.79), fill=(20, 20, 20))
    d.ellipse(f.box(0.58, 0.83, 0.65, 0.9), fill=(20, 20, 20))
    d.polygon(f.pts((0.4, 0.95), (0.5, 0.99), (0.44, 0.64), (0.36, 0.7)), fill=dark)


def draw_wheel(d: Draw, f: Frame, u: float, radius: float) -> None:
    """A black tyre with a grey hub, touching the ground at `u`."""
    d.ellipse(f.box(u - radius, 0.0, u + radius, 2 * radius), fill=(25, 25, 25))
    hub = radius * 0.45
    d.ellipse(f.box(u - hub, radius - hub, u + hub, radius + hub), fill=(170, 170, 175))


def draw_car(d: Draw, f: Frame, t: Thing) -> None:
    """A small car seen from the side, 2.4 units long, facing right."""
    paint, glass = PALETTE[t.color], (170, 215, 235)
    d.polygon(f.pts((-0.75, 0.55), (-0.45, 1.0), (0.45, 1.0), (0.8, 0.55)), fill=paint)
    d.polygon(f.pts((-0.62, 0.58), (-0.4, 0.92), (-0.02, 0.92), (-0.02, 0.58)), fill=glass)
    d.polygon(f.pts((0.05, 0.58), (0.05, 0.92), (0.4, 0.92), (0.66, 0.58)), fill=glass)
    d.rounded_rectangle(f.box(-1.2, 0.12, 1.2, 0.6), radius=f.width(0.12), fill=paint)
    d.line(f.pts((-1.1, 0.38), (1.1, 0.38)), fill=shade(paint, 0.75), width=f.width(0.03))
    d.ellipse(f.box(1.06, 0.4, 1.2, 0.52), fill=(250, 240, 150))
    d.rectangle(f.box(-1.2, 0.42, -1.12, 0.52), fill=(200, 30, 30))
    for u in (-0.72, 0.72):
        draw_wheel(d, f, u, 0.22)


def draw_bus(d: Draw, f: Frame, t: Thing) -> None:
    """A city bus seen from the side, 2.8 units long, facing right."""
    paint, glass = PALETTE[t.color], (160, 205, 230)
    d.rounded_rectangle(f.box(-1.4, 0.1, 1.4, 1.0), radius=f.width(0.08), fill=paint)
    for i in range(5):
        u = -1.28 + i * 0.44
        d.rectangle(f.box(u, 0.55, u + 0.36, 0.88), fill=glass)
    d.rectangle(f.box(0.98, 0.15, 1.25, 0.88), fill=glass)
    d.line(f.pts((1.115, 0.15), (1.115, 0.88)), fill=shade(paint, 0.6), width=f.width(0.02))
    stripe = (245, 245, 245) if t.color != "white" else (60, 60, 60)
    d.rectangle(f.box(-1.4, 0.38, 0.98, 0.46), fill=stripe)
    for u in (-0.9, 0.7):
        draw_wheel(d, f, u, 0.16)


def draw_traffic_light(d: Draw, f: Frame, t: Thing) -> None:
    """A traffic light on a pole; the lamp named by `variant` is lit."""
    d.rectangle(f.box(-0.03, 0.0, 0.03, 0.62), fill=(90, 90, 95))
    d.rounded_rectangle(f.box(-0.13, 0.58, 0.13, 1.0), radius=f.width(0.03), fill=(35, 35, 35))
    lamps = [("red", (230, 30, 30)), ("yellow", (250, 200, 30)), ("green", (40, 220, 80))]
    for i, (name, color) in enumerate(lamps):
        v = 0.93 - i * 0.135
        lit = color if name == t.variant else shade(color, 0.3)
        d.ellipse(f.box(-0.07, v - 0.055, 0.07, v + 0.055), fill=lit)


STROKES = {
    "S": [(0.8, 1), (0, 1), (0, 0.5), (0.8, 0.5), (0.8, 0), (0, 0)],
    "T": [(0, 1), (0.8, 1), (0.4, 1), (0.4, 0)],
    "O": [(0, 0), (0.8, 0), (0.8, 1), (0, 1), (0, 0)],
    "P": [(0, 0), (0, 1), (0.8, 1), (0.8, 0.5), (0, 0.5)],
}


def octagon(f: Frame, cv: float, radius: float) -> list[tuple[float, float]]:
    """The corners of a regular octagon with flat top, centred at (0, cv)."""
    angles = np.pi / 8 + np.arange(8) * np.pi / 4
    return f.pts(*[(radius * np.cos(a), cv + radius * np.sin(a)) for a in angles])


def draw_stop_sign(d: Draw, f: Frame, t: Thing) -> None:
    """A red octagonal stop sign with white letters on a grey pole."""
    d.rectangle(f.box(-0.025, 0.0, 0.025, 0.62), fill=(120, 120, 125))
    d.polygon(octagon(f, 0.79, 0.21), fill=(245, 245, 245))
    d.polygon(octagon(f, 0.79, 0.185), fill=(200, 25, 30))
    upright = Frame(f.x, f.y, f.unit)  # letters are never mirrored
    for i, letter in enumerate("STOP"):
        u0 = -0.14 + i * 0.075
        points = [(u0 + 0.05 * x, 0.755 + 0.07 * y) for x, y in STROKES[letter]]
        d.line(upright.pts(*points), fill=(250, 250, 250), width=1)


def draw_bird(d: Draw, f: Frame, t: Thing) -> None:
    """A bird gliding with raised wings, one unit across, centred on the anchor."""
    body = PALETTE[t.color]
    wing = shade(body, 0.8) if t.color != "black" else (60, 60, 60)
    d.polygon(f.pts((-0.1, 0.02), (-0.5, 0.3), (-0.35, 0.32), (0.05, 0.04)), fill=wing)
    d.polygon(f.pts((0.0, 0.03), (0.3, 0.35), (0.45, 0.3), (0.12, 0.0)), fill=wing)
    d.ellipse(f.box(-0.3, -0.08, 0.22, 0.08), fill=body)
    d.ellipse(f.box(0.14, -0.03, 0.32, 0.12), fill=body)
    d.polygon(f.pts((0.3, 0.06), (0.42, 0.03), (0.3, 0.0)), fill=(240, 160, 30))
    d.polygon(f.pts((-0.28, 0.0), (-0.46, 0.1), (-0.46, -0.08)), fill=body)


def draw_flock(d: Draw, f: Frame, t: Thing) -> None:
    """Many tiny birds (`v` strokes) scattered around the anchor: a crowd region."""
    pattern = random.Random(int(t.variant))
    for _ in range(pattern.randint(9, 14)):
        u, v = pattern.uniform(-1.1, 1.1), pattern.uniform(-0.4, 0.4)
        s = pattern.uniform(0.1, 0.16)
        wings = f.pts((u - s, v + s * 0.6), (u, v), (u + s, v + s * 0.6))
        d.line(wings, fill=(35, 30, 40), width=2)


BOW = [(-0.07, 0.04), (0.07, -0.04), (0.07, 0.04), (-0.07, -0.04)]  # a bow on a kite's tail


def draw_kite(d: Draw, f: Frame, t: Thing) -> None:
    """A diamond kite with a bowed tail, centred on the anchor."""
    cloth = PALETTE[t.color]
    tail = [(0.0, -0.5), (0.12, -0.72), (-0.04, -0.92), (0.1, -1.12)]
    d.line(f.pts(*tail), fill=(60, 60, 60), width=f.width(0.03))
    for u, v in tail[1:]:
        bow = [(u + du, v + dv) for du, dv in BOW]
        d.polygon(f.pts(*bow), fill=shade(cloth, 0.7))
    corners = f.pts((0.0, 0.5), (0.35, 0.1), (0.0, -0.5), (-0.35, 0.1))
    d.polygon(corners, fill=cloth, outline=(50, 50, 50))
    d.line([corners[0], corners[2]], fill=shade(cloth, 0.6), width=f.width(0.025))
    d.line([corners[1], corners[3]], fill=shade(cloth, 0.6), width=f.width(0.025))


def draw_ball(d: Draw, f: Frame, t: Thing) -> None:
    """A ball one unit across resting on the anchor: soccer, basketball or plain."""
    box = f.box(-0.5, 0.0, 0.5, 1.0)
    if t.variant == "soccer":
        d.ellipse(box, fill=(245, 245, 245), outline=(60, 60, 60))
        d.regular_polygon((f.x, f.y - 0.5 * f.unit, 0.18 * f.unit), 5, fill=(25, 25, 25))
    elif t.variant == "basketball":
        d.ellipse(box, fill=(225, 110, 30), outline=(40, 25, 20))
        d.line(f.pts((-0.5, 0.5), (0.5, 0.5)), fill=(40, 25, 20), width=f.width(0.05))
        d.line(f.pts((0.0, 0.0), (0.0, 1.0)), fill=(40, 25, 20), width=f.width(0.05))
    else:
        d.ellipse(box, fill=PALETTE[t.color])
        d.ellipse(f.box(-0.28, 0.6, -0.08, 0.8), fill=(250, 250, 250))


def draw_cup(d: Draw, f: Frame, t: Thing) -> None:
    """A mug with a handle on the right and coffee inside, one unit tall."""
    body = PALETTE[t.color]
    edge = shade(body, 0.75)
    d.ellipse(f.box(0.2, 0.25, 0.62, 0.8), outline=edge, width=f.width(0.09))
    d.polygon(f.pts((-0.35, 0.95), (0.35, 0.95), (0.28, 0.03), (-0.28, 0.03)), fill=body)
    d.ellipse(f.box(-0.28, 0.0, 0.28, 0.07), fill=body)
    d.ellipse(f.box(-0.35, 0.9, 0.35, 1.0), fill=edge)
    d.ellipse(f.box(-0.3, 0.915, 0.3, 0.985), fill=(95, 60, 35))


def draw_plant(d: Draw, f: Frame, t: Thing) -> None:
    """A leafy green plant in a terracotta pot, one unit tall."""
    leaves = [(-0.3, 0.62, 0.0), (0.28, 0.66, 0.3), (-0.14, 0.82, 0.45), (0.14, 0.86, 0.2)]
    for u, v, tone in leaves:
        d.line(f.pts((0.0, 0.42), (u * 0.8, v - 0.05)), fill=(50, 110, 40), width=f.width(0.03))
        green = mix((40, 130, 50), (110, 185, 70), tone)
        d.ellipse(f.box(u - 0.17, v - 0.1, u + 0.17, v + 0.14), fill=green)
    d.ellipse(f.box(-0.12, 0.82, 0.12, 1.0), fill=(70, 160, 60))
    d.polygon(f.pts((-0.2, 0.4), (0.2, 0.4), (0.15, 0.0), (-0.15, 0.0)), fill=(190, 95, 55))
    d.rectangle(f.box(-0.24, 0.36, 0.24, 0.44), fill=(170, 80, 45))


def draw_clock(d: Draw, f: Frame, t: Thing) -> None:
    """A round wall clock one unit across, centred on the anchor."""
    d.ellipse(f.box(-0.5, -0.5, 0.5, 0.5), fill=PALETTE[t.color])
    d.ellipse(f.box(-0.42, -0.42, 0.42, 0.42), fill=(250, 250, 245))
    for hour in range(12):
        a = hour * np.pi / 6
        d.line(
            f.pts((0.34 * np.sin(a), 0.34 * np.cos(a)), (0.39 * np.sin(a), 0.39 * np.cos(a))),
            fill=(40, 40, 40),
            width=1,
        )
    d.line(f.pts((0.0, 0.0), (0.0, 0.3)), fill=(30, 30, 30), width=f.width(0.04))
    d.line(f.pts((0.0, 0.0), (0.2, -0.08)), fill=(30, 30, 30), width=f.width(0.05))


DRAWERS: dict[str, Callable[[Draw, Frame, Thing], None]] = {
    "person": draw_person,
    "dog": draw_dog,
    "car": draw_car,
    "bus": draw_bus,
    "traffic light": draw_traffic_light,
    "stop sign": draw_stop_sign,
    "bird": draw_bird,
    "flock": draw_flock,
    "kite": draw_kite,
    "sports ball": draw_ball,
    "cup": draw_cup,
    "potted plant": draw_plant,
    "clock": draw_clock,
}


# ---------------------------------------------------------------- backgrounds


def draw_sky(d: Draw, s: Scene, rng: random.Random) -> None:
    """A vertical sky gradient with the sun: high by day, setting in the evening."""
    top, low = ((70, 40, 120), (250, 150, 80)) if s.evening else ((70, 130, 210), (175, 215, 245))
    for y in range(s.horizon):
        d.line([(0, y), (s.width, y)], fill=mix(top, low, y / max(1, s.horizon - 1)))
    if s.evening:
        x, r = rng.uniform(0.2, 0.8) * s.width, 0.1 * s.height
        d.ellipse([x - r, s.horizon - r, x + r, s.horizon + r], fill=(255, 200, 90))
    else:
        x, y, r = rng.uniform(0.1, 0.9) * s.width, 0.1 * s.height, 0.05 * s.height
        d.ellipse([x - r, y - r, x + r, y + r], fill=(255, 235, 120))


def draw_park(d: Draw, s: Scene, rng: random.Random) -> None:
    """Sky over a lawn with a few darker tufts of grass."""
    draw_sky(d, s, rng)
    grass = (70, 120, 55) if s.evening else (95, 170, 70)
    d.rectangle([0, s.horizon, s.width, s.height], fill=grass)
    for _ in range(40):
        x, y = rng.uniform(0, s.width), rng.uniform(s.horizon + 4, s.height)
        d.line([(x, y), (x + rng.uniform(-3, 3), y - 5)], fill=shade(grass, 0.75), width=1)


def draw_street(d: Draw, s: Scene, rng: random.Random) -> None:
    """Sky, a row of buildings, a pavement and a road with a dashed centre line."""
    draw_sky(d, s, rng)
    x = 0.0
    while x < s.width:
        w, h = rng.uniform(0.15, 0.3) * s.width, rng.uniform(0.12, 0.3) * s.height
        tone = rng.choice([(160, 150, 140), (185, 165, 150), (140, 145, 160)])
        d.rectangle([x, s.horizon - h, x + w, s.horizon], fill=shade(tone, 0.8 if s.evening else 1))
        x += w
    road = round(0.62 * s.height)
    d.rectangle([0, s.horizon, s.width, road], fill=(190, 188, 182))
    d.rectangle([0, road, s.width, s.height], fill=(75, 75, 80))
    dash_y = round(0.88 * s.height)
    for x0 in range(0, s.width, 40):
        d.rectangle([x0 + 8, dash_y, x0 + 28, dash_y + 2], fill=(240, 240, 240))


def draw_table(d: Draw, s: Scene, rng: random.Random) -> None:
    """A plain wall above a wooden table top with grain lines."""
    d.rectangle([0, 0, s.width, s.horizon], fill=WALLS[s.wall])
    d.rectangle([0, s.horizon, s.width, s.height], fill=(165, 110, 65))
    for _ in range(6):
        y = rng.uniform(s.horizon + 6, s.height)
        d.line([(0, y), (s.width, y + rng.uniform(-4, 4))], fill=(145, 95, 55), width=1)


BACKGROUNDS: dict[str, Callable[[Draw, Scene, random.Random], None]] = {
    "park": draw_park,
    "street": draw_street,
    "table": draw_table,
}


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


# ---------------------------------------------------------------- annotations


def mask_bbox(mask: np.ndarray) -> list[float]:
    """The tight COCO box [x, y, w, h] of the pixels set in `mask`."""
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    x, y = int(cols[0]), int(rows[0])
    return [float(x), float(y), float(cols[-1] + 1 - x), float(rows[-1] + 1 - y)]


def trace_polygon(mask: np.ndarray) -> list[float]:
    """An outline of `mask`: its left edge downwards, then its right edge back up.

    Rows are sampled, but the top, bottom, leftmost and rightmost rows are always kept,
    so the polygon spans exactly the box of the mask.
    """
    rows = np.nonzero(mask.any(axis=1))[0]
    lefts = mask[rows].argmax(axis=1)
    rights = mask.shape[1] - mask[rows][:, ::-1].argmax(axis=1)
    last = len(rows) - 1
    keep = sorted({*range(0, last, max(1, len(rows) // 12)), last})
    keep = sorted({*keep, int(lefts.argmin()), int(rights.argmax())})
    points = [(lefts[i], rows[i]) for i in keep] + [(lefts[last], rows[last] + 1)]
    points += [(rights[last], rows[last] + 1)] + [(rights[i], rows[i]) for i in keep[::-1]]
    return [float(c) for point in points for c in point]


def mask_rle(mask: np.ndarray) -> dict:
    """COCO's uncompressed RLE: column-major run lengths, starting with a run of zeros."""
    flat = mask.flatten(order="F").astype(np.int8)
    edges = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], edges, [flat.size]])).tolist()
    if flat[0]:
        runs = [0, *runs]
    return {"counts": runs, "size": list(mask.shape)}


def annotation(t: Thing, ann_id: int, image_id: int) -> dict:
    """The COCO instance annotation of one drawn thing (a crowd for the flock)."""
    assert t.mask is not None
    crowd = t.zone == "flock"
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": CATEGORY_ID[t.category],
        "segmentation": mask_rle(t.mask) if crowd else [trace_polygon(t.mask)],
        "area": float(t.mask.sum()),
        "bbox": mask_bbox(t.mask),
        "iscrowd": int(crowd),
    }


def image_entry(s: Scene, file_name: str) -> dict:
    """The COCO `images` entry of one scene."""
    return {
        "id": s.image_id,
        "file_name": file_name,
        "width": s.width,
        "height": s.height,
        "license": 1 + (s.image_id + 1) % len(LICENSES),
    }


# ---------------------------------------------------------------- captions

NUMBERS = ["no", "one", "two", "three", "four", "five", "six", "seven"]
PLURALS = {"person": "people", "bus": "buses", "sports ball": "balls"}
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


def with_article(text: str) -> str:
    """`text` after `a` or `an`."""
    return f"{'an' if text[0] in 'aeiou' else 'a'} {text}"


def join(items: list[str]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def plural(category: str) -> str:
    """The plural of a category name as captions use it."""
    return PLURALS.get(category, f"{category}s")


def group(things: list[Thing]) -> list[list[Thing]]:
    """`things` (left to right) grouped by category, in order of first appearance."""
    groups: dict[tuple[str, str], list[Thing]] = {}
    for t in sorted(things, key=lambda t: mask_bbox(t.mask)[0]):
        groups.setdefault((t.category, t.zone), []).append(t)
    return list(groups.values())


def group_phrases(things: list[Thing], rng: random.Random) -> list[str]:
    """`["a red kite"]`, `["three kites"]`, or `["a red kite", "a blue kite"]`."""
    if len(things) > 1 and rng.random() < 0.5:
        return [f"{NUMBERS[len(things)]} {plural(things[0].category)}"]
    return [with_article(noun(t)) for t in things]


def zone_phrase(s: Scene, zone: str, rng: random.Random) -> str:
    """All things in `zone` ("ground", "sky" or "wall") as one phrase, or ""."""
    things = [t for t in s.things if (t.zone == "flock" and zone == "sky") or t.zone == zone]
    return join([p for g in group(things) for p in group_phrases(g, rng)]) if things else ""


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
        n, name = NUMBERS[len(groups[0])], plural(groups[0][0].category)
        return sentence(rng.choice(TEMPLATES["count"]).format(n=n, name=name))
    if any(t.zone == "flock" for t in s.things):
        return sentence(
            f"a flock of small birds flies across the {'evening' if s.evening else 'blue'} sky"
        )
    things = sorted((g[0] for g in groups), key=lambda t: t.area_drawn)
    if len(things) > 1 and things[-1].area_drawn > 3 * things[0].area_drawn:
        big, small = noun(things[-1]), noun(things[0])
        return sentence(rng.choice(TEMPLATES["size"]).format(big=big, small=small))
    return sentence(f"the picture contains exactly {join([f'one {t.category}' for t in things])}")


def captions(s: Scene, rng: random.Random) -> list[str]:
    """Three true captions of one scene, in different styles."""
    return [overview_caption(s, rng), layout_caption(s, rng), detail_caption(s, rng)]


# ---------------------------------------------------------------- writing the sample


def plan_sample(n_images: int, rng: random.Random) -> tuple[list[str], set[int], int]:
    """The setting of each image, the indices saved as PNG, and the image with the flock."""
    kinds = [KINDS[i % len(KINDS)] for i in range(n_images)]
    rng.shuffle(kinds)
    pngs = set(rng.sample(range(n_images), min(PNG_COUNT, n_images)))
    return kinds, pngs, kinds.index("park") if "park" in kinds else -1


def write_json(path: Path, data: dict) -> None:
    """Compact JSON with a final newline, the same bytes for the same data."""
    path.write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")


def save_image(image: Image.Image, path: Path) -> None:
    """Save as PNG or JPEG (quality 85) by the file's extension."""
    if path.suffix == ".png":
        image.save(path, "PNG", optimize=True)
    else:
        image.save(path, "JPEG", quality=85)


def write_scene(out_dir: Path, scene: Scene, rng: random.Random, png: bool) -> dict:
    """Draw and save one scene; its COCO `images` entry."""
    file_name = f"{scene.image_id:012d}.{'png' if png else 'jpg'}"
    save_image(render(scene, rng), out_dir / "images" / file_name)
    return image_entry(scene, file_name)


def write_coco(out_dir: Path, images: list[dict], instances: list[dict], texts: list[dict]) -> None:
    """Write `instances.json` and `captions.json`, which share `info`, licenses and images."""
    head = {"info": INFO, "licenses": LICENSES, "images": images}
    categories = [{"id": i, "name": n, "supercategory": s} for i, n, s in CATEGORIES]
    instances_file = {**head, "annotations": instances, "categories": categories}
    write_json(out_dir / "instances.json", instances_file)
    write_json(out_dir / "captions.json", {**head, "annotations": texts})


def make_sample(out_dir: Path, n_images: int = 16, seed: int = 0) -> None:
    """Write `n_images` drawn scenes with COCO instances and captions under `out_dir`."""
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    kinds, pngs, flock_at = plan_sample(n_images, random.Random(seed))
    images: list[dict] = []
    instances: list[dict] = []
    texts: list[dict] = []
    for index, kind in enumerate(kinds):
        rng = random.Random(seed * 100_003 + index)  # one stream per image
        scene = make_scene(index + 1, kind, index == flock_at, rng)
        images.append(write_scene(out_dir, scene, rng, index in pngs))
        for t in scene.things:
            instances.append(annotation(t, len(instances) + 1, scene.image_id))
        for text in captions(scene, rng):
            texts.append({"id": len(texts) + 1, "image_id": scene.image_id, "caption": text})
    write_coco(out_dir, images, instances, texts)


def main(argv: list[str] | None = None) -> None:
    """Command line: `python -m mminstruct.sample OUT_DIR [--images N] [--seed S]`."""
    parser = argparse.ArgumentParser(
        prog="python -m mminstruct.sample",
        description="Draw the demo sample: scenes with COCO instances and captions.",
        epilog="example: python -m mminstruct.sample mminstruct/sample",
    )
    parser.add_argument("out_dir", type=Path, help="folder for images/ and the two JSON files")
    parser.add_argument("--images", type=int, default=16, help="how many scenes (default 16)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args(argv)
    make_sample(args.out_dir, args.images, args.seed)
    print(f"wrote {args.images} scenes to {args.out_dir}")


if __name__ == "__main__":
    main()
