"""The annotations JSON of a bare `--image`: read as a COCO file's boxes are, bad ones named."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mminstruct.cli import main
from mminstruct.config import load_config
from mminstruct.errors import ConfigError
from mminstruct.preview.run import bare_record, find_record, preview, read_annotations

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "mminstruct" / "sample" / "images"
IMAGE = "000000000802.jpg"  # a coco_mini val image that is present, with captions and boxes


def coco_subset(root: Path, image_id: int, folder: Path, all_categories: bool) -> dict:
    """A COCO source over one real coco_mini image: its entry, boxes and captions, and the
    file's 80 categories or only those its boxes use. Named `image`, as a bare image is."""
    instances = json.loads((root / "annotations" / "instances_val2017.json").read_text())
    captions = json.loads((root / "annotations" / "captions_val2017.json").read_text())
    images = [i for i in instances["images"] if i["id"] == image_id]
    boxes = [a for a in instances["annotations"] if a["image_id"] == image_id]
    used = {a["category_id"] for a in boxes}
    categories = [c for c in instances["categories"] if all_categories or c["id"] in used]
    said = [a for a in captions["annotations"] if a["image_id"] == image_id]
    (folder / "i.json").write_text(
        json.dumps({"images": images, "annotations": boxes, "categories": categories})
    )
    (folder / "c.json").write_text(json.dumps({"images": images, "annotations": said}))
    return {
        "kind": "coco",
        "name": "image",
        "images": str(root / "val2017"),
        "instances": str(folder / "i.json"),
        "captions": str(folder / "c.json"),
    }


@pytest.mark.parametrize("all_categories", [False, True], ids=["used_categories", "all_80"])
def test_same_boxes_as_annotations_or_as_coco_file_give_the_same_preview(
    tmp_path, realdata, all_categories
):
    """A bare image's boxes count as a COCO file's: counts stated, reasoning written, and
    with `categories` (the file's category list) the same absent categories known."""
    root = realdata / "coco" / "coco_mini"
    source = coco_subset(root, int(IMAGE[:-4]), tmp_path, all_categories)
    (tmp_path / "job.json").write_text(json.dumps({"sources": [source]}))
    config = load_config(tmp_path / "job.json")
    coco = find_record(config, IMAGE[:-4])
    assert len(coco.vocabulary) == (
        80 if all_categories else len({o.category for o in coco.objects})
    )
    annotations = {
        "captions": list(coco.captions),
        "objects": [
            {
                "category": o.category,
                "bbox": [o.x, o.y, o.w, o.h],
                "iscrowd": o.iscrowd,
                "area": o.segment_area,
            }
            for o in coco.objects
        ],
    }
    if all_categories:
        annotations["categories"] = sorted(
            {c["name"] for c in json.loads(Path(source["instances"]).read_text())["categories"]}
        )
    (tmp_path / "a.json").write_text(json.dumps(annotations))
    bare = bare_record(root / "val2017" / IMAGE, tmp_path / "a.json")
    assert bare.vocabulary == coco.vocabulary
    from_coco, from_bare = preview(config, coco), preview(config, bare)
    assert from_bare.context == from_coco.context
    assert from_bare.instructions == from_coco.instructions
    assert [r.to_json() for r in from_bare.rejections] == [
        r.to_json() for r in from_coco.rejections
    ]
    tasks = {i["task"] for i in from_bare.instructions}
    assert "reasoning" in tasks, from_bare.rejections  # counts known: reasoning is written
    assert all("found: none" not in r.detail for r in from_bare.rejections)


def test_bare_boxes_state_their_counts_through_the_real_command(tmp_path, capsys):
    """Two boxed dogs on a bare image: the preview says how many, as a COCO build would."""
    boxes = [[10, 10, 40, 30], [60, 20, 40, 30], [120, 100, 80, 60]]
    objects = [
        {"category": c, "bbox": b} for c, b in zip(("dog", "dog", "couch"), boxes, strict=True)
    ]
    (tmp_path / "a.json").write_text(
        json.dumps({"captions": ["Dogs by a sofa."], "objects": objects})
    )
    args = ["preview", "demo", "--image", str(SAMPLE / "000000000001.jpg")]
    assert (
        main([*args, "--annotations", str(tmp_path / "a.json"), "--out", str(tmp_path / "o")]) == 0
    )
    text = capsys.readouterr().out
    assert "two dogs" in text.lower() or "2 dogs" in text.lower(), text
    assert "found: none" not in text


def test_categories_must_name_every_boxed_category(tmp_path):
    data = {
        "objects": [{"category": "dog", "bbox": [0, 0, 5, 5], "iscrowd": 2}],
        "categories": ["cat", ""],
    }
    (tmp_path / "a.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError) as caught:
        read_annotations(tmp_path / "a.json", 64, 48)
    assert caught.value.problems == [
        "objects.0.iscrowd: must be true or false (or 1 or 0), got 2",
        "categories.1: must be a non-empty string",
        "objects.0.category: 'dog' is not in categories; add it there or correct the name",
    ]


def preview_bare(tmp_path: Path, annotations_text: str | None) -> subprocess.CompletedProcess:
    """`mminstruct preview` of a sample image with these annotations (None: the file as is)."""
    path = tmp_path / "a.json"
    if annotations_text is not None:
        path.write_text(annotations_text)
    image = str(SAMPLE / "000000000001.jpg")
    args = ["preview", "demo", "--image", image, "--annotations", str(path)]
    command = [sys.executable, "-m", "mminstruct", *args, "--out", str(tmp_path / "o")]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_deeply_nested_annotations_are_a_clear_error_naming_the_file(tmp_path, capsys):
    deep = "[" * 100_000 + "]" * 100_000
    (tmp_path / "deep.json").write_text(deep)
    image = str(SAMPLE / "000000000001.jpg")
    args = ["preview", "demo", "--image", image, "--annotations", str(tmp_path / "deep.json")]
    assert main([*args, "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert f"--annotations {tmp_path / 'deep.json'}: JSON nested too deeply to read" in err
    result = preview_bare(tmp_path, deep)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "JSON nested too deeply to read" in result.stderr


def test_huge_numbers_and_values_are_named_briefly_not_crashed_on(tmp_path):
    """A 400-digit integer is no float; a megabyte of text is quoted in a few words."""
    huge = "1" + "0" * 400
    text = '{"objects": [{"category": "dog", "bbox": [' + huge + ", 0, 1, 1]}, "
    text += '{"category": "cat", "bbox": "' + "x" * 1_000_000 + '"}]}'
    result = preview_bare(tmp_path, text)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "objects.0.bbox: must hold 4 finite numbers" in result.stderr
    assert "objects.1.bbox: must be [x, y, width, height] in pixels" in result.stderr
    assert len(result.stderr) < 2_000


def test_an_annotations_file_too_large_for_one_image_is_refused_before_reading(tmp_path):
    (tmp_path / "a.json").touch()
    with (tmp_path / "a.json").open("wb") as handle:  # 2 GiB, sparse: costs no disk
        handle.truncate(2 << 30)
    result = preview_bare(tmp_path, None)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "larger than 16 MiB; give the annotations of this one image only" in result.stderr
