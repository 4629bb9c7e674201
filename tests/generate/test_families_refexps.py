"""RefCOCO-style referring expressions (a JSON `refexps` file on a COCO source) reach the
region grounding task with their annotation's box; a whole mix builds and exports the way
LLaVA-1.5's mix is laid out."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from mminstruct.converters import read_coco

from mminstruct.cli import main
from mminstruct.config import CocoSourceConfig, config_from_dict
from mminstruct.errors import ConfigError, InputError
from mminstruct.generate.rule_based import Phrasings, generate_instructions, llava_box
from mminstruct.lexicon import FORMAT_PROMPTS
from mminstruct.records import ImageRecord, Rejection

TINY = Path(__file__).resolve().parents[3] / "shared/realdata/coco/tiny_coco"
INSTANCES = TINY / "annotations" / "instances_val2017.json"
IMAGE = 471345  # its first image: 640x480, three cups among its boxes
CUP_ANN, CUP_BOX = 671091, (435.58, 235.5, 147.34, 168.3)  # annotation id and its bbox


@pytest.fixture
def refexps(tmp_path: Path) -> Path:
    if not INSTANCES.is_file():
        pytest.skip(f"tiny_coco not found at {TINY}")
    entries = [
        {
            "image_id": IMAGE,
            "ann_id": CUP_ANN,
            "sentences": [{"sent": "cup on the right"}, "Right cup."],
        },
        {"image_id": IMAGE, "bbox": [10, 20, 100, 50], "sentences": [{"raw": "Dark corner"}]},
        {"image_id": 999, "ann_id": CUP_ANN, "sentences": ["no such image"]},
        {"image_id": IMAGE, "ann_id": 12345678, "sentences": ["no such annotation"]},
        {"image_id": IMAGE, "bbox": [10, 20, 100, 50], "sentences": []},
    ]
    path = tmp_path / "refs.json"
    path.write_text(json.dumps(entries))
    return path


def read(refexps: Path) -> tuple[dict, list[Rejection]]:
    source = CocoSourceConfig(
        images=str(TINY), instances=(str(INSTANCES),), refexps=(str(refexps),)
    )
    items = list(read_coco(source))
    return {r.image_id: r for r in items if isinstance(r, ImageRecord)}, [
        r for r in items if isinstance(r, Rejection)
    ]


def test_expressions_land_on_their_annotations_box(refexps):
    records, rejections = read(refexps)
    referring = {(r.phrase, (r.x, r.y, r.w, r.h)) for r in records[IMAGE].referring}
    assert referring == {
        ("cup on the right", CUP_BOX),
        ("Right cup", CUP_BOX),
        ("Dark corner", (10.0, 20.0, 100.0, 50.0)),
    }
    bad = Counter(r.reason for r in rejections if r.record_only)
    assert bad == {"bad_refexp": 3}
    assert all(not r.referring for i, r in records.items() if i != IMAGE)


def test_regions_ask_for_an_expressions_box(refexps):
    rec = read(refexps)[0][IMAGE]
    tasks = config_from_dict(
        {
            "sources": [{"kind": "coco", "images": "i", "captions": ["c"]}],
            "tasks": {
                **{t: {"enabled": False} for t in ("conversation", "detail", "reasoning")},
                "regions": {"enabled": True, "questions": 50},
            },
        }
    ).tasks
    made = generate_instructions(rec, tasks, Phrasings({}, "none", "0"), 3)
    pairs = dict(made.instructions[0].turns)
    cup = llava_box(CUP_BOX, rec.width, rec.height)
    asked = "Please provide the bounding box coordinate of the region this sentence describes: "
    described = "Please provide a short description for this region: "
    found = {q: a for q, a in pairs.items() if "right cup" in (q + a).lower()}
    assert found, pairs
    # Its other sentence also fits the rightmost cup: a phrase with two boxes is never asked.
    assert not any("cup on the right" in (q + a).lower() for q, a in pairs.items())
    for question, answer in found.items():
        assert (question, answer) in ((asked + "right cup.", cup), (described + cup, "Right cup."))


def test_pickles_and_other_shapes_are_refused(tmp_path: Path):
    if not INSTANCES.is_file():
        pytest.skip(f"tiny_coco not found at {TINY}")
    pickle = tmp_path / "refs(unc).p"
    pickle.write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(InputError, match="pickle"):
        read(pickle)
    not_a_list = tmp_path / "refs.json"
    not_a_list.write_text('{"refs": []}')
    with pytest.raises(InputError, match="not a referring-expressions file"):
        read(not_a_list)


def test_families_need_the_template_backend_and_sane_options():
    raw = {"sources": [{"kind": "coco", "images": "i", "captions": ["c"]}]}
    raw |= {"tasks": {"short_vqa": {"enabled": True}, "choice": {"options": 9}}}
    raw |= {"generator": {"backend": "openai", "model": "m"}}
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw)
    problems = "\n".join(info.value.problems)
    assert "tasks.short_vqa: written from the annotations" in problems
    assert "tasks.choice.options: must be 2 to 6, got 9" in problems


def test_mix_builds_and_exports_each_family_as_llava_15_mix_does(tmp_path: Path):
    out, dest = tmp_path / "out", tmp_path / "llava"
    assert main(["build", "configs/mix.yaml", "-q", "--set", f"output.dir={out}"]) == 0
    assert main(["export", str(out), "--dest", str(dest), "--format", "llava"]) == 0
    records = json.loads((dest / "llava.json").read_text())
    by_task = Counter()
    for record in records:
        task = record["id"].split("-")[-2]
        first = record["conversations"][0]["value"]
        by_task[task] += 1
        if task in FORMAT_PROMPTS:
            assert first.startswith("<image>\n") and first.count("<image>") == 1
            humans = [t["value"] for t in record["conversations"] if t["from"] == "human"]
            assert all(_has_format_prompt(task, h) for h in humans), humans
    assert all(by_task[task] >= 10 for task in FORMAT_PROMPTS), by_task
    stats = json.loads((out / "stats.json").read_text())
    assert stats["grounding"]["flagged"] == 0


def _has_format_prompt(task: str, question: str) -> bool:
    if task == "regions":
        return question.split("\n")[-1].startswith(
            (
                "Please provide the bounding box coordinate of the region this sentence describes: ",
                "Please provide a short description for this region: [",
            )
        )
    return question.endswith("\n" + FORMAT_PROMPTS[task])
