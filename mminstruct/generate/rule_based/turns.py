"""One question/answer turn, and choosing a varied few of them for a conversation or reasoning."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class _Turn:
    kind: str  # question type, so that a conversation mixes types
    subjects: frozenset[str]  # what it is about, so that no category is asked about twice
    question: str
    answer: str


class Asked(tuple):
    """A (question, answer) pair that also knows its question type (`kind`): it unpacks and
    compares as the plain pair, and `generate_instructions` stamps the kinds per turn."""

    kind: str

    def __new__(cls, question: str, answer: str, kind: str) -> Asked:
        pair = super().__new__(cls, (question, answer))
        pair.kind = kind
        return pair


def typed_pairs(turns: list[_Turn], question: Callable[[str], str] = str) -> list[tuple[str, str]]:
    """The chosen turns as (question, answer) pairs carrying their question type, less any
    "yes:"/"no:" verdict (a conversation's `yes:exists` is an `exists` question)."""
    return [Asked(question(t.question), t.answer, t.kind.rpartition(":")[2]) for t in turns]


def _choose(
    candidates: list[_Turn],
    limit: int,
    rng: random.Random,
    weights: dict[str, float] | None = None,
) -> list[_Turn]:
    """Up to `limit` turns, taking question types in turn (in random order, a type of
    weight w coming early w times as readily as one of weight 1), no repeats."""
    by_kind: dict[str, list[_Turn]] = {}
    for turn in candidates:
        by_kind.setdefault(turn.kind, []).append(turn)
    kinds = list(by_kind)
    rng.shuffle(kinds)
    if weights:  # weighted random order (Efraimidis-Spirakis keys)
        keys = {kind: rng.random() ** (1 / weights.get(kind, 1.0)) for kind in kinds}
        kinds.sort(key=keys.__getitem__, reverse=True)
    for kind in kinds:
        rng.shuffle(by_kind[kind])
    chosen: list[_Turn] = []
    used: set[str] = set()
    while len(chosen) < limit and any(by_kind.values()):
        for kind in kinds:
            turn = _pop_fresh(by_kind[kind], used)
            if turn is not None and len(chosen) < limit:
                chosen.append(turn)
                used |= turn.subjects
    return chosen


def _pop_fresh(turns: list[_Turn], used: set[str]) -> _Turn | None:
    while turns:
        turn = turns.pop()
        if not turn.subjects & used:
            return turn
    return None
