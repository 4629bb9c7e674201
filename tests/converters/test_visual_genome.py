"""Visual Genome -> records, checked against entries of the real files read by hand; bad
input costs only itself; and a build of configs/visual_genome.yaml over the real subset."""

from __future__ import annotations

import functools
import json
import math
import re
from collections import Counter
from pathlib import Path

import pytest
import webdataset as wds
from mminstruct.converters.visual_genome import read_visual_genome
from PIL import Image
from support.relation_turns import relation_turns

from mminstruct.cli import main
from mminstruct.config import ContextConfig, VisualGenomeSourceConfig, load_config
from mminstruct.context.render import context_relations, render_context
from mminstruct.errors import InputError
from mminstruct.records import ImageRecord, ObjectBox, Region, Rejection

# Plural object names of the subset: with an unknown count they never take "a"/"an".
PLURAL_NAMES = {"trees", "windows", "bikes", "books", "papers", "flowers", "lights", "chairs"}


# --------------------------------------------------------------------------- helpers


@functools.cache
def load(path: Path):
    """A JSON file's content (read once: callers must not change it)."""
    return json.loads(path.read_bytes())


def image_sizes(vg: Path) -> dict[int, tuple[int, int]]:
    """Image id -> the smallest size holding every box of objects.json and relationships.json
    (image 1 is really 800x600, which holds them all)."""
    sizes: dict[int, tuple[int, int]] = {}

    def grow(image_id: int, box: dict) -> None:
        width, height = sizes.get(image_id, (1, 1))
        right, bottom = math.ceil(box["x"] + box["w"]), math.ceil(box["y"] + box["h"])
        sizes[image_id] = (max(width, right), max(height, bottom))

    for entry in load(vg / "objects.json"):
        for obj in entry["objects"]:
            grow(entry["image_id"], obj)
    for entry in load(vg / "relationships.json"):
        for rel in entry["relationships"] if "image_id" in entry else ():
            grow(entry["image_id"], rel["subject"])
            grow(entry["image_id"], rel["object"])
    assert sizes[1][0] <= 800 and sizes[1][1] <= 600
    sizes[1] = (800, 600)
    return sizes


