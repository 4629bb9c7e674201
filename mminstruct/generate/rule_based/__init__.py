"""The rule-based generator: conversations, descriptions and reasoning from annotations alone.

Every answer is true by construction: counts, positions and sizes are read off the boxes,
a confident "no" is only said for a category the annotation is exhaustive for and no caption
mentions, and descriptions quote the captions. The wording comes from `rule_based.yaml`
(shipped in `templates/`, or the folder named by `generator.templates`).
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import msgspec
import yaml

from mminstruct.config import Config, ContextConfig, TasksConfig
from mminstruct.context import context_relations
from mminstruct.errors import ConfigError
from mminstruct.geometry import area, center
from mminstruct.keys import image_seed
from mminstruct.records import (
    Generated,
    ImageRecord,
    Instruction,
    ObjectBox,
    Rejection,
    Relation,
    bare_predicate,
)
from mminstruct.resources import resolve_path, shipped_dir
from mminstruct.words import PLURAL_WORDS, counted, join_phrases, noun, number_word

TEMPLATE_FILE = "rule_based.yaml"
BIGGEST_MARGIN = 1.3  # the biggest object must beat any other category's box by this factor
MIN_PROMINENT = 0.05  # ... and cover at least this fraction of the image
LARGER_RATIO = 1.5  # size comparisons only between boxes whose areas differ this much
SIDE_GAP = 0.15  # left/right questions only when box centers differ by this much of the width
MAX_INVENTORY = 8  # categories listed by name in a description

# Every phrasing pool, by dotted key, with the placeholders its phrasings may use.
_NOUN = ("object", "a_object")
POOLS: dict[str, frozenset[str]] = {
    key: frozenset(names)
    for key, names in {
        "conversation.count.question": ("objects",),
        "conversation.count.answer_one": _NOUN,
        "conversation.count.answer_many": ("count", "object", "objects"),
        "conversation.exists.question": _NOUN,
        "conversation.exists.answer_yes": (*_NOUN, "some"),
        "conversation.exists.answer_no": _NOUN,
        "conversation.where.question": ("object",),
        "conversation.where.answer": ("object", "region"),
        "conversation.biggest.question": (),
        "conversation.biggest.answer": ("a_object",),  # there may be several: never "the"
        "conversation.caption.question": (),
        "conversation.caption.answer": ("caption",),
        "detail.question": (),
        "detail.inventory": ("objects",),
        "detail.position": (*_NOUN, "region"),
        "detail.biggest": ("a_object",),
        "detail.relations": ("facts",),
        "conversation.relation_doing.question": ("subject", "object"),
        "conversation.relation_doing.answer": ("subject", "action", "object"),
        "conversation.relation_choice.question": ("subject", "object", "first", "second"),
        "conversation.relation_choice.answer": ("subject", "predicate", "object"),
        "conversation.relation_what.question": ("verb", "object"),
        "conversation.relation_what.answer": ("subjects", "verb", "object"),
        "reasoning.more.question": ("first", "second"),
        "reasoning.more.answer_yes": ("first", "second", "first_some", "second_some"),
        "reasoning.more.answer_fewer": ("first", "second", "first_some", "second_some"),
        "reasoning.more.answer_equal": ("first", "second", "first_some", "second_some"),
        "reasoning.larger.question": ("first", "second"),
        "reasoning.larger.answer": ("larger", "smaller", "ratio"),
        "reasoning.side.question": ("first", "second", "side"),
        "reasoning.side.answer_yes": ("first", "second", "side", "first_pos", "second_pos"),
        "reasoning.side.answer_no": (
            *("first", "second", "side", "other_side", "first_pos", "second_pos"),
        ),
    }.items()
}

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


# --------------------------------------------------------------------------- English


# Visual Genome names that are not one countable thing ("a grass", "an outside").
_MASS = frozenset(
    {"grass", "sky", "water", "snow", "sand", "ground", "dirt", "hair", "air", "ocean", "sea"}
    | {"outside", "inside", "background", "foreground", "distance", "scene", "area", "part"}
    | {"shade", "sunlight", "mud", "gravel", "pavement", "side", "top", "edge", "front"}
)
_REGIONS = {
    ("top", "left"): "in the upper left part",
    ("top", "center"): "at the top center",
    ("top", "right"): "in the upper right part",
    ("middle", "left"): "on the left side",
    ("middle", "center"): "in the center",
    ("middle", "right"): "on the right side",
    ("bottom", "left"): "in the lower left part",
    ("bottom", "center"): "at the bottom center",
    ("bottom", "right"): "in the lower right part",
}


def clean_caption(text: str) -> str:
    """A caption as a sentence: single spaces, capitalized, ending with a period."""
    text = " ".join(text.split()).rstrip(" ,;:-")
    if text.isupper():
        text = text.lower()
    text = re.sub(r" ([.,!?;:])", r"\1", text)
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


# Other words captions use for a category; a mention rules out answering "no" about it.
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "person": (
        *("people", "man", "men", "woman", "women", "boy", "girl", "child", "children", "kid"),
        *("guy", "lady", "ladies", "baby", "toddler", "adult", "teen", "teenager", "player"),
        *("skier", "surfer", "snowboarder", "skateboarder", "rider", "biker", "cyclist"),
        *("someone", "somebody", "crowd", "family", "couple", "gentleman", "gentlemen"),
        *("worker", "chef", "cook", "baker", "officer", "batter", "catcher", "pitcher"),
        *("umpire", "hand", "arm", "leg", "foot", "feet", "face", "he", "she", "they"),
        *("his", "her", "their", "owner", "student", "soldier", "tourist", "mother"),
        *("father", "son", "daughter", "bride", "groom", "friend", "team", "spectator"),
    ),
    "bicycle": ("bike", "cycle", "cyclist", "cycling"),
    "car": ("automobile", "vehicle", "taxi", "cab", "suv", "sedan", "van", "jeep", "traffic"),
    "motorcycle": ("motorbike", "bike", "scooter", "moped", "motorcyclist", "biker"),
    "airplane": ("plane", "jet", "aircraft", "airliner", "jetliner", "aeroplane", "airport"),
    "bus": ("busses", "coach", "vehicle"),
    "train": ("locomotive", "railway", "railroad", "tram", "trolley", "subway", "engine"),
    "truck": ("lorry", "pickup", "van", "vehicle", "trailer"),
    "boat": ("ship", "sailboat", "canoe", "kayak", "yacht", "ferry", "vessel", "raft"),
    "traffic light": ("stoplight", "stop light", "signal", "light"),
    "fire hydrant": ("hydrant",),
    "stop sign": ("stop", "sign"),
    "parking meter": ("meter", "parking"),
    "bench": ("seat", "pew"),
    "bird": (
        *("pigeon", "seagull", "gull", "duck", "goose", "geese", "swan", "parrot", "crow"),
        *("sparrow", "pelican", "owl", "eagle", "hawk", "chicken", "hen", "rooster"),
        *("flamingo", "penguin", "dove", "heron", "flock"),
    ),
    "cat": ("kitten", "kitty", "feline"),
    "dog": ("puppy", "puppies", "pup", "canine"),
    "horse": ("pony", "ponies", "foal", "mare", "stallion", "donkey", "jockey", "carriage"),
    "sheep": ("lamb", "ram", "ewe", "flock"),
    "cow": ("cattle", "bull", "calf", "calves", "ox", "oxen", "steer", "heifer", "herd"),
    "elephant": ("calf", "herd"),
    "bear": ("cub", "grizzly"),
    "zebra": ("herd",),
    "giraffe": ("herd",),
    "backpack": ("back pack", "bag", "knapsack", "rucksack"),
    "umbrella": ("parasol",),
    "handbag": ("purse", "bag", "pocketbook", "clutch", "tote"),
    "tie": ("necktie", "bowtie"),
    "suitcase": ("luggage", "suit case", "bag", "baggage"),
    "frisbee": ("disc", "disk", "frisbe"),
    "skis": ("ski", "skiing", "skier"),
    "snowboard": ("snowboarding", "snowboarder", "board"),
    "sports ball": (
        *("ball", "soccer", "football", "baseball", "basketball", "tennis", "volleyball"),
    ),
    "kite": ("kiting",),
    "baseball bat": ("bat", "baseball"),
    "baseball glove": ("glove", "mitt", "baseball"),
    "skateboard": ("skateboarding", "skateboarder", "skate", "board"),
    "surfboard": ("surfer", "surfing", "surf", "board"),
    "tennis racket": ("racket", "racquet", "tennis"),
    "wine glass": ("glass", "wine"),
    "cup": ("mug", "coffee", "teacup", "tea"),
    "fork": ("utensil", "silverware", "cutlery"),
    "knife": ("knives", "utensil", "silverware", "cutlery"),
    "spoon": ("utensil", "silverware", "cutlery"),
    "sandwich": ("sub", "burger", "hamburger", "wrap", "panini"),
    "orange": ("citrus", "tangerine", "clementine", "mandarin"),
    "broccoli": ("vegetable", "veggie"),
    "carrot": ("vegetable", "veggie"),
    "hot dog": ("hotdog", "sausage", "frank", "bratwurst"),
    "pizza": ("slice",),
    "donut": ("doughnut", "pastry", "pastries"),
    "cake": ("cupcake", "dessert"),
    "chair": ("seat", "stool", "armchair"),
    "couch": ("sofa", "loveseat", "settee"),
    "potted plant": ("plant", "flower", "houseplant", "pot"),
    "dining table": ("table", "desk"),
    "toilet": ("bathroom", "restroom", "urinal", "commode"),
    "tv": ("television", "screen", "monitor"),
    "laptop": ("computer", "notebook"),
    "mouse": ("mice",),
    "remote": ("controller", "control", "wii"),
    "keyboard": ("computer", "keys"),
    "cell phone": ("phone", "cellphone", "mobile", "smartphone", "iphone"),
    "oven": ("stove", "range"),
    "sink": ("basin",),
    "refrigerator": ("fridge", "freezer"),
    "book": ("novel", "magazine"),
    "clock": ("clocktower",),
    "scissors": ("scissor",),
    "teddy bear": ("teddy", "stuffed", "toy", "bear"),
    "hair drier": ("hair dryer", "dryer", "blow dryer", "blowdryer"),
    "toothbrush": ("tooth brush",),
}


def _words(text: str) -> str:
    return " " + re.sub(r"[^a-z0-9]+", " ", text.lower()) + " "


@lru_cache(maxsize=4096)
def mention_terms(category: str) -> tuple[str, ...]:
    """Words whose presence in a caption may refer to `category` (name, plural, synonyms)."""
    forms = noun(category)
    terms = (category, forms.singular, forms.plural, category.split()[-1])
    terms += _SYNONYMS.get(category.lower(), ())
    return tuple(_words(t).strip() for t in terms)


def mentioned(category: str, texts: Sequence[str]) -> bool:
    """Whether any text names the category, in any of its forms (plurals included)."""
    return _mentioned(category, _words(" ".join(texts)))


def _mentioned(category: str, words: str) -> bool:
    ends = ("", "s", "es")
    return any(f" {term}{end} " in words for term in mention_terms(category) for end in ends)


# --------------------------------------------------------------------------- phrasings


@dataclass(frozen=True)
class Phrasings:
    """The phrasing pools of one `rule_based.yaml`, checked against `POOLS`."""

    pools: Mapping[str, tuple[str, ...]]  # dotted key -> phrasings
    source: str  # file name, recorded in every instruction
    sha256: str  # first 16 hex digits of the file's sha256

    def say(self, key: str, rng: random.Random, **values: str) -> str:
        """One phrasing of `key`, drawn by `rng`, filled in and capitalized."""
        text = render(rng.choice(self.pools[key]), values, key)
        return text[:1].upper() + text[1:]


def render(template: str, values: Mapping[str, str], key: str = "template") -> str:
    """Replace each `{name}` by its value; nothing else in the template is interpreted."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            names = ", ".join(f"{{{n}}}" for n in sorted(values)) or "none"
            problem = f"{key}: no value for {{{name}}} (available: {names})"
            raise ConfigError([problem], TEMPLATE_FILE)
        return values[name]

    return _PLACEHOLDER.sub(fill, template)


