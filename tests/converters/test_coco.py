"""The COCO converter agrees with pycocotools on real files and rejects bad records clearly."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mminstruct.converters import coco_files
from mminstruct.converters.coco import read_coco
from mminstruct.converters.common import MAX_IMAGE_SIDE, MAX_NAME_CHARS
from pycocotools.coco import COCO

from mminstruct.config import CocoSourceConfig
from mminstruct.errors import InputError
from mminstruct.records import ImageRecord, Rejection

REAL_FILES = [
    ("tiny_coco/annotations/instances_val2017.json", "tiny_coco/images/val2017"),
    ("tiny_coco/annotations/instances_train2017.json", "tiny_coco/images/train2017"),
    ("coco_mini/annotations/instances_val2017.json", "coco_mini/val2017"),
]


def records_of(**source) -> list[ImageRecord | Rejection]:
    return list(read_coco(CocoSourceConfig(**source)))


@pytest.mark.parametrize("instances,images", REAL_FILES, ids=lambda v: v.split("/")[0])
def test_agrees_with_pycocotools(realdata, instances, images):
    path = realdata / "coco" / instances
    coco = COCO(str(path))
    out = records_of(images=str(realdata / "coco" / images), instances=(str(path),))
    records = {r.image_id: r for r in out}
    assert all(isinstance(r, ImageRecord) for r in out), "real files hold no bad records"
    assert set(records) == set(coco.imgs)
    for image_id, info in coco.imgs.items():
        record = records[image_id]
        assert (record.width, record.height, record.file_name) == (
            info["width"],
            info["height"],
            info["file_name"],
        )
        expected = sorted(
            (coco.cats[a["category_id"]]["name"], *clipped(a["bbox"], info), bool(a["iscrowd"]))
            for a in coco.imgToAnns[image_id]
        )
        got = sorted((o.category, *corners(o.x, o.y, o.w, o.h), o.iscrowd) for o in record.objects)
        assert got == expected, f"image {image_id}"
        assert set(record.vocabulary) == {c["name"] for c in coco.cats.values()}


def clipped(bbox: list[float], info: dict) -> tuple[float, ...]:
    """pycocotools' box, clipped to the image as the converter does (COCO has boxes a hair out)."""
    x, y, w, h = bbox
    return corners(
        max(0, x),
        max(0, y),
        min(info["width"], x + w) - max(0, x),
        min(info["height"], y + h) - max(0, y),
    )


def corners(x: float, y: float, w: float, h: float) -> tuple[float, ...]:
    return tuple(round(v, 6) for v in (x, y, x + w, y + h))


def test_captions_merged_by_image_id(coco_mini):
    captions = COCO(coco_mini["captions"])
    out = records_of(**coco_mini)
    records = {r.image_id: r for r in out if isinstance(r, ImageRecord)}
    assert len(records) == 79
    for image_id, anns in captions.imgToAnns.items():
        want = list(dict.fromkeys(" ".join(a["caption"].split()) for a in anns))
        assert list(records[image_id].captions) == want
    assert sum(len(r.captions) for r in records.values()) >= 390


def test_captions_only_source_has_no_vocabulary(coco_mini):
    out = records_of(images=coco_mini["images"], captions=(coco_mini["captions"],))
    assert len(out) == 79
    assert all(r.objects == () and r.vocabulary == () and r.captions for r in out)


def test_several_instance_files_merge(realdata, tmp_path):
    coco = json.loads((realdata / "coco/tiny_coco/annotations/instances_val2017.json").read_text())
    half = len(coco["annotations"]) // 2
    first = {**coco, "annotations": coco["annotations"][:half]}
    second = {**coco, "annotations": coco["annotations"][half:]}
    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    for path, data in zip(paths, (first, second), strict=False):
        path.write_text(json.dumps(data))
    merged = records_of(images=str(tmp_path), instances=tuple(map(str, paths)))
    whole = records_of(
        images=str(tmp_path),
        instances=(str(realdata / "coco/tiny_coco/annotations/instances_val2017.json"),),
    )
    assert [sorted(r.objects) for r in merged] == [sorted(r.objects) for r in whole]


def write_coco(path: Path, images=None, annotations=None, categories=None, **extra) -> str:
    data = {
        "images": images
        if images is not None
        else [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 50}],
        "annotations": annotations if annotations is not None else [],
        "categories": categories if categories is not None else [{"id": 1, "name": "dog"}],
        **extra,
    }
    path.write_text(json.dumps(data))
    return str(path)


