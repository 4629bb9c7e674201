"""Segment areas computed from `segmentation` where a COCO file gives no usable `area`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mminstruct.converters.coco import read_coco
from mminstruct.converters.coco_segments import segment_area

from mminstruct.config import CocoSourceConfig
from mminstruct.records import ImageRecord, ObjectBox, Rejection

REAL_FILES = [
    "tiny_coco/annotations/instances_val2017.json",
    "tiny_coco/annotations/instances_train2017.json",
    "coco_mini/annotations/instances_val2017.json",
]


def _objects(path: Path) -> list:
    """Every object of every image in `path`, in the converter's order."""
    out = list(read_coco(CocoSourceConfig(images=str(path.parent), instances=(str(path),))))
    assert all(isinstance(r, ImageRecord) for r in out), [
        r for r in out if isinstance(r, Rejection)
    ]
    return [o for r in out for o in r.objects]


def _box(obj: ObjectBox) -> tuple:
    return obj.category, obj.x, obj.y, obj.w, obj.h, obj.iscrowd


def _write_without_areas(source: Path, target: Path, area: object = None) -> dict:
    """`source` copied to `target` with every `area` removed (or set to `area`)."""
    data = json.loads(source.read_text())
    for annotation in data["annotations"]:
        if area is None:
            del annotation["area"]
        else:
            annotation["area"] = area
    target.write_text(json.dumps(data))
    return data


@pytest.mark.parametrize("instances", REAL_FILES, ids=lambda v: v.split("/")[0] + v[-12:-9])
def test_polygon_areas_match_the_stored_ones(realdata, tmp_path, instances):
    """COCO's polygon `area` is the polygon's exact area; the mask's pixel count is off by about
    its outline, so within 1% for every segment of 3,000 pixels or more (1.4% at 2,000 here)
    and within 0.1% summed over the file."""
    source = realdata / "coco" / instances
    stored = _objects(source)
    _write_without_areas(source, tmp_path / "inst.json")
    computed = _objects(tmp_path / "inst.json")
    assert [_box(o) for o in computed] == [_box(o) for o in stored]
    pairs = [
        (s.segment_area, c.segment_area)
        for s, c in zip(stored, computed, strict=True)
        if not s.iscrowd
    ]
    assert all(c > 0 for _, c in pairs)
    assert all(abs(c - s) <= 0.01 * s for s, c in pairs if s >= 3000)
    total_stored, total_computed = sum(s for s, _ in pairs), sum(c for _, c in pairs)
    assert abs(total_computed - total_stored) <= 0.001 * total_stored


def test_crowd_rle_areas_are_their_pixel_counts(realdata, tmp_path):
    """A crowd's uncompressed RLE covers the sum of its odd runs. (COCO's stored crowd areas
    disagree by up to 18% here, so they are not the reference.)"""
    source = realdata / "coco" / "coco_mini/annotations/instances_val2017.json"
    data = _write_without_areas(source, tmp_path / "inst.json", area=0)
    crowds = [a for a in data["annotations"] if a["iscrowd"]]
    expected = sorted(float(sum(a["segmentation"]["counts"][1::2])) for a in crowds)
    computed = sorted(o.segment_area for o in _objects(tmp_path / "inst.json") if o.iscrowd)
    assert len(crowds) >= 5 and computed == expected


def test_compressed_rle_is_read_as_is():
    from pycocotools import mask

    square = {"size": [10, 20], "counts": [30, 5, 165]}  # 5 pixels set
    compressed = mask.frPyObjects(square, 10, 20)
    text = {"size": [10, 20], "counts": compressed["counts"].decode()}
    assert segment_area(square, 10, 20) == 5.0
    assert segment_area(text, 10, 20) == 5.0


