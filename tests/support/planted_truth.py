"""Whether a preference pair's planted error is really an error, from the annotations alone.

The package accepts a pair when its grounding checks flag the rejected answer; a test that
asks those same checks proves nothing about them. This module reads the pair's recorded
change (`error.span`, `original`, `replacement`) and the record's boxes and relations with a
few plain rules of its own, and never imports the package's grounding or wording code:

- `count`: the number before a category's plural equals that category's box count in the
  chosen answer and differs from it in the rejected one.
- `object`: the swapped-in name is a category of the vocabulary with no box in the image;
  the swapped-out one has a box.
- `position`: "A is left of / right of / above / below B" is false for every pair of boxes
  of A and B (by their centers); otherwise the center of every box of the category named
  nearest to each flipped side word lies on the other side of the image's middle.
- `relation`: an annotated relation says what the chosen answer says and none says what the
  rejected one says; without annotations, the boxes decide (on/above vs under/below).

`truth(record, pair)` returns the reasons the planted error is *not* shown to be one
(empty: it is).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_NUMBER_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty"
)
NUMBERS = {word: value for value, word in enumerate(_NUMBER_WORDS.split())}
# Words a caption or answer uses for a category, beyond its name and plural.
ALIASES = {
    "table": "dining table",
    "tables": "dining table",
    "plane": "airplane",
    "planes": "airplane",
    "ball": "sports ball",
    "balls": "sports ball",
    "television": "tv",
    "televisions": "tv",
}
PERSON_WORDS = {"people", "man", "men", "woman", "women", "person", "persons"}
ARTICLES = ("a ", "an ", "the ")
MEASURES = ("pieces of ", "piece of ", "pairs of ", "pair of ", "group of ")
SIDES = {"left": "x-", "right": "x+", "upper": "y-", "top": "y-", "lower": "y+", "bottom": "y+"}
BELOW_WORDS = {"under", "below", "beneath", "underneath"}
ABOVE_WORDS = {"on", "above", "over", "atop", "top"}


def forms(category: str) -> set[str]:
    """The category's name and the plurals a writer would use for it."""
    words = {category, category + "s", category + "es"}
    if category.endswith("y"):
        words.add(category[:-1] + "ies")
    if category.endswith("fe"):
        words.add(category[:-2] + "ves")
    if category.endswith("f"):
        words.add(category[:-1] + "ves")
    if category == "mouse":
        words.add("mice")
    return words


def rank(word: str, category: str) -> int | None:
    """How directly `word` names `category`: 0 its name, 1 a plural, 2 another word for
    it ("men" for person, "table" for dining table); None when it does not."""
    word = word.lower()
    if word == category:
        return 0
    if word in forms(category):
        return 1
    if ALIASES.get(word) == category or (category == "person" and word in PERSON_WORDS):
        return 2
    return None


def category_of(phrase: str, categories: Iterable[str]) -> str | None:
    """The category a noun phrase names ("a pair of skis", "two TVs", "table"), if any."""
    text = phrase.lower().strip()
    for prefix in (*ARTICLES, *MEASURES):
        text = text.removeprefix(prefix)
    ranked = [(rank(text, c), c) for c in categories if rank(text, c) is not None]
    return min(ranked)[1] if ranked else None


def mentions(text: str, categories: Iterable[str]) -> list[tuple[int, int, str]]:
    """(start, end, category) of every whole-word category name in `text`: longer names
    first, and a category's own name before another word for it."""
    words = set(ALIASES) | PERSON_WORDS | {w for c in categories for w in forms(c)}
    named = [(w, c, rank(w, c)) for w in words for c in categories if rank(w, c) is not None]
    found: list[tuple[int, int, str]] = []
    taken = [False] * len(text)
    for word, category, _ in sorted(named, key=lambda item: (-len(item[0]), item[2])):
        for match in re.finditer(rf"\b{re.escape(word)}\b", text, re.IGNORECASE):
            if not any(taken[match.start() : match.end()]):
                found.append((match.start(), match.end(), category))
                taken[match.start() : match.end()] = [True] * (match.end() - match.start())
    return sorted(found)


# --------------------------------------------------------------------------- the truth


def truth(record, pair: dict) -> list[str]:
    """Why the pair's planted error is not shown to be an error (empty: it is one)."""
    error = pair["error"]
    start, end = error["span"]
    problems = []
    if pair["chosen"][start:end] != error["original"]:
        problems.append("the span does not hold the original text")
    rejected = pair["chosen"][:start] + error["replacement"] + pair["chosen"][end:]
    if rejected != pair["rejected"] or error["original"] == error["replacement"]:
        problems.append("the rejected answer is not the chosen one with that one change")
    judge = {"count": _count, "object": _object, "position": _position, "relation": _relation}
    return problems + judge[error["kind"]](record, pair, start)


