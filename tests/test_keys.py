"""Sample keys are unique, dot-free, short and derived only from dataset and image id."""

from __future__ import annotations

import re

from mminstruct.keys import sample_key

SAFE = re.compile(r"^[A-Za-z0-9_-]+$")


def test_coco_style_keys():
    assert sample_key("coco", 397133) == "coco-000000397133"
    assert sample_key("vg", "2345") != sample_key("vg", 2345)
    assert sample_key("vg", "abc_1") == "vg-abc_1"


def test_awkward_ids_stay_safe_and_unique():
    ids = [
        0,
        1,
        10**15,
        -1,
        "-1",
        "a.b",
        "a_b",
        "a/b",
        "../x",
        "x y",
        "é",
        "",
        "a" * 200,
        "a" * 201,
        "00001",
        1.5,
    ]
    keys = [sample_key("ds", i) for i in ids]
    assert len(set(keys)) == len(keys)
    for key in keys:
        assert SAFE.match(key), key
        assert len(f"{key}.json".encode()) < 100
