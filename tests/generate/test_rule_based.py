"""The rule-based generator: every answer it writes must agree with the annotations.

A small claim checker reads each generated turn back (question type from the shipped
question templates; numbers, yes/no, left/right and sizes from the answer text) and compares
the claims with the boxes, so a wrong answer fails a test.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections import Counter
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest

from mminstruct.config import (
    CocoSourceConfig,
    Config,
    ConversationTask,
    DetailTask,
    GeneratorConfig,
    ReasoningTask,
    TasksConfig,
)
from mminstruct.errors import ConfigError
from mminstruct.generate import make_generator
from mminstruct.generate.rule_based import (
    POOLS,
    TEMPLATE_FILE,
    clean_caption,
    generate_instructions,
    load_phrasings,
    render,
)
from mminstruct.generate.rule_based.knowledge import KNOWLEDGE
from mminstruct.keys import image_seed
from mminstruct.records import Generated, ImageRecord, Instruction, ObjectBox
from mminstruct.resources import shipped_dir
from mminstruct.words import NUMBER_WORDS, noun, number_word, with_article

REALDATA = Path(__file__).resolve().parents[3] / "shared" / "realdata"
COCO_DIR = REALDATA / "coco"
PHRASINGS = load_phrasings(shipped_dir("templates"))
ANIMALS = ("person", "dog", "cat", "bench", "elephant", "umbrella", "bird", "bus", "car")


# --------------------------------------------------------------------------- building inputs


def box(category: str, cx: float, cy: float, w: float, h: float, crowd: bool = False) -> ObjectBox:
    """A box by its center, on a 600x300 image."""
    x, y = cx - w / 2, cy - h / 2
    return ObjectBox(category=category, x=x, y=y, w=w, h=h, iscrowd=crowd)


def record(objects=(), captions=(), vocabulary=ANIMALS, image_id: int = 1) -> ImageRecord:
    return ImageRecord(
        dataset="test",
        image_id=image_id,
        file_name=f"{image_id}.jpg",
        images_dir=None,
        width=600,
        height=300,
        captions=tuple(captions),
        objects=tuple(objects),
        vocabulary=tuple(vocabulary),
    )


def tasks(turns=4, questions=1, conversation=True, detail=True, reasoning=True) -> TasksConfig:
    return TasksConfig(
        conversation=ConversationTask(enabled=conversation, turns=turns),
        detail=DetailTask(enabled=detail),
        reasoning=ReasoningTask(enabled=reasoning, questions=questions),
    )


def generate(rec: ImageRecord, seed: int = 0, **options) -> Generated:
    image = image_seed(seed, rec.dataset, rec.image_id)
    return generate_instructions(rec, tasks(**options), PHRASINGS, image)


def turns_over_seeds(rec: ImageRecord, task: str, seeds=range(30), **options) -> list:
    """Every (question, answer) of `task` over many seeds, each checked against the boxes."""
    found = []
    for seed in seeds:
        for instruction in generate(rec, seed, **options).instructions:
            check_instruction(rec, instruction)
            if instruction.task == task:
                found += instruction.turns
    return found


def quiet_coco(path: Path):
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


@cache
def coco_records(instances: str, captions: str | None = None) -> tuple[ImageRecord, ...]:
    """Records from real COCO files, every category exhaustive (as COCO annotates them)."""
    folder = COCO_DIR / instances.split("/")[0]
    if not COCO_DIR.is_dir():
        pytest.skip(f"real COCO excerpts not found at {COCO_DIR}")
    coco = quiet_coco(COCO_DIR / instances)
    texts = quiet_coco(COCO_DIR / captions) if captions else None
    names = tuple(c["name"] for c in coco.loadCats(coco.getCatIds()))
    records = []
    for image_id, image in sorted(coco.imgs.items()):
        records.append(
            ImageRecord(
                dataset="coco",
                image_id=image_id,
                file_name=image["file_name"],
                images_dir=folder,
                width=image["width"],
                height=image["height"],
                captions=tuple(a["caption"] for a in texts.imgToAnns[image_id]) if texts else (),
                objects=coco_objects(coco, image_id),
                vocabulary=names,
            )
        )
    return tuple(records)


def coco_objects(coco, image_id: int) -> tuple[ObjectBox, ...]:
    return tuple(
        ObjectBox(coco.cats[a["category_id"]]["name"], *a["bbox"], iscrowd=bool(a["iscrowd"]))
        for a in coco.imgToAnns[image_id]
    )


def real_records() -> tuple[ImageRecord, ...]:
    tiny = coco_records("tiny_coco/annotations/instances_val2017.json")
    mini = coco_records(
        "coco_mini/annotations/instances_val2017.json",
        "coco_mini/annotations/captions_val2017.json",
    )
    return tiny + mini


# --------------------------------------------------------------------------- the claim checker


NOUN_SLOTS = {"object", "objects", "a_object", "first", "second", "larger", "smaller"}


def noun_pattern(rec: ImageRecord) -> str:
    """Any form of any category the record knows, with an optional article."""
    return forms_pattern(frozenset(categories(rec)))


@cache
def forms_pattern(names: frozenset[str]) -> str:
    forms = {f for c in names for f in (noun(c).singular, noun(c).plural)}
    alternatives = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
    return f"(?:an? )?(?:{alternatives})"


@cache
def template_regex(template: str, nouns: str) -> re.Pattern[str]:
    slots = {"region": r"(?:in|on|at) the [a-z ]+?", "side": "left|right"}
    slots |= dict.fromkeys(NOUN_SLOTS, nouns)
    parts = re.split(r"\{(\w+)\}", template)
    pattern, seen = "", set()
    for i, part in enumerate(parts):
        if i % 2 == 0:
            pattern += re.escape(part)
        else:
            slot = slots.get(part, ".+?")
            pattern += f"(?P={part})" if part in seen else f"(?P<{part}>{slot})"
            seen.add(part)
    return re.compile(pattern, re.IGNORECASE)


def classify(
    rec: ImageRecord, text: str, suffix: str = "question", task: str = ""
) -> tuple[str, dict[str, str]]:
    """The pool key (of `task`'s pools, when given) whose template produced `text`, and the
    values of its placeholders."""
    nouns = noun_pattern(rec)
    for key, templates in PHRASINGS.pools.items():
        if key.endswith(suffix) and key.startswith(task):
            for template in templates:
                match = template_regex(template, nouns).fullmatch(text)
                if match:
                    return key, match.groupdict()
    raise AssertionError(f"no {suffix} template produced {text!r}")


def categories(rec: ImageRecord) -> set[str]:
    return {*rec.vocabulary, *(o.category for o in rec.objects)}


def category_of(rec: ImageRecord, phrase: str) -> str:
    """The category a noun phrase ("dogs", "an umbrella", "pair of skis") names."""
    phrase = re.sub(r"^(a|an|the) ", "", phrase.lower())
    for category in categories(rec):
        if phrase in (noun(category).singular.lower(), noun(category).plural.lower()):
            return category
    raise AssertionError(f"{phrase!r} names no category of the record")


def counts(rec: ImageRecord) -> Counter:
    return Counter(o.category for o in rec.objects)


def crowd(rec: ImageRecord) -> set[str]:
    return {o.category for o in rec.objects if o.iscrowd}


def only_box(rec: ImageRecord, category: str) -> ObjectBox:
    boxes = [o for o in rec.objects if o.category == category]
    assert len(boxes) == 1 and not boxes[0].iscrowd, f"{category} is not a single object"
    return boxes[0]


def centre(rec: ImageRecord, obj: ObjectBox) -> tuple[float, float]:
    return (obj.x + obj.w / 2) / rec.width, (obj.y + obj.h / 2) / rec.height


def norm(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def in_captions(rec: ImageRecord, category: str) -> bool:
    text = f" {norm(' '.join(rec.captions))} "
    names = (category, noun(category).singular, noun(category).plural)
    return any(f" {norm(name)} " in text for name in names)


def yes_no(answer: str) -> bool:
    word = re.match(r"\W*(\w+)", answer).group(1).lower()
    assert word in ("yes", "no"), f"answer should start with yes or no: {answer!r}"
    return word == "yes"


def without_captions(rec: ImageRecord, answer: str) -> str:
    """The generated part of an answer: quoted captions removed (they may miscount)."""
    for caption in rec.captions:
        answer = answer.replace(clean_caption(caption), " ")
    return answer


def noun_forms(rec: ImageRecord) -> dict[str, str]:
    """Lower-case singular and plural forms of every category the record knows."""
    forms = {}
    for category in categories(rec):
        forms[noun(category).singular.lower()] = category
        forms[noun(category).plural.lower()] = category
    return forms


@cache
def claims_regex(forms: tuple[str, ...]) -> re.Pattern[str]:
    """ "<number> <noun>" or "crowd/group of <noun>"."""
    names = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
    numbers = "|".join([*NUMBER_WORDS, r"\d+"])
    return re.compile(rf"\b({numbers}|crowd of|group of) ({names})\b")


def check_numbers(rec: ImageRecord, answer: str) -> None:
    """Every "<number> <noun>" equals the annotated count; every "crowd of" is a crowd."""
    forms = noun_forms(rec)
    for said, form in claims_regex(tuple(forms)).findall(without_captions(rec, answer).lower()):
        category = forms[form]
        if said in ("crowd of", "group of"):
            assert category in crowd(rec), f"{category} is no crowd: {answer!r}"
            continue
        n = NUMBER_WORDS.index(said) if said in NUMBER_WORDS else int(said)
        assert category not in crowd(rec), f"counted crowd category: {answer!r}"
        assert n == counts(rec)[category], f"{category}: said {n}: {answer!r}"


def check_region(rec: ImageRecord, category: str, text: str) -> None:
    x, y = centre(rec, only_box(rec, category))
    words = set(re.findall(r"[a-z]+", text.lower()))
    assert not {"left", "right"} <= words and not {"upper", "lower"} <= words
    assert ("left" in words) == (x < 1 / 3), f"x={x:.2f}: {text!r}"
    assert ("right" in words) == (x > 2 / 3), f"x={x:.2f}: {text!r}"
    assert bool(words & {"upper", "top"}) == (y < 1 / 3), f"y={y:.2f}: {text!r}"
    assert bool(words & {"lower", "bottom"}) == (y > 2 / 3), f"y={y:.2f}: {text!r}"


def check_count(rec: ImageRecord, slots: dict, answer: str) -> None:
    category = category_of(rec, slots["objects"])
    said = re.search(rf"\b({'|'.join(NUMBER_WORDS)}|\d+|single)\b", answer.lower()).group(1)
    said = "one" if said == "single" else said
    n = NUMBER_WORDS.index(said) if said in NUMBER_WORDS else int(said)
    assert category not in crowd(rec) and n == counts(rec)[category], answer


def check_exists(rec: ImageRecord, slots: dict, answer: str) -> None:
    category = category_of(rec, slots["a_object"])
    if yes_no(answer):
        assert counts(rec)[category] > 0, answer
    else:
        assert counts(rec)[category] == 0 and category in rec.vocabulary, answer
        assert not in_captions(rec, category), f"a caption mentions {category}: {answer!r}"


def check_where(rec: ImageRecord, slots: dict, answer: str) -> None:
    check_region(rec, category_of(rec, slots["object"]), answer)


def named_first(rec: ImageRecord, answer: str) -> str:
    """The category named first in an answer (by its singular or "a ..." form)."""
    hits = []
    for category in counts(rec):
        match = re.search(rf"\b{re.escape(noun(category).singular.lower())}\b", answer.lower())
        if match:
            hits.append((match.start(), -len(category), category))
    assert hits, f"no category named in {answer!r}"
    return min(hits)[2]


def check_biggest(rec: ImageRecord, slots: dict, answer: str) -> None:
    named = named_first(rec, answer)
    top = max((o for o in rec.objects if not o.iscrowd), key=lambda o: o.w * o.h)
    assert named == top.category, answer
    rivals = [o.w * o.h for o in rec.objects if o.category != named]
    assert all(top.w * top.h >= 1.3 * area for area in rivals), answer


def check_caption(rec: ImageRecord, slots: dict, answer: str) -> None:
    assert any(norm(c) in norm(answer) for c in rec.captions), answer


def check_detail(rec: ImageRecord, slots: dict, answer: str) -> None:
    generated = without_captions(rec, answer)
    rest = generated.lower()
    for category in sorted(counts(rec), key=len, reverse=True):
        rest = rest.replace(noun(category).plural.lower(), " ")
        rest = rest.replace(noun(category).singular.lower(), " ")
    for category in rec.vocabulary:
        if re.search(rf"\b{re.escape(noun(category).singular.lower())}\b", rest):
            assert in_captions(rec, category), f"{category} is not in the image: {answer!r}"
    for sentence in re.findall(r"[^.]+\.", generated):
        if set(re.findall(r"[a-z]+", sentence)) & {"left", "right", "center", "top", "bottom"}:
            _, values = classify(rec, sentence.strip(), "detail.layout")
            for names, where in PLACEMENT.findall(values["placements"]):
                for name in re.split(r", | and ", names):
                    check_region(rec, category_of(rec, name), where)
    sentences = [s.strip() for s in re.findall(r"[^.]+\.", answer)]
    assert len(sentences) == len(set(sentences)), f"a sentence said twice: {answer!r}"


# "the dog and the cat are in the lower left part": who is where, in a layout sentence.
PLACEMENT = re.compile(
    r"((?:the [a-z ]+?)(?:(?:, | and )the [a-z ]+?)*) (?:is|are) "
    r"((?:in|on|at) the (?:[a-z]+ )*?(?:part|side|center))",
    re.IGNORECASE,
)


def check_more(rec: ImageRecord, slots: dict, answer: str) -> None:
    first, second = category_of(rec, slots["first"]), category_of(rec, slots["second"])
    assert not {first, second} & crowd(rec), answer
    assert yes_no(answer) == (counts(rec)[first] > counts(rec)[second]), answer


def check_larger(rec: ImageRecord, slots: dict, answer: str) -> None:
    first, second = category_of(rec, slots["first"]), category_of(rec, slots["second"])
    a, b = only_box(rec, first), only_box(rec, second)
    named = named_first(rec, answer)
    larger, smaller = (a, b) if named == first else (b, a)
    assert named in (first, second) and larger.w * larger.h >= 1.5 * smaller.w * smaller.h, answer


def check_side(rec: ImageRecord, slots: dict, answer: str) -> None:
    first, second = category_of(rec, slots["first"]), category_of(rec, slots["second"])
    xa = centre(rec, only_box(rec, first))[0]
    xb = centre(rec, only_box(rec, second))[0]
    assert abs(xa - xb) >= 0.2, answer
    assert yes_no(answer) == ((xa < xb) == (slots["side"] == "left")), answer
    assert "%" not in answer, f"no percentages: {answer!r}"


def check_count_check(rec: ImageRecord, slots: dict, answer: str) -> None:
    said, _, name = slots["some"].partition(" ")
    category = category_of(rec, name)
    n = NUMBER_WORDS.index(said) if said in NUMBER_WORDS else int(said)
    assert category not in crowd(rec), answer
    assert yes_no(answer) == (n == counts(rec)[category]), answer


def check_purpose(rec: ImageRecord, slots: dict, answer: str) -> None:
    category = category_of(rec, slots.get("object") or slots.get("objects") or slots["a_object"])
    assert counts(rec)[category] > 0, answer
    assert KNOWLEDGE[category].use in answer, answer
    check_knowledge_ties(rec, category, answer)


def check_knowledge_ties(rec: ImageRecord, category: str, answer: str) -> None:
    """A knowledge answer's tie to the image: where the object is, or how many there are."""
    tie = re.search(r"the [a-z ]+ is ((?:in|on|at) the [a-z ]+?) of the image", answer)
    if tie:
        check_region(rec, category, tie.group(1))
    assert "times as much" not in answer and "%" not in answer, answer


def check_place(rec: ImageRecord, slots: dict, answer: str) -> None:
    category = category_of(rec, slots.get("object") or slots.get("objects") or slots["a_object"])
    assert counts(rec)[category] > 0 and KNOWLEDGE[category].place in answer, answer
    check_knowledge_ties(rec, category, answer)


CHECKS: dict[str, Callable[[ImageRecord, dict, str], None]] = {
    "conversation.count.question": check_count,
    "conversation.exists.question": check_exists,
    "conversation.where.question": check_where,
    "conversation.biggest.question": check_biggest,
    "conversation.caption.question": check_caption,
    "detail.question": check_detail,
    "reasoning.more.question": check_more,
    "reasoning.larger.question": check_larger,
    "reasoning.side.question": check_side,
    "reasoning.purpose.question": check_purpose,
    "reasoning.place.question": check_place,
    "conversation.count_check.question": check_count_check,
    "conversation.purpose.question": check_purpose,
    "conversation.purpose_many.question": check_purpose,
}


def check_instruction(rec: ImageRecord, instruction: Instruction) -> list[str]:
    """Check every turn; return the question keys seen."""
    keys = []
    for question, answer in instruction.turns:
        key, slots = classify(rec, question, "question", instruction.task)
        assert key.split(".")[0] == instruction.task, (key, instruction.task)
        assert "<image>" not in question + answer
        CHECKS[key](rec, slots, answer)
        check_numbers(rec, answer)
        keys.append(key)
    return keys


# --------------------------------------------------------------------------- English forms


@pytest.mark.parametrize(
    ("category", "singular", "plural", "with_a"),
    [
        ("person", "person", "people", "a person"),
        ("mouse", "mouse", "mice", "a mouse"),
        ("sheep", "sheep", "sheep", "a sheep"),
        ("skis", "pair of skis", "pairs of skis", "a pair of skis"),
        ("scissors", "pair of scissors", "pairs of scissors", "a pair of scissors"),
        ("bus", "bus", "buses", "a bus"),
        ("knife", "knife", "knives", "a knife"),
        ("wine glass", "wine glass", "wine glasses", "a wine glass"),
        ("sports ball", "sports ball", "sports balls", "a sports ball"),
        ("bench", "bench", "benches", "a bench"),
        ("umbrella", "umbrella", "umbrellas", "an umbrella"),
        ("elephant", "elephant", "elephants", "an elephant"),
        ("oven", "oven", "ovens", "an oven"),
        ("airplane", "airplane", "airplanes", "an airplane"),
        ("orange", "orange", "oranges", "an orange"),
        ("apple", "apple", "apples", "an apple"),
        ("tv", "TV", "TVs", "a TV"),
        ("broccoli", "piece of broccoli", "pieces of broccoli", "a piece of broccoli"),
        ("hair drier", "hair drier", "hair driers", "a hair drier"),
        ("toothbrush", "toothbrush", "toothbrushes", "a toothbrush"),
        ("cell phone", "cell phone", "cell phones", "a cell phone"),
        ("hot dog", "hot dog", "hot dogs", "a hot dog"),
    ],
)
def test_english_forms(category, singular, plural, with_a):
    assert (noun(category).singular, noun(category).plural) == (singular, plural)
    assert noun(category).a == with_a


def test_articles_and_number_words():
    assert with_article("unicorn") == "a unicorn"
    assert with_article("hour") == "an hour"
    assert [number_word(n) for n in (1, 2, 12, 13)] == ["one", "two", "twelve", "13"]


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("  a dog  on a bench ", "A dog on a bench."),
        ("A BOY WITH A HAT", "A boy with a hat."),
        ("Two cats sleeping .", "Two cats sleeping."),
        ("Is that a cat?", "Is that a cat?"),
        ("   ", ""),
    ],
)
def test_clean_caption(raw, clean):
    assert clean_caption(raw) == clean


