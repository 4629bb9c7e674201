"""Grounding checks: does a generated answer contradict the annotations it was made from?

Five checks read each sentence of an answer and compare what it claims with the record:

- **count**: "three people", "two pairs of skis", "a man and a woman" (two people) against
  the boxes of the category. A number stated for a kind ("two men") or outside a
  whole-image statement ("two dogs are playing") is a lower bound; "there are two dogs
  (in the image)" is the exact count. Crowd boxes make the annotated count a lower bound.
- **object**: a category named with a determiner ("a cat", "the laptop") that has no box,
  no caption mentioning it, and whose annotation is exhaustive (`record.vocabulary`).
- **absence**: "there is no dog", "I don't see a TV", "no cars are visible" while the
  category is annotated.
- **position**: "the bench is on the left (side of the image)" while every box of the
  category is clearly on the other side.
- **relation**: "X on / under / above / below / next to / left of / right of Y" against the
  annotated relations, then the boxes (`spatial.derive_relation`, and boxes shifted by
  a tenth of the image), when every pair of an X box and a Y box disagrees.

Precision comes before recall: hedged sentences ("may", "probably", "or"), negated
clauses, questions, depictions ("a poster of a horse"), compounds ("hot dog", "bus stop"),
possessives and generic bare plurals make no claim, and a claim a caption also makes is
never flagged (the generator was told so). A check that cannot decide says nothing.

The grounding score of an instruction is 1 - contradicted sentences / checkable sentences
of its answers, where a sentence is checkable when it makes at least one claim (1.0 when
none does).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from mminstruct.context import derive_relation
from mminstruct.geometry import gap
from mminstruct.lexicon import (
    ABSENCE_TAIL,
    ADJECTIVAL,
    APPROXIMATE,
    CLAUSE_BREAKS,
    COCO_CATEGORIES,
    COMPOUND_HEADS,
    DEPICTIONS,
    DETERMINERS,
    HEDGE_PAIRS,
    HEDGES,
    IMAGE_WORDS,
    LABELS,
    MEDIA,
    MODIFIERS,
    NEGATORS,
    NOT_AFTER,
    PAIRED,
    SEE_VERBS,
    UNCOUNTABLE,
    Term,
    adjective_like,
    term_lengths,
    terms,
    tokens,
)
from mminstruct.records import Generated, ImageRecord, Instruction, ObjectBox, Rejection
from mminstruct.words import NUMBER_VALUES

KINDS = ("count", "object", "absence", "position", "relation")
MODES = ("off", "annotate", "filter")
UNGROUNDED = "ungrounded"  # rejection reason of a contradicted instruction (mode "filter")

CLEAR_SIDE = 0.6  # a box is clearly on the right when its center is past 60% of the width
CLEAR_EDGE = 0.4  # ... and its near edge past 40% (likewise for left, top and bottom)
SHIFT = 0.1  # "X left of Y" is false when X's box is shifted right by 10% of the width
FAR_APART = 0.25  # "next to" is false when boxes are apart by a quarter of the image
MAX_ADJECTIVES = 3  # words between a number or article and its noun ("two big brown dogs")
MAX_GAP = 4  # words between a subject and its preposition ("the cat is curled up on")
POSITION_REACH = 8  # words between a subject and its position ("the kite is flying low, at")


@dataclass(frozen=True)
class Finding:
    """A sentence of an answer that contradicts the annotations."""

    kind: str  # "count" | "object" | "absence" | "position" | "relation"
    sentence: str  # the sentence, as written in the answer
    claim: str  # what it claims: "three people", "no dog", "bench on the left side"
    truth: str  # the annotation it contradicts, readable: "2 person boxes annotated"

    def to_json(self) -> dict[str, str]:
        return dataclasses.asdict(self)


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
class Facts:
    """What a record says, by COCO category, in the form the checks read."""

    width: int
    height: int
    boxes: dict[str, list[ObjectBox]]  # category -> its boxes, crowd boxes included
    vocabulary: frozenset[str]  # categories whose annotation is exhaustive for the image
    mentioned: frozenset[str]  # categories the captions (or region phrases) may mention
    # Annotated (not derived) relations: (subjects, predicate, family, objects).
    relations: tuple[tuple[tuple[str, ...], str, str, tuple[str, ...]], ...]
    said: frozenset[tuple]  # keys of the claims the captions make themselves


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


# --------------------------------------------------------------------------- public API


def check_text(record: ImageRecord, text: str) -> list[Finding]:
    """Findings for one answer text checked against the record."""
    return check_facts(facts(record), text)


def check_facts(known: Facts, text: str) -> list[Finding]:
    """`check_text` against a record's `facts`, for callers that check many texts."""
    return _check(known, text)[0]