@pytest.mark.parametrize(
    "bbox,reason,words",
    [
        ([10, 10, 0, 5], "bad_box", "non-positive width or height"),
        ([10, 10, -3, 5], "bad_box", "non-positive"),
        ([500, 10, 20, 5], "bad_box", "outside the 100x50 image"),
        ([10, 10, 5], "bad_box", "must be a list [x, y, width, height]"),
        ([10, "a", 5, 5], "bad_box", "must hold 4 numbers"),
        ([10**400, 1, 2, 2], "bad_box", "holds a number too large for a box"),
    ],
)
def test_bad_box_rejects_its_image_with_file_record_and_field(tmp_path, bbox, reason, words):
    ann = {"id": 77, "image_id": 1, "category_id": 1, "bbox": bbox, "iscrowd": 0}
    ok = {"id": 78, "image_id": 2, "category_id": 1, "bbox": [1, 1, 5, 5], "iscrowd": 0}
    images = [
        {"id": 1, "file_name": "a.jpg", "width": 100, "height": 50},
        {"id": 2, "file_name": "b.jpg", "width": 100, "height": 50},
    ]
    path = write_coco(tmp_path / "inst.json", images=images, annotations=[ann, ok])
    out = records_of(images=str(tmp_path), instances=(path,))
    bad = [r for r in out if isinstance(r, Rejection)]
    assert len(bad) == 1 and bad[0].image_id == 1 and bad[0].reason == reason
    assert "inst.json: annotations[0] (id 77): bbox" in bad[0].detail and words in bad[0].detail
    assert bad[0].scope == "image"
    assert [r.image_id for r in out if isinstance(r, ImageRecord)] == [2]


def test_nan_box_in_non_strict_json(tmp_path):
    path = tmp_path / "inst.json"
    write_coco(path, annotations=[{"id": 5, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2]}])
    path.write_text(path.read_text().replace("[1, 1, 2, 2]", "[NaN, 1, 2, 2]"))
    (bad,) = records_of(images=str(tmp_path), instances=(str(path),))
    assert bad.reason == "bad_box" and "not finite" in bad.detail


def test_box_slightly_outside_is_clipped(tmp_path):
    ann = {"id": 5, "image_id": 1, "category_id": 1, "bbox": [90.5, -0.5, 10.4, 20], "iscrowd": 1}
    path = write_coco(tmp_path / "inst.json", annotations=[ann])
    (record,) = records_of(images=str(tmp_path), instances=(path,))
    (obj,) = record.objects
    assert (obj.x, obj.y, obj.x + obj.w, obj.h) == (90.5, 0.0, 100.0, 19.5)
    assert obj.iscrowd is True


def test_undefined_category_and_orphan_annotation(tmp_path):
    anns = [
        {"id": 1, "image_id": 1, "category_id": 9, "bbox": [1, 1, 2, 2]},
        {"id": 2, "image_id": 404, "category_id": 1, "bbox": [1, 1, 2, 2]},
    ]
    path = write_coco(tmp_path / "inst.json", annotations=anns)
    out = records_of(images=str(tmp_path), instances=(path,))
    reasons = {r.reason: r for r in out}
    assert reasons["unknown_category"].image_id == 1
    assert "category_id 9 is not in 'categories'" in reasons["unknown_category"].detail
    orphan = reasons["annotation_without_image"]
    assert orphan.scope == "record" and "image_id 404 has no entry in 'images'" in orphan.detail


@pytest.mark.parametrize(
    "entry,words",
    [
        (
            {"id": 1, "file_name": "a.jpg", "width": 0, "height": 50},
            "'width' must be a positive integer",
        ),
        (
            {"id": 1, "file_name": "a.jpg", "width": 100},
            "'height' must be a positive integer, got None",
        ),
        (
            {"id": 1, "file_name": "", "width": 10, "height": 5},
            "'file_name' must be a non-empty string",
        ),
        (
            {"id": None, "file_name": "a.jpg", "width": 10, "height": 5},
            "'id' must be an integer or a string",
        ),
        (
            {"id": 1, "file_name": "a.jpg", "width": 10, "height": 10**400},
            "'height' 1000000000000000000000000000000000000... is larger than any image",
        ),
        (
            {"id": 1, "file_name": "a.jpg", "width": MAX_IMAGE_SIDE + 1, "height": 5},
            f"'width' {MAX_IMAGE_SIDE + 1} is larger than any image ({MAX_IMAGE_SIDE:,} at most)",
        ),
    ],
)
def test_bad_image_entries(tmp_path, entry, words):
    path = write_coco(tmp_path / "inst.json", images=[entry])
    (bad,) = records_of(images=str(tmp_path), instances=(path,))
    assert bad.reason == "bad_image_entry" and bad.scope == "image"
    assert bad.detail.startswith("inst.json: images[0]: ") and words in bad.detail