# --------------------------------------------------------------------------- phrasings


def test_shipped_pools_are_varied_and_every_template_renders():
    assert len(set(PHRASINGS.pools["detail.question"])) >= 15
    for key, allowed in POOLS.items():
        if key != "conversation.caption.answer":  # a human caption, said as it is
            assert len(set(PHRASINGS.pools[key])) >= 2, key
        for template in PHRASINGS.pools[key]:
            text = render(template, {name: "VALUE" for name in allowed}, key)
            assert "{" not in text and "}" not in text, (key, template)


def test_render_substitutes_names_only():
    assert render("{object.__class__} {0} {object}", {"object": "dog"}) == (
        "{object.__class__} {0} dog"
    )
    with pytest.raises(ConfigError, match=r"conversation\.where\.answer.*\{region\}"):
        render("It is {region}.", {"object": "dog"}, "conversation.where.answer")


def broken_templates(tmp_path: Path, old: str, new: str) -> Path:
    text = (shipped_dir("templates") / TEMPLATE_FILE).read_text(encoding="utf-8")
    assert old in text
    (tmp_path / TEMPLATE_FILE).write_text(text.replace(old, new, 1), encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("{count} {objects} are", "{count} {colour} are", r"count\.answer_many.*\{colour\}"),
        ("  biggest:\n    question:", "  biggest:\n    questoin:", r"did you mean"),
        ("  inventory:", "  inventory_:", r"detail\.inventory: expected a non-empty list"),
    ],
)
def test_bad_template_files_name_the_key(tmp_path, old, new, message):
    with pytest.raises(ConfigError, match=message):
        load_phrasings(broken_templates(tmp_path, old, new))


