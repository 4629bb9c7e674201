"""Panoptic Scene Graph (psg.json) -> records: boxes, cleaned class names, relations, and
every bad box or relation counted by its reason; then a build from a small psg.json."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import webdataset as wds
from mminstruct.converters.psg import read_psg
from PIL import Image

from mminstruct.cli import main
from mminstruct.config import ContextConfig, PsgSourceConfig, load_config
from mminstruct.context.render import render_context
from mminstruct.errors import InputError
from mminstruct.generate.rule_based import generate_instructions, load_phrasings, templates_dir
from mminstruct.records import ImageRecord, Rejection

THINGS = ["person", "horse", "dog", "bench"]
STUFF = ["grass-merged", "wall-other-merged", "sky-other-merged", "playingfield"]
PREDICATES = ["over", "in front of", "on", "riding", "beside", ""]

# Image "11" (600x400): its annotations, with [x1, y1, x2, y2] pixel boxes, and what each is.
ANNOTATIONS_11 = [
    {"bbox": [100, 50, 200, 250], "category_id": 0, "bbox_mode": 0},  # person
    {"bbox": [80, 150, 300, 380], "category_id": 1},  # horse
    {"bbox": [0, 300, 600, 400], "category_id": 4},  # grass-merged
    {"bbox": [0, 0, 600, 100], "category_id": 5},  # wall-other-merged
    {"bbox": [700, 0, 800, 50], "category_id": 2},  # right of the image: box_outside_image
    {"bbox": [10, 10, 20], "category_id": 2},  # three numbers: bad_box
    {"bbox": [1, 1, 5, 5], "category_id": 99},  # no such class: unknown_category
]
RELATIONS_11 = [
    [0, 1, 3],  # person riding horse
    [1, 2, 2],  # horse on grass
    [0, 4, 0],  # the dog's box was dropped: relation_missing_object
    [0, 9, 0],  # no annotation 9: relation_missing_object
    [0, 1, 77],  # no predicate 77: empty_predicate
    [0, 1, 5],  # the empty predicate class: empty_predicate
    [0, 0, 2],  # person on itself: self_relation
    [0, 1],  # two numbers: bad_relation
    "x",  # bad_relation
    [0, 1, 3],  # a repeat: kept once
]


def jpeg(path: Path, size: tuple[int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (120, 140, 90)).save(path, quality=60)


@pytest.fixture
def psg_dir(tmp_path: Path) -> Path:
    """A psg.json of three images (one with a bad height) and their placeholder images."""
    data = [
        {
            "file_name": "val2017/a.jpg",
            "width": 600,
            "height": 400,
            "image_id": "11",
            "pan_seg_file_name": "val2017/a.png",
            "segments_info": [{"id": 1, "category_id": 0}],
            "annotations": ANNOTATIONS_11,
            "relations": RELATIONS_11,
        },
        {
            "file_name": "val2017/b.jpg",
            "width": 100,
            "height": 0,
            "image_id": 12,
            "annotations": [],
            "relations": [],
        },
        {
            "file_name": "val2017/c.jpg",
            "width": 320,
            "height": 240,
            "image_id": 13,
            "annotations": [
                {"bbox": [10, 100, 310, 200], "category_id": 3},  # bench
                {"bbox": [140, 20, 190, 150], "category_id": 0},  # person
            ],
            "relations": [[1, 0, 1]],  # person in front of bench
        },
    ]
    psg = {
        "thing_classes": THINGS,
        "stuff_classes": STUFF,
        "predicate_classes": PREDICATES,
        "data": data,
        "test_image_ids": [],
    }
    (tmp_path / "psg.json").write_text(json.dumps(psg))
    jpeg(tmp_path / "val2017" / "a.jpg", (600, 400))
    jpeg(tmp_path / "val2017" / "c.jpg", (320, 240))
    return tmp_path


def read(psg_dir: Path) -> tuple[dict, list[Rejection]]:
    source = PsgSourceConfig(images=str(psg_dir), annotations=str(psg_dir / "psg.json"))
    items = list(read_psg(source))
    records = {r.image_id: r for r in items if isinstance(r, ImageRecord)}
    return records, [r for r in items if isinstance(r, Rejection)]


def named(record: ImageRecord, relation) -> tuple[str, str, str]:
    objects = record.objects
    return (
        objects[relation.subject].category,
        relation.predicate,
        objects[relation.object].category,
    )


def test_boxes_become_xywh_and_stuff_names_are_cleaned(psg_dir):
    records, _ = read(psg_dir)
    record = records[11]  # the string id "11" is the number 11
    assert (record.file_name, record.width, record.height) == ("val2017/a.jpg", 600, 400)
    assert record.images_dir == psg_dir
    boxes = [(o.category, o.x, o.y, o.w, o.h) for o in record.objects]
    assert boxes == [
        ("person", 100, 50, 100, 200),
        ("horse", 80, 150, 220, 230),
        ("grass", 0, 300, 600, 100),
        ("wall", 0, 0, 600, 100),
    ]
    assert record.vocabulary == ("bench", "dog", "horse", "person")  # the thing classes
    assert records[13].objects[0].category == "bench"


def test_relations_map_to_the_kept_objects(psg_dir):
    records, _ = read(psg_dir)
    assert [named(records[11], r) for r in records[11].relations] == [
        ("person", "riding", "horse"),
        ("horse", "on", "grass"),
    ]
    assert [named(records[13], r) for r in records[13].relations] == [
        ("person", "in front of", "bench")
    ]


def test_bad_boxes_and_relations_are_counted_by_reason(psg_dir):
    records, rejections = read(psg_dir)
    skipped = [r for r in rejections if r.scope == "record"]
    assert {r.image_id for r in skipped} == {11}
    reasons = sorted(r.reason for r in skipped)
    assert reasons == sorted(
        ["box_outside_image", "bad_box"]
        + ["unknown_category"]
        + ["relation_missing_object"] * 2
        + ["empty_predicate"] * 2
        + ["self_relation"]
        + ["bad_relation"] * 2
    )
    details = "\n".join(r.detail for r in skipped)
    assert "psg.json: data[0].annotations[4]: bbox" in details
    assert "psg.json: data[0].relations[3]: subject 0 or object 9" in details
    assert "psg.json: data[0].relations[4]: predicate 77" in details
    (bad_image,) = [r for r in rejections if r.scope == "image"]
    assert (bad_image.reason, bad_image.image_id) == ("bad_image_entry", 12)
    assert "'height' must be a positive integer, got 0" in bad_image.detail
    assert set(records) == {11, 13}


def test_context_shows_boxes_and_relations(psg_dir):
    records, _ = read(psg_dir)
    text = render_context(records[11], ContextConfig())
    boxes, relations = text.split("\n\n")
    x1, y1, x2, y2 = ANNOTATIONS_11[0]["bbox"]
    person = [round(x1 / 600, 3), round(y1 / 400, 3), round(x2 / 600, 3), round(y2 / 400, 3)]
    assert f"person: {person}" in boxes.splitlines()
    assert "wall: [0.0, 0.0, 1.0, 0.25]" in boxes.splitlines()
    # most prominent first: horse (50,600 px) with grass (60,000) before person (20,000)
    assert relations.splitlines() == ["horse on grass", "person riding horse"]


def test_entry_that_is_not_an_object_and_a_repeated_image_id_cost_only_themselves(tmp_path):
    """A null entry rejects no other image; a second entry for an image id already read
    is skipped and counted (it would write a second sample under the same key)."""
    entry = {"file_name": "a.jpg", "width": 10, "height": 10, "image_id": 4, "relations": []}
    entry["annotations"] = [{"bbox": [0, 0, 5, 5], "category_id": 0}]
    psg = {"thing_classes": THINGS, "predicate_classes": PREDICATES}
    psg["data"] = [entry, None, {**entry, "image_id": "4"}]
    (tmp_path / "psg.json").write_text(json.dumps(psg))
    source = PsgSourceConfig(images=str(tmp_path), annotations=str(tmp_path / "psg.json"))
    items = list(read_psg(source))
    assert [r.image_id for r in items if isinstance(r, ImageRecord)] == [4]
    rejections = [(r.reason, r.image_id, r.scope, r.detail) for r in items[1:]]
    assert rejections == [
        (
            "bad_image_entry",
            None,
            "image",
            "psg.json: data[1]: must be an object, got null",
        ),
        (
            "duplicate_image_entry",
            4,
            "record",
            "psg.json: data[2]: image_id 4 is listed already at data[0]; skipped",
        ),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is it empty"),
        (b"{not json", "malformed"),
        (b'{"data": []}', "no thing_classes, predicate_classes at the top level"),
        (b'{"data": {}, "thing_classes": [], "predicate_classes": []}', r"at `\$\.data`"),
    ],
)
def test_whole_file_problems_raise(tmp_path, content, message):
    path = tmp_path / "psg.json"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as caught:
        list(read_psg(PsgSourceConfig(images=str(tmp_path), annotations=str(path))))
    assert str(path) in str(caught.value)
    with pytest.raises(InputError, match="file not found"):
        list(read_psg(PsgSourceConfig(images=str(tmp_path), annotations=str(tmp_path / "no"))))


def test_build_from_psg(psg_dir, tmp_path):
    out = tmp_path / "out"
    overrides = [
        f"sources.0.images={psg_dir}",
        f"sources.0.annotations={psg_dir / 'psg.json'}",
        "tasks.conversation.turns=12",
        f"output.dir={out}",
    ]
    args = [x for o in overrides for x in ("--set", o)]
    assert main(["build", "configs/psg.yaml", "-q", *args]) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["images_in"] == 3 == stats["images_written"] + stats["images_rejected"]
    assert stats["images_written"] == 2
    assert stats["rejects"]["bad_image_entry"] == 1
    assert stats["rejects"]["bad_relation"] == 2 and stats["rejects"]["self_relation"] == 1
    samples = list(wds.WebDataset([str(p) for p in out.glob("shard-*.tar")], shardshuffle=False))
    by_id = {json.loads(s["json"])["source"]["image_id"]: json.loads(s["json"]) for s in samples}
    assert set(by_id) == {11, 13}
    turns = [
        (q["value"].replace("<image>", "").strip(), a["value"])
        for i in by_id[11]["instructions"]
        if i["task"] == "conversation"
        for q, a in zip(i["conversations"][::2], i["conversations"][1::2], strict=True)
    ]
    doing = [a for q, a in turns if re.search(r"(doing|interacting|do) with the horse\?$", q)]
    choice = [a for q, a in turns if re.match(r"(Is|Would you say) the horse .*the grass,? or", q)]
    what = [a for q, a in turns if re.search(r"what is on the grass\?$", q, re.IGNORECASE)]
    where = [a for q, a in turns if re.search(r"the horse (in relation to|placed relative to)", q)]
    assert doing or choice or what or where, turns  # which ones: see test_relation_questions_...
    assert all(a.lower().endswith("on the grass.") for a in where)
    assert all(a.lower().endswith("the person is riding the horse.") for a in doing)
    assert all(a.lower().endswith("the horse is on the grass.") for a in choice)
    assert all(a.lower().endswith("a horse is on the grass.") for a in what)
    config = load_config("configs/psg.yaml", overrides)
    assert config.context.relations  # the shipped config shows the relations block


def test_relation_questions_are_asked_and_true(psg_dir):
    records, _ = read(psg_dir)
    config = load_config("configs/psg.yaml", ["tasks.conversation.turns=12"])
    phrasings = load_phrasings(templates_dir(None))
    answers: dict[str, set[str]] = {"doing": set(), "choice": set(), "what": set()}
    for seed in range(12):
        generated = generate_instructions(
            records[11], config.tasks, phrasings, seed, config.context
        )
        for instruction in generated.instructions:
            for question, answer in instruction.turns:
                if re.search(r"(doing|interacting|do) with the horse\?$", question):
                    answers["doing"].add(answer.lower())
                elif re.match(r"(Is|Would you say) the horse .*the grass,? or", question):
                    answers["choice"].add(answer.lower())
                elif re.search(r"what is on the grass\?$", question, re.IGNORECASE):
                    answers["what"].add(answer.lower())
    assert all(answers.values()), answers
    assert all(a.endswith("the person is riding the horse.") for a in answers["doing"])
    assert all(a.endswith("the horse is on the grass.") for a in answers["choice"])
    assert all(a.endswith("a horse is on the grass.") for a in answers["what"])
