"""Caption text: captions as clean sentences, and which categories a caption mentions.

A mention rules out answering "no" about a category, so the synonyms lean wide.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from mminstruct.records import ImageRecord
from mminstruct.words import noun


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


def _clean_captions(record: ImageRecord) -> list[str]:
    cleaned = (clean_caption(c) for c in record.captions)
    return list(dict.fromkeys(c for c in cleaned if c))


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


# Words that name the category itself (not a related thing or a part), for "already said".
_SAME: dict[str, tuple[str, ...]] = {
    "person": (
        *("people", "man", "men", "woman", "women", "boy", "girl", "child", "children", "kid"),
        *("guy", "lady", "ladies", "baby", "babies", "toddler", "adult", "teenager", "player"),
        *("skier", "surfer", "snowboarder", "skateboarder", "rider", "cyclist", "persons"),
    ),
    "bicycle": ("bike",),
    "car": ("automobile", "taxi", "cab", "sedan", "suv"),
    "motorcycle": ("motorbike",),
    "airplane": ("plane", "jet", "aircraft", "airliner", "jetliner", "aeroplane"),
    "bus": ("busses",),
    "boat": ("ship", "sailboat", "canoe", "kayak", "yacht"),
    "traffic light": ("stoplight", "stop light", "traffic signal"),
    "fire hydrant": ("hydrant",),
    "cat": ("kitten", "kitty"),
    "dog": ("puppy", "puppies", "pup"),
    "horse": ("pony", "ponies"),
    "sheep": ("lamb",),
    "cow": ("cattle", "calf", "calves"),
    "backpack": ("back pack", "knapsack", "rucksack"),
    "handbag": ("purse", "hand bag"),
    "tie": ("necktie",),
    "suitcase": ("suit case", "luggage"),
    "frisbee": ("frisbe",),
    "skis": ("ski",),
    "sports ball": ("ball",),
    "baseball bat": ("bat",),
    "baseball glove": ("glove", "mitt"),
    "tennis racket": ("racket", "racquet"),
    "wine glass": ("wineglass",),
    "cup": ("mug",),
    "knife": ("knives",),
    "hot dog": ("hotdog",),
    "donut": ("doughnut",),
    "couch": ("sofa",),
    "potted plant": ("plant", "houseplant"),
    "dining table": ("table",),
    "tv": ("television",),
    "laptop": ("laptop computer",),
    "mouse": ("mice",),
    "remote": ("remote control",),
    "cell phone": ("phone", "cellphone", "smartphone"),
    "refrigerator": ("fridge",),
    "scissors": ("scissor",),
    "teddy bear": ("teddy",),
    "hair drier": ("hair dryer", "blow dryer"),
    "toothbrush": ("tooth brush",),
}


@lru_cache(maxsize=4096)
def _name_terms(category: str) -> tuple[str, ...]:
    forms = noun(category)
    terms = (category, forms.singular, forms.plural, *_SAME.get(category.lower(), ()))
    return tuple(dict.fromkeys(_words(t).strip() for t in terms))


def named(category: str, texts: Sequence[str]) -> bool:
    """Whether any text names the category itself: its name, plural or a true synonym (not
    a related word, a part or a shared last word), so an object a text only hints at is
    still told; `mentioned` is the wide test for never answering "no"."""
    words = _words(" ".join(texts))
    return any(f" {term}{end} " in words for term in _name_terms(category) for end in ("", "s"))
