"""The academic task families (regions, short VQA, multiple choice, compositional) on real
records: COCO (tiny_coco, coco_mini) and the Visual Genome excerpt, read by the converters.

Each answer is read back and compared with the annotations by code that does not share the
generator's: a phrase names one object and its box is that object's, a count is the count,
a letter marks the right option, a "Yes" is true; and the grounding checks find nothing.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections import Counter
from functools import cache
from pathlib import Path

import msgspec
import pytest
from mminstruct.converters import read_coco, read_visual_genome
from PIL import Image

from mminstruct.checks import check_instruction, ground
from mminstruct.config import (
    CocoSourceConfig,
    ContextConfig,
    TasksConfig,
    VisualGenomeSourceConfig,
    config_from_dict,
    load_config,
)
from mminstruct.generate.rule_based import (
    Phrasings,
    generate_instructions,
    llava_box,
    referents,
)
from mminstruct.keys import image_seed
from mminstruct.lexicon import COCO_SUPERCATEGORIES, FORMAT_PROMPTS
from mminstruct.records import ImageRecord
from mminstruct.resources import shipped_dir
from mminstruct.words import noun

REALDATA = Path(__file__).resolve().parents[3] / "shared" / "realdata"
COCO = REALDATA / "coco"
VG = REALDATA / "visual_genome" / "garima16_subset_data"
FAMILIES = ("regions", "short_vqa", "choice", "compositional")
GPT_STYLE = ("conversation", "detail", "reasoning")
# The families never draw a phrasing from a pool: an empty set keeps them independent of it.
NO_POOLS = Phrasings(pools={}, source="none", sha256="0")
BOX = re.compile(r"^\[(\d\.\d\d), (\d\.\d\d), (\d\.\d\d), (\d\.\d\d)\]$")


# --------------------------------------------------------------------------- real records


def _need(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"real data not found at {path}")


@cache
def coco_records() -> tuple[ImageRecord, ...]:
    _need(COCO)
    tiny = COCO / "tiny_coco" / "annotations"
    mini = COCO / "coco_mini" / "annotations"
    sources = [
        CocoSourceConfig(
            images=str(COCO / "tiny_coco"), instances=(str(tiny / "instances_val2017.json"),)
        ),
        CocoSourceConfig(
            images=str(COCO / "coco_mini"),
            instances=(str(mini / "instances_val2017.json"),),
            captions=(str(mini / "captions_val2017.json"),),
        ),
    ]
    return tuple(
        r for s in sources for r in read_coco(s) if isinstance(r, ImageRecord) and r.objects
    )


@pytest.fixture(scope="module")
def vg_records(tmp_path_factory) -> tuple[ImageRecord, ...]:
    """The Visual Genome excerpt, with placeholder images of a size holding every box."""
    _need(VG / "relationships.json")
    sizes: dict[int, tuple[int, int]] = {}
    for entry in json.loads((VG / "objects.json").read_bytes()):
        for obj in entry["objects"]:
            w, h = sizes.get(entry["image_id"], (1, 1))
            right, bottom = math.ceil(obj["x"] + obj["w"]), math.ceil(obj["y"] + obj["h"])
            sizes[entry["image_id"]] = (max(w, right), max(h, bottom))
    root = tmp_path_factory.mktemp("vg")
    for image_id, size in sizes.items():
        (root / "VG_100K").mkdir(exist_ok=True)
        Image.new("RGB", size).save(root / "VG_100K" / f"{image_id}.jpg")
    files = {name: str(VG / f"{name}.json") for name in ("objects", "relationships")}
    source = VisualGenomeSourceConfig(
        images=str(root), regions=str(VG / "region_graphs.json"), **files
    )
    return tuple(r for r in read_visual_genome(source) if isinstance(r, ImageRecord) and r.objects)


def families(**settings) -> TasksConfig:
    tasks = {"conversation": {"enabled": False}, "detail": {"enabled": False}}
    tasks |= {"reasoning": {"enabled": False}}
    tasks |= {name: {"enabled": True, **settings.get(name, {})} for name in FAMILIES}
    source = {"kind": "coco", "images": "i", "captions": ["c.json"]}
    return config_from_dict({"sources": [source], "tasks": tasks}).tasks


def turns(records, task: str, seeds=range(1), **settings):
    """(record, question, answer) of `task` over the records and seeds."""
    found = []
    for seed in seeds:
        for rec in records:
            made = generate_instructions(
                rec, families(**settings), NO_POOLS, image_seed(seed, rec.dataset, rec.image_id)
            )
            found += [(rec, q, a) for i in made.instructions if i.task == task for q, a in i.turns]
    return found


# --------------------------------------------------------------------------- reading answers back


def box_of(text: str, rec: ImageRecord) -> tuple[float, float, float, float]:
    match = BOX.match(text)
    assert match, f"not a LLaVA-1.5 box: {text!r}"
    values = tuple(float(v) for v in match.groups())
    assert all(0 <= v <= 1 for v in values) and values[0] < values[2] and values[1] < values[3]
    return values


def normalised(x: float, y: float, w: float, h: float, rec: ImageRecord, frame="square") -> tuple:
    """The box as fractions of the image padded to a centered square (LLaVA-1.5's
    `expand2square`), or of the image's own sides."""
    if frame == "image":
        width, height = rec.width, rec.height
        return tuple(
            round(v, 2) for v in (x / width, y / height, (x + w) / width, (y + h) / height)
        )
    side = max(rec.width, rec.height)
    x, y = x + (side - rec.width) / 2, y + (side - rec.height) / 2
    return tuple(round(v / side, 2) for v in (x, y, x + w, y + h))


