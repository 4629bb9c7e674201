"""Count, object and absence claims: what a sentence says is, or is not, in the image,
and how many ("three people", "a cat", "there is no dog")."""

from __future__ import annotations

from collections.abc import Sequence

from mminstruct.checks.grounding.sentences import (
    MAX_ADJECTIVES,
    Claim,
    Mention,
    Quantity,
    Sentence,
    _hedged_at,
    _is_hedge,
    _is_negation,
    _skip_adjectives,
    _span,
    asserted,
    depicted,
    hedged,
    quantity,
)
from mminstruct.lexicon import ABSENCE_TAIL, CLAUSE_BREAKS, IMAGE_WORDS, SEE_VERBS, UNCOUNTABLE

# --------------------------------------------------------------------------- counts


def count_claims(s: Sentence) -> list[Claim]:
    """Counts per category: one per group of mentions joined by "and" or commas."""
    found = []
    for group in _groups(s):
        start, end = group[0][1].start, group[-1][0].end
        total = _total(s.tokens, start, end)
        text = _span(s, start, end)
        for category in dict.fromkeys(m.term.categories[0] for m, _ in group):
            members = [(m, q) for m, q in group if m.term.categories == (category,)]
            n = sum(q.n or 0 for _, q in members)
            elsewhere = _mentions_of(s, category) > len(members)
            exact = total and not elsewhere and all(m.term.exact and q.n for m, q in members)
            exact = exact and any(q.number for _, q in members)
            if category not in UNCOUNTABLE and (exact or n >= 2):
                found.append(Claim("count", (category,), (n,), text, exact))
    return found


def _groups(s: Sentence) -> list[list[tuple[Mention, Quantity]]]:
    """Counted mentions of one category each, joined by "," / "and" ("a man and a woman")."""
    groups: list[list[tuple[Mention, Quantity]]] = []
    for m in s.mentions:
        if len(m.term.categories) != 1 or not asserted(s, m):
            continue
        q = quantity(s, m)
        joined = groups and set(s.tokens[groups[-1][-1][0].end : q.start]) <= {",", "and"}
        if q.n is None and joined and not m.term.plural and s.tokens[m.start - 1] == "and":
            q = Quantity(1, m.start)  # "a man and woman"
        if q.n is None:
            continue
        if joined:
            groups[-1].append((m, q))
        else:
            groups.append([(m, q)])
    return groups


def _mentions_of(s: Sentence, category: str) -> int:
    return sum(1 for m in s.mentions if category in m.term.categories and asserted(s, m))


_TOTAL_PREFIXES = (
    "i can see",
    "i see",
    "we can see",
    "we see",
    "you can see",
    "i can count",
    "i count",
    "i can make out",
    "there is",
    "there are",
    "there 's",
    "a total of",
)
_TOTAL_SUBJECTS = ("image", "picture", "photo", "photograph", "scene", "frame", "shot")
_TOTAL_VERBS = ("shows", "contains", "has", "features", "depicts", "includes", "displays")
_TOTAL_ADVERBS = ("only", "exactly", "just", "a total of", "in total", "altogether")
_TOTAL_TAILS = ("here", "in total", "in all", "altogether", "total", "visible")
_END = frozenset({".", "!", ",", ";", ":", "and", "but", "while", "so", ")"})


def _total(words: Sequence[str], start: int, end: int) -> bool:
    """Whether the mentions in [start, end) count the whole image ("there are two dogs in
    the picture", "the photo shows three cups", "two cars are visible")."""
    before = list(words[:start])
    lead = _opening(before)
    phrase = " ".join(lead)
    if phrase in _TOTAL_PREFIXES or _is_image_verb(phrase):
        return _tail_ok(words, end)
    if lead:
        return False
    if before[-1:] == [":"] and " ".join(_opening(before[:-1])) in _VISIBLE:
        return _tail_ok(words, end)  # "Visible in the picture: two people and a dog."
    for verb in _SEEN:
        if tuple(words[end : end + len(verb)]) == verb:
            return _tail_ok(words, end + len(verb))
    if list(words[end : end + 1]) in (["is"], ["are"]) and _in_image(words, end + 1):
        return _tail_ok(words, end + 1)  # "only one suitcase is in the picture"
    return False


def _in_image(words: Sequence[str], i: int) -> bool:
    """ "in the picture", "on this screen" at `i`."""
    phrase = list(words[i : i + 3])
    return (
        len(phrase) == 3
        and phrase[0] in ("in", "on")
        and phrase[1] in ("the", "this")
        and phrase[2] in IMAGE_WORDS
    )


_VISIBLE = ("visible in the picture", "visible in the image", "visible in the photo")
_SEEN = (("are", "visible"), ("is", "visible"), ("are", "present"), ("can", "be", "seen"))


def _opening(before: list[str]) -> list[str]:
    """The words of the clause before a count, without "yes,", "so" or "only" ("I can only
    see", "Just one ... is visible")."""
    cut = max((i + 1 for i, w in enumerate(before) if w in (",", ";", ":", ".")), default=0)
    lead = [w for w in before[cut:] if w not in ("only", "just")]
    while lead and lead[0] in ("yes", "no", "so", "well"):
        lead = lead[1:]
    for adverb in _TOTAL_ADVERBS:
        joined = " ".join(lead)
        if joined == adverb:
            return []
        if joined.endswith(" " + adverb):
            lead = lead[: -len(adverb.split())]
    return lead