def jpeg(path: Path, size: tuple[int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (90, 120, 150)).save(path, quality=50)


def folder_of(image_id: int) -> str:
    """Odd ids under VG_100K, even under VG_100K_2: objects.json names VG_100K_2 for
    images 1-15, the images it does not list default to VG_100K; both are crossed."""
    return "VG_100K" if image_id % 2 else "VG_100K_2"


def source(vg: Path, images: Path, **fields) -> VisualGenomeSourceConfig:
    files = {
        "objects": str(vg / "objects.json"),
        "relationships": str(vg / "relationships.json"),
        "regions": str(vg / "region_graphs.json"),
    }
    return VisualGenomeSourceConfig(images=str(images), **{**files, **fields})


def read(config: VisualGenomeSourceConfig) -> tuple[dict, list[Rejection]]:
    items = list(read_visual_genome(config))
    records = {r.image_id: r for r in items if isinstance(r, ImageRecord)}
    return records, [r for r in items if isinstance(r, Rejection)]


def box_of(obj: ObjectBox) -> tuple[float, float, float, float]:
    return (obj.x, obj.y, obj.w, obj.h)


def named(record: ImageRecord, category: str) -> list[ObjectBox]:
    return [o for o in record.objects if o.category == category]


def json_name(obj: dict) -> str:
    names = obj.get("names") or [obj.get("name")]
    return " ".join(names[0].split()).lower().rstrip(".,;:!? ")


def distinct_objects(vg: Path, image_id: int) -> list[tuple[str, set]]:
    """(name, ids) of each distinct object of an image in objects.json and relationships.json,
    one per object id, `merged_object_ids` counting as the same object."""
    found: list[tuple[str, set]] = []

    def add(obj: dict) -> None:
        ids = {obj["object_id"], *obj.get("merged_object_ids", [])}
        if not any(ids & known for _, known in found):
            found.append((json_name(obj), ids))

    for entry in load(vg / "objects.json"):
        for obj in entry["objects"] if entry["image_id"] == image_id else ():
            add(obj)
    for entry in load(vg / "relationships.json"):
        for rel in entry["relationships"] if entry.get("image_id") == image_id else ():
            add(rel["subject"])
            add(rel["object"])
    return found


@pytest.fixture(scope="module")
def vg_images(vg_subset, tmp_path_factory) -> Path:
    """Placeholder JPEGs for the 49 images the subset names, split over the two folders."""
    root = tmp_path_factory.mktemp("vg_images")
    for image_id, size in image_sizes(vg_subset).items():
        jpeg(root / folder_of(image_id) / f"{image_id}.jpg", size)
    return root


@pytest.fixture(scope="module")
def vg_read(vg_subset, vg_images) -> tuple[dict, list[Rejection]]:
    return read(source(vg_subset, vg_images))


def build_overrides(vg: Path, images: Path, out: Path) -> list[str]:
    return [
        f"sources.0.images={images}",
        "sources.0.image_data=null",
        f"sources.0.objects={vg / 'objects.json'}",
        f"sources.0.relationships={vg / 'relationships.json'}",
        "sources.0.attributes=null",
        f"sources.0.regions={vg / 'region_graphs.json'}",
        "sources.0.coco_captions=[]",
        f"output.dir={out}",
    ]


def build(config: str | Path, overrides: list[str]) -> dict:
    args = [x for o in overrides for x in ("--set", o)]
    assert main(["build", str(config), "-q", *args]) == 0
    out = Path(next(o for o in overrides if o.startswith("output.dir=")).split("=", 1)[1])
    return json.loads((out / "stats.json").read_text())


def samples(out: Path) -> dict:
    shards = sorted(str(p) for p in out.glob("shard-*.tar"))
    return {s["__key__"]: s for s in wds.WebDataset(shards, shardshuffle=False)}


@pytest.fixture(scope="module")
def vg_build(vg_subset, vg_images, tmp_path_factory) -> dict:
    """configs/visual_genome.yaml over the real subset and the placeholder images."""
    out = tmp_path_factory.mktemp("vg_build") / "out"
    overrides = build_overrides(vg_subset, vg_images, out)
    stats = build("configs/visual_genome.yaml", overrides)
    config = load_config("configs/visual_genome.yaml", overrides)
    return {"out": out, "stats": stats, "config": config, "samples": samples(out)}


# --------------------------------------------------------------------------- the real files


def test_man_wears_shoes(vg_read, vg_subset):
    # relationships.json, image 1, relationships[1]: subject {"name": "man", "object_id":
    # 1058529, x 238, y 249, w 60, h 262} `wears` object {"names": ["shoes"], "object_id":
    # 1058525, x 388, y 485, w 48, h 28}; the same relation is listed again as [10].
    record = vg_read[0][1]
    found = [
        (record.objects[r.subject], record.objects[r.object])
        for r in record.relations
        if r.predicate == "wears"
        and record.objects[r.subject].category == "man"
        and record.objects[r.object].category == "shoes"
    ]
    assert len(found) == 1
    man, shoes = found[0]
    assert box_of(man) == (238, 249, 60, 262)
    assert box_of(shoes) == (388, 485, 48, 28)
    assert len(named(record, "shoes")) == 1  # in four relations, one object
    assert (record.width, record.height) == (800, 600)  # read from the image file


def test_first_box_wins_and_objects_are_one_per_id(vg_read, vg_subset):
    record = vg_read[0][1]
    # objects.json: sidewalk 1058534 (merged_object_ids [5046]) at [78, 308, 722, 290];
    # relationships[4] repeats 1058534 at [77, 331, 722, 266]; relationships[20] names
    # another sidewalk, 3798575. Two sidewalks, the first box kept.
    sidewalks = sorted(box_of(o) for o in named(record, "sidewalk"))
    assert sidewalks == [(78, 308, 722, 290), (343, 318, 50, 189)]
    distinct = distinct_objects(vg_subset, 1)
    assert [name for name, _ in distinct].count("sidewalk") == 2
    assert len(record.objects) == len(distinct)
    assert Counter(o.category for o in record.objects) == Counter(n for n, _ in distinct)


def object_groups(vg: Path, image_id: int) -> dict[int, tuple[int, str]]:
    """Object id -> (which object, the name it has where first met). The files do not
    always agree: relationships.json calls object 1060269 of image 3 "woman", objects.json
    "girl"."""
    distinct = distinct_objects(vg, image_id)
    return {i: (k, name) for k, (name, ids) in enumerate(distinct) for i in ids}


def test_every_relationship_is_a_relation_or_a_counted_skip(vg_read, vg_subset):
    """Each relationship, whether its ends are named by `name` or by `names`, is a relation
    of its record, or a counted self_relation (subject and object are one object)."""
    records, rejections = vg_read
    entries = [e for e in load(vg_subset / "relationships.json") if "image_id" in e]
    same, keys = 0, Counter()
    for entry in entries:
        record = records[entry["image_id"]]
        groups = object_groups(vg_subset, entry["image_id"])
        kept = {
            (record.objects[r.subject].category, r.predicate, record.objects[r.object].category)
            for r in record.relations
        }
        for rel in entry["relationships"]:
            subject = groups[rel["subject"]["object_id"]]
            obj = groups[rel["object"]["object_id"]]
            if subject[0] == obj[0]:
                same += 1
                continue
            predicate = " ".join(rel["predicate"].split()).lower()
            predicate = re.sub(r"( (a|an|the))+$", "", predicate)  # "of a" reads "of"
            assert (subject[1], predicate, obj[1]) in kept
            keys.update(
                "names" if "names" in rel[side] else "name" for side in ("subject", "object")
            )
    assert keys["name"] > 0 and keys["names"] > 0, keys
    assert same > 0
    assert Counter(r.reason for r in rejections) == {"self_relation": same, "bad_entry": 1}


def test_region_phrases_are_read(vg_read):
    # region_graphs.json, image 1, regions[0]: "the clock is green in colour" at
    # x 421, y 57, width 82, height 139
    record = vg_read[0][1]
    assert Region("the clock is green in colour", 421, 57, 82, 139) in record.regions
    assert record.captions == ()
    context = render_context(record, ContextConfig(regions=3))
    first_block = context.split("\n\n")[0].split("\n")
    assert len(first_block) == 3 and all(
        p in {r.phrase for r in record.regions} for p in first_block
    )


def test_entry_without_image_id_is_a_counted_record_skip(vg_read):
    records, rejections = vg_read
    (bad,) = [r for r in rejections if r.reason == "bad_entry"]
    assert bad.scope == "record" and bad.image_id is None
    assert "relationships.json: element 49" in bad.detail and "image_id" in bad.detail
    assert sorted(records) == list(range(1, 50))


def test_image_data_lists_the_images_and_coco_id_brings_captions(vg_subset, coco_mini, tmp_path):
    captions = Path(coco_mini["captions"])  # coco_mini's captions_val2017.json
    coco = load(captions)
    coco_id = coco["annotations"][0]["image_id"]
    expected = [
        " ".join(a["caption"].split()) for a in coco["annotations"] if a["image_id"] == coco_id
    ]
    image_data = [
        {"image_id": 2, "width": 799, "height": 600, "url": "https://x/VG_100K/2.jpg"},
        {"image_id": 1, "width": 800, "height": 600, "coco_id": coco_id},
    ]
    (tmp_path / "image_data.json").write_text(json.dumps(image_data))
    config = source(
        vg_subset,
        tmp_path,
        image_data=str(tmp_path / "image_data.json"),
        coco_captions=str(captions),
    )
    records, rejections = read(config)
    assert list(records) == [2, 1]  # the order of image_data.json
    assert records[1].captions == tuple(dict.fromkeys(expected)) and len(expected) >= 5
    assert records[2].captions == () and records[2].file_name == "VG_100K/2.jpg"
    assert records[1].file_name == "VG_100K_2/1.jpg"  # from objects.json's image_url
    assert render_context(records[1], ContextConfig()).split("\n\n")[0] == "\n".join(
        records[1].captions
    )
    listed = {1, 2}
    others = {
        name: sum("image_id" in e and e["image_id"] not in listed for e in load(vg_subset / name))
        for name in ("objects.json", "relationships.json", "region_graphs.json")
    }
    without = [r for r in rejections if r.reason == "annotation_without_image"]
    assert Counter(r.detail.split(":")[0] for r in without) == others
    assert all("has no entry in image_data.json" in r.detail for r in without)
    assert {r.image_id for r in without} == set(range(3, 50))
    assert {r.reason for r in rejections} == {
        "annotation_without_image",
        "bad_entry",
        "self_relation",
    }


def test_attributes_fold_into_names(vg_subset, vg_images, tmp_path):
    # objects.json, image 1: van 1058542 (merged_object_ids [1058536]); cars 1058515, then 5049
    attributes = [
        {
            "image_id": 1,
            "attributes": [
                {
                    "object_id": 1058536,
                    "names": ["van"],
                    "x": 533,
                    "y": 278,
                    "w": 241,
                    "h": 176,
                    "attributes": ["White", " parked ", "white"],
                },
                {
                    "object_id": 5049,
                    "names": ["car"],
                    "x": 478,
                    "y": 319,
                    "w": 78,
                    "h": 95,
                    "attributes": ["red"],
                },
            ],
        }
    ]
    (tmp_path / "attributes.json").write_text(json.dumps(attributes))
    records, _ = read(source(vg_subset, vg_images, attributes=str(tmp_path / "attributes.json")))
    record = records[1]
    (van,) = named(record, "van")
    assert van.attributes == ("white", "parked")  # lower case, each once
    assert [o.attributes for o in named(record, "car")] == [(), ("red",)]
    assert len(named(record, "van")) == 1 and len(named(record, "car")) == 2  # no new objects
    text = render_context(record, ContextConfig())
    assert re.search(r"^white parked van: \[", text, re.MULTILINE)
    assert re.search(r"^red car 2: \[", text, re.MULTILINE)  # the second car of the image
    assert "white parked van parked on street" in text.split("\n\n")[-1].split("\n")
    one = render_context(record, ContextConfig(max_attributes=1, relations=False))
    assert re.search(r"^white van: \[", one, re.MULTILINE) and re.search(
        r"^red car: \[", one, re.MULTILINE
    )


def test_id_instead_of_image_id(tmp_path):
    objects = [
        {"id": 5, "objects": [{"id": 50, "name": "dog", "x": 10, "y": 10, "w": 20, "h": 20}]}
    ]
    relationships = [
        {
            "id": 5,
            "relationships": [
                {
                    "predicate": "near",
                    "subject": {"id": 51, "name": "cat", "x": 40, "y": 10, "w": 10, "h": 10},
                    "object": {"id": 50, "name": "dog", "x": 10, "y": 10, "w": 20, "h": 20},
                }
            ],
        }
    ]
    image_data = [{"id": 5, "width": 64, "height": 48}]
    for name, data in (
        ("objects", objects),
        ("relationships", relationships),
        ("image_data", image_data),
    ):
        (tmp_path / f"{name}.json").write_text(json.dumps(data))
    config = VisualGenomeSourceConfig(
        images=str(tmp_path),
        image_data=str(tmp_path / "image_data.json"),
        objects=str(tmp_path / "objects.json"),
        relationships=str(tmp_path / "relationships.json"),
    )
    records, rejections = read(config)
    assert rejections == []
    record = records[5]
    assert [o.category for o in record.objects] == ["dog", "cat"]
    assert [(r.subject, r.predicate, r.object) for r in record.relations] == [(1, "near", 0)]


# --------------------------------------------------------------------------- bad input


@pytest.fixture
def bad_scene(tmp_path) -> VisualGenomeSourceConfig:
    """Image 7 (100x80) with one bad object and several bad relations; image 8 has
    annotations but no image_data entry; image 9 is listed but has no file."""
    man = {"object_id": 1, "names": ["man"], "x": 10, "y": 10, "w": 20, "h": 50}
    horse = {
        "object_id": 2,
        "name": "horse",
        "x": 30,
        "y": 30,
        "w": 50,
        "h": 40,
        "merged_object_ids": [22],
    }
    kite = {"object_id": 3, "names": ["kite"], "x": 150, "y": 10, "w": 10, "h": 10}  # outside
    files = {
        "image_data": [
            {"image_id": 7, "width": 100, "height": 80},
            {"image_id": 9, "width": 100, "height": 80},
        ],
        "objects": [
            {"image_id": 7, "objects": [man, horse, kite]},
            {"image_id": 8, "objects": [man]},
        ],
        "relationships": [
            {
                "image_id": 7,
                "relationships": [
                    {"predicate": "riding", "subject": man, "object": {**horse, "object_id": 22}},
                    {"predicate": "flying", "subject": man, "object": kite},
                    {"predicate": "near", "object": horse},
                    {"predicate": "", "subject": man, "object": horse},
                    {"predicate": 5, "subject": man, "object": horse},
                    {
                        "predicate": "next to",
                        "subject": {"object_id": 4, "x": 1, "y": 1, "w": 2, "h": 2},
                        "object": horse,
                    },
                ],
            }
        ],
    }
    for name, data in files.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(data))
    jpeg(tmp_path / "VG_100K" / "7.jpg", (100, 80))
    return VisualGenomeSourceConfig(
        images=str(tmp_path),
        image_data=str(tmp_path / "image_data.json"),
        objects=str(tmp_path / "objects.json"),
        relationships=str(tmp_path / "relationships.json"),
    )


