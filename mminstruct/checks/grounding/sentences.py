"""Sentences of a text: tokens, clauses, the terms they mention, and how each mention is
meant (hedged, negated, depicted, plainly asserted) and counted (`quantity`); and `Claim`,
what the claim readers (`presence`, `placement`) make of a sentence."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from mminstruct.lexicon import (
    ADJECTIVAL,
    APPROXIMATE,
    CLAUSE_BREAKS,
    COMPOUND_HEADS,
    DEPICTIONS,
    DETERMINERS,
    HEDGE_PAIRS,
    HEDGES,
    LABELS,
    MEDIA,
    MODIFIERS,
    NEGATORS,
    NOT_AFTER,
    PAIRED,
    Term,
    adjective_like,
    term_lengths,
    terms,
    tokens,
)
from mminstruct.words import NUMBER_VALUES

MAX_ADJECTIVES = 3  # words between a number or article and its noun ("two big brown dogs")


@dataclass(frozen=True)
class Claim:
    """Something a sentence states about the image, in terms of COCO categories."""

    kind: str  # one of KINDS
    subject: tuple[str, ...]  # the categories it is about (two for "bike")
    value: tuple = ()  # count: (n,); position: sides; relation: (family, object categories)
    text: str = ""  # the words that make it: "three people", "on the left side"
    exact: bool = False  # count: the whole category's count, not a lower bound

    @property
    def key(self) -> tuple:
        """What is claimed, comparable between an answer and a caption."""
        return (self.kind, self.subject, self.value)


@dataclass(frozen=True)
class Mention:
    """A term found in a sentence: tokens [start, end)."""

    start: int
    end: int
    term: Term


@dataclass(frozen=True)
class Quantity:
    """The words before a mention: how many it says, and where they start."""

    n: int | None  # None: no count ("some dogs", "the dog")
    start: int  # first token of the quantity phrase (the mention's own start if none)
    number: bool = False  # a number was written ("two", "3", "a pair of"), not just "a"
    determined: bool = False  # an article, number or other determiner comes first


@dataclass(frozen=True)
class Sentence:
    """One sentence, its tokens, the clause of each token, and its mentions."""

    text: str
    tokens: tuple[str, ...]
    clauses: tuple[int, ...]  # clause number of each token
    mentions: tuple[Mention, ...]
    first_hedge: int  # index of the first hedge ("may", "waiting for"); len(tokens) if none
    hedged_clauses: frozenset[int]  # clauses with a hedge in them
    negated_clauses: frozenset[int]  # clauses with a negation ("no", "not", "isn't")
    assertions: dict[int, bool] = field(default_factory=dict)  # `asserted`, by mention start


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


def split_sentences(text: str) -> list[Sentence]:
    """The sentences of a text (ending at ".", "!" or "?" and a space, or a line break),
    tokenized, with their clauses and mentions."""
    parts = (part.strip() for part in _SENTENCE_END.split(text))
    return [_sentence(part, words) for part in parts if (words := tokens(part))]


def _sentence(text: str, words: list[str]) -> Sentence:
    clauses, clause = [], 0
    for word in words:
        clause += word in CLAUSE_BREAKS
        clauses.append(clause)
    hedges = [i for i in range(len(words)) if _is_hedge(words, i)]
    negations = (c for word, c in zip(words, clauses, strict=True) if _is_negation(word))
    return Sentence(
        text=text,
        tokens=tuple(words),
        clauses=tuple(clauses),
        mentions=tuple(find_mentions(words)),
        first_hedge=hedges[0] if hedges else len(words),
        hedged_clauses=frozenset(clauses[i] for i in hedges),
        negated_clauses=frozenset(negations),
    )


def find_mentions(words: Sequence[str]) -> list[Mention]:
    """Terms in a token list, longest first ("hot dog" before "dog"), not overlapping."""
    table, longest = terms(), term_lengths()
    mentions = []
    i = 0
    while i < len(words):
        for size in range(longest.get(words[i], 0), 0, -1):
            term = table.get(tuple(words[i : i + size]))
            if term is not None:
                mentions.append(Mention(i, i + size, term))
                i += size
                break
        else:
            i += 1
    return mentions


# --------------------------------------------------------------------------- context


def _clause_tokens(s: Sentence, index: int) -> Iterable[int]:
    clause = s.clauses[index]
    return (i for i, c in enumerate(s.clauses) if c == clause)


def hedged(s: Sentence, m: Mention) -> bool:
    """A hedge earlier in the sentence, or anywhere in the mention's clause."""
    return _hedged_at(s, m.start)


def _hedged_at(s: Sentence, index: int) -> bool:
    return s.first_hedge < index or s.clauses[index] in s.hedged_clauses


def _is_hedge(words: Sequence[str], i: int) -> bool:
    return words[i] in HEDGES or tuple(words[i : i + 2]) in HEDGE_PAIRS


def negated(s: Sentence, m: Mention) -> bool:
    """A negation anywhere in the mention's clause."""
    return s.clauses[m.start] in s.negated_clauses


def _is_negation(token: str) -> bool:
    return token in NEGATORS or token.endswith("n't")