def check_instruction(record: ImageRecord, instruction: Instruction) -> list[Finding]:
    """Findings for an instruction's answers (questions may name absent things)."""
    return report(facts(record), instruction)[0]


def report(known: Facts, instruction: Instruction) -> tuple[list[Finding], float]:
    """An instruction's findings and grounding score."""
    findings: list[Finding] = []
    checkable = flagged = 0
    for _, answer in instruction.turns:
        found, claimed, contradicted = _check(known, answer)
        findings += found
        checkable += claimed
        flagged += contradicted
    score = 1.0 - flagged / checkable if checkable else 1.0
    return findings, round(score, 4)


def ground(record: ImageRecord, generated: Generated, mode: str) -> Generated:
    """Check every instruction; `annotate` records findings and score, `filter` also turns
    contradicted instructions into `ungrounded` rejections, `off` changes nothing."""
    if mode not in MODES:
        raise ValueError(f"generator.grounding: {mode!r}; choose one of {', '.join(MODES)}")
    if mode == "off" or not generated.instructions:
        return generated
    known = facts(record)
    kept: list[Instruction] = []
    rejections = list(generated.rejections)
    for instruction in generated.instructions:
        findings, score = report(known, instruction)
        grounding = {"score": score, "findings": [f.to_json() for f in findings]}
        if mode == "filter" and findings:
            rejections.append(_ungrounded(record, instruction, findings, grounding))
        else:
            kept.append(dataclasses.replace(instruction, grounding=grounding))
    return dataclasses.replace(generated, instructions=kept, rejections=rejections)


def _ungrounded(
    record: ImageRecord, instruction: Instruction, findings: list[Finding], grounding: dict
) -> Rejection:
    first = findings[0]
    more = f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""
    detail = f"{first.kind}: '{first.claim}' contradicts the annotations: {first.truth}{more}"
    raw = {"turns": [list(turn) for turn in instruction.turns], "grounding": grounding}
    return Rejection(
        reason=UNGROUNDED,
        detail=detail,
        dataset=record.dataset,
        image_id=record.image_id,
        task=instruction.task,
        raw=json.dumps(raw, ensure_ascii=False),
    )


def _check(known: Facts, text: str) -> tuple[list[Finding], int, int]:
    """(findings, sentences with a claim, sentences with a finding) of one text."""
    findings: list[Finding] = []
    claimed = contradicted = 0
    for sentence, sentence_claims in text_claims(text):
        found = []
        for claim in sentence_claims:
            truth = None if claim.key in known.said else verdict(claim, known)
            if truth is not None:
                found.append(Finding(claim.kind, sentence, claim.text, truth))
        claimed += bool(sentence_claims)
        contradicted += bool(found)
        findings += found
    return findings, claimed, contradicted


# --------------------------------------------------------------------------- the record


def facts(record: ImageRecord) -> Facts:
    """The record's boxes, vocabulary, caption mentions and relations, by COCO category."""
    boxes: dict[str, list[ObjectBox]] = {}
    for obj in record.objects:
        for category in categories_of(obj.category):
            boxes.setdefault(category, []).append(obj)
    texts = [*record.captions, *(r.phrase for r in record.regions)]
    analysed = [pair for text in texts for pair in text_claims(text)]
    mentioned = {c for text in texts for c in text_hints(text)}
    vocabulary = {c for name in record.vocabulary for c in categories_of(name)}
    return Facts(
        width=record.width,
        height=record.height,
        boxes=boxes,
        vocabulary=frozenset(vocabulary),
        mentioned=frozenset(mentioned),
        relations=_annotated_relations(record),
        said=frozenset(claim.key for _, found in analysed for claim in found),
    )


@functools.lru_cache(maxsize=1 << 14)
def categories_of(name: str) -> tuple[str, ...]:
    """The COCO categories an annotation's category name stands for ("man" -> person)."""
    key = name.strip().lower()
    if key in COCO_CATEGORIES:
        return (key,)
    term = terms().get(tuple(tokens(key)))
    return term.categories if term is not None else ()


def _annotated_relations(record: ImageRecord) -> tuple:
    relations = []
    indices = range(len(record.objects))
    for relation in record.relations:
        family = relation_family(relation.predicate)
        known = relation.subject in indices and relation.object in indices
        if relation.derived or family is None or not known:
            continue
        subject = categories_of(record.objects[relation.subject].category)
        obj = categories_of(record.objects[relation.object].category)
        relations.append((subject, relation.predicate, family, obj))
    return tuple(relations)


# --------------------------------------------------------------------------- sentences


def text_claims(text: str) -> tuple[tuple[str, tuple[Claim, ...]], ...]:
    """(sentence, its claims) for each sentence of a text."""
    return _analysed(text)[0]


