"""English word forms, in one place: plurals, articles, number words, lists of phrases.

The rule-based generator writes with these, the grounding checks read with them (a plural
written one way must be read the same way), and the demo sample's captions use them too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

NUMBER_WORDS = (
    *("zero", "one", "two", "three", "four", "five", "six"),
    *("seven", "eight", "nine", "ten", "eleven", "twelve"),
)
# Number words read in text ("a single dog" is a count of one), by value.
NUMBER_VALUES = {
    word: n
    for n, word in enumerate(
        (
            *NUMBER_WORDS[:10],
            *("ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen"),
            *("seventeen", "eighteen", "nineteen", "twenty"),
        )
    )
}
NUMBER_VALUES["single"] = 1  # "a single dog"
NUMBER_VALUES["lone"] = 1  # "a lone surfer"

_IRREGULAR = {
    "person": "people",
    "man": "men",
    "woman": "women",
    "child": "children",
    "gentleman": "gentlemen",
    "policeman": "policemen",
    "mouse": "mice",
    "foot": "feet",
    "tooth": "teeth",
    "goose": "geese",
    "ox": "oxen",
    "sheep": "sheep",
    "deer": "deer",
    "fish": "fish",
    "aircraft": "aircraft",
    "broccoli": "broccoli",
    "skis": "skis",
    "scissors": "scissors",
    "persons": "persons",
}
# Last words whose "f"/"fe" becomes "ves", also at the end of a compound ("bookshelf").
_VES = {"knife": "knives", "leaf": "leaves", "shelf": "shelves", "wolf": "wolves"}
_VES |= {"calf": "calves", "half": "halves", "loaf": "loaves", "scarf": "scarves"}
# Nouns that name a pair ("a pair of skis") or a mass ("a piece of broccoli").
_PAIRS = frozenset(
    {"skis", "scissors", "glasses", "sunglasses", "pants", "jeans", "shorts", "trousers"}
)
_PIECES = frozenset({"broccoli"})
_DISPLAY = {"tv": "TV"}
# Words that are already plural, or name a pair: never "a skis", "one people".
PLURAL_WORDS = frozenset(_IRREGULAR.values()) | frozenset(_VES.values()) | _PAIRS


@dataclass(frozen=True)
class Noun:
    """How a category is written: `singular` ("pair of skis") and `plural` ("pairs of skis")."""

    singular: str
    plural: str

    @property
    def a(self) -> str:
        """The singular with its article: "an umbrella"."""
        return with_article(self.singular)


@lru_cache(maxsize=4096)
def noun(category: str) -> Noun:
    """The English forms of a category name (COCO's 80 are all covered)."""
    name = category.strip()
    key = name.lower()
    if key in _PAIRS:
        return Noun(singular=f"pair of {name}", plural=f"pairs of {name}")
    if key in _PIECES:
        return Noun(singular=f"piece of {name}", plural=f"pieces of {name}")
    name = _DISPLAY.get(key, name)
    return Noun(singular=name, plural=plural(name))


def plural(name: str) -> str:
    """The plural of a noun or noun phrase (its last word changes): "wine glasses", "people",
    "bookshelves"."""
    head, space, last = name.rpartition(" ")
    lower = last.lower()
    ves = next((end for end in _VES if lower.endswith(end)), None)
    if lower in _IRREGULAR:
        word = _IRREGULAR[lower]
    elif ves is not None:
        word = last[: len(last) - len(ves)] + _VES[ves]
    elif lower.endswith(("s", "x", "z", "ch", "sh")):
        word = last + "es"
    elif lower.endswith("y") and lower[-2:-1] not in ("a", "e", "i", "o", "u", ""):
        word = last[:-1] + "ies"
    else:
        word = last + "s"
    return head + space + word


def with_article(phrase: str) -> str:
    """ "a" or "an" before a phrase, by its first sound: "an umbrella", "a unicorn", "a TV"."""
    first = phrase.split(" ", 1)[0].lower()
    vowel = first[:1] in ("a", "e", "i", "o", "u")
    if first.startswith(("uni", "use", "usu", "ute", "eu", "one")):
        vowel = False
    if first.startswith(("hour", "honest", "honor")):
        vowel = True
    return f"{'an' if vowel else 'a'} {phrase}"


def number_word(n: int) -> str:
    """ "three" for 3; digits past twelve."""
    return NUMBER_WORDS[n] if 0 <= n < len(NUMBER_WORDS) else str(n)


def counted(n: int, category: str) -> str:
    """ "one dog", "three dogs", "two pairs of skis"."""
    forms = noun(category)
    return f"{number_word(n)} {forms.singular if n == 1 else forms.plural}"


def join_phrases(items: Sequence[str]) -> str:
    """ "a, b and c"."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
