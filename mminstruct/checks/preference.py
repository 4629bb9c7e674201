"""Preference pairs: a faithful answer and the same answer with one planted error.

For DPO-style tuning, the pairs that matter most for vision models teach them not to
hallucinate. Here the annotations tell the truth, so the error is planted into a good
answer and then *confirmed*: a rejected answer counts only when the grounding checks flag
an error of the planted kind that the chosen answer does not have. Kinds:

- `object`: a named category swapped for one the image lacks (its annotation exhaustive,
  no caption mentioning it) of the same COCO supercategory, which could plausibly be
  there ("a fork" for "a spoon" in a kitchen); never one the question names.
- `count`: a stated number changed by one ("three dogs" -> "four dogs", "one sink" ->
  "two sinks"). A question that asks how many gets only this kind: a wrong count.
- `position`: left/right, top/bottom, above/below flipped in one sentence.
- `relation`: a relation's predicate turned into its opposite ("on" -> "under"), or its
  subject and object swapped.

Only answers that pass the grounding checks are chosen. An error that cannot be planted
(nothing to change) is skipped; one that the checks do not confirm is dropped and counted,
and so is an incoherent one (`incoherent_<kind>`): a swapped category still named elsewhere
in the answer, or a changed count that the answer goes on to compare or reason from.
"""

from __future__ import annotations

import itertools
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from mminstruct.checks.grounding import (
    Facts,
    check_facts,
    facts,
    find_mentions,
    relation_preposition,
)
from mminstruct.config import PreferenceTask
from mminstruct.keys import derived_seed, image_seed
from mminstruct.lexicon import COCO_SUPERCATEGORIES, DETERMINERS, adjective_like, token_spans
from mminstruct.records import Generated, ImageRecord, Instruction
from mminstruct.words import NUMBER_VALUES, noun, number_word, with_article

ERROR_KINDS = ("object", "count", "position", "relation")
# The grounding finding kinds that confirm each planted error.
CONFIRMED_BY = {
    "object": ("object",),
    "count": ("count",),
    "position": ("position", "relation"),
    "relation": ("relation",),
}
SUPERCATEGORY = COCO_SUPERCATEGORIES  # the same kind: a swap stays within one
# A question that asks for a number: its rejected answer must give a wrong number.
_COUNT_QUESTION = re.compile(r"\bhow many\b|\bcount\b|\bnumber of\b", re.IGNORECASE)
# Words by which an answer compares or reasons from its counts: a changed count would
# leave the rest of it contradicting itself.
_REASONS_FROM_COUNTS = frozenset(
    {"outnumber", "outnumbers", "more", "fewer", "larger", "smaller", "same", "equally"}
    | {"neither", "group", "both", "total", "altogether", "than"}
)
_FLIPS = {
    "left": "right", "right": "left", "top": "bottom", "bottom": "top",
    "upper": "lower", "lower": "upper", "above": "below", "below": "above",
}  # fmt: skip
_OPPOSITE_PREDICATES = {
    ("on",): ("under",), ("under",): ("on",), ("above",): ("below",), ("below",): ("above",),
    ("behind",): ("in", "front", "of"), ("in", "front", "of"): ("behind",),
    ("on", "top", "of"): ("under",), ("beneath",): ("on",),
}  # fmt: skip


@dataclass(frozen=True)
class Planted:
    """An answer with one planted error: `original` at [start, end) became `replacement`."""

    text: str
    kind: str  # one of ERROR_KINDS
    detail: str  # why it is wrong: "no fork in the image"
    start: int
    end: int
    original: str
    replacement: str

    def error(self) -> dict[str, Any]:
        """The pair's `error` record: the kind, and what was changed where in the answer."""
        return {
            "kind": self.kind,
            "detail": self.detail,
            "span": [self.start, self.end],
            "original": self.original,
            "replacement": self.replacement,
        }


def add_preference_pairs(
    record: ImageRecord, generated: Generated, options: PreferenceTask, seed: int
) -> Generated:
    """`generated` with pairs on each instruction that allows them, and the drop counts."""
    instructions = []
    known = facts(record) if generated.instructions else None  # once for all instructions
    for i, instruction in enumerate(generated.instructions):
        rng = random.Random(f"{seed}:preference:{i}")
        pairs, dropped = preference_pairs(record, instruction, options, rng, known)
        generated.preference_dropped.update(dropped)
        instructions.append(replace(instruction, preference=tuple(pairs)))
    generated.instructions = instructions
    return generated