def test_template_folder_override(tmp_path):
    old = '    - "Describe the following image in detail."'
    folder = broken_templates(tmp_path, old, '    - "OVERRIDDEN {object}"')
    with pytest.raises(ConfigError, match=r"detail\.question.*\{object\}"):
        load_phrasings(folder)
    folder = broken_templates(tmp_path, old, '    - "Our own request."')
    config = Config(
        sources=(CocoSourceConfig(images="images", instances=("instances.json",)),),
        generator=GeneratorConfig(templates=str(folder)),
    )
    generator = make_generator(config)
    assert generator.phrasings.sha256 != PHRASINGS.sha256
    with pytest.raises(ConfigError, match=r"no rule_based\.yaml"):
        load_phrasings(tmp_path / "missing")


# --------------------------------------------------------------------------- hand-checked cases


def questions_about(turns, words: str) -> list[tuple[str, str]]:
    return [(q, a) for q, a in turns if re.search(words, q)]


def test_counting():
    dogs = [box("dog", 100 + 150 * i, 200, 60, 60) for i in range(3)]
    rec = record([*dogs, box("cat", 500, 60, 40, 40)])
    turns = turns_over_seeds(rec, "conversation", turns=10)
    dogs = questions_about(turns, "How many dogs|count the dogs|number of dogs")
    assert dogs and all(re.search(r"\bthree\b", a.lower()) for _, a in dogs)
    cats = questions_about(turns, "How many cats|count the cats|number of cats")
    assert cats and all(re.search(r"\b(one|single)\b", a.lower()) for _, a in cats)