def _boxes(record, category: str) -> list:
    return [box for box in record.objects if box.category == category]


def _number(word: str) -> int | None:
    word = word.lower()
    return int(word) if word.isdigit() else NUMBERS.get(word)


def _count(record, pair: dict, start: int) -> list[str]:
    error = pair["error"]
    if " " in error["original"].strip():  # "is one sink" -> "are two sinks": noun included
        return _count_with_noun(record, error)
    said, planted = _number(error["original"]), _number(error["replacement"])
    after = pair["rejected"][start + len(error["replacement"]) :]
    named = re.match(r"\s+((?:(?:pieces|pairs) of )?[a-z][a-z ]*?)(?=[^a-z ]|$| and )", after, re.I)
    present = {box.category for box in record.objects}
    category = None
    if named:  # the longest run of words after the number that names a present category
        words = named.group(1).split()
        for k in range(len(words), 0, -1):
            category = category_of(" ".join(words[:k]), present)
            if category:
                break
    if said is None or planted is None or category is None:
        return [f"cannot read a count of a present category at {error['original']!r}"]
    boxes = _boxes(record, category)
    if any(box.iscrowd for box in boxes):
        return [f"{category} has a crowd box: its count is unknown"]
    if said != len(boxes) or planted == len(boxes):
        return [f"{len(boxes)} {category} boxes: chosen says {said}, rejected {planted}"]
    return []


def _count_with_noun(record, error: dict) -> list[str]:
    """A change that took the noun along ("one sink" -> "two sinks"): both sides read as
    number then category, an agreeing "is"/"are" on either side left out."""
    present = {box.category for box in record.objects}
    read = []
    for text in (error["original"], error["replacement"]):
        words = [w for w in text.lower().split() if w not in ("is", "are")]
        number = _number(words[0]) if words else None
        category = category_of(" ".join(words[1:]), present)
        read.append((number, category))
    (said, old), (planted, new) = read
    if said is None or planted is None or old is None or old != new:
        return [f"cannot read a count of a present category at {error['original']!r}"]
    boxes = _boxes(record, old)
    if any(box.iscrowd for box in boxes):
        return [f"{old} has a crowd box: its count is unknown"]
    if said != len(boxes) or planted == len(boxes):
        return [f"{len(boxes)} {old} boxes: chosen says {said}, rejected {planted}"]
    return []


def _object(record, pair: dict, start: int) -> list[str]:
    error = pair["error"]
    present = {box.category for box in record.objects}
    vocabulary = set(record.vocabulary) | present
    old = category_of(error["original"], present)
    new = category_of(error["replacement"], vocabulary)
    if old is None:
        return [f"{error['original']!r} names no category with a box"]
    if new is None or new in present:
        return [f"{error['replacement']!r} names no category absent from the image"]
    return []


def _sentence(text: str, start: int, end: int) -> tuple[int, str]:
    """(offset, text) of the sentence holding text[start:end]."""
    first = max(text.rfind(mark, 0, start) for mark in ".!?") + 1
    ends = [k for k in (text.find(mark, end) for mark in ".!?") if k >= 0]
    return first, text[first : min(ends) + 1 if ends else len(text)]


def _center(box) -> tuple[float, float]:
    return box.x + box.w / 2, box.y + box.h / 2


def _ordered(record, a: str, b: str, axis: int, before: bool) -> bool:
    """Whether every box of `a` has its center before (or after) every box of `b`."""
    pairs = [
        (_center(p)[axis], _center(q)[axis]) for p in _boxes(record, a) for q in _boxes(record, b)
    ]
    return bool(pairs) and all((u < v) if before else (u > v) for u, v in pairs)


RELATIVE = re.compile(
    r"(?P<a>[a-z][a-z ]*?) (?:is|are|sits|sit|lies) (?:to the )?(?P<side>left|right) of "
    r"(?:the |a |an )?(?P<b>[a-z][a-z ]*)|"
    r"(?P<a2>[a-z][a-z ]*?) (?:is|are|sits|sit|lies) (?P<side2>above|below) "
    r"(?:the |a |an )?(?P<b2>[a-z][a-z ]*)",
    re.I,
)