def test_bad_objects_and_relations_cost_only_themselves(bad_scene):
    records, rejections = read(bad_scene)
    record = records[7]
    assert [(o.category, *box_of(o)) for o in record.objects] == [
        ("man", 10, 10, 20, 50),
        ("horse", 30, 30, 50, 40),
    ]
    # object 22 is horse 2's merged id: the same horse
    assert [(r.subject, r.predicate, r.object) for r in record.relations] == [(0, "riding", 1)]
    assert all(r.scope == "record" for r in rejections)
    reasons = Counter((r.reason, r.image_id) for r in rejections)
    assert reasons == {
        ("box_outside_image", 7): 1,  # the kite, in objects.json
        ("relation_missing_object", 7): 3,  # the kite again, a missing subject, a nameless one
        ("empty_predicate", 7): 2,
        ("bad_object", 7): 1,  # the nameless subject
        ("annotation_without_image", 8): 1,
    }
    details = "\n".join(r.detail for r in rejections)
    assert "objects.json: image 7: objects[2] (kite): box" in details
    assert "outside the 100x80 image" in details
    assert "relationships.json: image 7: relationships[3]: 'predicate' is empty" in details
    assert "relationships.json: image 7: relationships[2]: the subject is missing" in details
    assert "objects.json: image 8 has no entry in image_data.json" in details
    assert records[9].objects == () and set(records) == {7, 9}