def test_crowd_categories_are_never_counted_or_compared():
    people = [box("person", 100, 150, 80, 200), box("person", 200, 150, 80, 200)]
    crowds = [box("person", 400, 150, 300, 250, True), box("bird", 300, 40, 200, 60, True)]
    rec = record([*people, *crowds, box("dog", 500, 250, 50, 40), box("cat", 60, 250, 40, 30)])
    talk = turns_over_seeds(rec, "conversation", turns=10)
    assert not questions_about(talk, r"How many (people|birds)")
    details = " ".join(a for _, a in turns_over_seeds(rec, "detail"))
    assert "a crowd of people" in details and "a group of birds" in details
    reasoning = turns_over_seeds(rec, "reasoning", questions=5)
    assert reasoning and not questions_about(reasoning, r"people|person|bird")


def test_left_and_right():
    rec = record([box("dog", 60, 250, 80, 60), box("bench", 480, 150, 150, 80)])
    talk = turns_over_seeds(rec, "conversation", turns=10)
    assert "lower left" in " ".join(a for _, a in questions_about(talk, "Where.*dog|where the dog"))
    sides = questions_about(turns_over_seeds(rec, "reasoning", questions=5), " side|left|right")
    for question, answer in sides:
        dog_first = question.index("dog") < question.index("bench")
        holds = dog_first == ("left" in question)  # the dog is left of the bench
        assert answer.startswith("Yes" if holds else "No"), (question, answer)
    assert {a[:2] for _, a in sides} == {"Ye", "No"}


