"""Property-based tests: random and broken inputs never crash a stage or break its promise.

- the COCO converter (well-formed records, broken records, and mangled file bytes): a clear
  `InputError` or every image accounted for exactly once, with only clean records;
- the Visual Genome converter (when present): the same for random VG files;
- the context renderer: boxes always in [0, 1], and parseable back to within rounding;
- the completion parser: any string in, no exception, and every kept conversation, once in
  LLaVA's format, follows the format rules;
- the key function: keys unique, dot-free and safe for any ids.

The budget is bounded for CI: `EXAMPLES` per test below (about 15 CPU-seconds in all).
Set MMINSTRUCT_FUZZ_SCALE=20 for a long local run. Failing examples are printed in full,
so each can be pasted into a plain test.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from mminstruct.converters.coco import MAX_CAPTION_CHARS, clean_caption, read_coco
from support.completions import BLOCKS, NOISY_TEXT

from mminstruct.config import CocoSourceConfig, ContextConfig
from mminstruct.context.render import render_context
from mminstruct.errors import InputError
from mminstruct.generate.parse import parse_completion
from mminstruct.keys import DATASET_NAME, sample_key
from mminstruct.output.samples import IMAGE_TOKEN, llava_conversation
from mminstruct.records import ImageRecord, Instruction, ObjectBox, Rejection

SCALE = float(os.environ.get("MMINSTRUCT_FUZZ_SCALE", "1"))
EXAMPLES = {"coco": 120, "bytes": 150, "vg": 80, "context": 200, "parse": 300, "keys": 300}


def budget(name: str) -> settings:
    """The CI budget of one property: a fixed number of examples, no per-example deadline."""
    return settings(
        max_examples=max(1, int(EXAMPLES[name] * SCALE)),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# --------------------------------------------------------------------------- COCO records

GOOD_IDS = st.one_of(st.integers(0, 40), st.sampled_from(["a", "b-1", "7", "x.y", "é"]))
ANY_IDS = st.one_of(GOOD_IDS, st.sampled_from([None, -1, 1.5, True, [1], {"id": 1}]))
NUMBER = st.one_of(st.integers(-5, 120), st.floats(allow_nan=True, allow_infinity=True, width=32))
ANYTHING = st.one_of(
    st.none(), st.booleans(), st.text(max_size=4), st.lists(st.integers(), max_size=2)
)


def image_entries(ids: st.SearchStrategy) -> st.SearchStrategy:
    return st.fixed_dictionaries(
        {
            "id": ids,
            "file_name": st.one_of(st.sampled_from(["a.jpg", "d/b.png", "../c.jpg"]), ANYTHING),
            "width": st.one_of(st.integers(1, 100), ANYTHING, st.just(0)),
            "height": st.one_of(st.integers(1, 100), ANYTHING, st.just(-3)),
        }
    )


BROKEN_BOXES = st.fixed_dictionaries(
    {
        "id": st.one_of(st.integers(0, 30), ANYTHING),
        "image_id": ANY_IDS,
        "category_id": st.one_of(st.integers(0, 3), ANYTHING),
        "bbox": st.one_of(st.lists(NUMBER, min_size=0, max_size=5), ANYTHING),
        "iscrowd": st.one_of(st.integers(0, 1), ANYTHING),
    }
)
BROKEN_CAPTIONS = st.fixed_dictionaries(
    {
        "id": st.integers(0, 30),
        "image_id": ANY_IDS,
        "caption": st.one_of(
            st.text(max_size=30), ANYTHING, st.just("x" * (MAX_CAPTION_CHARS + 1))
        ),
    }
)
CATEGORIES = st.lists(
    st.fixed_dictionaries(
        {
            "id": st.one_of(st.integers(1, 3), ANYTHING),
            "name": st.one_of(st.sampled_from(["dog", "cat", " a\nb "]), ANYTHING),
        }
    ),
    max_size=3,
)


@st.composite
def well_formed(draw) -> dict:
    """A COCO instances file whose every record is good: distinct ids, boxes inside."""
    ids = draw(st.lists(GOOD_IDS, min_size=1, max_size=6, unique_by=lambda v: (type(v), v)))
    images = [
        {
            "id": i,
            "file_name": f"{n}.jpg",
            "width": draw(st.integers(1, 200)),
            "height": draw(st.integers(1, 200)),
        }
        for n, i in enumerate(ids)
    ]
    boxes = []
    for n in range(draw(st.integers(0, 12))):
        image = draw(st.sampled_from(images))
        x = draw(st.floats(0, image["width"], exclude_max=True))
        y = draw(st.floats(0, image["height"], exclude_max=True))
        w = draw(st.floats(0, image["width"] - x, exclude_min=True))
        h = draw(st.floats(0, image["height"] - y, exclude_min=True))
        boxes.append(
            {
                "id": n,
                "image_id": image["id"],
                "category_id": draw(st.sampled_from([1, 2])),
                "bbox": [x, y, w, h],
                "iscrowd": draw(st.integers(0, 1)),
            }
        )
    categories = [{"id": 1, "name": "dog"}, {"id": 2, "name": "cat"}]
    return {"images": images, "annotations": boxes, "categories": categories}


def read(instances: dict | bytes, captions: dict | None = None) -> tuple[list, Path]:
    """read_coco over files written from `instances` (and `captions`) in a fresh folder."""
    folder = Path(tempfile.mkdtemp(prefix="fuzz-"))
    path = folder / "instances.json"
    path.write_bytes(instances if isinstance(instances, bytes) else json.dumps(instances).encode())
    source = {"images": str(folder), "instances": (str(path),)}
    if captions is not None:
        (folder / "captions.json").write_text(json.dumps(captions))
        source["captions"] = (str(folder / "captions.json"),)
    return list(read_coco(CocoSourceConfig(**source))), folder


def check_accounting(out: list, images: list, files: int = 1) -> None:
    """Each distinct image id comes out once: as a record or a rejection. An entry without
    a usable id cannot be matched across files: it is rejected once per file listing it."""
    valid = [e["id"] for e in images if e["id"].__class__ in (int, str)]
    invalid = (len(images) - len(valid)) * files
    came = [item.image_id for item in out if isinstance(item, ImageRecord)]
    came += [item.image_id for item in out if isinstance(item, Rejection) and item.scope == "image"]
    assert sorted(map(repr, came)) == sorted(map(repr, dict.fromkeys(valid))) + ["None"] * invalid


def check_clean(out: list) -> None:
    """Records hold only what the rest of the pipeline may rely on; rejections say why."""
    for item in out:
        if isinstance(item, Rejection):
            assert re.fullmatch(r"[a-z_]+", item.reason) and item.detail
            assert item.detail.split(":")[0] in ("instances.json", "captions.json")
            continue
        assert item.width > 0 and item.height > 0
        for obj in item.objects:
            assert obj.iscrowd.__class__ is bool and obj.category == clean_caption(obj.category)
            assert obj.category and "\ufffd" not in obj.category
            assert all(math.isfinite(v) for v in (obj.x, obj.y, obj.w, obj.h))
            assert obj.w > 0 and obj.h > 0 and obj.x >= 0 and obj.y >= 0
            assert obj.x + obj.w <= item.width + 1e-9 and obj.y + obj.h <= item.height + 1e-9
        for caption in item.captions:
            assert 0 < len(caption) <= MAX_CAPTION_CHARS and caption.isprintable()
            assert caption == clean_caption(caption) and "\ufffd" not in caption


@budget("coco")
@given(data=well_formed())
def test_well_formed_coco_keeps_every_box(data):
    out, _ = read(data)
    assert all(isinstance(item, ImageRecord) for item in out)
    check_accounting(out, data["images"])
    check_clean(out)
    boxes = {repr(item.image_id): len(item.objects) for item in out}
    for entry in data["images"]:
        expected = sum(
            1
            for a in data["annotations"]
            if a["image_id"] == entry["id"] and type(a["image_id"]) is type(entry["id"])
        )
        assert boxes[repr(entry["id"])] == expected


@budget("coco")
@given(
    images=st.lists(image_entries(ANY_IDS), max_size=6),
    boxes=st.lists(BROKEN_BOXES, max_size=10),
    captions=st.lists(BROKEN_CAPTIONS, max_size=8),
    categories=CATEGORIES,
)
def test_broken_coco_records_cost_only_their_images(images, boxes, captions, categories):
    instances = {"images": images, "annotations": boxes, "categories": categories}
    try:
        out, _ = read(instances, {"images": images, "annotations": captions})
    except InputError as exc:  # only these can break a whole file here
        message = str(exc)
        assert "instances.json: categories[" in message or "has no 'caption' fields" in message
        return
    check_accounting(out, images, files=2)
    check_clean(out)


VALID_FILE = json.dumps(
    {
        "images": [
            {"id": 1, "file_name": "a.jpg", "width": 64, "height": 48},
            {"id": "b", "file_name": "b.jpg", "width": 9, "height": 9},
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1.5, 2, 30, 20], "iscrowd": 0},
            {"id": 2, "image_id": "b", "category_id": 2, "bbox": [0, 0, 9, 9], "iscrowd": 1},
        ],
        "categories": [{"id": 1, "name": "dog"}, {"id": 2, "name": "cat"}],
    }
).encode()


@st.composite
def mangled(draw) -> bytes:
    """The valid file above, cut, with bytes flipped, inserted or removed."""
    data = bytearray(VALID_FILE)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["cut", "flip", "insert", "delete"]))
        if action == "cut":
            del data[at:]
        elif action == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        else:
            del data[at : at + draw(st.integers(1, 20))]
    return bytes(data)


@budget("bytes")
@given(raw=mangled())
def test_mangled_annotation_files_fail_cleanly_or_read(raw):
    """Any bytes: an InputError naming the file, or records as clean as ever."""
    try:
        out, _ = read(raw)
    except InputError as exc:
        assert "instances.json" in str(exc)
        return
    check_clean([item for item in out if isinstance(item, ImageRecord)])


# --------------------------------------------------------------------------- Visual Genome


@budget("vg")
@given(
    images=st.lists(
        st.fixed_dictionaries(
            {
                "image_id": ANY_IDS,
                "width": st.one_of(st.integers(1, 80), ANYTHING),
                "height": st.one_of(st.integers(1, 80), ANYTHING),
                "url": st.just("https://x/VG_100K/1.jpg"),
            }
        ),
        max_size=4,
    ),
    objects=st.lists(
        st.fixed_dictionaries(
            {
                "image_id": ANY_IDS,
                "objects": st.one_of(
                    st.lists(
                        st.fixed_dictionaries(
                            {
                                "object_id": st.one_of(st.integers(0, 9), ANYTHING),
                                "x": NUMBER,
                                "y": NUMBER,
                                "w": NUMBER,
                                "h": NUMBER,
                                "names": st.one_of(
                                    st.lists(st.sampled_from(["dog", "", "tree"]), max_size=2),
                                    ANYTHING,
                                ),
                            }
                        ),
                        max_size=4,
                    ),
                    ANYTHING,
                ),
            }
        ),
        max_size=4,
    ),
)
def test_visual_genome_random_files_fail_cleanly_or_read(images, objects):
    visual_genome = pytest.importorskip("mminstruct.converters.visual_genome")
    from mminstruct.config import VisualGenomeSourceConfig

    folder = Path(tempfile.mkdtemp(prefix="fuzz-vg-"))
    (folder / "image_data.json").write_text(json.dumps(images))
    (folder / "objects.json").write_text(json.dumps(objects))
    source = VisualGenomeSourceConfig(
        images=str(folder),
        image_data=str(folder / "image_data.json"),
        objects=str(folder / "objects.json"),
    )
    try:
        out = list(visual_genome.read_visual_genome(source))
    except InputError as exc:
        assert str(folder) in str(exc)
        return
    for item in out:
        if isinstance(item, ImageRecord):
            assert item.width > 0 and item.height > 0
            for obj in item.objects:
                assert all(math.isfinite(v) for v in (obj.x, obj.y, obj.w, obj.h))
                assert obj.x >= 0 and obj.x + obj.w <= item.width + 1e-9 and obj.w > 0
                assert obj.y >= 0 and obj.y + obj.h <= item.height + 1e-9 and obj.h > 0
        else:
            assert re.fullmatch(r"[a-z_]+", item.reason) and item.detail


# --------------------------------------------------------------------------- the context

BOX_LINE = re.compile(r"^(.+): \[([0-9.]+), ([0-9.]+), ([0-9.]+), ([0-9.]+)\]$")
CATEGORY = st.text(min_size=1, max_size=12).map(clean_caption).filter(bool)


@st.composite
def record_with_boxes(draw) -> ImageRecord:
    width, height = draw(st.integers(1, 5000)), draw(st.integers(1, 5000))
    objects = []
    for _ in range(draw(st.integers(0, 8))):
        x = draw(st.floats(0, width, exclude_max=True))
        y = draw(st.floats(0, height, exclude_max=True))
        w = draw(st.floats(0, width - x, exclude_min=True))
        h = draw(st.floats(0, height - y, exclude_min=True))
        objects.append(ObjectBox(draw(CATEGORY), x, y, w, h, draw(st.booleans())))
    return ImageRecord("t", 1, "a.jpg", None, width, height, (), tuple(objects))


@budget("context")
@given(
    record=record_with_boxes(),
    decimals=st.integers(0, 4),
    crowd=st.sampled_from(["keep", "drop"]),
    max_objects=st.one_of(st.none(), st.integers(1, 5)),
)
def test_context_boxes_are_in_the_unit_square_and_parse_back(record, decimals, crowd, max_objects):
    options = ContextConfig(
        decimals=decimals, crowd=crowd, max_objects=max_objects, relations=False
    )
    text = render_context(record, options)
    lines = text.split("\n") if text else []
    shown = [o for o in record.objects if crowd == "keep" or not o.iscrowd]
    assert len(lines) == min(len(shown), max_objects or len(shown))
    step = 0.5 * 10.0**-decimals + 1e-9  # rounding to `decimals` digits
    for n, line in enumerate(lines):
        match = BOX_LINE.match(line)
        assert match, line
        corners = list(map(float, match.groups()[1:]))
        x1, y1, x2, y2 = corners
        assert 0 <= x1 <= x2 <= 1 and 0 <= y1 <= y2 <= 1
        if max_objects is None:  # every shown box is there, in annotation order
            obj = shown[n]
            exact = (obj.x, obj.y, obj.x + obj.w, obj.y + obj.h)
            sizes = (record.width, record.height) * 2
            assert match.group(1) == obj.category
            assert all(
                abs(c - e / s) <= step for c, e, s in zip(corners, exact, sizes, strict=True)
            )


# --------------------------------------------------------------------------- the parser

WITH_TOKENS = st.one_of(NOISY_TEXT, BLOCKS).map(lambda t: t.replace("the", IMAGE_TOKEN))


@budget("parse")
@example(task="conversation", text="Question: What is it?\nAnswer: <image>.", seed=0)
@given(
    task=st.sampled_from(("conversation", "detail", "reasoning")),
    text=st.one_of(st.text(), NOISY_TEXT, BLOCKS, WITH_TOKENS),
    seed=st.integers(0, 2**32),
)
def test_every_kept_completion_becomes_a_well_formed_conversation(task, text, seed):
    parsed = parse_completion(task, text)
    if parsed.reason:
        return
    question = "Describe the image." if task == "detail" else None
    turns = tuple((question or q, a) for q, a in parsed.turns)
    messages = llava_conversation(Instruction(task, turns), random.Random(seed))
    assert [m["from"] for m in messages] == ["human", "gpt"] * len(turns)
    first = messages[0]["value"]
    assert first.count(IMAGE_TOKEN) == 1
    assert first.startswith(IMAGE_TOKEN + "\n") or first.endswith("\n" + IMAGE_TOKEN)
    assert all(IMAGE_TOKEN not in m["value"] for m in messages[1:])
    for message in messages:
        assert re.search(r"\w", message["value"].replace(IMAGE_TOKEN, "")), message


# --------------------------------------------------------------------------- keys

DATASETS = ("coco", "vg", "A_1", "d" * 32)  # names `sources.N.name` accepts
IDS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.text(max_size=60),
    st.text(alphabet="abc-_h0123456789", max_size=20),  # near the hashed form
)


@budget("keys")
@given(
    ids=st.lists(IDS, max_size=30, unique_by=lambda v: (type(v), v)),
    datasets=st.lists(st.sampled_from(DATASETS), min_size=1, max_size=3, unique=True),
)
def test_keys_are_unique_dot_free_and_safe(ids, datasets):
    assert all(DATASET_NAME.match(d) for d in datasets)
    keys = [sample_key(d, i) for d in datasets for i in ids]
    assert len(set(keys)) == len(keys)
    for key in keys:
        assert re.fullmatch(r"[A-Za-z0-9_-]+", key) and "." not in key
        assert len(f"{key}.json".encode()) < 100  # a plain ustar member name


def test_an_id_that_looks_hashed_cannot_take_another_ids_key():
    """`x.y` becomes `ds-x_y-h<hash>`; the id `x_y-h<hash>` must not get the same key."""
    hashed = sample_key("ds", "x.y")
    mimic = hashed.removeprefix("ds-")
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", mimic)  # it would be kept as it is...
    assert sample_key("ds", mimic) != hashed  # ...were it not for its look