def test_items_that_are_not_objects_cost_only_themselves(tmp_path):
    """A number or null among an image's objects, relationships or regions is one counted
    skip naming the file, image and item; the entry's other items are kept."""
    dog = {"object_id": 1, "names": ["dog"], "x": 1, "y": 1, "w": 10, "h": 10}
    cat = {"object_id": 2, "names": ["cat"], "x": 20, "y": 1, "w": 10, "h": 10}
    region = {"phrase": "a dog", "x": 1, "y": 1, "width": 10, "height": 10}
    files = {
        "image_data": [{"image_id": 3, "width": 64, "height": 48}],
        "vg_objects": [{"image_id": 3, "objects": [dog, 5, cat]}],
        "vg_attributes": [{"image_id": 3, "attributes": "red"}],
        "vg_relationships": [
            {
                "image_id": 3,
                "relationships": [None, {"predicate": "near", "subject": dog, "object": cat}],
            }
        ],
        "vg_regions": [{"image_id": 3, "regions": [region, [1, 2]]}],
    }
    for name, data in files.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(data))
    config = VisualGenomeSourceConfig(
        images=str(tmp_path),
        image_data=str(tmp_path / "image_data.json"),
        **{key: str(tmp_path / f"vg_{key}.json") for key in ("objects", "attributes")},
        **{key: str(tmp_path / f"vg_{key}.json") for key in ("relationships", "regions")},
    )
    records, rejections = read(config)
    record = records[3]
    assert [o.category for o in record.objects] == ["dog", "cat"]
    assert [(r.subject, r.predicate, r.object) for r in record.relations] == [(0, "near", 1)]
    assert [r.phrase for r in record.regions] == ["a dog"]
    assert sorted((r.reason, r.image_id, r.detail) for r in rejections) == [
        ("bad_object", 3, "vg_attributes.json: image 3: attributes: must be a list, got 'red'"),
        ("bad_object", 3, "vg_objects.json: image 3: objects[1]: must be an object, got 5"),
        ("bad_region", 3, "vg_regions.json: image 3: regions[1]: must be an object, got [1, 2]"),
        (
            "bad_relation",
            3,
            "vg_relationships.json: image 3: relationships[0]: must be an object, got None",
        ),
    ]


