"""LLaVA's symbolic context: exact format, normalization, rounding and the box options."""

from __future__ import annotations

import re

import pytest
from mminstruct.converters.coco import read_coco

from mminstruct.config import CocoSourceConfig, ContextConfig
from mminstruct.context.render import box_line, render_context, visible_objects
from mminstruct.records import ImageRecord, ObjectBox

LINE = re.compile(
    r"^([^:]+): \[(\d+(?:\.\d+)?), (\d+(?:\.\d+)?), (\d+(?:\.\d+)?), (\d+(?:\.\d+)?)\]$"
)


def record(objects=(), captions=("A man on a horse.",), width=640, height=480) -> ImageRecord:
    return ImageRecord("t", 1, "a.jpg", None, width, height, tuple(captions), tuple(objects))


def test_llava_example_format():
    person = ObjectBox("person", 0.0, 115.2, 137.0, 364.8)
    assert box_line(person, 640, 480) == "person: [0.0, 0.24, 0.214, 1.0]"


def test_captions_blank_line_then_boxes():
    objects = [ObjectBox("person", 64, 48, 64, 96), ObjectBox("horse", 320, 240, 320, 240)]
    text = render_context(record(objects, captions=("First.", "Second.")), ContextConfig())
    assert text == ("First.\nSecond.\n\nperson: [0.1, 0.1, 0.2, 0.3]\nhorse: [0.5, 0.5, 1.0, 1.0]")


def test_decimals_and_no_boxes():
    obj = ObjectBox("dog", 100, 100, 113, 57)
    assert box_line(obj, 640, 480, decimals=1) == "dog: [0.2, 0.2, 0.3, 0.3]"
    assert box_line(obj, 640, 480, decimals=4) == "dog: [0.1563, 0.2083, 0.3328, 0.3271]"
    assert box_line(obj, 640, 480, decimals=0) == "dog: [0.0, 0.0, 0.0, 0.0]"
    text = render_context(record([obj]), ContextConfig(boxes=False))
    assert text == "A man on a horse."


def test_boxes_only_when_no_captions():
    text = render_context(record([ObjectBox("dog", 0, 0, 640, 480)], captions=()), ContextConfig())
    assert text == "dog: [0.0, 0.0, 1.0, 1.0]"


def test_crowd_tiny_and_cap_options():
    objects = [
        ObjectBox("person", 0, 0, 300, 300, iscrowd=True),
        ObjectBox("cup", 10, 10, 4, 4),
        ObjectBox("dog", 100, 100, 200, 100),
        ObjectBox("cat", 400, 100, 50, 50),
    ]
    rec = record(objects)
    assert [o.category for o in visible_objects(rec, ContextConfig(crowd="drop"))] == [
        "cup",
        "dog",
        "cat",
    ]
    assert [o.category for o in visible_objects(rec, ContextConfig(min_box_fraction=0.001))] == [
        "person",
        "dog",
        "cat",
    ]
    capped = visible_objects(rec, ContextConfig(max_objects=2))
    assert [o.category for o in capped] == ["person", "dog"]  # the two largest, in annotation order


def test_real_contexts_parse_back_within_unit_square(coco_mini):
    source = CocoSourceConfig(
        images=coco_mini["images"],
        instances=(coco_mini["instances"],),
        captions=(coco_mini["captions"],),
    )
    records = [r for r in read_coco(source) if isinstance(r, ImageRecord)]
    boxes = 0
    for rec in records:
        text = render_context(rec, ContextConfig())
        captions, _, box_block = text.partition("\n\n")
        assert captions.splitlines() == list(rec.captions)
        lines = box_block.splitlines()
        assert len(lines) == len(rec.objects)
        for line, obj in zip(lines, rec.objects, strict=False):
            match = LINE.match(line)
            assert match, line
            x1, y1, x2, y2 = map(float, match.groups()[1:])
            assert match.group(1) == obj.category
            assert 0 <= x1 <= x2 <= 1 and 0 <= y1 <= y2 <= 1
            assert abs(x1 - obj.x / rec.width) <= 0.0005 + 1e-9
            assert all(len(v.split(".")[1]) <= 3 for v in match.groups()[1:])
            boxes += 1
    assert boxes == 624


@pytest.mark.parametrize(
    "value,expected", [(0.30000000000000004, "0.3"), (0.9999, "1.0"), (-0.0001, "0.0")]
)
def test_rounding_edge_cases(value, expected):
    """Half-up rounding of the exact ratio; the result is clipped to [0, 1]."""
    obj = ObjectBox("x", value * 100, 0, 1, 1)
    assert box_line(obj, 100, 100).split("[")[1].split(",")[0] == expected