def test_string_ids_and_captions_cleaned(tmp_path):
    images = [{"id": "img-b", "file_name": "b.jpg", "width": 10, "height": 10}]
    images.append({"id": "img-a", "file_name": "a.jpg", "width": 10, "height": 10})
    anns = [
        {"id": 1, "image_id": "img-b", "caption": "  A dog\n on a\tmat. "},
        {"id": 2, "image_id": "img-b", "caption": ""},
        {"id": 3, "image_id": "img-b", "caption": "x" * 5000},
        {"id": 4, "image_id": "img-a", "caption": "Bell\x07 rings"},
    ]
    path = write_coco(tmp_path / "caps.json", images=images, annotations=anns, categories=[])
    out = records_of(images=str(tmp_path), captions=(path,))
    skips = [r for r in out if isinstance(r, Rejection)]
    assert [r.reason for r in skips] == ["bad_caption", "bad_caption"]
    assert all(r.scope == "record" for r in skips)
    records = [r for r in out if isinstance(r, ImageRecord)]
    assert [r.image_id for r in records] == ["img-b", "img-a"]  # file order
    assert records[0].captions == ("A dog on a mat.",)
    assert records[1].captions == ("Bell rings",)


@pytest.mark.parametrize(
    "content,words",
    [
        ("{not json", "not valid JSON"),
        ('{"images": [], "annotations": [', "not valid JSON"),
        ("[1, 2, 3]", "not a COCO annotation file"),
        ('{"annotations": [], "categories": []}', "no 'images' list at the top level"),
        ('{"images": 5, "annotations": [], "categories": []}', "not a COCO annotation file"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
    ],
)
def test_broken_files_stop_with_the_file_named(tmp_path, content, words):
    path = tmp_path / "broken.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(InputError) as info:
        records_of(images=str(tmp_path), instances=(str(path),))
    assert str(path) in str(info.value) and words in str(info.value)


def test_missing_file_and_swapped_roles(realdata, tmp_path):
    with pytest.raises(InputError, match="file not found; check the path"):
        records_of(images=str(tmp_path), instances=(str(tmp_path / "nope.json"),))
    instances = realdata / "coco/tiny_coco/annotations/instances_val2017.json"
    with pytest.raises(InputError, match="list it under `instances`, not `captions`"):
        records_of(images=str(tmp_path), captions=(str(instances),))


def test_conflicting_image_entries(tmp_path):
    inst = write_coco(tmp_path / "inst.json")
    caps = write_coco(
        tmp_path / "caps.json",
        images=[{"id": 1, "file_name": "a.jpg", "width": 99, "height": 50}],
        annotations=[{"id": 1, "image_id": 1, "caption": "A dog."}],
        categories=[],
    )
    (bad,) = records_of(images=str(tmp_path), instances=(inst,), captions=(caps,))
    assert bad.reason == "conflicting_image_entries" and "a.jpg/99/50" in bad.detail


def test_package_paths_resolve(tmp_path):
    sample = Path(__file__).resolve().parents[2] / "mminstruct" / "sample"
    if not sample.is_dir():
        pytest.skip("bundled sample not generated")
    out = records_of(images="package:sample/images", instances=("package:sample/instances.json",))
    assert out and all(isinstance(r, ImageRecord) for r in out)
    shutil.rmtree(tmp_path)


def interleaved_annotations(ids: list) -> list[dict]:
    """Boxes for three images, interleaved, with one box clipped by a hair in the middle."""
    boxes = [[1, 1, 5, 5], [2, 2, 5, 5], [3, 3, 5, 5], [4, 4, 5, 5], [95.5, 1, 5, 5], [6, 6, 5, 5]]
    owners = [ids[0], ids[1], ids[0], ids[2], ids[0], ids[1]]
    return [
        {"id": n, "image_id": owner, "category_id": 1 + n % 2, "bbox": box, "iscrowd": n == 3}
        for n, (owner, box) in enumerate(zip(owners, boxes, strict=True))
    ]


@pytest.mark.parametrize(
    "ids",
    [[7, 3, 5], ["c", "a", "b"], [10**12, 5, 10**15], [7, "a", 3]],
    ids=["ints", "strings", "sparse-ints", "mixed"],
)
def test_objects_grouped_per_image_in_file_order(tmp_path, ids):
    images = [
        {"id": i, "file_name": f"{n}.jpg", "width": 100, "height": 50} for n, i in enumerate(ids)
    ]
    categories = [{"id": 1, "name": "dog"}, {"id": 2, "name": "cat"}]
    anns = interleaved_annotations(ids)
    path = write_coco(tmp_path / "i.json", images=images, annotations=anns, categories=categories)
    out = records_of(images=str(tmp_path), instances=(path,))
    assert [r.image_id for r in out] == ids
    first, second, third = ([(o.category, o.x, o.iscrowd) for o in r.objects] for r in out)
    assert first == [("dog", 1.0, False), ("dog", 3.0, False), ("dog", 95.5, False)]
    assert second == [("cat", 2.0, False), ("cat", 6.0, False)]
    assert third == [("cat", 4.0, True)]
    assert out[0].objects[2].w == 4.5  # clipped to the image


# --------------------------------------------------------------------------- huge broken files

HUGE_FILE = 2 << 30  # 2 GiB, made with truncate: sparse, so it takes no disk
MEASURE = """
import resource, sys
from mminstruct.converters.coco import read_coco
from mminstruct.config import CocoSourceConfig
from mminstruct.errors import InputError

before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for role, path in zip(sys.argv[1::2], sys.argv[2::2]):
    try:
        list(read_coco(CocoSourceConfig(images=".", **{role: (path,)})))
    except InputError as exc:
        print(exc)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


def test_huge_broken_files_are_refused_in_little_memory(tmp_path):
    """2 GiB of zero bytes as an instances or a relations file, and 512 MiB that start like a
    JSON object and then turn to zeros (read through once): each is refused by name, and the
    process grows by under 64 MB (copying and decoding the whole 2 GiB file took 8.2 GB)."""
    heads = {"zeros.json": b"", "brace.json": b"{", "relations.json": b""}
    for name, head in heads.items():
        (tmp_path / name).write_bytes(head)
        os.truncate(tmp_path / name, HUGE_FILE // (4 if head else 1))  # brace: read through
    roles = ["instances", "zeros.json", "instances", "brace.json", "relations", "relations.json"]
    args = [str(tmp_path / a) if a.endswith(".json") else a for a in roles]
    command = [sys.executable, "-c", MEASURE, *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    zeros, brace, relations, grown_kib = result.stdout.splitlines()
    assert zeros.startswith(f"{tmp_path / 'zeros.json'}: not valid JSON: it starts with zero bytes")
    assert brace.startswith(f"{tmp_path / 'brace.json'}: not valid JSON: it ends with b'\\x00")
    assert relations.startswith(
        f"{tmp_path / 'relations.json'}: not a relations file: it starts with zero bytes"
    )
    assert int(grown_kib) < 64 * 1024


def test_a_large_file_is_retried_leniently_only_where_that_can_help(tmp_path, monkeypatch):
    """Python's json reads NaN and (replaced) bytes that are not UTF-8, at the cost of several
    copies of the file: a large file gets that retry only when it holds them."""
    monkeypatch.setattr(coco_files, "LENIENT_RETRY_BYTES", 0)  # every file counts as large
    path = tmp_path / "inst.json"
    write_coco(path, annotations=[{"id": 5, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2]}])
    text = path.read_text()
    path.write_text(text.replace("[1, 1, 2, 2]", "[NaN, 1, 2, 2]"))
    (bad,) = records_of(images=str(tmp_path), instances=(str(path),))
    assert bad.reason == "bad_box" and "not finite" in bad.detail
    path.write_bytes(text.replace("dog", "d@g").encode().replace(b"@", b"\xe9"))
    with pytest.raises(InputError, match="needs an id and a non-empty 'name' of UTF-8 text"):
        records_of(images=str(tmp_path), instances=(str(path),))  # read leniently, then refused

    def never(raw: bytes, path: Path) -> None:
        raise AssertionError("a retry that cannot help was tried")

    monkeypatch.setattr(coco_files, "_decode_lenient", never)
    path.write_text(text[:-40])
    with pytest.raises(InputError) as caught:
        records_of(images=str(tmp_path), instances=(str(path),))
    assert str(caught.value).startswith(f"{path}: not valid JSON: it ends with b'")
    assert "the file may be truncated or not a COCO file" in str(caught.value)
    path.write_text(text.replace('"images": [', '"images": [,'))
    with pytest.raises(InputError, match=r"not valid JSON somewhere between its first '\{' and"):
        records_of(images=str(tmp_path), instances=(str(path),))


@pytest.mark.parametrize(
    "name,refused", [("d" * MAX_NAME_CHARS, False), ("d" * (MAX_NAME_CHARS + 1), True)]
)
def test_category_names_are_capped(tmp_path, name, refused):
    ann = {"id": 5, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2]}
    path = write_coco(
        tmp_path / "inst.json", annotations=[ann], categories=[{"id": 1, "name": name}]
    )
    if refused:
        with pytest.raises(InputError, match=r"categories\[0\] \(id 1\): 'name' 'ddd"):
            records_of(images=str(tmp_path), instances=(path,))
    else:
        (record,) = records_of(images=str(tmp_path), instances=(path,))
        assert record.objects[0].category == name