def test_without_image_data_images_come_in_file_order(tmp_path):
    """Entries read ahead of their image come out in the order of their file."""
    dog = {"object_id": 1, "names": ["dog"], "x": 1, "y": 1, "w": 10, "h": 10}
    objects = [{"image_id": 1, "objects": [dog]}]
    attributes = [{"image_id": i, "attributes": [dog]} for i in (2, 3, 4, 1)]
    for name, data in (("objects", objects), ("attributes", attributes)):
        (tmp_path / f"{name}.json").write_text(json.dumps(data))
    for image_id in (1, 2, 3, 4):
        jpeg(tmp_path / "VG_100K" / f"{image_id}.jpg", (64, 48))
    config = VisualGenomeSourceConfig(
        images=str(tmp_path),
        objects=str(tmp_path / "objects.json"),
        attributes=str(tmp_path / "attributes.json"),
    )
    assert [r.image_id for r in read_visual_genome(config)] == [1, 2, 3, 4]


def test_bad_scene_build_accounts_for_every_image(bad_scene, tmp_path):
    out = tmp_path / "out"
    job = tmp_path / "job.yaml"
    fields = {k: v for k, v in vars(bad_scene).items() if v not in (None, ())}
    job.write_text(json.dumps({"sources": [fields]}))
    stats = build(job, [f"output.dir={out}"])
    assert stats["images_in"] == 2 == stats["images_written"] + stats["images_rejected"]
    assert stats["images_written"] == 1 and stats["rejects"]["missing_image"] == 1
    assert stats["rejects"]["box_outside_image"] == 1 and stats["rejects"]["empty_predicate"] == 2


