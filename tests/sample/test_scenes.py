"""The bundled demo sample: reproducible, valid COCO, and captions true to the pictures."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from mminstruct.sample import main, make_sample, mask_bbox, mask_rle, trace_polygon

SAMPLE = Path(__file__).resolve().parents[2] / "mminstruct" / "sample"
MAX_SAMPLE_BYTES = 400_000
FORMATS = {".jpg": "JPEG", ".png": "PNG"}

# How captions may name each category; a name in a caption must be annotated in that image.
MENTIONS = {
    "person": r"person|people|man|men|woman|women|child|children",
    "dog": r"dogs?|puppy",
    "car": r"cars?",
    "bus": r"bus|buses",
    "kite": r"kites?",
    "bird": r"birds?",
    "clock": r"clocks?",
    "cup": r"cups?|mugs?",
    "sports ball": r"balls?|basketballs?",
    "stop sign": r"stop signs?",
    "traffic light": r"traffic lights?",
    "potted plant": r"plants?",
}
PLURALS = {
    "people": "person",
    "dogs": "dog",
    "cars": "car",
    "buses": "bus",
    "kites": "kite",
    "birds": "bird",
    "cups": "cup",
    "balls": "sports ball",
}
NUMBER_WORDS = ["one", "two", "three", "four", "five", "six", "seven"]
COUNTED = re.compile(
    rf"\b({'|'.join(NUMBER_WORDS)}) (?:\w+ )?({'|'.join(PLURALS)})\b", re.IGNORECASE
)


def load(name: str) -> dict:
    """A committed JSON file of the sample."""
    return json.loads((SAMPLE / name).read_text(encoding="utf-8"))


def files_of(root: Path) -> dict[str, bytes]:
    """Every file under `root`, by relative path."""
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample regenerated with the default settings."""
    out = tmp_path_factory.mktemp("sample")
    make_sample(out)
    return out


@pytest.fixture(scope="module")
def instances() -> dict:
    return load("instances.json")


@pytest.fixture(scope="module")
def annotations_by_image(instances: dict) -> dict[int, list[dict]]:
    grouped: dict[int, list[dict]] = {im["id"]: [] for im in instances["images"]}
    for ann in instances["annotations"]:
        grouped[ann["image_id"]].append(ann)
    return grouped


@pytest.fixture(scope="module")
def category_names(instances: dict) -> dict[int, str]:
    return {c["id"]: c["name"] for c in instances["categories"]}


def test_same_seed_gives_identical_bytes(fresh: Path, tmp_path: Path) -> None:
    make_sample(tmp_path)
    again = files_of(tmp_path)
    assert again == files_of(fresh)
    assert len(again) == 18


def test_regenerated_json_equals_committed(fresh: Path) -> None:
    for name in ("instances.json", "captions.json"):
        assert json.loads((fresh / name).read_text()) == load(name), name
        assert (fresh / name).read_text().endswith("}\n")


def test_other_seed_gives_other_scenes(tmp_path: Path) -> None:
    main([str(tmp_path), "--images", "3", "--seed", "1"])
    captions = json.loads((tmp_path / "captions.json").read_text())
    assert len(captions["images"]) == 3
    assert captions["annotations"] != load("captions.json")["annotations"][:9]


def test_pycocotools_loads_both_files() -> None:
    instances = COCO(str(SAMPLE / "instances.json"))
    captions = COCO(str(SAMPLE / "captions.json"))
    assert len(instances.getImgIds()) == len(captions.getImgIds()) == 16
    assert set(instances.getCatIds()) <= {1, 3, 6, 10, 13, 16, 18, 37, 38, 47, 64, 85}
    for image_id in captions.getImgIds():
        assert len(captions.getAnnIds(imgIds=image_id)) == 3


def test_images_exist_with_annotated_size_and_format(instances: dict) -> None:
    for entry in instances["images"]:
        assert entry["file_name"] == f"{entry['id']:012d}{Path(entry['file_name']).suffix}"
        with Image.open(SAMPLE / "images" / entry["file_name"]) as image:
            assert image.size == (entry["width"], entry["height"])
            assert image.format == FORMATS[Path(entry["file_name"]).suffix]
    assert load("captions.json")["images"] == instances["images"]


