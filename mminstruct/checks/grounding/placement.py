"""Position and relation claims: where a sentence puts a thing, in the image ("the bench
is on the left side") or against another thing ("the cat is on the couch"); and the
relation family of an annotated predicate (`relation_family`)."""

from __future__ import annotations

from collections.abc import Sequence

from mminstruct.checks.grounding.presence import _END
from mminstruct.checks.grounding.sentences import (
    MAX_ADJECTIVES,
    Claim,
    Mention,
    Sentence,
    _span,
    asserted,
    depicted,
    quantity,
)
from mminstruct.lexicon import CLAUSE_BREAKS, DETERMINERS, IMAGE_WORDS, adjective_like
from mminstruct.words import NUMBER_VALUES

MAX_GAP = 4  # words between a subject and its preposition ("the cat is curled up on")
POSITION_REACH = 8  # words between a subject and its position ("the kite is flying low, at")


# --------------------------------------------------------------------------- positions

_SIDES = {"left": "left", "right": "right", "top": "top", "upper": "top"}
_SIDES |= {"bottom": "bottom", "lower": "bottom"}
_AREAS = frozenset({"side", "part", "corner", "edge", "portion", "half", "area", "region"})
_IMAGES = tuple((word,) for word in IMAGE_WORDS)
_LEADS = frozenset({",", "there", "is", "are", "sits", "stands", "a", "an", "we", "you", "i"})
_FOLLOW = _END | {"is", "are", "there", "stands", "sits", "we", "you", "i", "can", "with"}


def position_claims(s: Sentence) -> list[Claim]:
    """ "X is on the left side of the image", "in the upper right corner, a X"; without
    "of the image", only in a sentence about X alone ("the zebra is on the right"): next to
    another thing, "on the right" may be relative to it ("the lid is on the right, not the
    left" of the pot)."""
    found = []
    for start, end, sides, whole in _position_phrases(s.tokens):
        m = _position_subject(s, start, end)
        if m is None or (not whole and _other_phrases(s, m, start, end)):
            continue
        text = f"{m.term.text} {_span(s, start, end)}"
        found.append(Claim("position", m.term.categories, tuple(sorted(sides)), text))
    return found


def _position_phrases(words: Sequence[str]) -> list[tuple[int, int, set[str], bool]]:
    """(start, end, sides, names the image) of each "on the left ..." phrase."""
    phrases = []
    for i in range(len(words) - 2):
        if words[i] not in ("on", "in", "at", "toward", "towards") or words[i + 1] != "the":
            continue
        j = i + 2 + (words[i + 2] in ("far", "very", "extreme"))
        sides = set()
        while j < len(words) and (words[j] in _SIDES or words[j] == "-") and len(sides) < 2:
            sides |= {_SIDES[words[j]]} if words[j] != "-" else set()
            j += 1
        if not sides or len(sides) > 2:
            continue
        j += j < len(words) and words[j] == "hand"  # "the right hand side"
        j += j < len(words) and words[j] in _AREAS
        whole = tuple(words[j : j + 2]) == ("of", "the") and words[j + 2 : j + 3] in _IMAGES
        j += 3 if whole else 0
        follow = words[j] if j < len(words) else "."
        if follow in _FOLLOW or follow.endswith("ing"):
            phrases.append((i, j, sides, whole))
    return phrases


def _position_subject(s: Sentence, start: int, end: int) -> Mention | None:
    """The mention a position phrase is about: the nearest one before it, or the first one
    after it when the phrase opens a clause and leads into it ("On the left, there is a
    dog", "in the corner sits a cat")."""
    opens = start == 0 or s.tokens[start - 1] in CLAUSE_BREAKS or s.tokens[start - 1] == "and"
    fronted = opens and end < len(s.tokens) and s.tokens[end] in _LEADS
    if fronted:
        after = [m for m in s.mentions if end <= m.start < end + POSITION_REACH]
        m = after[0] if after else None
        between = s.tokens[end : quantity(s, m).start] if m else ()
    else:
        before = [m for m in s.mentions if m.end <= start]
        m = before[-1] if before and start - before[-1].end <= POSITION_REACH else None
        between = s.tokens[m.end : start] if m else ()
    # Another noun phrase in between ("the chair is at 19%; the lid is on the right") may
    # be what the position is about, even when the lexicon does not know its noun.
    if m is None or any(w in DETERMINERS or w in (";", ":") for w in between):
        return None
    return m if asserted(s, m) and quantity(s, m).determined else None