@pytest.mark.parametrize(
    "segmentation,problem",
    [
        ([[1, 2, 3, 4, 5]], "polygon 0 has an odd number of coordinates (5)"),
        ([[1, 2, 30, 4]], "polygon 0 has 2 points; a polygon needs at least 3"),
        ([[1, 2, 30, 4, 5, "x"]], "polygon 0 must hold finite numbers only"),
        ([[0, 0, 1e300, 0, 5, 5]], "polygon 0 lies far outside the 40x30 image"),
        ([[1, 2, 30, 4, 10**400, 5]], "polygon 0 must hold finite numbers only"),
        ([[0, 0, 40, 30] * 1000], "polygon 0 has an outline over 100 times the image's width"),
        ([], "segmentation is an empty list of polygons"),
        ("abc", "segmentation must be a list of polygons or an RLE object"),
        ({"size": [30], "counts": "abc"}, "RLE 'size' must be [height, width]"),
        ({"size": [30, 40], "counts": [5, 5]}, "RLE 'counts' add up to 10, not 30x40 pixels"),
        ({"size": [30, 40], "counts": "garbage!!"}, "RLE does not decode"),
        ([[0, 0, 0, 0, 0, 0]], "segment covers no pixel of the image"),
    ],
)
def test_a_broken_segmentation_is_named(segmentation, problem):
    assert str(segment_area(segmentation, 30, 40)).startswith(problem)


def test_a_broken_segmentation_keeps_the_box_and_is_counted(tmp_path):
    images = [{"id": 1, "file_name": "a.jpg", "width": 40, "height": 30}]
    good = {"id": 7, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "iscrowd": 0}
    broken = good | {"id": 8, "segmentation": [[1, 2, 3, 4, 5]], "area": 0}
    good["segmentation"] = [[0, 0, 10, 0, 10, 10, 0, 10]]
    data = {
        "images": images,
        "annotations": [good, broken],
        "categories": [{"id": 1, "name": "dog"}],
    }
    (tmp_path / "inst.json").write_text(json.dumps(data))
    out = list(
        read_coco(CocoSourceConfig(images=str(tmp_path), instances=(str(tmp_path / "inst.json"),)))
    )
    skip = next(r for r in out if isinstance(r, Rejection))
    record = next(r for r in out if isinstance(r, ImageRecord))
    assert [o.segment_area for o in record.objects] == [100.0, 0.0]
    assert (skip.reason, skip.image_id, skip.record_only) == ("bad_segmentation", 1, True)
    assert skip.detail == (
        "inst.json: annotations[1] (id 8): polygon 0 has an odd number of coordinates (5)"
    )


def test_a_lenient_file_gets_its_areas_too(tmp_path):
    """A file only Python's json reads (a NaN somewhere) is read leniently the second time."""
    images = [{"id": 1, "file_name": "a.jpg", "width": 40, "height": 30, "x": float("nan")}]
    box = {"id": 7, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "iscrowd": 0}
    box["segmentation"] = [[0, 0, 10, 0, 10, 10, 0, 10]]
    data = {"images": images, "annotations": [box], "categories": [{"id": 1, "name": "dog"}]}
    (tmp_path / "inst.json").write_text(json.dumps(data))
    assert [o.segment_area for o in _objects(tmp_path / "inst.json")] == [100.0]


IMPORTS = """
import sys
from mminstruct.converters.coco import read_coco
from mminstruct.config import CocoSourceConfig
path = sys.argv[1]
records = list(read_coco(CocoSourceConfig(images="/", instances=(path,))))
print(sum(len(r.objects) for r in records), "pycocotools" in sys.modules)
"""


def test_a_file_with_areas_never_imports_pycocotools(realdata, tmp_path):
    source = realdata / "coco" / "tiny_coco/annotations/instances_val2017.json"
    _write_without_areas(source, tmp_path / "stripped.json")
    outputs = []
    for path in (source, tmp_path / "stripped.json"):
        command = [sys.executable, "-c", IMPORTS, str(path)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout.split())
    assert outputs == [["136", "False"], ["136", "True"]]


def test_an_rle_of_another_size_than_its_image_is_refused():
    """An RLE made for a 1000x1000 image on a 360x270 one gave an area over 10x the image."""
    from mminstruct.converters.coco_segments import segment_area

    problem = segment_area({"size": [1000, 1000], "counts": [0, 1000000]}, 270, 360)
    assert problem == "RLE 'size' [1000, 1000] is not the image's [height, width] [270, 360]"
