"""What every format's converter shares: box clipping, text cleaning, record-skip helpers.

`clip_box` checks and clips a box to its image; `clean_caption` and `clean_predicate` turn
any JSON value into one line of text; `name_problem` and `side_problem` hold names and image
sizes to sane bounds. The small id/number checks live here too.
"""

from __future__ import annotations

from typing import Any

from mminstruct.records import Rejection, bare_predicate

# A box may stick out of its image by this much (COCO has many off-by-a-pixel boxes);
# it is clipped. Further out, the annotation is wrong and its image is rejected.
BOX_TOLERANCE_PX = 2.0
BOX_TOLERANCE_FRACTION = 0.01

# A category, class, object, attribute or predicate name longer than this is a broken record,
# not a name (the longest in COCO, Visual Genome and PSG are under 40): it would become a
# line of every context, a label of every plot and a row of the card.
MAX_NAME_CHARS = 100

# What a file whose lists or objects lie inside each other deeper than a decoder goes (some
# hundreds of levels; annotation files nest a few) is, in the message that refuses it.
NESTED_TOO_DEEPLY = (
    "nested too deeply (lists or objects hundreds of levels inside each other, where an "
    "annotation file nests a few); the file is damaged or not an annotation file"
)

# No image is wider or taller than this (PNG's limit; JPEG's is 65,535): a larger `width` or
# `height` is a broken entry, and one of 400 digits does not even fit a float.
MAX_IMAGE_SIDE = 2**31 - 1


def clip_box(bbox: Any, width: int, height: int) -> tuple[float, float, float, float] | str:
    """The box clipped to its image, or a message saying what is wrong with it."""
    if not isinstance(bbox, list) or len(bbox) != 4:
        return f"{bbox!r} must be a list [x, y, width, height]"
    if not all(v.__class__ in _NUMBERS for v in bbox):
        return f"{bbox!r} must hold 4 numbers"
    try:
        x, y, w, h = map(float, bbox)
    except OverflowError:  # an integer of hundreds of digits
        return f"{_preview(bbox)} holds a number too large for a box"
    if x - x + y - y + w - w + h - h != 0:  # NaN or infinity in any of them
        return f"{bbox!r} is not finite"
    if w <= 0 or h <= 0:
        return f"{bbox!r} has non-positive width or height"
    slack_x = max(BOX_TOLERANCE_PX, BOX_TOLERANCE_FRACTION * width)
    slack_y = max(BOX_TOLERANCE_PX, BOX_TOLERANCE_FRACTION * height)
    if x < -slack_x or y < -slack_y or x + w > width + slack_x or y + h > height + slack_y:
        return f"{bbox!r} lies outside the {width}x{height} image"
    x1, y1 = max(0.0, x), max(0.0, y)
    x2, y2 = min(float(width), x + w), min(float(height), y + h)
    if x2 <= x1 or y2 <= y1:
        return f"{bbox!r} has no area inside the {width}x{height} image"
    return x1, y1, x2 - x1, y2 - y1


def name_problem(name: str) -> str | None:
    """Why a cleaned name cannot be used as one (over `MAX_NAME_CHARS`), or None."""
    if len(name) > MAX_NAME_CHARS:
        return f"is {len(name):,} characters long; names are capped at {MAX_NAME_CHARS} characters"
    return None


def side_problem(field: str, value: Any) -> str | None:
    """Why an image entry's `width` or `height` is unusable, or None for a positive integer."""
    if value.__class__ is not int or value <= 0:
        return f"'{field}' must be a positive integer, got {value!r}"
    if value > MAX_IMAGE_SIDE:
        return f"'{field}' {_preview(value)} is larger than any image ({MAX_IMAGE_SIDE:,} at most)"
    return None


def clean_predicate(predicate: Any) -> str:
    """A relation's predicate as a context line shows it: lowercase, single spaces, no
    trailing article or punctuation ("Wearing a" -> "wearing"); "" if it is not text."""
    return bare_predicate(clean_caption(predicate).lower().rstrip(".,;:!? "))


def clean_caption(caption: Any) -> str:
    """One line of plain text: whitespace and control characters folded into single spaces."""
    if caption.__class__ is not str:
        return ""
    if caption.isprintable():
        if "  " not in caption and caption[:1] != " " and caption[-1:] != " ":
            return caption  # already clean: the common case
    else:
        caption = "".join(c if c.isprintable() else " " for c in caption)
    return " ".join(caption.split())


def _record_skip(reason: str, detail: str, dataset: str, image_id: Any) -> Rejection:
    return Rejection(reason, detail, dataset, image_id, record_only=True)


_ID_TYPES = frozenset((int, str))  # exact classes: a bool is not an image id
_NUMBERS = frozenset((int, float))


def _valid_id(value: Any) -> bool:
    return value.__class__ in _ID_TYPES


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