def test_close_centers_give_no_side_question():
    rec = record([box("dog", 270, 150, 40, 40), box("bench", 330, 150, 100, 40)])
    reasoning = turns_over_seeds(rec, "reasoning", questions=5)
    assert not questions_about(reasoning, "left|right")


def test_sizes():
    big = record([box("bus", 300, 150, 300, 200), box("car", 100, 250, 100, 60)])
    larger = questions_about(turns_over_seeds(big, "reasoning", questions=5), "more of|bigger")
    assert larger and all(a.startswith("The bus") for _, a in larger)
    talk = turns_over_seeds(big, "conversation", turns=10)
    assert any("a bus" in a for _, a in questions_about(talk, "largest|most|biggest"))
    close = record([box("bus", 300, 150, 120, 100), box("car", 100, 250, 100, 100)])
    assert not questions_about(turns_over_seeds(close, "reasoning", questions=5), "more of|bigger")
    assert not questions_about(turns_over_seeds(close, "conversation", turns=10), "largest|most")


def test_no_only_for_categories_absent_from_boxes_and_captions():
    rec = record([box("dog", 300, 150, 100, 100)], ["A kitten sleeps next to a man."])
    talk = turns_over_seeds(rec, "conversation", turns=10, seeds=range(60))
    nos = {category_of(rec, classify(rec, q)[1]["a_object"]) for q, a in talk if a.startswith("No")}
    assert nos == {"elephant", "umbrella", "bird", "bus", "car", "bench"}


