"""Drawing the demo scenes: colours, shading, one drawer per category, and backgrounds.

Each drawer paints one object in its `Frame` with Pillow; each background paints a setting.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np
from PIL import ImageDraw

from mminstruct.sample.things import RGB, Frame, Scene, Thing

Draw = ImageDraw.ImageDraw

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
