"""Corpus cases found by using the project on real files as a stranger would (converters).

Huge numbers, JSON nested 100,000 deep, an annotation file of zero bytes, names of a
megabyte, and a scene graph of another project given as Visual Genome's relationships.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from bad_inputs.cases import CASES, Built, Case, Fails
from bad_inputs.files import SIZE, Scene, jpeg

HUGE = 10**400  # a 401-digit integer: valid JSON, too large for any float
DEEP = "[" * 100_000 + "]" * 100_000  # lists inside lists, 100,000 levels
LONG_NAME = "dog " * 250_000  # a category name of a megabyte
TOO_DEEP = "nested too deeply"


def _coco_case(name: str, edit: Callable[[Scene, Path], None], expect: Built | Fails) -> None:
    """Register a COCO case: the default scene, changed by `edit` (which may write files)."""

    def make(folder: Path) -> dict:
        scene = Scene()
        edit(scene, folder)
        job = scene.write(folder)
        if (folder / "relations.json").exists():
            job["sources"][0]["relations"] = str(folder / "relations.json")
        return job

    kind = "annotations" if isinstance(expect, Fails) else "records"
    CASES.append(Case(name, kind, make, expect))


def _deep_text(data: dict) -> str:
    """`data` as JSON, with the string "@@" replaced by lists nested 100,000 deep."""
    return json.dumps(data).replace('"@@"', DEEP)


def _relations(folder: Path, relations: list[dict]) -> None:
    (folder / "relations.json").write_text(_deep_text({"relations": relations}))


# --------------------------------------------------------------------------- huge numbers

_coco_case(
    "bbox_of_400_digits",
    lambda scene, _: scene.boxes[0].update(bbox=[HUGE, 4, 20, 16]),
    Built(
        1,
        1,
        "bad_box",
        "image",
        ("instances.json: annotations[0] (id 10): bbox [1000000000", "too large for a box"),
    ),
)
_coco_case(
    "image_width_of_400_digits",
    lambda scene, _: scene.images[0].update(width=HUGE),
    Built(
        1,
        1,
        "bad_image_entry",
        "image",
        ("instances.json: images[0]: 'width' 1000000000", "larger than any image"),
    ),
)


# --------------------------------------------------------------------------- nesting


def _deep_segmentation(scene: Scene, _: Path) -> None:
    scene.boxes[0]["segmentation"] = "@@"
    data = {"images": scene.images, "annotations": scene.boxes, "categories": scene.categories}
    scene.instances_text = _deep_text(data)


def _deep_caption(scene: Scene, _: Path) -> None:
    scene.captions[0]["caption"] = "@@"
    scene.captions_text = _deep_text({"images": scene.images, "annotations": scene.captions})


def _deep_relation(_: Scene, folder: Path) -> None:
    relation = {"image_id": 1, "subject_id": 10, "object_id": 11, "predicate": "@@"}
    _relations(folder, [relation])


_coco_case(
    "instances_nested_too_deeply",
    _deep_segmentation,
    Fails(1, (f"{{dir}}/instances.json: {TOO_DEEP}",)),
)
_coco_case(
    "captions_nested_too_deeply", _deep_caption, Fails(1, (f"{{dir}}/captions.json: {TOO_DEEP}",))
)
_coco_case(
    "relations_nested_too_deeply",
    _deep_relation,
    Fails(1, (f"{{dir}}/relations.json: {TOO_DEEP}",)),
)


def _visual_genome(folder: Path, relationships: str) -> dict:
    """A Visual Genome source of one image whose relationships.json is `relationships`."""
    (folder / "images" / "VG_100K").mkdir(parents=True)
    (folder / "images" / "VG_100K" / "1.jpg").write_bytes(jpeg())
    info = {"image_id": 1, "width": SIZE[0], "height": SIZE[1], "url": "x/VG_100K/1.jpg"}
    (folder / "image_data.json").write_text(json.dumps([info]))
    (folder / "relationships.json").write_text(relationships)
    source = {"kind": "visual_genome", "images": str(folder / "images")}
    source |= {"image_data": str(folder / "image_data.json")}
    source |= {"relationships": str(folder / "relationships.json")}
    return {"sources": [source]}


def _vg_object(name: str, x: int) -> dict:
    return {"object_id": x, "x": x, "y": 4, "w": 10, "h": 10, "names": [name]}


def _vg_entry(predicate: object) -> dict:
    relation = {"predicate": predicate, "subject": _vg_object("dog", 4)}
    relation["object"] = _vg_object("cat", 30)
    return {"image_id": 1, "relationships": [relation]}


def _psg(folder: Path, text: str) -> dict:
    (folder / "images").mkdir()
    (folder / "images" / "a.jpg").write_bytes(jpeg())
    (folder / "psg.json").write_text(text)
    source = {"kind": "psg", "images": str(folder / "images")}
    return {"sources": [source | {"annotations": str(folder / "psg.json")}]}


def _psg_data(annotations: object) -> dict:
    entry = {"file_name": "a.jpg", "width": SIZE[0], "height": SIZE[1], "image_id": 1}
    entry |= {"annotations": annotations, "relations": []}
    classes = {"thing_classes": ["dog"], "stuff_classes": [], "predicate_classes": ["on"]}
    return {"data": [entry], **classes}


def _register(name: str, make: Callable[[Path], dict], words: tuple[str, ...]) -> None:
    CASES.append(Case(name, "annotations", make, Fails(1, words)))


_register(
    "visual_genome_nested_too_deeply",
    lambda folder: _visual_genome(folder, _deep_text([_vg_entry("@@")])),
    (f"{{dir}}/relationships.json: element 0 is {TOO_DEEP}",),
)
_register(
    "psg_nested_too_deeply",
    lambda folder: _psg(folder, _deep_text(_psg_data("@@"))),
    (f"{{dir}}/psg.json: {TOO_DEEP}",),
)


# --------------------------------------------------------------------------- zero bytes


def _zero_bytes(path: Path, size: int = 1 << 20) -> None:
    """`path` as a file of `size` zero bytes (what an interrupted download can leave)."""
    path.write_bytes(b"")
    os.truncate(path, size)


ZEROS = ("not valid JSON", "starts with zero bytes", "may be truncated or not a COCO file")
_coco_case(
    "instances_file_of_zero_bytes",
    lambda scene, folder: setattr(scene, "instances_text", b"\0" * (1 << 20)),
    Fails(1, ("{dir}/instances.json: " + ZEROS[0], *ZEROS[1:])),
)


def _zero_relations(_: Scene, folder: Path) -> None:
    _zero_bytes(folder / "relations.json")


_coco_case(
    "relations_file_of_zero_bytes",
    _zero_relations,
    Fails(1, ("{dir}/relations.json: not a relations file", "starts with zero bytes")),
)


# --------------------------------------------------------------------------- long names

_coco_case(
    "category_name_of_a_megabyte",
    lambda scene, _: scene.categories[1].update(name=LONG_NAME),
    Fails(
        1,
        (
            "{dir}/instances.json: categories[1] (id 2): 'name' 'dog dog dog",
            "characters long; names are capped at 100 characters",
        ),
    ),
)


def _long_predicate(_: Scene, folder: Path) -> None:
    relations = [
        {"image_id": 1, "subject_id": 10, "object_id": 11, "predicate": LONG_NAME},
        {"image_id": 1, "subject_id": 11, "object_id": 10, "predicate": "next to"},
    ]
    _relations(folder, relations)


_coco_case(
    "relation_predicate_of_a_megabyte",
    _long_predicate,
    Built(
        2,
        0,
        "name_too_long",
        "record",
        ("relations.json: relations[0]: predicate 'dog dog dog", "names are capped at 100"),
    ),
)


# --------------------------------------------------------------------------- segmentations

# A file from a labelling tool without `area`: the segment area is computed from the polygons
# or RLE; a broken one costs only that area (the box is kept), counted as `bad_segmentation`.
_coco_case(
    "segmentation_broken",
    lambda scene, _: scene.boxes[0].update(segmentation=[[4, 4, 24, 4, 24]]),
    Built(
        2,
        0,
        "bad_segmentation",
        "record",
        ("instances.json: annotations[0] (id 10): polygon 0 has an odd number of coordinates (5)",),
    ),
)
_coco_case(
    "segmentation_rle_garbage",
    lambda scene, _: scene.boxes[1].update(
        segmentation={"size": [48, 64], "counts": "not an RLE!"}, iscrowd=1, area=0
    ),
    Built(
        2,
        0,
        "bad_segmentation",
        "record",
        ("instances.json: annotations[1] (id 11): RLE does not decode",),
    ),
)


# --------------------------------------------------------------------------- other formats


def _sg2im(folder: Path) -> dict:
    """A scene graph file of sg2im (Johnson et al.) where relationships.json belongs."""
    graph = {"objects": ["dog", "grass"], "relationships": [[0, "on", 1]]}
    return _visual_genome(folder, json.dumps([graph, graph]))


_register(
    "visual_genome_relationships_from_sg2im",
    _sg2im,
    (
        "{dir}/relationships.json: element 0 has no 'image_id' or 'id'",
        "looks like an sg2im scene graph",
        "not Visual Genome's relationships.json",
    ),
)