def _position(record, pair: dict, start: int) -> list[str]:
    error = pair["error"]
    present = {box.category for box in record.objects}
    offset, sentence = _sentence(pair["rejected"], start, start + len(error["replacement"]))
    relative = RELATIVE.search(sentence[start - offset :]) or RELATIVE.search(sentence)
    if relative:
        return _relative_is_false(record, relative, present)
    found = mentions(sentence, present)
    flipped = [
        (offset + m.start(), m.group(0).lower())
        for m in re.finditer(r"\b(left|right|upper|lower|top|bottom)\b", sentence, re.I)
        if start <= offset + m.start() < start + len(error["replacement"])
    ]
    if not found or not flipped:
        return [f"cannot read which object {error['replacement']!r} places"]
    problems = []
    for at, word in flipped:
        category = min(found, key=lambda m: abs(offset + m[0] - at))[2]
        axis, after = (0 if SIDES[word][0] == "x" else 1), SIDES[word][1] == "+"
        middle = (record.width if axis == 0 else record.height) / 2
        for box in _boxes(record, category):
            center = _center(box)[axis]
            if center == middle or (center > middle) == after:
                problems.append(f"a {category} box lies {word} of the middle, as rejected says")
    return problems


def _relative_is_false(record, match: re.Match, present: set[str]) -> list[str]:
    a_text = match.group("a") or match.group("a2")
    b_text = match.group("b") or match.group("b2")
    side = match.group("side") or match.group("side2")
    a = _last_category(a_text, present)
    b = _first_category(b_text, present)
    if a is None or b is None:
        return [f"cannot read the objects of {match.group(0)!r}"]
    axis = 0 if side in ("left", "right") else 1
    claimed_before = side in ("left", "above")
    if not _ordered(record, a, b, axis, before=not claimed_before):
        return [f"some {a} and {b} boxes are as the rejected {match.group(0)!r} says"]
    return []


def _last_category(text: str, categories: set[str]) -> str | None:
    found = mentions(text, categories)
    return found[-1][2] if found else None


def _first_category(text: str, categories: set[str]) -> str | None:
    found = mentions(text, categories)
    return found[0][2] if found else None


def _relation(record, pair: dict, start: int) -> list[str]:
    error = pair["error"]
    chosen = pair["chosen"]
    present = {box.category for box in record.objects}
    if error["detail"].startswith("subject and object swapped"):
        return _swap_is_false(record, error, present)
    a = _last_category(chosen[:start], present)
    b = _first_category(chosen[start + len(error["original"]) :], present)
    if a is None or b is None:
        return [f"cannot read the objects around {error['original']!r}"]
    old, new = error["original"].lower(), error["replacement"].lower()
    if _annotated(record, a, old, b) and not _annotated(record, a, new, b):
        return []
    said, planted = _vertical(old), _vertical(new)
    flipped = said is not None and planted is not None and said != planted
    if flipped and _ordered(record, a, b, 1, before=said == "above"):
        return []  # "a on b" / "a under b": every a is higher (or lower) than every b
    return [f"neither annotations nor boxes show {a} {old} {b} rather than {new}"]


def _swap_is_false(record, error: dict, present: set[str]) -> list[str]:
    """ "a <predicate> b" became "b <predicate> a": the boxes (for left of, right of, above,
    below) or the annotated relations must deny the swapped one."""
    found = mentions(error["original"], present)
    if len(found) < 2:
        return [f"cannot read the two objects of {error['original']!r}"]
    a, b = found[0][2], found[-1][2]
    predicate = error["original"][found[0][1] : found[-1][0]]
    words = re.sub(r"\b(is|are|the|a|an|sits|sit|sitting)\b", " ", predicate.lower()).split()
    said = " ".join(words)
    relative = RELATIVE.search(error["original"])
    if relative:  # "the carrot is to the left of the sink": the boxes decide
        swapped = RELATIVE.search(error["replacement"])
        return _relative_is_false(record, swapped, present) if swapped else ["unreadable swap"]
    if _annotated(record, a, said, b) and not _annotated(record, b, said, a):
        return []
    return [f"the annotations do not show {a} {said} {b} and deny {b} {said} {a}"]


def _vertical(predicate: str) -> str | None:
    words = set(predicate.split())
    if words & BELOW_WORDS:
        return "below"
    if words & ABOVE_WORDS:
        return "above"
    return None


def _annotated(record, a: str, predicate: str, b: str) -> bool:
    """Whether a relation of the record says `a <predicate> b` (its words end the same)."""
    wanted = predicate.lower().split()
    for relation in record.relations:
        subject, obj = record.objects[relation.subject], record.objects[relation.object]
        said = relation.predicate.lower().split()
        if (subject.category, obj.category) == (a, b) and said[-len(wanted) :] == wanted:
            return True
    return False
