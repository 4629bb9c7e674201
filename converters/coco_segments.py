"""Segment areas for COCO annotations that carry a `segmentation` but no usable `area`.

User-made files (CVAT, Label Studio, by hand) often leave `area` out or at 0. The main decode
never reads `segmentation` (COCO train's polygons are most of its 450 MB), so such files are
read a second time for the annotations that need it (`read_segmentations`), and each area is
computed with pycocotools' mask tools (`segment_area`). pycocotools is imported only then.
"""

from __future__ import annotations

import json
import math
import mmap
from pathlib import Path
from typing import Any

import msgspec

# Polygon coordinates may lie outside the image by this many image sides (COCO's stay inside):
# further out, rasterizing costs time and memory in proportion and the polygon is broken.
MAX_SIDES_OUTSIDE = 1.0
MAX_POLYGON_POINTS = 100_000  # COCO's largest segment has a few thousand
# Rasterizing a polygon takes memory in proportion to its outline: a zigzag longer than this
# many times the image's width plus height is broken (a COCO outline is a few times at most).
MAX_OUTLINE_SIDES = 100


class _Segmented(msgspec.Struct, gc=False):
    segmentation: msgspec.Raw = msgspec.Raw()


class _SegmentsFile(msgspec.Struct):
    annotations: list[_Segmented] | None = None


_DECODER = msgspec.json.Decoder(_SegmentsFile)


def read_segmentations(path: Path, indices: list[int]) -> dict[int, Any]:
    """The decoded `segmentation` of the annotations at `indices` (absent ones left out).

    Each field stays undecoded bytes (`msgspec.Raw`) until it is picked; all of them are
    dropped before the memory map closes, so no copy of the file is made.
    """
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as raw:
        try:
            annotations = _DECODER.decode(raw).annotations or []
        except (msgspec.DecodeError, UnicodeDecodeError):  # NaN or stray bytes: read leniently
            return _read_lenient(raw[:], indices)
        picked = {i: _decode_raw(annotations[i].segmentation) for i in indices}
        del annotations  # releases the map's buffer, which the Raw fields point into
    return {i: value for i, value in picked.items() if value is not None}


def _decode_raw(field: msgspec.Raw) -> Any:
    return msgspec.json.decode(field) if len(field) else None


def _read_lenient(raw: bytes, indices: list[int]) -> dict[int, Any]:
    """`read_segmentations` for a file only Python's json reads (the main decode did too)."""
    annotations = json.loads(raw.decode("utf-8", errors="replace"))["annotations"]
    picked = {i: annotations[i] for i in indices}
    return {
        i: a["segmentation"]
        for i, a in picked.items()
        if isinstance(a, dict) and "segmentation" in a
    }


def segment_area(segmentation: Any, height: int, width: int) -> float | str:
    """The segment's area in pixels, or a message saying what is wrong with it.

    Polygons (a list of [x1, y1, x2, y2, ...]) and uncompressed RLE (`counts` a list) are
    rasterized at the image's size and merged; compressed RLE (`counts` a string) is read as is.
    """
    if isinstance(segmentation, list):
        problem = _polygons_problem(segmentation, height, width)
        return problem or _mask_area(segmentation, height, width)
    if isinstance(segmentation, dict):
        problem = _rle_problem(segmentation, height, width)
        return problem or _mask_area(segmentation, height, width)
    return f"segmentation must be a list of polygons or an RLE object, got {_preview(segmentation)}"


def _polygons_problem(polygons: list, height: int, width: int) -> str | None:
    """Why a list of polygons cannot be rasterized, or None."""
    if not polygons:
        return "segmentation is an empty list of polygons"
    if sum(len(p) for p in polygons if isinstance(p, list)) > 2 * MAX_POLYGON_POINTS:
        return f"segmentation has over {MAX_POLYGON_POINTS:,} polygon points"
    for k, polygon in enumerate(polygons):
        if problem := _polygon_problem(polygon, height, width):
            return f"polygon {k} {problem}"
    return None


