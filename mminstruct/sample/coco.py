"""The demo sample as COCO: categories, masks to boxes, polygons and RLE, annotation and
image entries, and writing `instances.json` and `captions.json`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mminstruct.sample.things import Scene, Thing

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


def write_json(path: Path, data: dict) -> None:
    """Compact JSON with a final newline, the same bytes for the same data."""
    path.write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")


def write_coco(out_dir: Path, images: list[dict], instances: list[dict], texts: list[dict]) -> None:
    """Write `instances.json` and `captions.json`, which share `info`, licenses and images."""
    head = {"info": INFO, "licenses": LICENSES, "images": images}
    categories = [{"id": i, "name": n, "supercategory": s} for i, n, s in CATEGORIES]
    instances_file = {**head, "annotations": instances, "categories": categories}
    write_json(out_dir / "instances.json", instances_file)
    write_json(out_dir / "captions.json", {**head, "annotations": texts})