def text_hints(text: str) -> frozenset[str]:
    """The categories a text (a caption) may mention, in any words."""
    return _analysed(text)[1]


@functools.lru_cache(maxsize=1 << 13)  # a few MB of answers and captions
def _analysed(text: str) -> tuple[tuple, frozenset[str]]:
    """Claims and hints depend on the words alone, so they are cached: generated answers
    and captions repeat a lot."""
    sentences = split_sentences(text)
    pairs = tuple((s.text, tuple(claims(s))) for s in sentences)
    return pairs, frozenset(c for s in sentences for m in s.mentions for c in m.term.hints)


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


def claims(sentence: Sentence) -> list[Claim]:
    """Everything a sentence claims, once each; a question claims nothing."""
    if not sentence.tokens or sentence.tokens[-1] == "?":
        return []
    found = [
        *count_claims(sentence),
        *object_claims(sentence),
        *absence_claims(sentence),
        *position_claims(sentence),
        *relation_claims(sentence),
    ]
    return list({claim.key: claim for claim in found}.values())


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
    return False


_VISIBLE = ("visible in the picture", "visible in the image", "visible in the photo")
_SEEN = (("are", "visible"), ("is", "visible"), ("are", "present"), ("can", "be", "seen"))


def _opening(before: list[str]) -> list[str]:
    """The words of the clause before a count, without "yes,", "so" or "only"."""
    cut = max((i + 1 for i, w in enumerate(before) if w in (",", ";", ":", ".")), default=0)
    lead = before[cut:]
    while lead and lead[0] in ("yes", "no", "so", "well"):
        lead = lead[1:]
    for adverb in _TOTAL_ADVERBS:
        if " ".join(lead).endswith(" " + adverb):
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
        if not m.term.exact or hedged(s, m) or depicted(s, m):
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


def _absent_before(words: Sequence[str], m: Mention) -> bool:
    """ "no X", "not a (single) X", "don't see any X", "there isn't a X" + a whole-image tail."""
    j = _skip_adjectives(words, m.start)
    if j == 0 or not _tail_is_whole_image(words, m.end):
        return False
    word = words[j - 1]
    if word == "no":
        return j < 2 or words[j - 2] not in ("with", "by")
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
        if word in CLAUSE_BREAKS or word in (".", "!", "and"):
            break
        if word not in ABSENCE_TAIL:
            return None
        tail.append(word)
    return tail


def _tail_is_whole_image(words: Sequence[str], start: int) -> bool:
    return _tail_words(words, start) is not None


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


# --------------------------------------------------------------------------- verdicts


def verdict(claim: Claim, known: Facts) -> str | None:
    """The annotation a claim contradicts, readable; None when it holds or is undecided."""
    return _VERDICTS[claim.kind](claim, known)


def _count_verdict(claim: Claim, known: Facts) -> str | None:
    (category,) = claim.subject
    (n,) = claim.value
    boxes = known.boxes.get(category, [])
    if category not in known.vocabulary or category in UNCOUNTABLE or not boxes:
        return None  # not exhaustive, not countable, or absent (the object check's case)
    single = sum(1 for b in boxes if not b.iscrowd)
    crowd = len(boxes) > single
    if (n > single and not crowd) or (claim.exact and n < single):
        return _count_truth(category, single, crowd)
    return None


def _count_truth(category: str, single: int, crowd: bool) -> str:
    boxes = "box" if single == 1 else "boxes"
    text = f"{single} {category} {boxes} annotated"
    return text + (" plus a crowd box (so more than that)" if crowd else "")


def _object_verdict(claim: Claim, known: Facts) -> str | None:
    cats = claim.subject
    if not all(c in known.vocabulary for c in cats):
        return None
    if any(c in known.boxes or c in known.mentioned for c in cats):
        return None
    names = " or ".join(cats)
    return f"no {names} box annotated (the annotation lists every {names}), no caption names one"


def _absence_verdict(claim: Claim, known: Facts) -> str | None:
    (category,) = claim.subject
    boxes = known.boxes.get(category, [])
    if not boxes:
        return None
    single = sum(1 for b in boxes if not b.iscrowd)
    crowd = " including a crowd box" if single < len(boxes) else ""
    return f"{len(boxes)} {category} {'box' if len(boxes) == 1 else 'boxes'} annotated{crowd}"


def _position_verdict(claim: Claim, known: Facts) -> str | None:
    boxes = [b for c in claim.subject for b in known.boxes.get(c, [])]
    if not boxes or known.width <= 0 or known.height <= 0:
        return None
    for side in claim.value:
        if all(_clearly_not(b, side, known.width, known.height) for b in boxes):
            return _where(claim.subject, boxes, known)
    return None


