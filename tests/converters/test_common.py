"""What every format shares (converters/common.py), checked through each reader: numbers too
large for a float and names over MAX_NAME_CHARS cost their record, never a traceback."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from mminstruct.converters.common import MAX_IMAGE_SIDE, MAX_NAME_CHARS, clip_box
from mminstruct.converters.psg import read_psg
from mminstruct.converters.visual_genome import read_visual_genome

from mminstruct.config import PsgSourceConfig, VisualGenomeSourceConfig
from mminstruct.errors import InputError
from mminstruct.records import ImageRecord, Rejection

HUGE = 10**400  # valid JSON; float(HUGE) raises OverflowError
LONG = "x" * (MAX_NAME_CHARS + 1)


def split(items: list) -> tuple[dict, list[Rejection]]:
    records = {r.image_id: r for r in items if isinstance(r, ImageRecord)}
    return records, [r for r in items if isinstance(r, Rejection)]


def test_clip_box_says_a_number_is_too_large():
    assert clip_box([HUGE, 1, 2, 2], 10, 10).endswith("holds a number too large for a box")
    assert clip_box([1, 1, 2, 2], 10, 10) == (1.0, 1.0, 2.0, 2.0)


# --------------------------------------------------------------------------- Visual Genome


def vg_source(folder: Path, infos: list[dict], entries: list[dict]) -> VisualGenomeSourceConfig:
    (folder / "image_data.json").write_text(json.dumps(infos))
    (folder / "relationships.json").write_text(json.dumps(entries))
    return VisualGenomeSourceConfig(
        images=str(folder),
        image_data=str(folder / "image_data.json"),
        relationships=str(folder / "relationships.json"),
    )


def vg_object(object_id: int, name: str = "dog", x: object = 1, attributes=()) -> dict:
    box = {"x": x, "y": 1, "w": 9, "h": 9}
    return {"object_id": object_id, "names": [name], **box, "attributes": list(attributes)}


def relation(predicate: str, subject: dict, obj: dict) -> dict:
    return {"predicate": predicate, "subject": subject, "object": obj}


def test_visual_genome_huge_numbers_cost_their_image_or_object(tmp_path):
    infos = [
        {"image_id": 1, "width": HUGE, "height": 50},
        {"image_id": 2, "width": 50, "height": 50},
    ]
    entries = [
        {"image_id": 1, "relationships": [relation("near", vg_object(1), vg_object(2, "cat"))]},
        {
            "image_id": 2,
            "relationships": [
                relation("near", vg_object(3, x=HUGE), vg_object(4, "cat")),
                relation("on", vg_object(5, "cup"), vg_object(4, "cat")),
            ],
        },
    ]
    records, rejections = split(list(read_visual_genome(vg_source(tmp_path, infos, entries))))
    (image,) = [r for r in rejections if r.scope == "image"]
    assert image.reason == "bad_image_entry" and image.image_id == 1
    assert "image_data.json: image 1: 'width' 1000000000" in image.detail
    assert "is larger than any image" in image.detail and f"{MAX_IMAGE_SIDE:,}" in image.detail
    boxes = [r for r in rejections if r.reason == "bad_box"]
    assert len(boxes) == 1 and "relationships[0].subject (dog)" in boxes[0].detail
    assert "too large for a box" in boxes[0].detail
    assert [o.category for o in records[2].objects] == ["cat", "cup"]


def test_visual_genome_names_over_the_cap_are_skipped_and_counted(tmp_path):
    infos = [{"image_id": 1, "width": 50, "height": 50}]
    longest = "y" * MAX_NAME_CHARS  # at the cap: kept
    rels = [
        relation("near", vg_object(1, LONG), vg_object(2, "cat")),  # the object's name
        relation(LONG, vg_object(3, "cup"), vg_object(2, "cat")),  # the predicate
        relation("on", vg_object(4, longest, attributes=[LONG, "red"]), vg_object(2, "cat")),
    ]
    source = vg_source(tmp_path, infos, [{"image_id": 1, "relationships": rels}])
    records, rejections = split(list(read_visual_genome(source)))
    assert Counter(r.reason for r in rejections) == {
        "name_too_long": 3,
        "relation_missing_object": 1,  # the relation of the object whose name is too long
    }
    details = [r.detail for r in rejections if r.reason == "name_too_long"]
    assert all(f"names are capped at {MAX_NAME_CHARS} characters" in d for d in details)
    assert "relationships[0].subject: name 'xxxxxxxx" in details[0]
    assert "relationships[1]: 'predicate' 'xxxxxxxx" in details[1]
    assert "relationships[2].subject: attribute 'xxxxxxxx" in details[2]
    record = records[1]
    # the cup only stands in the relation skipped for its predicate: it goes with it
    assert sorted(o.category for o in record.objects) == ["cat", longest]
    assert [o.attributes for o in record.objects if o.category == longest] == [("red",)]
    assert [r.predicate for r in record.relations] == ["on"]


# --------------------------------------------------------------------------- PSG


def psg_source(folder: Path, **changes) -> PsgSourceConfig:
    entry = {"file_name": "a.jpg", "width": 64, "height": 48, "image_id": 1, "relations": []}
    entry["annotations"] = [
        {"bbox": [HUGE, 1, 9, 9], "category_id": 0},
        {"bbox": [1, 1, 9, 9], "category_id": 0},
    ]
    data = [entry, {**entry, "image_id": 2, "width": HUGE}]
    psg = {"thing_classes": ["dog"], "stuff_classes": [], "predicate_classes": ["on"]}
    (folder / "psg.json").write_text(json.dumps({"data": data, **psg, **changes}))
    return PsgSourceConfig(images=str(folder), annotations=str(folder / "psg.json"))


def test_psg_huge_numbers_cost_their_image_or_box(tmp_path):
    records, rejections = split(list(read_psg(psg_source(tmp_path))))
    assert Counter((r.reason, r.scope, r.image_id) for r in rejections) == {
        ("bad_box", "record", 1): 1,
        ("bad_image_entry", "image", 2): 1,
    }
    assert [len(r.objects) for r in records.values()] == [1]
    by_reason = {r.reason: r.detail for r in rejections}
    assert "psg.json: data[0].annotations[0]: bbox" in by_reason["bad_box"]
    assert "too large for a box" in by_reason["bad_box"]
    assert "psg.json: data[1]: 'width' 1000000000" in by_reason["bad_image_entry"]


@pytest.mark.parametrize(
    "key,names",
    [("thing_classes", ["dog", LONG]), ("predicate_classes", ["on", LONG])],
)
def test_psg_class_names_over_the_cap_refuse_the_file(tmp_path, key, names):
    with pytest.raises(InputError) as caught:
        list(read_psg(psg_source(tmp_path, **{key: names})))
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'psg.json'}: {key}[1]: 'xxxxxxxx")
    assert f"is 101 characters long; names are capped at {MAX_NAME_CHARS} characters" in message
