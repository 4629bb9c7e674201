"""Words for COCO's 80 categories, and the small closed word classes the grounding checks read.

A *term* is a word or phrase that names objects of a category: its name and plural
("person", "people"), an exact synonym ("sofa" for couch), or a kind of it ("woman" for
person, "puppy" for dog). Exact terms say how many of the whole category there are; kinds
only give a lower bound ("two men" may stand among five people). A few words name either of
two categories ("bike": bicycle or motorcycle). Loose words ("crowd", "skier" for skis) only
count when a caption mentions a category: they never make a claim of their own.

Words that also name something else are left out rather than guessed ("glass", "phone",
"plant", "bat", "orange" in the singular): a check that cannot tell says nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from mminstruct.words import plural

COCO_CATEGORIES = (
    *("person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat"),
    *("traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat"),
    *("dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack"),
    *("umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball"),
    *("kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket"),
    *("bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple"),
    *("sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake"),
    *("chair", "couch", "potted plant", "bed", "dining table", "toilet", "tv", "laptop"),
    *("mouse", "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink"),
    *("refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier"),
    "toothbrush",
)

# Other exact names of a category (singular; plurals are made by `plural`).
_EXACT: dict[str, tuple[str, ...]] = {
    "person": ("persons",),  # "people" is person's plural
    "motorcycle": ("motorbike",),
    "airplane": ("aeroplane", "plane", "aircraft"),
    "traffic light": ("stoplight", "stop light", "traffic signal"),
    "fire hydrant": ("hydrant",),
    "sports ball": ("ball",),
    "baseball glove": ("baseball mitt",),
    "tennis racket": ("racket", "racquet", "tennis racquet"),
    "donut": ("doughnut",),
    "couch": ("sofa",),
    "potted plant": ("houseplant", "house plant"),
    "tv": ("television",),
    "remote": ("remote control",),
    "cell phone": ("cellphone", "mobile phone", "smartphone"),
    "refrigerator": ("fridge",),
    "hair drier": ("hair dryer", "blow dryer"),
}
# Kinds of a category: they imply it, but not how many of it there are.
_KINDS: dict[str, tuple[str, ...]] = {
    "person": (
        *("man", "woman", "boy", "girl", "child", "kid", "guy", "lady", "gentleman"),
        *("toddler", "teenager", "player", "skier", "surfer", "snowboarder", "skateboarder"),
        *("pedestrian", "rider", "cyclist", "chef", "worker", "policeman", "soldier"),
        *("tourist", "spectator", "umpire", "catcher", "jockey"),
    ),
    "car": ("taxi", "sedan", "suv"),
    "motorcycle": ("scooter", "moped"),
    "airplane": ("jet", "jetliner", "airliner", "seaplane", "biplane"),
    "train": ("locomotive", "tram"),
    "truck": ("pickup truck", "lorry", "fire truck"),
    "boat": ("sailboat", "ship", "canoe", "kayak", "yacht", "ferry"),
    "bird": (
        *("pigeon", "seagull", "gull", "duck", "goose", "swan", "parrot", "sparrow"),
        *("pelican", "owl", "eagle", "hawk", "hen", "rooster", "flamingo", "penguin"),
    ),
    "cat": ("kitten", "kitty"),
    "dog": ("puppy", "pup"),
    "horse": ("pony", "foal"),
    "sheep": ("lamb",),
    "cow": ("bull", "ox"),
    "umbrella": ("parasol",),
    "handbag": ("purse",),
    "tie": ("necktie", "bow tie"),
    "cup": ("mug", "teacup"),
    "sports ball": ("soccer ball", "tennis ball", "beach ball"),
    "teddy bear": ("teddy",),
}
# Words that name one of several categories: a claim about them holds if any is there.
_EITHER: dict[str, tuple[str, ...]] = {"bike": ("bicycle", "motorcycle")}
# Caption words that may refer to a category: a mention rules out "not in the image".
_LOOSE: dict[str, tuple[str, ...]] = {
    "person": (
        *("people", "crowd", "someone", "somebody", "family", "couple", "team", "baby"),
        *("passenger", "biker", "batter", "pitcher", "cook", "he", "she", "his", "her"),
        *("motorcyclist", "human", "adult", "audience", "group"),
    ),
    "bicycle": ("cyclist", "biker", "cycle"),
    "car": ("vehicle", "traffic", "van", "cab", "jeep"),
    "motorcycle": ("biker", "motorcyclist", "motor bike"),
    "airplane": ("airport", "airfield", "runway"),
    "bus": ("vehicle", "coach"),
    "train": ("railway", "railroad", "subway", "engine", "tracks"),
    "truck": ("vehicle", "van", "trailer"),
    "boat": ("water", "vessel", "raft", "dock", "harbor", "marina"),
    "traffic light": ("signal", "light"),
    "stop sign": ("sign",),
    "parking meter": ("meter",),
    "bench": ("seat",),
    "bird": ("flock", "crow", "dove", "chicken"),
    "dog": ("leash", "canine"),
    "horse": ("carriage", "jockey", "donkey", "rider"),
    "sheep": ("flock", "ram"),
    "cow": ("cattle", "calf", "herd"),
    "elephant": ("calf", "herd"),
    "bear": ("cub", "grizzly"),
    "zebra": ("herd",),
    "giraffe": ("herd",),
    "backpack": ("bag",),
    "handbag": ("bag",),
    "suitcase": ("luggage", "bag", "baggage"),
    "frisbee": ("disc", "disk"),
    "skis": ("ski", "skier", "skiing"),
    "snowboard": ("snowboarder", "snowboarding", "board"),
    "sports ball": ("soccer", "baseball", "tennis", "basketball", "football", "volleyball"),
    "kite": ("kiting",),
    "baseball bat": ("bat", "baseball", "batter"),
    "baseball glove": ("glove", "mitt", "baseball", "catcher"),
    "skateboard": ("skateboarder", "skateboarding", "skate", "board"),
    "surfboard": ("surfer", "surfing", "surf", "board"),
    "tennis racket": ("tennis",),
    "bottle": ("beer", "wine"),
    "wine glass": ("glass", "wine"),
    "cup": ("coffee", "tea", "glass"),
    "fork": ("utensil", "silverware", "cutlery"),
    "knife": ("utensil", "silverware", "cutlery"),
    "spoon": ("utensil", "silverware", "cutlery"),
    "bowl": ("soup", "cereal"),
    "banana": ("fruit",),
    "apple": ("fruit",),
    "orange": ("fruit", "citrus"),
    "sandwich": ("burger", "sub", "wrap", "panini"),
    "broccoli": ("vegetable", "veggie"),
    "carrot": ("vegetable", "veggie"),
    "hot dog": ("hotdog", "sausage"),
    "pizza": ("slice",),
    "donut": ("pastry",),
    "cake": ("cupcake", "dessert"),
    "chair": ("seat", "stool", "armchair"),
    "couch": ("loveseat", "settee"),
    "potted plant": ("plant", "flower", "pot"),
    # COCO's "dining table" is not every table (a desk, a side table): "table" only hints.
    "dining table": ("table", "desk", "counter"),
    "toilet": ("bathroom", "restroom", "urinal"),
    "tv": ("monitor", "screen"),
    "laptop": ("computer", "notebook"),
    "mouse": ("computer",),
    "remote": ("controller", "control"),
    "keyboard": ("computer", "keys"),
    "cell phone": ("phone",),
    "oven": ("stove",),
    "microwave": ("appliance",),
    "toaster": ("appliance",),
    "sink": ("basin", "faucet"),
    "refrigerator": ("freezer", "appliance"),
    "book": ("bookshelf", "magazine", "novel"),
    "clock": ("clocktower",),
    "vase": ("flower",),
    "scissors": ("scissor",),
    "teddy bear": ("toy", "stuffed"),
    "hair drier": ("dryer",),
    "toothbrush": ("tooth brush",),
}
# The singular of these would too often be another word ("an orange shirt").
_PLURAL_ONLY = frozenset({"orange"})
# Categories whose boxes do not count single things: a bunch of bananas may be one box.
UNCOUNTABLE = frozenset({"broccoli", "carrot", "banana", "book"})
# Categories named as pairs: "a pair of skis" is one box, "two skis" may be one pair.
PAIRED = frozenset({"skis", "scissors"})
# Categories often seen as a part of another, unboxed: a laptop's (or a phone's) keyboard.
PART_OF: dict[str, tuple[str, ...]] = {"keyboard": ("laptop", "cell phone")}
# Terms that are also adjectives ("a remote village"): a term only before a function word.
ADJECTIVAL = frozenset({"remote"})
# A category word after one of these names something else ("coffee table", "flower bed").
NOT_AFTER: dict[str, frozenset[str]] = {
    "person": frozenset(  # "an mp3 player", "the record player": a device
        {"mp3", "mp4", "cd", "dvd", "cassette", "tape", "record", "media", "music", "video"}
        | {"vinyl", "ray"}  # "blu-ray player"
    ),
    "keyboard": frozenset({"piano", "musical", "midi"}),
    "bed": frozenset({"flower", "river", "sea", "truck", "lake", "stream", "garden"}),
    "bowl": frozenset({"super", "dust", "toilet"}),
    "sports ball": frozenset({"meat", "snow", "cotton", "eye", "disco", "crystal", "gum"}),
    "cup": frozenset({"world", "suction", "stanley", "davis"}),
    "mouse": frozenset({"mickey", "field", "house"}),
    "bear": frozenset({"teddy", "gummy", "polar"}),
    "kite": frozenset({"black", "red"}),  # birds of prey
}


@dataclass(frozen=True)
class Term:
    """A word or phrase naming objects: which categories, and how precisely."""

    text: str  # as written in the lexicon, singular or plural ("wine glasses")
    categories: tuple[str, ...]  # what it claims: COCO categories (two for "bike"; none: loose)
    hints: tuple[str, ...]  # categories a caption mentioning it may be about (a superset)
    exact: bool  # names the whole category: a count of it is the category's count
    plural: bool  # the plural form ("dogs", "people")


TOKEN = re.compile(
    r"o'clock|[a-z]+\d[a-z\d]*|[a-z]+(?:'(?:t|re|ve|ll|d|m))?|'s\b|\d+(?:[.,:]\d+)*[a-z%]*|\S"
)


def tokens(text: str) -> list[str]:
    """Lowercase words, numbers and punctuation marks: "Don't" -> "don't", "man's" -> "man",
    "'s"; a hyphen is a token of its own ("two", "-", "story"); a word with digits after its
    letters is one name, not a count ("mp3", "ps4")."""
    return TOKEN.findall(text.lower().replace("\u2019", "'"))


def token_spans(text: str) -> list[tuple[str, int, int]]:
    """`tokens`, each with its start and end in `text`."""
    lower = text.lower().replace("\u2019", "'")
    if len(lower) != len(text):  # a character whose lowercase is longer: no offsets
        return [(m.group(), 0, len(text)) for m in TOKEN.finditer(lower)]
    return [(m.group(), m.start(), m.end()) for m in TOKEN.finditer(lower)]


@cache
def terms() -> dict[tuple[str, ...], Term]:
    """Every term, singular and plural, by its tokens."""
    claims: dict[tuple[str, ...], dict] = {}
    for category, words in _LOOSE.items():
        for word in words:
            _collect(claims, word, category, role="loose")
    for word, categories in _EITHER.items():
        for category in categories:
            _collect(claims, word, category, role="kind")
    for category, words in _KINDS.items():
        for word in words:
            _collect(claims, word, category, role="kind")
    for category in COCO_CATEGORIES:
        for word in (category, *_EXACT.get(category, ())):
            _collect(claims, word, category, role="exact")
    return {key: _term(entry) for key, entry in claims.items()}


@cache
def term_lengths() -> dict[str, int]:
    """First word of each term -> the most words a term starting with it has."""
    lengths: dict[str, int] = {}
    for key in terms():
        lengths[key[0]] = max(lengths.get(key[0], 0), len(key))
    return lengths


def _collect(claims: dict, word: str, category: str, role: str) -> None:
    for text, is_plural in ((word, False), (plural(word), True)):
        if text in _PLURAL_ONLY and not is_plural:
            continue
        entry = claims.setdefault(tuple(tokens(text)), {"text": text, "roles": {}})
        entry["plural"] = is_plural and text != word
        entry["roles"].setdefault(category, set()).add(role)


def _term(entry: dict) -> Term:
    roles: dict[str, set[str]] = entry["roles"]
    categories = tuple(c for c, r in roles.items() if r != {"loose"})
    exact = len(categories) == 1 and "exact" in roles[categories[0]]
    return Term(entry["text"], categories, tuple(roles), exact, entry["plural"])


def adjective_like(token: str) -> bool:
    """Whether a word may stand between a number and its noun ("two large brown dogs")."""
    if token in ADJECTIVES:
        return True
    if len(token) <= 4 or token in NOT_ADJECTIVES or token.endswith("eed"):
        return False
    return token.endswith(("ed", "ing"))


# Words that take the count away: "at least five", "about ten", "more than two".
APPROXIMATE = frozenset(
    {"least", "most", "about", "around", "approximately", "nearly", "almost", "roughly"}
    | {"over", "under", "than", "some", "maybe", "perhaps", "possibly", "up", "to", "or"}
)
# Tokens before a digit that make it a label, not a count ("the number 42 bus").
LABELS = frozenset(
    {"number", "no", "#", "route", "line", "channel", "gate", "platform", "model", "the"}
    | {"flight", "jersey", "page", "room", "exit", "bus", "train", "track", "highway"}
)
DETERMINERS = frozenset(
    {"a", "an", "the", "this", "that", "these", "those", "his", "her", "their", "its"}
    | {"our", "my", "your", "some", "several", "many", "few", "another", "each", "every"}
    | {"both", "all", "any", "no", "multiple", "numerous", "various"}
)
ADJECTIVES = frozenset(
    {"white", "black", "brown", "red", "blue", "green", "yellow", "gray", "grey", "pink"}
    | {"purple", "orange", "golden", "silver", "tan", "beige", "dark", "light", "bright"}
    | {"pale", "colorful", "colourful", "small", "large", "big", "little", "tiny", "huge"}
    | {"giant", "tall", "short", "long", "wide", "narrow", "medium", "enormous", "massive"}
    | {"young", "old", "older", "elderly", "adult", "baby", "new", "wooden", "metal", "wild"}
    | {"domestic", "cute", "happy", "fluffy", "furry", "clean", "dirty", "empty", "full"}
    | {"open", "round", "square", "beautiful", "pretty", "wet", "dry", "hot", "cold", "fresh"}
    | {"male", "female", "modern", "vintage", "antique", "classic", "electric", "commercial"}
    | {"professional", "similar", "identical", "plain", "simple", "tabby", "majestic"}
    | {"adorable", "friendly", "playful", "curious", "lovely", "nice", "fancy", "shiny"}
    | {"gray-haired", "blond", "blonde", "bearded", "framed", "ornate", "sleek", "sturdy"}
)
# Look like adjectives by their ending ("-ed", "-ing") but are nouns.
NOT_ADJECTIVES = frozenset(
    {"building", "ceiling", "clothing", "painting", "drawing", "thing", "something"}
    | {"nothing", "anything", "everything", "morning", "evening", "wedding", "spring"}
    | {"string", "swing", "sibling", "railing", "awning", "topping", "frosting", "icing"}
    | {"pudding", "dumpling", "crossing", "parking", "hundred", "bread", "thread"}
)
# Words that make the rest of a sentence (or the clause they are in) not an assertion.
HEDGES = frozenset(
    {"may", "might", "could", "would", "should", "perhaps", "possibly", "probably", "maybe"}
    | {"likely", "unlikely", "if", "whether", "unless", "seem", "seems", "seemingly"}
    | {"presumably", "possible", "potential", "potentially", "typically", "usually"}
    | {"often", "generally", "commonly", "sometimes", "imagine", "expect", "expected"}
    | {"need", "needs", "needed", "want", "wants", "will", "wish", "hope", "plan", "planning"}
    | {"instead", "rather", "like", "or", "either", "resembles", "resembling", "must"}
    | {"reminiscent", "suggests", "pretend", "pretending", "dream", "dreaming", "ought"}
)
# Two-word hedges: "waiting for a bus" does not say a bus is there.
HEDGE_PAIRS = frozenset(
    {("waiting", "for"), ("looking", "for"), ("searching", "for"), ("such", "as")}
    | {("for", "example"), ("in", "order"), ("used", "to"), ("is", "used"), ("are", "used")}
    | {("ready", "for"), ("wait", "for"), ("waits", "for"), ("asking", "for")}
)
NEGATORS = frozenset(
    {"no", "not", "never", "none", "nobody", "neither", "nor", "without", "cannot", "nothing"}
    | {"absent", "lacks", "lacking", "missing", "free", "nowhere", "instead"}
)
# Tokens that end a clause: hedges and negations do not reach past them.
CLAUSE_BREAKS = frozenset(
    {",", ";", ":", "(", ")", "but", "while", "whereas", "although", "though", "however"}
    | {"because", "since", "which", "who", "whom", "whose", "where", "when", "so"}
)
# "<depiction> of <term>": "a poster of a horse" holds no horse.
DEPICTIONS = frozenset(
    {"picture", "photo", "photograph", "image", "painting", "drawing", "poster", "statue"}
    | {"sculpture", "figurine", "print", "reflection", "mural", "logo", "sticker", "magnet"}
    | {"advertisement", "ad", "billboard", "illustration", "cartoon", "portrait", "shape"}
    | {"silhouette", "cutout", "outline", "model", "replica", "costume", "pattern", "shadow"}
    | {"graffiti", "artwork", "doll", "decoration", "ornament", "figure", "icon", "emblem"}
    | {"decal", "banner", "flag", "tattoo", "sketch", "rendering", "carving", "imitation"}
)
# "<term> on the <medium>": "a man on the screen" is not in the room.
MEDIA = frozenset(
    {"screen", "tv", "television", "monitor", "display", "poster", "billboard", "sign"}
    | {"shirt", "cover", "box", "package", "calendar", "mug", "wall", "card", "label"}
    | {"mirror", "painting", "canvas", "page", "magazine", "book", "phone", "laptop"}
)
# A term right after one of these is a thing of another kind ("toy car", "stuffed bear").
MODIFIERS = frozenset(
    {"toy", "stuffed", "cartoon", "fake", "model", "drawn", "animated", "plush", "statue"}
    | {"-", "cardboard", "lego", "origami"}
)
# Words right after a term that make the term a modifier ("bus stop", "dog food").
COMPOUND_HEADS = frozenset(
    {"food", "house", "stop", "station", "stand", "lane", "rack", "track", "tracks", "seat"}
    | {"driver", "shop", "store", "juice", "pie", "sauce", "tree", "field", "court", "box"}
    | {"paper", "roll", "tower", "leash", "collar", "toy", "cage", "crate", "pen", "park"}
    | {"lot", "wash", "door", "window", "tire", "tires", "wheel", "wheels", "race", "show"}
    | {"trainer", "skin", "print", "pattern", "costume", "mask", "statue", "figurine"}
    | {"shaped", "logo", "hair", "fur", "ticket", "route", "terminal", "depot", "yard"}
    | {"crossing", "bridge", "hangar", "stall", "barn", "stable", "trail", "path", "slope"}
    | {"lift", "resort", "boot", "boots", "pole", "poles", "suit", "shoes", "jersey"}
    | {"uniform", "game", "team", "club", "match", "cover", "case", "charger", "cabinet"}
    | {"frame", "sheet", "sheets", "spread", "post", "top", "cloth", "leg", "legs", "tennis"}
    | {"gown", "room", "pit", "player", "players", "owner", "walker", "handler", "tail"}
    | {"bone", "treat", "dish", "kennel", "-", "wing", "'", "like"}
    | {"decoration", "ornament", "magnet", "sticker", "tag", "whistle", "sitter", "sled"}
)
# Verbs and nouns an absence claim may end with and still be about the whole image.
ABSENCE_TAIL = frozenset(
    {"in", "the", "this", "image", "picture", "photo", "photograph", "scene", "frame", "shot"}
    | {"view", "here", "anywhere", "visible", "present", "sight", "at", "all", "to", "be"}
    | {"seen", "can", "it", "either", "is", "are", "shown", "whatsoever", "there", "around"}
)
SEE_VERBS = frozenset(
    {"see", "spot", "notice", "find", "show", "shows", "contain", "contains", "depict"}
    | {"depicts", "include", "includes", "feature", "features", "observe", "detect"}
)
IMAGE_WORDS = frozenset(
    {"image", "picture", "photo", "photograph", "scene", "frame", "shot", "view", "screen"}
)

# COCO's supercategory of each of its 80 categories (the `supercategory` field of COCO's
# instances files): multiple-choice distractors come from the same one.
COCO_SUPERCATEGORIES: dict[str, str] = {
    category: supercategory
    for supercategory, members in {
        "person": ("person",),
        "vehicle": ("bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat"),
        "outdoor": ("traffic light", "fire hydrant", "stop sign", "parking meter", "bench"),
        "animal": (
            *("bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra"),
            "giraffe",
        ),
        "accessory": ("backpack", "umbrella", "handbag", "tie", "suitcase"),
        "sports": (
            *("frisbee", "skis", "snowboard", "sports ball", "kite", "baseball bat"),
            *("baseball glove", "skateboard", "surfboard", "tennis racket"),
        ),
        "kitchen": ("bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl"),
        "food": (
            *("banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog"),
            *("pizza", "donut", "cake"),
        ),
        "furniture": ("chair", "couch", "potted plant", "bed", "dining table", "toilet"),
        "electronic": ("tv", "laptop", "mouse", "remote", "keyboard", "cell phone"),
        "appliance": ("microwave", "oven", "toaster", "sink", "refrigerator"),
        "indoor": (
            *("book", "clock", "vase", "scissors", "teddy bear", "hair drier"),
            "toothbrush",
        ),
    }.items()
    for category in members
}
# Colour words: a Visual Genome attribute among these answers "What color is ...?".
COLORS = frozenset(
    {"white", "black", "brown", "red", "blue", "green", "yellow", "gray", "grey", "pink"}
    | {"purple", "orange", "tan", "beige", "silver", "gold", "golden"}
)
# LLaVA-1.5's format prompt of each rule-based task family it trains on (its 665K mix):
# a suffix after the question, or (regions) the request the phrase or box follows.
FORMAT_PROMPTS: dict[str, str] = {
    "short_vqa": "Answer the question using a single word or phrase.",
    "compositional": "Answer the question using a single word or phrase.",
    "choice": "Answer with the option's letter from the given choices directly.",
    "regions": "Please provide the bounding box coordinate of the region this sentence "
    "describes: ... / Please provide a short description for this region: [x1, y1, x2, y2]",
}