def objects_named(rec: ImageRecord, phrase: str) -> list:
    """The objects a phrase can mean, read by hand: "<name>", "<attribute> <name>",
    "<name> on the left|right", "<name> <predicate> the <name>"."""
    names = {noun(o.category).singular.lower(): o.category for o in rec.objects}
    for name, category in sorted(names.items(), key=lambda kv: -len(kv[0])):
        members = [o for o in rec.objects if o.category == category]
        if phrase == name:
            return members
        if phrase.endswith(" " + name):
            attribute = phrase[: -len(name) - 1]
            return [o for o in members if attribute in o.attributes]
        if phrase.startswith(name + " on the "):
            return _side_of(members, phrase.rsplit(" ", 1)[1], rec.width)
        if phrase.startswith(name + " "):
            return _related(rec, members, phrase[len(name) + 1 :])
    return []


def _side_of(members: list, side: str, width: int) -> list:
    """The one clearly at that side: every other center a tenth of the width away."""
    mid = [o.x + o.w / 2 for o in members]
    pick = min if side == "left" else max
    best = mid.index(pick(mid))
    rest = [m for i, m in enumerate(mid) if i != best]
    assert all(abs(m - mid[best]) >= 0.1 * width - 1e-6 for m in rest), "no clear margin"
    return [members[best]]


def _related(rec: ImageRecord, members: list, tail: str) -> list:
    found = []
    for rel in rec.relations:
        subject, target = rec.objects[rel.subject], rec.objects[rel.object]
        if subject in members and tail == f"{rel.predicate} the {noun(target.category).singular}":
            found.append(subject)
    return list(dict.fromkeys(found))


def given_boxes(rec: ImageRecord, phrase: str, frame: str = "square") -> set[tuple]:
    """Boxes of region descriptions and referring expressions written as `phrase`."""
    regions = [*rec.regions, *rec.referring]
    clean = [(" ".join(r.phrase.split()).strip(" .").lower(), r) for r in regions]
    return {normalised(r.x, r.y, r.w, r.h, rec, frame) for text, r in clean if text == phrase}


# --------------------------------------------------------------------------- region grounding


def check_region_turn(rec: ImageRecord, question: str, answer: str, frame="square") -> str:
    box_request = (
        "Please provide the bounding box coordinate of the region this sentence describes: "
    )
    if question.startswith(box_request):
        phrase, box = question[len(box_request) :].rstrip(".").lower(), box_of(answer, rec)
    else:
        assert question.startswith("Please provide a short description for this region: ")
        phrase, box = answer.rstrip(".").lower(), box_of(question.rsplit(": ", 1)[1], rec)
    if box in given_boxes(rec, phrase, frame):
        return "region"
    named = objects_named(rec, phrase)
    if named:
        assert len(named) == 1, f"{phrase!r} names {len(named)} objects of image {rec.image_id}"
        assert normalised(named[0].x, named[0].y, named[0].w, named[0].h, rec, frame) == box
        return "object"
    assert box in given_boxes(rec, phrase), f"{phrase!r} is no object or region of {rec.image_id}"
    return "region"