def _other_phrases(s: Sentence, m: Mention, start: int, end: int) -> bool:
    """Whether the sentence names something besides `m` and the position: another noun
    phrase (a determiner), even one the lexicon does not know, or another category."""
    own = quantity(s, m).start
    for i, word in enumerate(s.tokens):
        if word in DETERMINERS and i != own and not start <= i < end:
            return True
    return any(other.term.categories and other != m for other in s.mentions)


# --------------------------------------------------------------------------- relations

_PREPOSITIONS = {
    ("on", "top", "of"): "on",
    ("on",): "on",
    ("atop",): "on",
    ("under",): "under",
    ("underneath",): "under",
    ("beneath",): "under",
    ("below",): "under",
    ("above",): "above",
    ("next", "to"): "next to",
    ("beside",): "next to",
    ("to", "the", "left", "of"): "left of",
    ("on", "the", "left", "of"): "left of",
    ("on", "the", "left", "side", "of"): "left of",
    ("left", "of"): "left of",
    ("to", "the", "right", "of"): "right of",
    ("on", "the", "right", "of"): "right of",
    ("on", "the", "right", "side", "of"): "right of",
    ("right", "of"): "right of",
}
_GAP_WORDS = frozenset(
    {"is", "are", "was", "were", "be", "being", "been", "sits", "sit", "sat", "stands"}
    | {"stand", "stood", "lies", "lie", "lay", "lays", "rests", "rest", "placed", "located"}
    | {"positioned", "perched", "parked", "seated", "sleeps", "curled", "up", "hangs", "hung"}
    | {"mounted", "set", "situated", "kept", "appears", "appear", "seen", "can", "directly"}
    | {"right", "just", "also", "both", "all", "still", "comfortably", "peacefully", "found"}
    | {"perches", "leans", "shown", "visible", "stuck"}
)


def relation_claims(s: Sentence) -> list[Claim]:
    """ "X is on / under / above / next to / to the left of Y", X and Y both named."""
    found = []
    for m in s.mentions:
        if not asserted(s, m) or not quantity(s, m).determined:
            continue
        family, j, after = relation_preposition(s.tokens, m.end)
        target = _object_mention(s, after) if family else None
        if target is None or set(target.term.categories) & set(m.term.categories):
            continue
        text = f"{m.term.text} {_span(s, j, after)} {target.term.text}"
        value = (family, target.term.categories)
        found.append(Claim("relation", m.term.categories, value, text))
    return found


def relation_preposition(words: Sequence[str], end: int) -> tuple[str | None, int, int]:
    """(family, start, end) of the preposition a relation claim reads after a mention that
    ends at `end`, past verbs and adverbs ("is curled up [on top of]"); family None if none."""
    j = _skip_gap(words, end)
    family, after = _preposition(words, j)
    return family, j, after


def _skip_gap(words: Sequence[str], start: int) -> int:
    j = start
    while j < len(words) and j - start < MAX_GAP:
        word = words[j]
        if not (word in _GAP_WORDS or (len(word) > 4 and word.endswith(("ing", "ed")))):
            break
        j += 1
    return j


def _preposition(words: Sequence[str], j: int) -> tuple[str | None, int]:
    for size in (5, 4, 3, 2, 1):
        family = _PREPOSITIONS.get(tuple(words[j : j + size]))
        if family is not None:
            return family, j + size
    return None, j


def _object_mention(s: Sentence, start: int) -> Mention | None:
    """The mention right after a preposition (past an article and adjectives)."""
    starts = {m.start: m for m in s.mentions}
    j = start
    while j < len(s.tokens) and j - start <= MAX_ADJECTIVES and j not in starts:
        word = s.tokens[j]
        if word not in DETERMINERS and not adjective_like(word) and word not in NUMBER_VALUES:
            break
        j += 1
    target = starts.get(j)
    if target is None or not target.term.categories or depicted(s, target):
        return None
    return target


def relation_family(predicate: str) -> str | None:
    """The family of an annotated predicate: "sitting on" -> "on", "to the left of" ->
    "left of"; None for predicates the relation check does not read ("riding")."""
    words = tuple(predicate.lower().split())
    for size in (5, 4, 3, 2, 1):
        family = _PREPOSITIONS.get(words[-size:]) if len(words) >= size else None
        if family is not None:
            return family
    return {"over": "above"}.get(predicate.lower().strip())