def test_captions_only():
    captions = ["two people walk along the beach", "A couple strolling by the sea "]
    rec = record(captions=captions, vocabulary=())
    result = generate(rec)
    conversation, detail = result.instructions
    assert conversation.task == "conversation" and len(conversation.turns) == 1
    assert any(clean_caption(c) in detail.turns[0][1] for c in captions)
    assert [(r.task, r.reason) for r in result.rejections] == [
        ("reasoning", "insufficient_annotations")
    ]
    for instruction in result.instructions:
        check_instruction(rec, instruction)


def test_nothing_to_say_is_rejected_per_task():
    result = generate(record())
    assert result.instructions == []
    assert [r.task for r in result.rejections] == ["conversation", "detail", "reasoning"]
    assert all(r.reason == "insufficient_annotations" and r.detail for r in result.rejections)
    assert {(r.dataset, r.image_id) for r in result.rejections} == {("test", 1)}


def test_one_category_without_a_use_cannot_be_reasoned_about():
    """Two elephants: nothing to compare, and the knowledge table gives a wild animal no
    use, so there is no reasoning question."""
    elephants = [box("elephant", 100, 100, 50, 50), box("elephant", 400, 100, 50, 50)]
    result = generate(record(elephants))
    assert [i.task for i in result.instructions] == ["conversation", "detail"]
    (rejection,) = result.rejections
    assert rejection.task == "reasoning" and "elephant" in rejection.detail