def test_truncated_relationships_file(vg_subset, vg_images, tmp_path, capsys):
    data = (vg_subset / "relationships.json").read_bytes()
    for cut in (len(data) // 3, len(data) - 2):
        truncated = tmp_path / "relationships.json"
        truncated.write_bytes(data[:cut])
        with pytest.raises(InputError, match="truncated") as caught:
            read(source(vg_subset, vg_images, relationships=str(truncated)))
        assert str(truncated) in str(caught.value)
    overrides = build_overrides(vg_subset, vg_images, tmp_path / "out")
    overrides[3] = f"sources.0.relationships={truncated}"
    args = [x for o in overrides for x in ("--set", o)]
    assert main(["build", "configs/visual_genome.yaml", "-q", *args]) == 1
    error = capsys.readouterr().err
    assert str(truncated) in error and "truncated" in error and "Traceback" not in error


def test_not_a_list_at_the_top_level(vg_subset, vg_images, tmp_path):
    path = tmp_path / "objects.json"
    path.write_text(json.dumps({"image_id": 1, "objects": []}))
    with pytest.raises(InputError, match="expected a JSON list of per-image entries") as caught:
        read(source(vg_subset, vg_images, objects=str(path)))
    assert str(path) in str(caught.value)


# --------------------------------------------------------------------------- the build


def test_build_writes_every_image_from_both_folders(vg_build, vg_subset, vg_images, vg_read):
    stats, written = vg_build["stats"], vg_build["samples"]
    named_images = {
        e["image_id"]
        for name in ("objects.json", "relationships.json", "region_graphs.json")
        for e in load(vg_subset / name)
        if "image_id" in e
    }
    assert (
        stats["images_in"]
        == len(named_images)
        == stats["images_written"] + stats["images_rejected"]
    )
    assert stats["images_written"] == len(written) == 49
    assert stats["rejects"] == {
        "bad_entry": 1,
        "self_relation": sum(r.reason == "self_relation" for r in vg_read[1]),
    }
    one, sixteen = written["visual_genome-000000000001"], written["visual_genome-000000000016"]
    # objects.json says VG_100K_2/1.jpg, it lies in VG_100K; 16 defaults to VG_100K, lies in _2
    assert one["jpg"] == (vg_images / "VG_100K" / "1.jpg").read_bytes()
    assert sixteen["jpg"] == (vg_images / "VG_100K_2" / "16.jpg").read_bytes()
    assert json.loads(one["json"])["image"] == "VG_100K_2/1.jpg"
    assert json.loads(sixteen["json"])["image"] == "VG_100K/16.jpg"


def test_build_contexts_hold_the_annotated_relations(vg_build, vg_read):
    config = vg_build["config"]
    records = vg_read[0]
    lines = 0
    for sample in vg_build["samples"].values():
        record = records[json.loads(sample["json"])["source"]["image_id"]]
        text = render_context(record, config.context)
        *_, boxes, relations = text.split("\n\n")
        labels = {
            line.split(": [")[0]: json.loads(line.split(": ", 1)[1]) for line in boxes.split("\n")
        }
        annotated = {
            (r.predicate, normal_box(record, r.subject), normal_box(record, r.object))
            for r in record.relations
        }
        for line in relations.split("\n"):
            lines += 1
            assert any(said(line, labels, annotated, s, o) for s in labels for o in labels), line
    assert lines >= 49  # every image has relations shown


def normal_box(record: ImageRecord, index: int) -> tuple[float, ...]:
    o = record.objects[index]
    return (
        o.x / record.width,
        o.y / record.height,
        (o.x + o.w) / record.width,
        (o.y + o.h) / record.height,
    )


def said(line: str, labels: dict, annotated: set, subject: str, obj: str) -> bool:
    """Whether `line` is `<subject> <predicate> <obj>` for an annotated relation between
    the objects whose box lines carry those labels."""
    if not (line.startswith(subject + " ") and line.endswith(" " + obj)):
        return False
    predicate = line[len(subject) + 1 : len(line) - len(obj) - 1]
    return any(
        p == predicate and close(s, labels[subject]) and close(o, labels[obj])
        for p, s, o in annotated
    )


def close(a, b) -> bool:
    """Boxes equal up to the context's rounding to 3 decimals."""
    return all(abs(x - y) < 0.0011 for x, y in zip(a, b, strict=True))


def build_turns(sample: dict) -> list[tuple[str, str, str]]:
    record = json.loads(sample["json"])
    out = []
    for instruction in record["instructions"]:
        values = [t["value"] for t in instruction["conversations"]]
        out += [(instruction["task"], q, a) for q, a in zip(values[::2], values[1::2], strict=True)]
    return out


def test_build_asks_true_relation_questions(vg_build, vg_read):
    records = vg_read[0]
    context = vg_build["config"].context
    kinds: Counter = Counter()
    for sample in vg_build["samples"].values():
        record = records[json.loads(sample["json"])["source"]["image_id"]]
        turns = [(q, a) for task, q, a in build_turns(sample) if task == "conversation"]
        assert {(r.subject, r.object) for r in context_relations(record, context)} <= {
            (r.subject, r.object) for r in record.relations
        }  # derive_relations is off: every relation asked about is annotated
        kinds.update(kind for kind, _ in relation_turns(record, turns))
    assert set(kinds) == {
        *("relation_doing", "relation_choice", "relation_what", "relation_where"),
        "relation_check",
    }, kinds


def test_build_states_no_counts_or_absence(vg_build, vg_read):
    """Visual Genome boxes only some objects: no count and no "there is no" is said."""
    texts = [
        t
        for sample in vg_build["samples"].values()
        for _, q, a in build_turns(sample)
        for t in (q, a)
    ]
    assert all(not record.vocabulary for record in vg_read[0].values())
    for phrase in (
        "How many",
        "there is no ",
        "I don't see",
        "does not show",
        "has no ",
        "outnumber",
        "counting them",
    ):
        assert not [t for t in texts if phrase in t], phrase


def test_plural_names_never_take_an_article(vg_build, vg_read):
    records = vg_read[0]
    present = {o.category for r in records.values() for o in r.objects} & PLURAL_NAMES
    assert present >= {"trees", "windows", "books"}
    for sample in vg_build["samples"].values():
        record = records[json.loads(sample["json"])["source"]["image_id"]]
        categories = {o.category for o in record.objects}
        for _, question, answer in build_turns(sample):
            for name in present:
                for m in re.finditer(rf"\b(?:a|an|A|An) ({name})\b", question + " " + answer):
                    # only where the words start a longer name ("trees on roadside.")
                    rest = (question + " " + answer)[m.start(1) :]
                    longer = [
                        c for c in categories if c.startswith(name + " ") and rest.startswith(c)
                    ]
                    assert longer, (name, question, answer)


def test_names_led_by_a_plural_never_take_an_article(vg_build):
    texts = [
        t
        for sample in vg_build["samples"].values()
        for _, q, a in build_turns(sample)
        for t in (q, a)
    ]
    assert not [t for t in texts if re.search(r"\b(a|an|A|An) trees\b", t)]


def test_rebuild_is_byte_identical(vg_build, vg_subset, vg_images, tmp_path):
    out = tmp_path / "again"
    build("configs/visual_genome.yaml", build_overrides(vg_subset, vg_images, out))
    first = sorted(vg_build["out"].glob("shard-*.tar"))
    second = sorted(out.glob("shard-*.tar"))
    assert [p.name for p in first] == [p.name for p in second] and first
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(first, second, strict=True))