def test_exactly_two_png_and_small_enough() -> None:
    names = [p.name for p in (SAMPLE / "images").iterdir()]
    assert sum(name.endswith(".png") for name in names) == 2
    assert len(names) == 16
    assert sum(len(b) for b in files_of(SAMPLE).values()) < MAX_SAMPLE_BYTES


def test_boxes_are_inside_their_images(instances: dict) -> None:
    sizes = {im["id"]: (im["width"], im["height"]) for im in instances["images"]}
    for ann in instances["annotations"]:
        x, y, w, h = ann["bbox"]
        width, height = sizes[ann["image_id"]]
        assert w > 0 and h > 0, ann["id"]
        assert x >= 0 and y >= 0 and x + w <= width and y + h <= height, ann["id"]
        assert 0 < ann["area"] <= w * h


def test_polygons_span_their_boxes(instances: dict) -> None:
    for ann in instances["annotations"]:
        if not ann["iscrowd"]:
            (poly,) = ann["segmentation"]
            xs, ys = poly[0::2], poly[1::2]
            assert [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)] == ann["bbox"]


def test_one_crowd_whose_rle_matches_box_and_area(instances: dict) -> None:
    crowds = [a for a in instances["annotations"] if a["iscrowd"]]
    assert len(crowds) == 1
    (crowd,) = crowds
    height, width = crowd["segmentation"]["size"]
    assert sum(crowd["segmentation"]["counts"]) == height * width
    rle = mask_utils.frPyObjects(crowd["segmentation"], height, width)
    assert float(mask_utils.area(rle)) == crowd["area"]
    assert mask_utils.toBbox(rle).tolist() == crowd["bbox"]


def test_objects_per_image_and_repeats(annotations_by_image: dict[int, list[dict]]) -> None:
    counts = [len(anns) for anns in annotations_by_image.values()]
    assert min(counts) >= 1 and max(counts) <= 7
    repeats = Counter(
        n
        for anns in annotations_by_image.values()
        for n in Counter(a["category_id"] for a in anns).values()
    )
    assert repeats[2] > 0 and repeats[3] > 0


def test_captions_name_only_annotated_categories(
    annotations_by_image: dict[int, list[dict]], category_names: dict[int, str]
) -> None:
    for caption in load("captions.json")["annotations"]:
        present = {
            category_names[a["category_id"]] for a in annotations_by_image[caption["image_id"]]
        }
        for category, pattern in MENTIONS.items():
            if re.search(rf"\b({pattern})\b", caption["caption"], re.IGNORECASE):
                assert category in present, (category, caption)


def test_counts_in_captions_are_true(
    annotations_by_image: dict[int, list[dict]], category_names: dict[int, str]
) -> None:
    checked = 0
    for caption in load("captions.json")["annotations"]:
        anns = annotations_by_image[caption["image_id"]]
        counts = Counter(category_names[a["category_id"]] for a in anns if not a["iscrowd"])
        for number, noun in COUNTED.findall(caption["caption"]):
            assert counts[PLURALS[noun.lower()]] == NUMBER_WORDS.index(number.lower()) + 1, caption
            checked += 1
    assert checked >= 10


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools under numpy 2
def test_rle_and_polygon_helpers_agree_with_pycocotools() -> None:
    mask = np.zeros((7, 9), dtype=bool)
    mask[0, 0] = mask[2:5, 3:8] = mask[6, 8] = True
    rle = mask_rle(mask)
    decoded = mask_utils.decode(mask_utils.frPyObjects([rle], 7, 9))[:, :, 0]
    assert (decoded.astype(bool) == mask).all()
    assert rle["counts"][0] == 0
    assert mask_bbox(mask) == [0.0, 0.0, 9.0, 7.0]
    xs, ys = trace_polygon(mask[2:5])[0::2], trace_polygon(mask[2:5])[1::2]
    assert (min(xs), min(ys), max(xs), max(ys)) == (3.0, 0.0, 8.0, 3.0)
