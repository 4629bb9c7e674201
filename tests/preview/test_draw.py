"""The preview picture says what the context says: its names, its relations, apart."""

from __future__ import annotations

import io
import json
import re
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mminstruct.cli import main
from mminstruct.config import load_config
from mminstruct.preview.draw import annotation_labels, draw_annotations
from mminstruct.preview.labels import overlaps
from mminstruct.preview.run import find_record, preview
from mminstruct.records import ImageRecord, ObjectBox

BOX_LINE = re.compile(r"^(.+): \[[-\d., e]+\]$")
HEADER = re.compile(r"(\d+) relation\(s\) in the context \((\d+) derived from the boxes\)")


@pytest.fixture
def coco_job(tmp_path, tiny_coco) -> Path:
    """tiny_coco val2017 (6 real images, no annotated relations), relations derived from
    the boxes as the shipped configs/coco.yaml does."""
    path = tmp_path / "job.json"
    path.write_text(
        json.dumps({"sources": [tiny_coco], "context": {"derive_relations": "missing"}})
    )
    return path


def image_ids(tiny_coco: dict) -> list[int]:
    return [i["id"] for i in json.loads(Path(tiny_coco["instances"]).read_text())["images"]]


def context_parts(context: str) -> tuple[list[str], list[str]]:
    """The names of the context's box lines, and its relation lines."""
    lines = context.splitlines()
    names = [m.group(1) for line in lines if (m := BOX_LINE.match(line))]
    blocks = context.split("\n\n")
    last = blocks[-1].splitlines()
    relations = last if last and not BOX_LINE.match(last[0]) and len(blocks) > 1 else []
    return names, relations


def test_labels_are_the_context_names_and_relations_are_all_drawn_apart(coco_job, tiny_coco):
    config = load_config(coco_job)
    for image_id in image_ids(tiny_coco):
        p = preview(config, find_record(config, str(image_id)))
        names, relation_lines = context_parts(p.context)
        size = (p.record.width, p.record.height)
        labels = annotation_labels(p.record, size, p.shown, p.labels, p.relations)
        objects, predicates = labels[: len(p.shown)], labels[len(p.shown) :]
        assert [label.text for label in objects] == names, image_id
        assert len(predicates) == len(relation_lines) > 0, image_id
        said = [f"{p.labels[r.subject]} {r.predicate} {p.labels[r.object]}" for r in p.relations]
        assert said == relation_lines
        assert [label.text for label in predicates] == [r.predicate for r in p.relations]
        numbered = [n for n in names if re.search(r" \d+$", n)]
        assert numbered or len(set(names)) == len(names)  # repeated categories are numbered
        for a, b in combinations(labels, 2):
            assert not overlaps(a.box, b.box), (image_id, a, b)
        for label in labels:  # inside the picture
            assert label.box[0] >= 0 and label.box[2] <= size[0] + 0.5, label
            assert label.box[1] >= 0 and label.box[3] <= size[1] + 0.5, label


def test_header_counts_the_relations_the_context_shows(coco_job, tiny_coco, tmp_path, capsys):
    for image_id in image_ids(tiny_coco)[:3]:
        out = tmp_path / str(image_id)
        assert main(["preview", str(coco_job), "--image-id", str(image_id), "--out", str(out)]) == 0
        text = capsys.readouterr().out
        context = text.split("== context", 1)[1].split("\n== ", 1)[0].split("\n", 1)[1]
        context = "\n".join(line[2:] for line in context.strip("\n").splitlines())
        _, relation_lines = context_parts(context)
        shown, derived = map(int, HEADER.search(text).groups())
        assert shown == derived == len(relation_lines) > 0, image_id
        page = (out / "preview.html").read_text()
        assert HEADER.search(page).groups() == (str(shown), str(derived))


def test_derived_relations_are_drawn_as_arrows(coco_job, tiny_coco):
    config = load_config(coco_job)
    p = preview(config, find_record(config, str(image_ids(tiny_coco)[0])))
    assert p.relations and all(r.derived for r in p.relations)
    original = np.asarray(Image.open(io.BytesIO(p.image.data)).convert("RGB")).astype(int)
    drawn = draw_annotations(p.image.data, p.record, p.shown, p.labels, p.relations)
    drawn = np.asarray(drawn).astype(int)
    for relation in p.relations:
        a, b = p.record.objects[relation.subject], p.record.objects[relation.object]
        (ax, ay), (bx, by) = (a.x + a.w / 2, a.y + a.h / 2), (b.x + b.w / 2, b.y + b.h / 2)
        points = [(round(ax + (bx - ax) * t), round(ay + (by - ay) * t)) for t in (0.3, 0.7)]
        assert all((drawn[y, x] != original[y, x]).any() for x, y in points), relation


def crowded(width: int, height: int, count: int) -> ImageRecord:
    """`count` people whose boxes all start at the same corner: their labels want one place."""
    objects = tuple(ObjectBox("person", 20.0, 20.0, 30.0 + i, 40.0 + i) for i in range(count))
    return ImageRecord("t", 1, "x.png", None, width, height, objects=objects)


def test_labels_that_want_one_place_move_apart_when_there_is_room():
    record = crowded(640, 480, 12)
    names = {i: f"person {i + 1}" for i in range(12)}
    labels = annotation_labels(record, (640, 480), range(12), names, ())
    assert [label.text for label in labels] == list(names.values())
    for a, b in combinations(labels, 2):
        assert not overlaps(a.box, b.box), (a, b)


def test_labels_without_room_still_draw_and_long_names_are_cut():
    record = crowded(64, 48, 40)
    names = {i: "x" * 10_000 for i in range(40)}
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48)).save(buffer, format="PNG")
    image = draw_annotations(buffer.getvalue(), record, range(40), names, ())
    assert image.size == (64, 48)
    labels = annotation_labels(record, (64, 48), range(40), names, ())
    assert len(labels) == 40 and all(len(label.text) <= 60 for label in labels)