def test_a_file_without_an_entry_for_an_image_is_not_read_ahead(tmp_path, monkeypatch):
    """With image_data.json, a file that lacks image 2 stops at image 3's entry instead of
    buffering the rest of the file while looking for 2."""
    from mminstruct.converters import visual_genome

    from mminstruct.config import VisualGenomeSourceConfig

    infos = [{"image_id": i, "width": 50, "height": 50} for i in range(1, 6)]
    (tmp_path / "image_data.json").write_text(json.dumps(infos))
    box = {"x": 1, "y": 1, "w": 9, "h": 9, "names": ["dog"]}
    entries = [
        {"image_id": i, "objects": [{**box, "object_id": i}]} for i in (1, 3, 4, 5)
    ]  # no entry for image 2
    (tmp_path / "objects.json").write_text(json.dumps(entries))
    most = []
    real_take = visual_genome._Stream.take

    def watched(self, image_id, rank=None):
        found = real_take(self, image_id, rank)
        most.append(len(self.pending))
        return found

    monkeypatch.setattr(visual_genome._Stream, "take", watched)
    monkeypatch.setattr(visual_genome, "ALIGNED_AFTER", 1)  # trust the order after one entry
    source = VisualGenomeSourceConfig(
        images=str(tmp_path),
        image_data=str(tmp_path / "image_data.json"),
        objects=str(tmp_path / "objects.json"),
    )
    records = [r for r in visual_genome.read_visual_genome(source) if isinstance(r, ImageRecord)]
    assert [len(r.objects) for r in records] == [1, 0, 1, 1, 1]
    assert max(most) == 1  # image 3's entry waited for its turn; nothing else was buffered