def _clearly_not(box: ObjectBox, side: str, width: int, height: int) -> bool:
    """Whether a box is clearly on the other side from `side` of the image."""
    x1, x2 = box.x / width, (box.x + box.w) / width
    y1, y2 = box.y / height, (box.y + box.h) / height
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return {
        "left": cx > CLEAR_SIDE and x1 > CLEAR_EDGE,
        "right": cx < 1 - CLEAR_SIDE and x2 < 1 - CLEAR_EDGE,
        "top": cy > CLEAR_SIDE and y1 > CLEAR_EDGE,
        "bottom": cy < 1 - CLEAR_SIDE and y2 < 1 - CLEAR_EDGE,
    }[side]


def _where(categories: tuple[str, ...], boxes: list[ObjectBox], known: Facts) -> str:
    centers = ", ".join(
        f"({(b.x + b.w / 2) / known.width:.0%}, {(b.y + b.h / 2) / known.height:.0%})"
        for b in boxes[:4]
    )
    name = " or ".join(categories)
    return f"{name} box centers at {centers} of the width and height"


def _relation_verdict(claim: Claim, known: Facts) -> str | None:
    family, objects = claim.value
    subjects = [b for c in claim.subject for b in known.boxes.get(c, [])]
    targets = [b for c in objects for b in known.boxes.get(c, [])]
    if not subjects or not targets:
        return None
    support, against = _annotated(claim.subject, family, objects, known)
    if support:
        return None
    if against:
        return f"annotated: {against}"
    pairs = [(a, b) for a in subjects for b in targets]
    if all(_disagrees(family, a, b, known) for a, b in pairs):
        return _geometry_truth(claim, family, known)
    return None


_UP = frozenset({"on", "above"})


def _annotated(
    subject: tuple[str, ...], family: str, objects: tuple[str, ...], known: Facts
) -> tuple[bool, str | None]:
    """(an annotated relation supports the claim, the annotated relation against it)."""
    support, against = False, None
    for subjects, predicate, annotated, targets in known.relations:
        forward = set(subjects) & set(subject) and set(targets) & set(objects)
        backward = set(subjects) & set(objects) and set(targets) & set(subject)
        same = annotated == family or (family in _UP and annotated in _UP)
        if (forward and same) or (backward and family == "next to" == annotated):
            support = True
        elif (forward and _opposed(family, annotated)) or (backward and same):
            against = against or f"{subjects[0]} {predicate} {targets[0]}"
    return support, against


def _opposed(family: str, annotated: str) -> bool:
    """Whether "a <annotated> b" says the opposite of "a <family> b"."""
    if family in _UP or annotated in _UP:
        return bool({family, annotated} & _UP) and "under" in (family, annotated)
    return {family, annotated} == {"left of", "right of"}


def _disagrees(family: str, a: ObjectBox, b: ObjectBox, known: Facts) -> bool:
    """Whether boxes a and b clearly contradict "a <family> b"."""
    derived = derive_relation(a, b)
    if family == "on":
        return derived in ("left of", "right of", "below")
    if family == "next to":
        return gap(a, b) > FAR_APART * max(known.width, known.height)
    opposite = {"left of": "right of", "right of": "left of", "above": "below"}
    opposite["under"] = "above"
    if derived == opposite[family]:
        return True
    if family in ("left of", "right of"):
        first, second = (a, b) if family == "left of" else (b, a)
        return _shifted(first.x, first.w, second.x, second.w, known.width)
    first, second = (a, b) if family == "above" else (b, a)
    return _shifted(first.y, first.h, second.y, second.h, known.height)


def _shifted(start_a: float, size_a: float, start_b: float, size_b: float, size: int) -> bool:
    """Whether box a lies past box b along one axis: both edges further, center by SHIFT."""
    center_gap = (start_a + size_a / 2) - (start_b + size_b / 2)
    return (
        center_gap >= SHIFT * size and start_a >= start_b and start_a + size_a >= start_b + size_b
    )


def _geometry_truth(claim: Claim, family: str, known: Facts) -> str:
    subject = " or ".join(claim.subject)
    target = " or ".join(claim.value[1])
    if family == "next to":
        return f"every {subject} box is far from every {target} box"
    return f"no {subject} box is {family} a {target} box; their boxes say otherwise"


_VERDICTS = {
    "count": _count_verdict,
    "object": _object_verdict,
    "absence": _absence_verdict,
    "position": _position_verdict,
    "relation": _relation_verdict,
}


def _span(s: Sentence, start: int, end: int) -> str:
    text = " ".join(s.tokens[start:end])
    for mark in (" ,", " ;", " :", " 's", " -", "- "):
        text = text.replace(mark, mark.strip() if mark != "- " else "-")
    return text
