"""What a demo scene is made of: the frame an object is drawn in, the objects, the scene.

Drawers (`drawing.py`) read these, planning and rendering (`scenes.py`) fill them in, and
captions and annotations (`captions.py`, `coco.py`) are written from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

RGB = tuple[int, int, int]


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