# --------------------------------------------------------------------------- other files


@pytest.mark.parametrize(
    "key,entries,words",
    [
        (
            "objects",
            [{"objects": ["dog", "grass"], "relationships": [[0, "on", 1]]}],
            "this looks like an sg2im scene graph (objects as bare names, relationships as "
            "[subject, predicate, object] lists), not Visual Genome's objects.json",
        ),
        (
            "regions",
            [{"caption": "a dog"}, {"image_id": 1, "regions": []}],
            "this is not Visual Genome's region_descriptions.json, whose entries read "
            '{"image_id": 1, "regions": [{"phrase", "x", "y", "width", "height"}, ...]}',
        ),
    ],
)
def test_a_file_whose_first_entry_names_no_image_is_refused(tmp_path, key, entries, words):
    """Another project's file in place of one of Visual Genome's: refused by name, saying what
    it looks like and what was expected (a later entry without an id is one counted skip)."""
    (tmp_path / "file.json").write_text(json.dumps(entries))
    source = VisualGenomeSourceConfig(images=str(tmp_path), **{key: str(tmp_path / "file.json")})
    with pytest.raises(InputError) as caught:
        read(source)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'file.json'}: element 0 has no 'image_id' or 'id'")
    assert words in message and f"check `{key}` in your config" in message


def test_nesting_too_deep_where_an_item_belongs(tmp_path):
    """Lists nested 100,000 deep where a relationship belongs: the strict decoder stops at the
    first list, the looser retry goes down into it; both end in one clear error."""
    deep = "[" * 100_000 + "]" * 100_000
    (tmp_path / "relationships.json").write_text(
        '[{"image_id": 1, "relationships": [' + deep + "]}]"
    )
    source = VisualGenomeSourceConfig(
        images=str(tmp_path), relationships=str(tmp_path / "relationships.json")
    )
    with pytest.raises(InputError, match=r"relationships.json: element 0 is nested too deeply"):
        read(source)