def depicted(s: Sentence, m: Mention) -> bool:
    """A picture, toy or compound rather than the thing: "a poster of a horse", "a toy
    car", "the bus stop", "a dog on the screen", "the man's"."""
    words = s.tokens
    before = words[m.start - 1] if m.start else ""
    after = words[m.end] if m.end < len(words) else ""
    if before in MODIFIERS or after in ("'s", "-"):
        return True
    if after in COMPOUND_HEADS and not m.term.plural:  # "dog show"; "giraffes stand"
        return True
    if any(before in NOT_AFTER.get(c, ()) for c in m.term.categories):
        return True
    if any(other.start == m.end for other in s.mentions):  # "dog bed": dog is a modifier
        return True
    if m.term.text in ADJECTIVAL and after.isalpha() and after not in _FUNCTION_WORDS:
        return True
    return _of_depiction(s, m) or _on_medium(words, m.end)


_FUNCTION_WORDS = frozenset(
    {"is", "are", "was", "were", "on", "in", "at", "of", "and", "with", "next", "near"}
    | {"beside", "by", "for", "to", "from", "sits", "lies", "rests", "that", "control"}
)


def _of_depiction(s: Sentence, m: Mention) -> bool:
    """ "<picture> of ... <term>" in the same clause."""
    for i in _clause_tokens(s, m.start):
        if i + 1 >= m.start:
            break
        word = s.tokens[i]
        if (word in DEPICTIONS or word.rstrip("s") in DEPICTIONS) and s.tokens[i + 1] == "of":
            return True
    return False


def _on_medium(words: Sequence[str], end: int) -> bool:
    """ "<term> on the screen", "<term> in the mirror"."""
    tail = list(words[end : end + 4])
    if len(tail) < 2 or tail[0] not in ("on", "in"):
        return False
    noun = tail[2] if tail[1] in ("the", "a", "an", "his", "her", "its", "their") else tail[1]
    return noun in MEDIA


def asserted(s: Sentence, m: Mention) -> bool:
    """Whether the sentence states, plainly, that the mentioned thing is in the image."""
    known = s.assertions.get(m.start)
    if known is None:
        known = s.assertions[m.start] = _asserted(s, m)
    return known


def _asserted(s: Sentence, m: Mention) -> bool:
    if not m.term.categories:
        return False
    return not (hedged(s, m) or negated(s, m) or depicted(s, m))


def quantity(s: Sentence, m: Mention) -> Quantity:
    """How many of the mention the words before it say: "two", "a pair of", "a", none."""
    words = s.tokens
    j = _skip_adjectives(words, m.start)
    if j >= 2 and words[j - 1] == "of" and words[j - 2] in ("pair", "pairs"):
        return _pairs(s, m, _skip_adjectives(words, j - 2))
    if j == 0:
        return Quantity(None, m.start)
    word = words[j - 1]
    if word in ("a", "an"):
        return Quantity(1, j - 1, determined=True)
    n = _number(words, j - 1)
    if n is not None and any(c in PAIRED for c in m.term.categories):
        n = None  # "two skis" may be one pair: only "pairs of skis" count
    if n is not None:
        single = word in ("single", "lone") and j >= 2 and words[j - 2] in ("a", "an")
        return Quantity(n, j - 2 if single else j - 1, number=True, determined=True)
    determined = word in DETERMINERS or word in NUMBER_VALUES or word.isdigit()
    if word in ("are", "is") and j >= 2 and words[j - 2] == "there":
        determined = True  # "there are dogs"
    return Quantity(None, j - 1 if determined else m.start, determined=determined)


def _skip_adjectives(words: Sequence[str], end: int) -> int:
    """Index after the last word before `end` that is not an adjective (at most a few)."""
    j = end
    skipped = 0
    while j > 0 and skipped < MAX_ADJECTIVES:
        word = words[j - 1]
        between = word == "and" and j >= 2 and adjective_like(words[j - 2]) and skipped
        if not (adjective_like(word) or between):
            break
        j -= 1
        skipped += 1
    return j


def _number(words: Sequence[str], i: int) -> int | None:
    """The count a number word or digit at `i` states, unless it is a label or a guess."""
    word = words[i]
    before = words[i - 1] if i else ""
    if before in APPROXIMATE or before == "number":
        return None
    if word in NUMBER_VALUES:
        return NUMBER_VALUES[word]
    if word.isdigit() and before not in LABELS and 0 < int(word) <= 100:
        return int(word)
    return None


def _pairs(s: Sentence, m: Mention, j: int) -> Quantity:
    """ "a pair of skis" (one skis box), "two pairs of skis", "a pair of dogs" (two dogs)."""
    words = s.tokens
    word = words[j - 1] if j else ""
    if word in ("a", "an"):
        n, start = 1, j - 1
    else:
        n, start = (_number(words, j - 1), j - 1) if j else (None, m.start)
    if n is None:
        return Quantity(None, m.start, determined=bool(j) and word in DETERMINERS)
    paired = any(c in PAIRED for c in m.term.categories)
    return Quantity(n if paired else 2 * n, start, number=True, determined=True)


# --------------------------------------------------------------------------- spans


def _span(s: Sentence, start: int, end: int) -> str:
    text = " ".join(s.tokens[start:end])
    for mark in (" ,", " ;", " :", " 's", " -", "- "):
        text = text.replace(mark, mark.strip() if mark != "- " else "-")
    return text