def _polygon_problem(polygon: Any, height: int, width: int) -> str | None:
    if not isinstance(polygon, list):
        return f"must be a list of coordinates, got {_preview(polygon)}"
    if not all(map(_coordinate, polygon)):
        return "must hold finite numbers only"
    if len(polygon) % 2:
        return f"has an odd number of coordinates ({len(polygon)})"
    if len(polygon) < 6:
        return f"has {len(polygon) // 2} points; a polygon needs at least 3"
    xs, ys = polygon[0::2], polygon[1::2]
    if not (_within(xs, width) and _within(ys, height)):
        return f"lies far outside the {width}x{height} image"
    if _outline(xs, ys) > MAX_OUTLINE_SIDES * (width + height):
        return f"has an outline over {MAX_OUTLINE_SIDES} times the image's width and height"
    return None


def _coordinate(value: Any) -> bool:
    if value.__class__ is float:
        return math.isfinite(value)
    return value.__class__ is int and abs(value) < 2**53


def _outline(xs: list[float], ys: list[float]) -> float:
    """The polygon's outline in steps of a pixel, which is what rasterizing it costs."""
    steps = zip(xs, ys, xs[1:] + xs[:1], ys[1:] + ys[:1], strict=True)
    return sum(max(abs(x2 - x1), abs(y2 - y1)) for x1, y1, x2, y2 in steps)


def _within(values: list[float], side: int) -> bool:
    slack = MAX_SIDES_OUTSIDE * side
    return -slack <= min(values) and max(values) <= side + slack


def _rle_problem(rle: dict, height: int, width: int) -> str | None:
    """Why an RLE object cannot be read (or is not of this image), or None."""
    size, counts = rle.get("size"), rle.get("counts")
    if not (isinstance(size, list) and len(size) == 2 and all(_side(v) for v in size)):
        return f"RLE 'size' must be [height, width], got {_preview(size)}"
    if size != [height, width]:
        return f"RLE 'size' {size} is not the image's [height, width] [{height}, {width}]"
    if isinstance(counts, str):
        return None if counts.isascii() and counts else "RLE 'counts' is not a valid RLE string"
    if not isinstance(counts, list) or not all(_count(v) for v in counts):
        return f"RLE 'counts' must be a string or a list of counts, got {_preview(counts)}"
    if sum(counts) != size[0] * size[1]:
        return f"RLE 'counts' add up to {sum(counts)}, not {size[0]}x{size[1]} pixels"
    return None


def _side(value: Any) -> bool:
    return value.__class__ is int and 0 < value < 2**31


def _count(value: Any) -> bool:
    return value.__class__ is int and 0 <= value < 2**32


def _mask_area(segmentation: list | dict, height: int, width: int) -> float | str:
    """Rasterize with pycocotools and count the pixels (imported here: rarely needed)."""
    from pycocotools import mask

    if isinstance(segmentation, dict) and isinstance(segmentation["counts"], str):
        rle = {"size": segmentation["size"], "counts": segmentation["counts"].encode()}
    else:
        rle = mask.merge(_as_list(mask.frPyObjects(segmentation, height, width)))
    area = float(mask.area(rle))
    if area == 0:
        return "segment covers no pixel of the image"
    if area > float(rle["size"][0]) * rle["size"][1]:
        return f"RLE does not decode (an area of {area:g} pixels)"
    return area


def _as_list(rles: Any) -> list:
    return rles if isinstance(rles, list) else [rles]


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def segment_areas(path: Path, wanted: dict[int, tuple[int, int]]) -> dict[int, float | str]:
    """For each annotation index -> (image height, width): its computed segment area, or what
    is wrong with its segmentation; annotations without one are left out."""
    segmentations = read_segmentations(path, list(wanted))
    return {i: segment_area(s, *wanted[i]) for i, s in segmentations.items()}