def preference_pairs(
    record: ImageRecord,
    instruction: Instruction,
    options: PreferenceTask,
    rng: random.Random,
    known: Facts | None = None,
) -> tuple[list[dict[str, Any]], Counter]:
    """Up to `options.pairs` pairs for one instruction, at most one per answer: `{"turn",
    "chosen", "rejected", "error": Planted.error()}`, and why other attempts were dropped.
    `known` is the record's `facts`, when the caller has them already."""
    pairs: list[dict[str, Any]] = []
    dropped: Counter = Counter()
    known = known or facts(record)
    turns = list(range(len(instruction.turns)))
    rng.shuffle(turns)
    for turn in turns:
        question, chosen = instruction.turns[turn]
        if check_facts(known, chosen):
            dropped["chosen_ungrounded"] += 1
            continue
        for kind in _kinds_for(question, options.errors, rng):
            planted = PLANTERS[kind](chosen, record, known, rng)
            if planted is None or not _answers_question(planted, question):
                continue
            if not coherent(planted):
                dropped[f"incoherent_{kind}"] += 1
                continue
            if not confirmed(known, kind, planted.text):
                dropped[f"unconfirmed_{kind}"] += 1
                continue
            error = planted.error()
            pairs.append({"turn": turn, "chosen": chosen, "rejected": planted.text, "error": error})
            if len(pairs) >= options.pairs:
                return pairs, dropped
            break  # one pair per answer; the next pair comes from another answer
    return pairs, dropped


def rewrite_rejected(
    backend: Any,
    template: Any,
    records: Sequence[ImageRecord],
    results: list[Generated],
    seed: int = 0,
) -> None:
    """Have the model rewrite every pair's rejected answer so that its planted error reads
    naturally. A rewrite the checks confirm replaces the substituted answer (its `error`
    says `"rewritten": true`); any other is dropped and counted, and the pair keeps the
    substituted answer. Each request's seed comes from `seed` (`generator.seed`), the image
    and the pair, never from its place in the batch."""
    from mminstruct.generate import Request, build_messages

    slots = []
    for record, result in zip(records, results, strict=True):
        known = facts(record)  # once per image, for all of its pairs
        for i, instruction in enumerate(result.instructions):
            slots += [(record, known, result, i, k) for k in range(len(instruction.preference))]
    requests = []
    for record, _, result, i, k in slots:
        pair = result.instructions[i].preference[k]
        error = pair["error"]
        change = f'"{error["original"]}" becomes "{error["replacement"]}"'
        context = f"Answer: {pair['chosen']}\nChange: {change}"
        base = image_seed(seed, record.dataset, record.image_id)
        request_seed = derived_seed(base, "preference", i, k)
        requests.append(Request(build_messages(template, context), seed=request_seed))
    completions = backend.complete(requests) if requests else []
    for (_, known, result, i, k), completion in zip(slots, completions, strict=True):
        _take_rewrite(known, result, i, k, completion)


def _take_rewrite(known: Facts, result: Generated, i: int, k: int, completion: Any) -> None:
    instruction = result.instructions[i]
    pair = instruction.preference[k]
    kind = pair["error"]["kind"]
    text = completion.text.strip().strip('"').removeprefix("Answer:").strip()
    ok = completion.finish_reason == "stop" and text and text != pair["chosen"]
    if not ok or not confirmed(known, kind, text):
        result.preference_dropped[f"rewrite_unconfirmed_{kind}"] += 1
        return
    rewritten = {**pair, "rejected": text, "error": {**pair["error"], "rewritten": True}}
    pairs = list(instruction.preference)
    pairs[k] = rewritten
    result.instructions[i] = replace(instruction, preference=tuple(pairs))


def _kinds_for(question: str, kinds: Sequence[str], rng: random.Random) -> list[str]:
    """The error kinds to try for an answer to `question`, in random order: a question
    that asks how many takes only a wrong count, so the rejected answer still answers it."""
    if _COUNT_QUESTION.search(question):
        return [k for k in kinds if k == "count"]
    return rng.sample(list(kinds), len(kinds))


def _answers_question(planted: Planted, question: str) -> bool:
    """Whether the rejected answer still answers the question: a swap never replaces the
    category the question asks about ("How many sinks?" -> "one tennis racket")."""
    if planted.kind != "object":
        return True
    asked = {c for m in find_mentions(_words(question)) for c in m.term.categories}
    swapped = find_mentions(_words(planted.original))
    return not any(set(m.term.categories) & asked for m in swapped)


def coherent(planted: Planted) -> bool:
    """Whether the rejected answer reads as one consistent (if wrong) answer: a swapped
    category is not still named elsewhere, and a changed count is not compared or reasoned
    from later ("two rackets ..., which makes the bowls the larger group")."""
    rest = (
        planted.text[: planted.start]
        + " "
        + planted.text[planted.start + len(planted.replacement) :]
    )
    words = _words(rest)
    if planted.kind == "object":
        gone = {c for m in find_mentions(_words(planted.original)) for c in m.term.categories}
        return not any(set(m.term.categories) & gone for m in find_mentions(words))
    if planted.kind == "count":
        return not _REASONS_FROM_COUNTS & set(words)
    return True


