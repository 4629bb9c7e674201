"""A text's claims, sentence by sentence (cached): what the five checks read.

Five checks read each sentence of an answer and compare what it claims with the record:

- **count**: "three people", "two pairs of skis", "a man and a woman" (two people) against
  the boxes of the category. A number stated for a kind ("two men") or outside a
  whole-image statement ("two dogs are playing") is a lower bound; "there are two dogs
  (in the image)" is the exact count. Crowd boxes make the annotated count a lower bound.
- **object**: a category named with a determiner ("a cat", "the laptop") that has no box,
  no caption mentioning it, and whose annotation is exhaustive (`record.vocabulary`); a
  boxed thing it may be an unboxed part of (a laptop's keyboard) counts as a box of it.
- **absence**: "there is no dog", "I don't see a TV", "no cars are visible" while the
  category is annotated.
- **position**: "the bench is on the left (side of the image)" while every box of the
  category is clearly on the other side.
- **relation**: "X on / under / above / below / next to / left of / right of Y" against the
  annotated relations, then the boxes (`spatial.derive_relation`, and boxes shifted by
  a tenth of the image; "on" also when the boxes are a tenth of the image apart), when
  every pair of an X box and a Y box disagrees.

Precision comes before recall: hedged sentences ("may", "probably", "or"), negated
clauses, questions, depictions ("a poster of a horse"), compounds ("hot dog", "bus stop"),
possessives and generic bare plurals make no claim, and a claim a caption also makes is
never flagged (the generator was told so). Words that name a category only sometimes
("table": COCO's dining table is not every table) only hint. A check that cannot decide
says nothing.
"""

from __future__ import annotations

import functools

from mminstruct.checks.grounding.placement import position_claims, relation_claims
from mminstruct.checks.grounding.presence import absence_claims, count_claims, object_claims
from mminstruct.checks.grounding.sentences import Claim, Sentence, split_sentences

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