def test_one_category_with_a_use_is_reasoned_about_from_the_knowledge_table():
    rec = record([box("dog", 100, 100, 50, 50), box("dog", 400, 100, 50, 50)])
    turns = turns_over_seeds(rec, "reasoning", questions=2)
    assert turns and all(KNOWLEDGE["dog"].use in a or KNOWLEDGE["dog"].place in a for _, a in turns)
    assert any("two dogs" in a for _, a in turns), "tied to what the image shows"


# --------------------------------------------------------------------------- real COCO data


def test_real_coco_answers_agree_with_the_annotations():
    seen: Counter = Counter()
    for rec in real_records():
        for seed in range(3):
            result = generate(rec, seed, turns=8, questions=4)
            for instruction in result.instructions:
                seen.update(check_instruction(rec, instruction))
    assert set(seen) == set(CHECKS), "every question type was produced and checked"


def test_real_captions_only_records():
    mini = coco_records(
        "coco_mini/annotations/instances_val2017.json",
        "coco_mini/annotations/captions_val2017.json",
    )
    for rec in mini[:10]:
        bare = record(captions=rec.captions, vocabulary=(), image_id=rec.image_id)
        result = generate(bare)
        assert [i.task for i in result.instructions] == ["conversation", "detail"]
        for instruction in result.instructions:
            check_instruction(bare, instruction)