def _words(text: str) -> list[str]:
    return [w for w, _, _ in token_spans(text)]


def confirmed(known: Facts, kind: str, text: str) -> bool:
    """Whether the grounding checks flag `text` for an error of the planted `kind`."""
    return any(f.kind in CONFIRMED_BY[kind] for f in check_facts(known, text))


# --------------------------------------------------------------------------- planting


def plant_object(text: str, record: ImageRecord, known: Any, rng: random.Random) -> Planted | None:
    """Swap one named category for an absent one of, preferably, the same supercategory."""
    spans = token_spans(text)
    words = [w for w, _, _ in spans]
    absent = sorted(known.vocabulary - set(known.boxes) - known.mentioned)
    present = set(known.boxes)
    mentions = [m for m in find_mentions(words) if len(m.term.categories) == 1]
    mentions = [m for m in mentions if m.term.categories[0] in present and m.term.exact]
    if not absent or not mentions:
        return None
    mention = rng.choice(mentions)
    category = mention.term.categories[0]
    related = [c for c in absent if SUPERCATEGORY.get(c) == SUPERCATEGORY.get(category)]
    if not related:
        return None  # nothing of the same kind to swap in: a cat for skis is no lesson
    swap = rng.choice(related)
    forms = noun(swap)
    new = forms.plural if mention.term.plural else forms.singular
    start, end = spans[mention.start][1], spans[mention.end - 1][2]
    if mention.start > 0 and words[mention.start - 1] in ("a", "an"):
        start, new = spans[mention.start - 1][1], with_article(new)
    return _planted(text, start, end, new, "object", f"no {swap} in the image")


def plant_count(text: str, record: ImageRecord, known: Any, rng: random.Random) -> Planted | None:
    """Change a stated number of a category by one: "three dogs" -> "four dogs", "one
    dog" -> "two dogs"."""
    spans = token_spans(text)
    words = [w for w, _, _ in spans]
    numbered = []
    for mention in find_mentions(words):
        k = mention.start - 1
        if k >= 0 and words[k] == "one" and not mention.term.plural and mention.term.exact:
            return _one_more(text, spans, mention)
        if k >= 0 and mention.term.plural and NUMBER_VALUES.get(words[k], 0) >= 2:
            numbered.append((k, NUMBER_VALUES[words[k]]))
        elif k >= 0 and mention.term.plural and words[k].isdigit() and int(words[k]) >= 2:
            numbered.append((k, int(words[k])))
    if not numbered:
        return None
    k, n = rng.choice(numbered)
    changed = n + 1 if n == 2 or rng.random() < 0.5 else n - 1
    new = number_word(changed) if not words[k].isdigit() else str(changed)
    start, end = spans[k][1], spans[k][2]
    return _planted(text, start, end, new, "count", f"the image has {n}, not {changed}")


def plant_position(
    text: str, record: ImageRecord, known: Any, rng: random.Random
) -> Planted | None:
    """Flip every direction word (left/right, top/bottom, above/below) of one sentence
    that also names an object."""
    spans = token_spans(text)
    words = [w for w, _, _ in spans]
    sentences = _sentence_ranges(words)
    candidates = []
    for first, last in sentences:
        flips = [k for k in range(first, last) if _is_side(words, k)]
        if flips and find_mentions(words[first:last]):
            candidates.append(flips)
    if not candidates:
        return None
    flips = rng.choice(candidates)
    start, end = spans[flips[0]][1], spans[flips[-1]][2]
    region = text[start:end]
    for k in reversed(flips):  # offsets inside the region, from its end
        a, b = spans[k][1] - start, spans[k][2] - start
        region = _splice(region, a, b, _FLIPS[words[k]])
    changed = ", ".join(f"{words[k]} -> {_FLIPS[words[k]]}" for k in flips)
    return _planted(text, start, end, region, "position", f"flipped {changed}")