def _is_image_verb(opening: str) -> bool:
    parts = opening.split(" ")
    return (
        len(parts) == 3
        and parts[0] in ("the", "this")
        and parts[1] in _TOTAL_SUBJECTS
        and parts[2] in _TOTAL_VERBS
    )


def _tail_ok(words: Sequence[str], end: int) -> bool:
    """Nothing after the mentions narrows them down: "in the image", "here", then the end."""
    rest = list(words[end:])
    if rest[:1] in (["in"], ["on"]) and rest[1:2] in (["the"], ["this"]) and rest[2:3]:
        rest = rest[3:] if rest[2] in IMAGE_WORDS else rest
    for tail in _TOTAL_TAILS:
        if " ".join(rest[: len(tail.split())]) == tail:
            rest = rest[len(tail.split()) :]
            break
    return not rest or rest[0] in _END


# --------------------------------------------------------------------------- objects


def object_claims(s: Sentence) -> list[Claim]:
    """Things said to be there: a determiner or number, then a category term."""
    found = []
    for m in s.mentions:
        if asserted(s, m) and quantity(s, m).determined:
            found.append(Claim("object", m.term.categories, (), m.term.text))
    return found


# --------------------------------------------------------------------------- absence


def absence_claims(s: Sentence) -> list[Claim]:
    """ "there is no X", "no X are visible", "I don't see a X", "X is not present"."""
    found = []
    for m in s.mentions:
        if not m.term.exact or _hedged_denial(s, m) or depicted(s, m):
            continue
        if _absent_before(s.tokens, m) or _absent_after(s.tokens, m):
            found.append(Claim("absence", m.term.categories, (), f"no {m.term.text}"))
    words = s.tokens
    for i, word in enumerate(words):
        nobody = word == "nobody" or (word == "no" and words[i + 1 : i + 2] == ("one",))
        end = i + (1 if word == "nobody" else 2)
        if nobody and not _hedged_at(s, i) and _tail_is_whole_image(words, end):
            found.append(Claim("absence", ("person",), (), "no one"))
    return found


def _hedged_denial(s: Sentence, m: Mention) -> bool:
    """`hedged`, but for an "or" after the mention that lists more things denied ("I don't
    see any chairs or stools") and a closing "either" ("no chairs either")."""
    if not hedged(s, m):
        return False
    clause = s.clauses[m.start]
    for i in range(len(s.tokens)):
        mine = i < m.start or s.clauses[i] == clause
        if mine and _is_hedge(s.tokens, i) and not (i > m.start and _lists_denied(s, i)):
            return True
    return False


_CLAUSE_WORDS = frozenset(
    {"is", "are", "was", "were", "be", "it", "they", "there", "i", "we", "you", "he", "she"}
    | {"can", "not", "that", "this"}
)


def _lists_denied(s: Sentence, i: int) -> bool:
    """Whether the hedge word at `i` only adds to a denial: "or" before a few more words
    that start no clause of their own, or "either" closing the clause."""
    words, clause = s.tokens, s.clauses[i]
    rest = []
    for j in range(i + 1, len(words)):
        if s.clauses[j] != clause or words[j] in (".", "!"):
            break
        rest.append(words[j])
    if words[i] == "either":
        return not rest
    if words[i] != "or" or not 0 < len(rest) <= MAX_ADJECTIVES + 2:
        return False
    return not any(w in _CLAUSE_WORDS or w in ("or", "either") for w in rest) and not any(
        _is_hedge(rest, k) for k in range(len(rest))
    )


def _absent_before(words: Sequence[str], m: Mention) -> bool:
    """ "no X", "not a (single) X", "don't see (any) Xs", "there isn't a X" + a whole-image
    tail."""
    j = _skip_adjectives(words, m.start)
    if j == 0 or not _tail_is_whole_image(words, m.end):
        return False
    word = words[j - 1]
    if word == "no":
        return j < 2 or words[j - 2] not in ("with", "by")
    if word in SEE_VERBS and m.term.plural:  # "I don't see chairs"
        return any(_is_negation(w) for w in words[max(0, j - 3) : j - 1])
    if word in ("single", "lone") and j >= 2 and words[j - 2] == "a":
        j, word = j - 1, "a"
    if word not in ("a", "an", "any"):
        return _is_negation(word) and words[j - 2 : j - 1] == ("there",)  # "there aren't X"
    before = words[max(0, j - 4) : j - 1]
    if before and before[-1] in SEE_VERBS:
        return any(_is_negation(w) for w in before[:-1])
    return bool(before) and _is_negation(before[-1]) and "there" in before


def _absent_after(words: Sequence[str], m: Mention) -> bool:
    """ "X is not visible", "X are not present in the image"."""
    rest = list(words[m.end : m.end + 3])
    if rest[:1] not in (["is"], ["are"]) or len(rest) < 2:
        return False
    if rest[1] not in ("not",):
        return False
    tail = _tail_words(words, m.end + 2)
    return tail is not None and bool(set(tail) & {"visible", "present", "shown", "anywhere"})


def _tail_words(words: Sequence[str], start: int) -> list[str] | None:
    """The words from `start` to the end of the clause, if all of them are whole-image words."""
    tail = []
    for word in words[start:]:
        if word in CLAUSE_BREAKS or word in (".", "!", "and", "or", "nor"):
            break
        if word not in ABSENCE_TAIL:
            return None
        tail.append(word)
    return tail


def _tail_is_whole_image(words: Sequence[str], start: int) -> bool:
    return _tail_words(words, start) is not None