def test_determinism_and_seed_variation():
    records = real_records()
    first = [generate(rec, seed=7) for rec in records]
    assert first == [generate(rec, seed=7) for rec in records]
    other = [generate(rec, seed=8) for rec in records]
    differing = sum(a != b for a, b in zip(first, other, strict=True))
    assert differing > len(records) // 2


def test_limits_and_disabled_tasks():
    for rec in real_records():
        result = generate(rec, turns=2, questions=1, detail=False)
        by_task = {i.task: i for i in result.instructions}
        assert "detail" not in by_task and all(r.task != "detail" for r in result.rejections)
        assert 1 <= len(by_task["conversation"].turns) <= 2
        if "reasoning" in by_task:
            assert len(by_task["reasoning"].turns) == 1
    nothing = generate(real_records()[0], conversation=False, detail=False, reasoning=False)
    assert nothing == Generated()


def test_generator_backend_and_metadata():
    records = real_records()[:5]
    config = Config(sources=(CocoSourceConfig(images="images", instances=("i.json",)),))
    results = make_generator(config).generate(records)
    assert len(results) == len(records)
    for rec, result in zip(records, results, strict=True):
        seed = image_seed(0, rec.dataset, rec.image_id)
        assert 0 <= seed < 2**63
        assert result == generate(rec, 0)
        for instruction in result.instructions:
            types = instruction.generator["question_types"]  # one question type per turn
            assert len(types) == len(instruction.turns) and all(types)
            assert instruction.generator == {
                "backend": "template",
                "template": TEMPLATE_FILE,
                "template_sha256": PHRASINGS.sha256,
                "seed": seed,
                "question_types": types,
            }
    source = (shipped_dir("templates") / TEMPLATE_FILE).read_text(encoding="utf-8")
    assert source.startswith("#") and "generator.templates" in source.split("\n\n")[0]


def test_missing_realdata_is_skipped_clearly(monkeypatch):
    monkeypatch.setitem(globals(), "COCO_DIR", Path("/nonexistent/realdata/coco"))
    coco_records.cache_clear()
    with pytest.raises(pytest.skip.Exception, match="real COCO excerpts not found"):
        coco_records("tiny_coco/annotations/instances_val2017.json")
    coco_records.cache_clear()