def test_every_phrase_names_one_object_and_its_box_is_that_objects(vg_records):
    kinds = Counter()
    for rec, question, answer in turns(coco_records() + vg_records, "regions", range(3)):
        kinds[check_region_turn(rec, question, answer)] += 1
        kinds["to_box" if BOX.match(answer) else "to_phrase"] += 1
    assert kinds["object"] > 300 and kinds["region"] > 50, kinds
    assert 0.4 < kinds["to_box"] / (kinds["to_box"] + kinds["to_phrase"]) < 0.6, kinds


def test_box_frame_image_gives_fractions_of_the_images_own_sides():
    settings = {"regions": {"box_frame": "image"}}
    found = turns(coco_records(), "regions", range(2), **settings)
    assert len(found) > 100
    for rec, question, answer in found:
        check_region_turn(rec, question, answer, frame="image")
    wide = next(r for r in coco_records() if r.width > r.height)
    assert llava_box((0, 0, wide.width, wide.height), wide.width, wide.height, square=False) == (
        "[0.00, 0.00, 1.00, 1.00]"
    )
    top = (wide.width - wide.height) / 2 / wide.width
    assert llava_box((0, 0, wide.width, wide.height), wide.width, wide.height) == (
        f"[0.00, {top:.2f}, 1.00, {1 - top:.2f}]"
    )


def test_repeated_categories_are_told_apart_by_side_or_not_named():
    phrases = [
        q.split(": ", 1)[1]
        for _, q, a in turns(coco_records(), "regions", range(3))
        if BOX.match(a)
    ]
    assert any(p.endswith(" on the left.") for p in phrases)
    assert any(p.endswith(" on the right.") for p in phrases)


# --------------------------------------------------------------------------- short VQA


def test_short_vqa_answers_one_word_or_phrase_and_counts_are_exact(vg_records):
    suffix = FORMAT_PROMPTS["short_vqa"]
    checked = Counter()
    for rec, question, answer in turns(coco_records() + vg_records, "short_vqa", range(2)):
        assert question.endswith("\n" + suffix)
        assert 1 <= len(answer.split()) <= 3 and not answer.endswith("."), answer
        count = re.match(r"How many (.+) are there\?", question)
        if count:
            category = next(
                c for c in {o.category for o in rec.objects} if noun(c).plural == count[1]
            )
            assert int(answer) == sum(o.category == category for o in rec.objects)
            assert not any(o.iscrowd for o in rec.objects if o.category == category)
        checked["count" if count else question.split()[0]] += 1
    assert checked["count"] > 50 and checked["What"] > 20 and checked["Where"] > 20, checked


# --------------------------------------------------------------------------- multiple choice


def test_choice_letters_are_balanced_and_mark_the_right_option(vg_records):
    letters = Counter()
    for rec, question, answer in turns(coco_records() + vg_records, "choice", range(6)):
        lines = question.split("\n")
        assert lines[-1] == FORMAT_PROMPTS["choice"]
        options = {line[0]: line[3:] for line in lines[1:-1]}
        assert list(options) == list("ABCD") and len(set(options.values())) == 4
        letters[answer] += 1
        check_option(rec, lines[0], options, answer)
    total = sum(letters.values())
    assert total > 300 and all(0.2 < letters[k] / total < 0.3 for k in "ABCD"), letters


def check_option(rec: ImageRecord, question: str, options: dict, answer: str) -> None:
    present = {noun(o.category).singular: o.category for o in rec.objects}
    right = options[answer]
    if question.startswith("How many"):
        category = next(
            c
            for c in present.values()
            if question == f"How many {noun(c).plural} are in the image?"
        )
        assert int(right) == sum(o.category == category for o in rec.objects)
        return
    wrong = [v for k, v in options.items() if k != answer]
    assert right in present and not any(w in present for w in wrong), (question, options)
    supercategory = COCO_SUPERCATEGORIES[present[right]]
    named = {noun(c).singular: c for c in COCO_SUPERCATEGORIES}
    assert all(COCO_SUPERCATEGORIES[named[w]] == supercategory for w in wrong)
    if question.startswith("What is the object in the region "):
        box = box_of(question.split(" region ", 1)[1].rstrip("?"), rec)
        boxes = {
            normalised(o.x, o.y, o.w, o.h, rec) for o in rec.objects if o.category == present[right]
        }
        assert box in boxes


def test_supercategories_are_cocos_own():
    categories = json.loads((COCO / "tiny_coco/annotations/instances_val2017.json").read_bytes())
    table = {c["name"]: c["supercategory"] for c in categories["categories"]}
    assert table == COCO_SUPERCATEGORIES