def plant_relation(
    text: str, record: ImageRecord, known: Any, rng: random.Random
) -> Planted | None:
    """Say a relation between two named objects wrongly, one of two ways: its predicate
    turned into its opposite ("the cup is on the table" -> "the cup is under the table"),
    or its subject and object swapped ("the table is on the cup"). Only relations that the
    relation check reads (mention, verbs, preposition, then the other mention) qualify."""
    spans = token_spans(text)
    words = [w for w, _, _ in spans]
    options = []
    for a, b in itertools.pairwise(find_mentions(words)):
        family, first, last = relation_preposition(words, a.end)
        if family is None or not a.term.categories or not b.term.categories:
            continue
        if any(w not in DETERMINERS and not adjective_like(w) for w in words[last : b.start]):
            continue  # the preposition does not lead to b: "on the left, ..."
        opposite = _OPPOSITE_PREDICATES.get(tuple(words[first:last]))
        if opposite is not None:
            start, end = spans[first][1], spans[last - 1][2]
            detail = f"the opposite of {text[start:end]!r}"
            options.append(_planted(text, start, end, " ".join(opposite), "relation", detail))
        if family != "next to" and a.term.plural == b.term.plural:  # "next to" is symmetric
            options.append(_swapped(text, spans, words, a, b))
    return rng.choice(options) if options else None


def _swapped(
    text: str, spans: list[tuple[str, int, int]], words: list[str], a: Any, b: Any
) -> Planted:
    """`text` with mentions a and b (and an "a"/"an" before either) trading places."""
    phrases = []
    for m in (a, b):
        article = m.start > 0 and words[m.start - 1] in ("a", "an")
        start = spans[m.start - 1 if article else m.start][1]
        noun = text[spans[m.start][1] : spans[m.end - 1][2]]
        if noun[:1].isupper() and not noun[1:2].isupper():  # "Cups are ..." at the start
            noun = noun[0].lower() + noun[1:]
        phrases.append((start, spans[m.end - 1][2], article, noun))
    (a_start, a_end, a_article, a_noun), (b_start, b_end, b_article, b_noun) = phrases
    first = with_article(b_noun) if a_article else b_noun
    second = with_article(a_noun) if b_article else a_noun
    new = first + text[a_end:b_start] + second
    detail = f"subject and object swapped: {a_noun!r} and {b_noun!r}"
    return _planted(text, a_start, b_end, new, "relation", detail)


def _one_more(text: str, spans: list[tuple[str, int, int]], mention: Any) -> Planted | None:
    """ "one sink" -> "two sinks" (the noun made plural with the number)."""
    categories = mention.term.categories
    if len(categories) != 1:
        return None
    first, last = mention.start - 1, mention.end - 1
    words = [w for w, _, _ in spans]
    before = ["are"] if first > 0 and words[first - 1] == "is" else []
    after = ["are"] if words[last + 1 : last + 2] == ["is"] else []
    first, last = first - len(before), last + len(after)  # the verb agrees: "is" -> "are"
    new = " ".join([*before, "two", noun(categories[0]).plural, *after])
    start, end = spans[first][1], spans[last][2]
    return _planted(text, start, end, new, "count", "the image has 1, not 2")


PLANTERS = {
    "object": plant_object,
    "count": plant_count,
    "position": plant_position,
    "relation": plant_relation,
}


def _planted(text: str, start: int, end: int, new: str, kind: str, detail: str) -> Planted:
    """`text` with [start, end) replaced by `new` (its capital kept), as a Planted."""
    rejected = _splice(text, start, end, new)
    replacement = rejected[start : len(rejected) - (len(text) - end)]
    return Planted(rejected, kind, detail, start, end, text[start:end], replacement)


def _splice(text: str, start: int, end: int, new: str) -> str:
    """Replace text[start:end], keeping a capital first letter."""
    if text[start : start + 1].isupper():
        new = new[:1].upper() + new[1:]
    return text[:start] + new + text[end:]


# Words before a direction word that make it a side: "the left", "far right", "top-left".
_SIDE_AFTER = frozenset({"the", "far", "very", "extreme", "-", "and", "or", *_FLIPS})


def _is_side(words: Sequence[str], k: int) -> bool:
    """Whether words[k] names a side or direction that flipping makes false: "above", "the
    left", "left of"; not "right next to", "on top of" or "the dog left"."""
    word = words[k]
    if word not in _FLIPS:
        return False
    if word in ("above", "below") or (k > 0 and words[k - 1] in _SIDE_AFTER):
        return True
    return word in ("left", "right") and words[k + 1 : k + 2] == ["of"]


def _sentence_ranges(words: Sequence[str]) -> list[tuple[int, int]]:
    ranges, start = [], 0
    for k, word in enumerate(words):
        if word in (".", "!", "?", ";"):
            ranges.append((start, k + 1))
            start = k + 1
    if start < len(words):
        ranges.append((start, len(words)))
    return ranges


def _find(haystack: tuple[str, ...], needle: tuple[str, ...]) -> int | None:
    for k in range(len(haystack) - len(needle) + 1):
        if haystack[k : k + len(needle)] == needle:
            return k
    return None