def templates_dir(setting: str | None) -> Path:
    """The folder `generator.templates` names, or the shipped templates."""
    return resolve_path(setting) if setting else shipped_dir("templates")


def load_phrasings(folder: Path) -> Phrasings:
    """Read and check `rule_based.yaml` from `folder`; every problem is reported at once."""
    path = Path(folder) / TEMPLATE_FILE
    if not path.is_file():
        hint = shipped_dir("templates") / TEMPLATE_FILE
        raise ConfigError(
            [f"generator.templates: no {TEMPLATE_FILE} here; start from {hint}"], str(path)
        )
    data = path.read_bytes()
    try:
        raw = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise ConfigError([f"not valid YAML: {exc}"], str(path)) from None
    errors: list[str] = []
    pools = _check_pools(_flatten(raw, "", errors), errors)
    if errors:
        raise ConfigError(errors, str(path))
    return Phrasings(pools=pools, source=path.name, sha256=hashlib.sha256(data).hexdigest()[:16])


def _flatten(raw: Any, prefix: str, errors: list[str]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        errors.append(f"{prefix or 'top level'}: expected a mapping of keys")
        return {}
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        is_section = isinstance(value, dict) and path not in POOLS
        flat.update(_flatten(value, path, errors) if is_section else {path: value})
    return flat


def _check_pools(flat: dict[str, Any], errors: list[str]) -> dict[str, tuple[str, ...]]:
    for key in flat.keys() - POOLS.keys():
        close = difflib.get_close_matches(key, list(POOLS), n=1)
        errors.append(f"unknown key '{key}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
    pools = {}
    for key, allowed in POOLS.items():
        value = flat.get(key)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            errors.append(f"{key}: expected a non-empty list of phrasings")
            continue
        for text in value:
            for name in set(_PLACEHOLDER.findall(text)) - allowed:
                names = ", ".join(f"{{{n}}}" for n in sorted(allowed)) or "none"
                errors.append(f"{key}: unknown placeholder {{{name}}} in {text!r} (use: {names})")
        pools[key] = tuple(value)
    return pools


# --------------------------------------------------------------------------- the scene


@dataclass(frozen=True)
class Scene:
    """What the boxes say, per category, in order of first appearance."""

    width: int
    height: int
    counts: dict[str, int]  # boxes per category, crowd boxes included
    areas: dict[str, float]  # summed box area per category
    crowd: frozenset[str]  # categories with at least one crowd box: counts are lower bounds
    singles: dict[str, ObjectBox]  # categories with exactly one box, not a crowd
    # Every object of the annotated categories is boxed (COCO). Visual Genome boxes only
    # some objects, often one of them twice: no counts are stated then.
    exhaustive: bool = True
    objects: tuple[ObjectBox, ...] = ()  # the record's objects, which relations index
    relations: tuple[Relation, ...] = ()  # what the context shows (`context_relations`)
    vocabulary: frozenset[str] = frozenset()  # categories whose boxes are exhaustive

    @property
    def countable(self) -> list[str]:
        """Categories whose count is exact."""
        if not self.exhaustive:
            return []
        return [c for c in self.counts if c not in self.crowd and c in self.vocabulary]


def describe_scene(record: ImageRecord, relations: Sequence[Relation] = ()) -> Scene:
    """Counts, areas, crowd categories and single objects of a record (all its objects).

    Without an exhaustive vocabulary (Visual Genome), objects with plural names ("trees")
    are left out: the sentences about them would need a count we do not know.
    """
    exhaustive = bool(record.vocabulary) or not record.objects
    objects = record.objects if exhaustive else [o for o in record.objects if _singular(o)]
    counts: dict[str, int] = {}
    areas: dict[str, float] = {}
    for obj in objects:
        counts[obj.category] = counts.get(obj.category, 0) + 1
        areas[obj.category] = areas.get(obj.category, 0.0) + area(obj)
    crowd = frozenset(o.category for o in objects if o.iscrowd)
    sized = record.width > 0 and record.height > 0
    singles = {
        o.category: o
        for o in objects
        if sized and counts[o.category] == 1 and o.category not in crowd
    }
    return Scene(
        width=record.width,
        height=record.height,
        counts=counts,
        areas=areas,
        crowd=crowd,
        singles=singles,
        exhaustive=exhaustive,
        objects=record.objects,
        relations=tuple(_bare(r) for r in relations),
        vocabulary=frozenset(record.vocabulary) if record.vocabulary else frozenset(counts),
    )


def _bare(relation: Relation) -> Relation:
    """The relation with no trailing article on its predicate ("wearing a" -> "wearing"):
    records made without a converter (tests, preview annotations) may still have one."""
    return msgspec.structs.replace(relation, predicate=bare_predicate(relation.predicate))


def _singular(obj: ObjectBox) -> bool:
    """Whether a free-form object name reads as one countable thing ("tree", not "trees"
    or "grass")."""
    words = obj.category.split(" ")
    if len(words) > 3 or any(w in _PLACES or w in ("of", "with", "and", "is") for w in words):
        return False  # "trees on roadside", "screen is black": a phrase, not a name
    last = words[-1]
    if last in PLURAL_WORDS or last in _MASS or not last.isalpha():
        return False
    return not (last.endswith("s") and not last.endswith(("ss", "us", "is")))


def region(obj: ObjectBox, width: int, height: int) -> str:
    """Where the box center falls in a 3x3 grid: "in the upper left part", "in the center"."""
    cx, cy = center(obj, width, height)
    column = "left" if cx < 1 / 3 else "right" if cx > 2 / 3 else "center"
    row = "top" if cy < 1 / 3 else "bottom" if cy > 2 / 3 else "middle"
    return _REGIONS[row, column]


def some(category: str, scene: Scene) -> str:
    """How many there are, in words: "a dog", "three dogs", "a crowd of people"."""
    if category in scene.crowd:
        group = "crowd" if category == "person" else "group"
        return f"a {group} of {noun(category).plural}"
    if not scene.exhaustive:
        return noun(category).a  # at least one is certain; how many is not
    n = scene.counts[category]
    return noun(category).a if n == 1 else counted(n, category)


def biggest_category(record: ImageRecord) -> str | None:
    """The category of the largest single box, when it clearly beats every other category."""
    boxes = sorted(record.objects, key=area, reverse=True)
    top = next((b for b in boxes if not b.iscrowd), None)
    if top is None or area(top) < MIN_PROMINENT * record.width * record.height:
        return None
    rival = next((b for b in boxes if b.category != top.category), None)
    if rival is None or area(top) < BIGGEST_MARGIN * area(rival):
        return None
    return top.category


# --------------------------------------------------------------------------- conversation


@dataclass(frozen=True)
class _Turn:
    kind: str  # question type, so that a conversation mixes types
    subjects: frozenset[str]  # what it is about, so that no category is asked about twice
    question: str
    answer: str


def _count_turns(scene: Scene, say: _Say) -> list[_Turn]:
    turns = []
    for category in scene.countable:
        n, forms = scene.counts[category], noun(category)
        question = say("conversation.count.question", objects=forms.plural)
        if n == 1:
            answer = say("conversation.count.answer_one", object=forms.singular, a_object=forms.a)
        else:
            answer = say(
                "conversation.count.answer_many",
                count=number_word(n),
                object=forms.singular,
                objects=forms.plural,
            )
        turns.append(_Turn("count", frozenset({category}), question, answer))
    return turns


def _exists_turns(scene: Scene, say: _Say) -> list[_Turn]:
    turns = []
    for category in scene.counts:
        values = {"object": noun(category).singular, "a_object": noun(category).a}
        question = say("conversation.exists.question", **values)
        answer = say("conversation.exists.answer_yes", some=some(category, scene), **values)
        turns.append(_Turn("exists", frozenset({category}), question, answer))
    return turns


def absent_categories(record: ImageRecord) -> list[str]:
    """Categories that are certainly not in the image: exhaustive, unboxed, never mentioned."""
    present = {o.category for o in record.objects}
    words = _words(" ".join([*record.captions, *present]))
    return [c for c in record.vocabulary if c not in present and not _mentioned(c, words)]


def _absent_turns(record: ImageRecord, say: _Say, rng: random.Random) -> list[_Turn]:
    absent = absent_categories(record)
    turns = []
    for category in rng.sample(absent, min(3, len(absent))):
        values = {"object": noun(category).singular, "a_object": noun(category).a}
        question = say("conversation.exists.question", **values)
        answer = say("conversation.exists.answer_no", **values)
        turns.append(_Turn("absent", frozenset({category}), question, answer))
    return turns


def _where_turns(scene: Scene, say: _Say) -> list[_Turn]:
    turns = []
    for category, obj in scene.singles.items():
        forms = noun(category)
        where = region(obj, scene.width, scene.height)
        question = say("conversation.where.question", object=forms.singular)
        answer = say("conversation.where.answer", object=forms.singular, region=where)
        turns.append(_Turn("where", frozenset({category}), question, answer))
    return turns


def _biggest_turns(record: ImageRecord, say: _Say) -> list[_Turn]:
    category = biggest_category(record) if record.vocabulary else None
    if category is None:
        return []
    question = say("conversation.biggest.question")
    answer = say("conversation.biggest.answer", a_object=noun(category).a)
    return [_Turn("biggest", frozenset({category}), question, answer)]


def _caption_turns(record: ImageRecord, say: _Say, rng: random.Random) -> list[_Turn]:
    captions = _clean_captions(record)
    if not captions:
        return []
    question = say("conversation.caption.question")
    answer = say("conversation.caption.answer", caption=rng.choice(captions))
    return [_Turn("caption", frozenset({"<caption>"}), question, answer)]


# Relations: which predicates make which question.
_PEOPLE = frozenset(
    {"person", "man", "woman", "boy", "girl", "child", "kid", "lady", "guy", "player"}
    | {"skier", "surfer", "skateboarder", "rider", "batter", "catcher", "pitcher"}
)
_ACTIONS = {  # predicates in the third person, as "-ing" forms
    "wears": "wearing", "holds": "holding", "rides": "riding", "carries": "carrying",
    "eats": "eating", "uses": "using", "throws": "throwing", "catches": "catching",
    "pulls": "pulling", "drinks": "drinking", "pushes": "pushing", "feeds": "feeding",
    "watches": "watching", "hits": "hitting", "swings": "swinging", "flies": "flying",
}  # fmt: skip
_PLACES = frozenset({"on", "in", "under", "above", "below", "behind", "near", "beside"})
_PLACES |= {"inside", "along", "at", "by", "over", "against", "atop", "beneath"}
_OPPOSITES = {
    "on": "under", "under": "on", "above": "below", "below": "above",
    "left of": "right of", "right of": "left of", "in front of": "behind",
    "behind": "in front of", "on top of": "under",
}  # fmt: skip
_SAID = {"left of": "to the left of", "right of": "to the right of"}


def _said(predicate: str) -> str:
    return _SAID.get(predicate, predicate)


def _action(predicate: str) -> str | None:
    """The "-ing" form of an action predicate ("riding", "wears" -> "wearing"), else None."""
    first, _, rest = predicate.partition(" ")
    verb = _ACTIONS.get(first, first if first.endswith("ing") and len(first) > 4 else None)
    if verb is None or rest.split(" ")[-1:] == ["of"]:
        return None
    return f"{verb} {rest}".strip()


def _unique_pair(relation: Relation, scene: Scene) -> tuple[str, str] | None:
    """The two category names, when each names exactly one object ("the man", "the horse")."""
    subject = scene.objects[relation.subject].category
    obj = scene.objects[relation.object].category
    if subject == obj or subject not in scene.singles or obj not in scene.singles:
        return None
    return subject, obj


def _relation_turns(scene: Scene, say: _Say, rng: random.Random) -> list[_Turn]:
    """Questions about what objects do to each other and where they are relative to each
    other, each about two objects that are the only ones of their name."""
    turns = []
    for relation in scene.relations:
        pair = _unique_pair(relation, scene)
        if pair is None:
            continue
        action = None if relation.derived else _action(relation.predicate)
        if action and pair[0] in _PEOPLE:
            turns.append(_doing_turn(pair, action, say))
        if relation.predicate in _OPPOSITES and not _contradicted(relation, scene):
            turns.append(_choice_turn(pair, relation.predicate, say, rng))
    return turns + _what_turns(scene, say)


def _doing_turn(pair: tuple[str, str], action: str, say: _Say) -> _Turn:
    values = {"subject": noun(pair[0]).singular, "object": noun(pair[1]).singular}
    question = say("conversation.relation_doing.question", **values)
    answer = say("conversation.relation_doing.answer", action=action, **values)
    return _Turn("relation_doing", frozenset(pair), question, answer)


def _contradicted(relation: Relation, scene: Scene) -> bool:
    """Whether the annotations also say the opposite about the same two objects."""
    opposite = _OPPOSITES[relation.predicate]
    return any(
        {r.subject, r.object} == {relation.subject, relation.object}
        and (r.predicate == opposite) == (r.subject == relation.subject)
        for r in scene.relations
    )


def _choice_turn(pair: tuple[str, str], predicate: str, say: _Say, rng: random.Random) -> _Turn:
    options = [_said(predicate), _said(_OPPOSITES[predicate])]
    rng.shuffle(options)
    values = {"subject": noun(pair[0]).singular, "object": noun(pair[1]).singular}
    question = say(
        "conversation.relation_choice.question", first=options[0], second=options[1], **values
    )
    answer = say("conversation.relation_choice.answer", predicate=_said(predicate), **values)
    return _Turn("relation_choice", frozenset(pair), question, answer)


def _what_turns(scene: Scene, say: _Say) -> list[_Turn]:
    """ "What is on the table?": every annotated subject with that predicate and object."""
    groups: dict[tuple[str, int], list[str]] = {}
    for relation in scene.relations:
        obj = scene.objects[relation.object].category
        subject = scene.objects[relation.subject].category
        verbs = _where_verbs(relation.predicate)
        if relation.derived or not verbs or obj not in scene.singles or subject not in scene.counts:
            continue
        names = groups.setdefault((relation.predicate, relation.object), [])
        if subject != obj and subject not in names:
            names.append(subject)
    turns = []
    for (predicate, index), subjects in groups.items():
        obj = noun(scene.objects[index].category).singular
        one, many = _where_verbs(predicate)
        question = say("conversation.relation_what.question", verb=one, object=obj)
        answer = say(
            "conversation.relation_what.answer",
            subjects=join_phrases([noun(s).a for s in subjects]),
            verb=one if len(subjects) == 1 else many,
            object=obj,
        )
        subject_of = frozenset({scene.objects[index].category})
        turns.append(_Turn("relation_what", subject_of, question, answer))
    return turns


def _where_verbs(predicate: str) -> tuple[str, str] | None:
    """A where-predicate as it reads after one subject and after several: ("is on", "are
    on"), ("rests on", "rest on"); None when the predicate says no place ("has", "of")."""
    words = predicate.split(" ")
    if words[-1] not in _PLACES or len(words) > 4:
        return None
    if _is_place(predicate):
        return f"is {predicate}", f"are {predicate}"
    verb = words[0]
    if len(words) == 2 and verb.endswith("s") and not verb.endswith(("ss", "us")):
        base = verb[:-2] if verb.endswith(("ches", "shes", "sses", "xes")) else verb[:-1]
        return predicate, " ".join([base, *words[1:]])
    return None


def relation_facts(scene: Scene, limit: int = 2) -> list[str]:
    """Up to `limit` annotated relations between unique objects, as clauses for a
    description ("the man is riding the horse"), most prominent first."""
    facts = []
    for relation in scene.relations:
        pair = _unique_pair(relation, scene)
        if pair is None or relation.derived or len(facts) >= limit:
            continue
        verb = _verb_phrase(relation.predicate)
        if verb is None:
            continue
        subject, obj = noun(pair[0]).singular, noun(pair[1]).singular
        facts.append(f"the {subject} {verb} the {obj}")
    return facts


def _verb_phrase(predicate: str) -> str | None:
    """How a predicate reads after a singular subject: "is riding", "is parked on", "has";
    None for predicates that do not read as a clause ("of", "with")."""
    action = _action(predicate)
    if action:
        return f"is {action}"
    if _is_place(predicate):
        return f"is {predicate}"
    return "has" if predicate in ("has", "have") else None


def _is_place(predicate: str) -> bool:
    """Whether a predicate says where something is ("on", "next to", "parked on"), so that
    "X is <predicate> Y" reads well."""
    words = predicate.split(" ")
    place_word = words[0] in _PLACES or words[0] in ("next", "in", "near", "beside")
    participle = words[0].endswith(("ed", "ing")) and len(words) > 1
    return (place_word or participle) and words[-1] in _PLACES | {"to", "of"}


def _choose(candidates: list[_Turn], limit: int, rng: random.Random) -> list[_Turn]:
    """Up to `limit` turns, taking question types in turn (in random order), no repeats."""
    by_kind: dict[str, list[_Turn]] = {}
    for turn in candidates:
        by_kind.setdefault(turn.kind, []).append(turn)
    kinds = list(by_kind)
    rng.shuffle(kinds)
    for kind in kinds:
        rng.shuffle(by_kind[kind])
    chosen: list[_Turn] = []
    used: set[str] = set()
    while len(chosen) < limit and any(by_kind.values()):
        for kind in kinds:
            turn = _pop_fresh(by_kind[kind], used)
            if turn is not None and len(chosen) < limit:
                chosen.append(turn)
                used |= turn.subjects
    return chosen


def _pop_fresh(turns: list[_Turn], used: set[str]) -> _Turn | None:
    while turns:
        turn = turns.pop()
        if not turn.subjects & used:
            return turn
    return None


def _conversation(
    record: ImageRecord, scene: Scene, say: _Say, rng: random.Random, limit: int
) -> list[tuple[str, str]]:
    if not record.objects and not record.captions:
        return []  # "no" answers alone do not make a conversation
    candidates = [
        *_count_turns(scene, say),
        *_exists_turns(scene, say),
        *_absent_turns(record, say, rng),
        *_where_turns(scene, say),
        *_biggest_turns(record, say),
        *_caption_turns(record, say, rng),
        *_relation_turns(scene, say, rng),
    ]
    return [(t.question, t.answer) for t in _choose(candidates, limit, rng)]


# --------------------------------------------------------------------------- detail


def _clean_captions(record: ImageRecord) -> list[str]:
    cleaned = (clean_caption(c) for c in record.captions)
    return list(dict.fromkeys(c for c in cleaned if c))


def inventory(scene: Scene) -> str:
    """The objects by prominence: "two people, a dog and a bench" (at most MAX_INVENTORY)."""
    order = sorted(scene.counts, key=lambda c: -scene.areas[c])
    items = [some(c, scene) for c in order[:MAX_INVENTORY]]
    if len(order) > MAX_INVENTORY:
        items.append("other objects")
    return join_phrases(items)


def _object_sentences(
    record: ImageRecord, scene: Scene, say: _Say, rng: random.Random
) -> list[str]:
    if not scene.counts:
        return []
    sentences = [say("detail.inventory", objects=inventory(scene))]
    for category in rng.sample(list(scene.singles), min(2, len(scene.singles))):
        where = region(scene.singles[category], scene.width, scene.height)
        forms = noun(category)
        sentences.append(
            say("detail.position", object=forms.singular, a_object=forms.a, region=where)
        )
    biggest = biggest_category(record) if scene.exhaustive else None
    if biggest is not None:
        sentences.append(say("detail.biggest", a_object=noun(biggest).a))
    facts = relation_facts(scene)
    if facts:
        sentences.append(say("detail.relations", facts=join_phrases(facts)))
    return sentences


def _detail(
    record: ImageRecord, scene: Scene, say: _Say, rng: random.Random, limit: int
) -> list[tuple[str, str]]:
    captions = _clean_captions(record)
    sentences = rng.sample(captions, min(rng.choice((1, 2)), len(captions)))
    sentences += _object_sentences(record, scene, say, rng)
    if not sentences:
        return []
    return [(say("detail.question"), " ".join(sentences))]  # one description: limit is 1


# --------------------------------------------------------------------------- reasoning


def _pairs(categories: Sequence[str], rng: random.Random) -> list[tuple[str, str]]:
    """Every pair of categories once, each in a random order."""
    pairs = itertools.combinations(categories, 2)
    return [(a, b) if rng.random() < 0.5 else (b, a) for a, b in pairs]


def _more_turn(a: str, b: str, scene: Scene, say: _Say) -> _Turn:
    na, nb = scene.counts[a], scene.counts[b]
    values = {"first": noun(a).plural, "second": noun(b).plural}
    question = say("reasoning.more.question", **values)
    verdict = "answer_yes" if na > nb else "answer_fewer" if na < nb else "answer_equal"
    answer = say(
        f"reasoning.more.{verdict}", first_some=counted(na, a), second_some=counted(nb, b), **values
    )
    return _Turn("more", frozenset({f"{a}|{b}", f"{b}|{a}"}), question, answer)


def ratio_words(ratio: float) -> str:
    """A size ratio in words, rounded: "about twice", "about three times"."""
    if ratio < 1.75:
        return "about one and a half times"
    if ratio < 2.5:
        return "about twice"
    return f"about {number_word(round(ratio))} times"


def _larger_turn(a: str, b: str, scene: Scene, say: _Say) -> _Turn | None:
    area_a, area_b = area(scene.singles[a]), area(scene.singles[b])
    if min(area_a, area_b) <= 0 or max(area_a, area_b) < LARGER_RATIO * min(area_a, area_b):
        return None
    larger, smaller = (a, b) if area_a > area_b else (b, a)
    ratio = max(area_a, area_b) / min(area_a, area_b)
    question = say("reasoning.larger.question", first=noun(a).singular, second=noun(b).singular)
    answer = say(
        "reasoning.larger.answer",
        larger=noun(larger).singular,
        smaller=noun(smaller).singular,
        ratio=ratio_words(ratio),
    )
    return _Turn("larger", frozenset({f"{a}|{b}", f"{b}|{a}"}), question, answer)


def _side_turn(a: str, b: str, scene: Scene, say: _Say, rng: random.Random) -> _Turn | None:
    xa = center(scene.singles[a], scene.width, scene.height)[0]
    xb = center(scene.singles[b], scene.width, scene.height)[0]
    if abs(xa - xb) < SIDE_GAP:
        return None
    side, other = rng.choice((("left", "right"), ("right", "left")))
    values = {"first": noun(a).singular, "second": noun(b).singular, "side": side}
    question = say("reasoning.side.question", **values)
    holds = (xa < xb) == (side == "left")
    answer = say(
        f"reasoning.side.answer_{'yes' if holds else 'no'}",
        other_side=other,
        first_pos=f"{round(xa * 100)}%",
        second_pos=f"{round(xb * 100)}%",
        **values,
    )
    return _Turn("side", frozenset({f"{a}|{b}", f"{b}|{a}"}), question, answer)


def _reasoning(
    record: ImageRecord, scene: Scene, say: _Say, rng: random.Random, limit: int
) -> list[tuple[str, str]]:
    candidates = [_more_turn(a, b, scene, say) for a, b in _pairs(scene.countable, rng)]
    for a, b in _pairs(list(scene.singles), rng):
        candidates += [_larger_turn(a, b, scene, say), _side_turn(a, b, scene, say, rng)]
    chosen = _choose([t for t in candidates if t is not None], limit, rng)
    return [(t.question, t.answer) for t in chosen]


# --------------------------------------------------------------------------- one image


class _Say:
    """`say(key, **values)`: a phrasing drawn with this task's RNG."""

    def __init__(self, phrasings: Phrasings, rng: random.Random):
        self.phrasings = phrasings
        self.rng = rng

    def __call__(self, key: str, **values: str) -> str:
        return self.phrasings.say(key, self.rng, **values)


_TASKS = {"conversation": _conversation, "detail": _detail, "reasoning": _reasoning}


def _limits(tasks: TasksConfig) -> dict[str, int | None]:
    """Each enabled task's limit on question/answer pairs; None when it is disabled."""
    return {
        "conversation": tasks.conversation.turns if tasks.conversation.enabled else None,
        "detail": 1 if tasks.detail.enabled else None,
        "reasoning": tasks.reasoning.questions if tasks.reasoning.enabled else None,
    }


def _missing(task: str, scene: Scene) -> str:
    if task == "reasoning":
        found = ", ".join(scene.countable) or "none"
        return (
            f"reasoning needs two object categories without crowd boxes to compare; found: {found}"
        )
    return f"{task} needs captions or object boxes; this image has neither"


def generate_instructions(
    record: ImageRecord,
    tasks: TasksConfig,
    phrasings: Phrasings,
    seed: int,
    context: ContextConfig | None = None,
) -> Generated:
    """All enabled tasks for one image, or a rejection per task that cannot be written.

    `seed` is the image's own seed (`image_seed`); each task draws from its own RNG, so
    turning one task off does not change the others.
    """
    relations = context_relations(record, context or ContextConfig()) if record.objects else ()
    scene = describe_scene(record, relations)
    stamp = {"backend": "template", "template": phrasings.source}
    stamp |= {"template_sha256": phrasings.sha256, "seed": seed}
    result = Generated()
    for task, limit in _limits(tasks).items():
        if limit is None:
            continue
        rng = random.Random(f"{seed}:{task}")
        turns = _TASKS[task](record, scene, _Say(phrasings, rng), rng, limit)
        if turns:
            result.instructions.append(
                Instruction(task=task, turns=tuple(turns), generator=dict(stamp))
            )
        else:
            result.rejections.append(_rejection(record, task, _missing(task, scene)))
    return result


def _rejection(record: ImageRecord, task: str, detail: str) -> Rejection:
    return Rejection(
        reason="insufficient_annotations",
        detail=detail,
        dataset=record.dataset,
        image_id=record.image_id,
        task=task,
    )


class RuleBasedGenerator:
    """The `template` backend: writes every task from the annotations, with no model."""

    def __init__(self, config: Config):
        self.tasks = config.tasks
        self.context = config.context
        self.base_seed = config.generator.seed
        self.phrasings = load_phrasings(templates_dir(config.generator.templates))

    def start_unit(self) -> None:
        """Nothing to reset: each image's output depends on that image alone."""

    def generate(
        self, batch: Sequence[ImageRecord], images: Sequence[bytes] | None = None
    ) -> list[Generated]:
        """One `Generated` per record, in the same order."""
        return [
            generate_instructions(
                record,
                self.tasks,
                self.phrasings,
                image_seed(self.base_seed, record.dataset, record.image_id),
                self.context,
            )
            for record in batch
        ]