# --------------------------------------------------------------------------- compositional


def test_compositional_yes_rate_and_presence_answers_are_true(vg_records):
    answers = Counter()
    for rec, question, answer in turns(coco_records() + vg_records, "compositional", range(4)):
        assert question.endswith("\n" + FORMAT_PROMPTS["compositional"])
        answers[answer if answer in ("Yes", "No") else "other"] += 1
        asked = question.split("\n")[0]
        names = {noun(o.category).singular for o in rec.objects}
        there = re.fullmatch(r"Is there an? ((?:(?! or ).)+) in the image\?", asked)
        if there:
            assert (there[1] in names) == (answer == "Yes"), (rec.image_id, question, answer)
        which = re.fullmatch(r"Which is in the image, the (.+) or the (.+)\?", asked)
        if which:
            other = which[2] if answer == which[1] else which[1]
            assert answer in which.groups(), (rec.image_id, question, answer)
            assert answer in names and other not in names, (rec.image_id, question, answer)
            answers["choose"] += 1
    yes_no = answers["Yes"] + answers["No"]
    assert yes_no > 300 and 0.4 <= answers["Yes"] / yes_no <= 0.6, answers
    assert answers["other"] > 100 and answers["choose"] > 20, answers


# --------------------------------------------------------------------------- grounding


def test_every_family_answer_passes_the_grounding_checks(vg_records):
    context = ContextConfig(derive_relations="missing")
    checked = Counter()
    for rec in coco_records() + vg_records:
        made = generate_instructions(
            rec, families(), NO_POOLS, image_seed(0, rec.dataset, rec.image_id), context
        )
        for instruction in made.instructions:
            assert check_instruction(rec, instruction) == [], (rec.image_id, instruction.task)
            checked[instruction.task] += 1
        assert not ground(rec, made, "filter").rejections[len(made.rejections) :]
    assert set(checked) == set(FAMILIES) and min(checked.values()) > 30, checked


def test_families_are_off_unless_enabled():
    """Existing configs write what they wrote before: the families are off by default."""
    default = TasksConfig()
    assert not any(getattr(default, name).enabled for name in FAMILIES)
    for config in ("demo.yaml", "coco.yaml", "visual_genome.yaml"):
        tasks = load_config(shipped_dir("configs") / config).tasks
        assert not any(getattr(tasks, name).enabled for name in FAMILIES), config
    others_off = dataclasses.replace(default, **{t: _off(default, t) for t in GPT_STYLE})
    made = generate_instructions(coco_records()[0], others_off, NO_POOLS, 0)
    assert made.instructions == [] and made.rejections == []
    assert all(
        getattr(load_config(shipped_dir("configs") / "mix.yaml").tasks, n).enabled for n in FAMILIES
    )


def _off(tasks: TasksConfig, name: str):
    return dataclasses.replace(getattr(tasks, name), enabled=False)


def test_an_attribute_no_other_object_of_its_category_has_names_it_and_answers_its_colour():
    """A real COCO image with Visual Genome-style attributes added to its three cups: only
    the cup whose colour no other cup shares is named by it, and only a lone object's
    colour is asked."""
    rec = next(r for r in coco_records() if r.image_id == 471345)
    cups = [i for i, o in enumerate(rec.objects) if o.category == "cup"]
    table = next(i for i, o in enumerate(rec.objects) if o.category == "dining table")
    colours = {cups[0]: ("red",), cups[1]: ("white",), cups[2]: ("white",), table: ("brown",)}
    objects = [
        msgspec.structs.replace(o, attributes=colours.get(i, o.attributes))
        for i, o in enumerate(rec.objects)
    ]
    rec = msgspec.structs.replace(rec, objects=tuple(objects))
    found = {r.phrase: r.box for r in referents(rec)}
    red = rec.objects[cups[0]]
    assert found["red cup"] == (red.x, red.y, red.w, red.h)
    assert "white cup" not in found
    for _, question, answer in turns([rec], "regions", range(20), regions={"questions": 20}):
        check_region_turn(rec, question, answer)
    asked = dict(
        (q, a) for _, q, a in turns([rec], "short_vqa", range(5), short_vqa={"questions": 20})
    )
    assert not any("color is the cup" in q for q in asked)
    assert asked["What color is the dining table?\n" + FORMAT_PROMPTS["short_vqa"]] == "brown"
