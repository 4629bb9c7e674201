"""Rule-based relation turns, checked: which relation question a turn asks, and that its
answer says what an annotated relation says. Shared by the relation tests of several folders.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from mminstruct.records import ImageRecord, Relation

REPO = Path(__file__).resolve().parents[2]  # tests/support/ -> the repository
WORDING = yaml.safe_load((REPO / "templates" / "rule_based.yaml").read_text())
POOLS = WORDING["conversation"]
RELATION_KINDS = (
    *("relation_doing", "relation_choice", "relation_what", "relation_where"),
    "relation_check",
)

# English the relation questions rely on, written out here by hand.
OPPOSITES = {
    "on": "under",
    "under": "on",
    "above": "below",
    "below": "above",
    "left of": "right of",
    "right of": "left of",
    "in front of": "behind",
    "behind": "in front of",
    "on top of": "under",
}
SAID = {"left of": "to the left of", "right of": "to the right of"}
ING = {
    "wears": "wearing",
    "holds": "holding",
    "rides": "riding",
    "carries": "carrying",
    "eats": "eating",
    "uses": "using",
    "pushes": "pushing",
    "pulls": "pulling",
    "throws": "throwing",
    "catches": "catching",
    "drinks": "drinking",
    "feeds": "feeding",
    "watches": "watching",
    "hits": "hitting",
    "swings": "swinging",
    "flies": "flying",
}


def fill(template: str, values: dict[str, str]) -> str:
    """A phrasing with its values, in lower case (answers are compared in lower case)."""
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], template).lower()


def renderings(kind: str, part: str, **values: str) -> set[str]:
    return {fill(t, values) for t in POOLS[kind][part]}


def question_pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{\w+\}", template)
    return re.compile("(?i)^" + "(.+)".join(map(re.escape, parts)) + "$")


def _question_pools(section: dict) -> list[list[str]]:
    """Every question pool of a section of the wording file (the detail task's is a list)."""
    if isinstance(section.get("question"), list):
        return [section["question"]]
    return [pool["question"] for pool in section.values() if isinstance(pool, dict)]


OTHER_QUESTIONS = [  # every other question, of every task: none is a relation question
    question_pattern(t)
    for name, section in WORDING.items()
    for key, pool in ((name, s) for s in _question_pools(section))
    if not (name == "conversation" and any(pool == POOLS[k]["question"] for k in RELATION_KINDS))
    for t in pool
]
RELATION_QUESTIONS = {
    kind: [question_pattern(t) for t in POOLS[kind]["question"]] for kind in RELATION_KINDS
}


def relation_kind(question: str) -> str | None:
    """Which relation question this is, if it is one (the first question has <image>)."""
    question = question.replace("<image>", "").strip()
    if any(p.match(question) for p in OTHER_QUESTIONS):
        return None
    for kind, patterns in RELATION_QUESTIONS.items():
        if any(p.match(question) for p in patterns):
            return kind
    return None


def action_forms(predicate: str) -> set[str]:
    first, _, rest = predicate.partition(" ")
    return {predicate, f"{ING.get(first, first)} {rest}".strip()}


def check_relation_turn(
    record: ImageRecord, relations: list[Relation], kind: str, question: str, answer: str
) -> Relation:
    """The relation a turn is about; fails unless the question and the answer both say
    what that relation says, about objects that are the only ones of their name."""
    question = question.replace("<image>", "").strip().lower()
    answer = answer.lower()
    objects = record.objects
    names = Counter(o.category for o in objects)
    for r in relations:
        s, p, o = objects[r.subject].category, r.predicate, objects[r.object].category
        pair = {"subject": s, "object": o}
        if kind == "relation_doing":
            asked = question in renderings(kind, "question", **pair)
            told = any(
                answer in renderings(kind, "answer", action=a, **pair) for a in action_forms(p)
            )
            if asked and told and not r.derived:
                assert names[s] == names[o] == 1, f"'the {s}', 'the {o}' are not unique"
                return r
        elif kind == "relation_choice" and p in OPPOSITES:
            said, other = SAID.get(p, p), SAID.get(OPPOSITES[p], OPPOSITES[p])
            options = [{"first": said, "second": other}, {"first": other, "second": said}]
            asked = any(question in renderings(kind, "question", **pair, **v) for v in options)
            if asked and answer in renderings(kind, "answer", predicate=said, **pair):
                assert names[s] == names[o] == 1, f"'the {s}', 'the {o}' are not unique"
                contrary = {(r.subject, OPPOSITES[p], r.object), (r.object, p, r.subject)}
                assert not contrary & {(x.subject, x.predicate, x.object) for x in relations}
                return r
        elif kind == "relation_where" and (p in OPPOSITES or p == "next to"):
            said = SAID.get(p, p)
            asked = question in renderings(kind, "question", **pair)
            if asked and answer in renderings(kind, "answer", predicate=said, **pair):
                assert names[s] == names[o] == 1, f"'the {s}', 'the {o}' are not unique"
                return r
        elif kind == "relation_check" and p in OPPOSITES:
            said, other = SAID.get(p, p), SAID.get(OPPOSITES[p], OPPOSITES[p])
            for asked_as, verdict in ((said, "yes"), (other, "no")):
                asked = question in renderings(kind, "question", predicate=asked_as, **pair)
                told = renderings(kind, f"answer_{verdict}", predicate=said, **pair)
                if asked and answer in told:
                    assert names[s] == names[o] == 1, f"'the {s}', 'the {o}' are not unique"
                    return r
        elif kind == "relation_what" and not r.derived:
            said = what_subjects(answer, p, o)
            verbs = [f"is {p}", p]  # "is on", or a verb of its own: "rests on"
            asked = any(question in renderings(kind, "question", verb=v, object=o) for v in verbs)
            if asked and said:
                assert names[o] == 1, f"'the {o}' is not unique"
                annotated = {
                    objects[x.subject].category
                    for x in relations
                    if x.predicate == p and x.object == r.object
                }
                assert said <= annotated, (said, annotated)
                return r
    pytest.fail(f"{kind} turn says what no annotated relation says:\n  {question}\n  {answer}")


def what_subjects(answer: str, predicate: str, obj: str) -> set[str] | None:
    """The subjects a relation_what answer names ("a cup and a plate are on the table")."""
    templates = sorted(POOLS["relation_what"]["answer"], key=len, reverse=True)  # longest first
    for template in templates:
        marked = fill(template, {"subjects": "\0", "verb": "\1", "object": obj})
        pattern = re.escape(marked).replace("\\\0", "(.+?)").replace("\0", "(.+?)")
        verb = f"(is|are) {re.escape(predicate)}|{re.escape(predicate)}|\\w+ " + re.escape(
            predicate.partition(" ")[2]
        )
        pattern = pattern.replace("\\\1", f"({verb})").replace("\1", f"({verb})")
        match = re.fullmatch(pattern, answer)
        if match:
            phrases = re.split(r", | and ", match.group(1))
            verb_used = match.group(2)
            if verb_used.startswith(("is ", "are ")):
                assert verb_used.startswith("are ") == (len(phrases) > 1)
            elif len(phrases) == 1 and verb_used != predicate:
                return None  # another predicate's verb ("hangs on" is not "hanging on")
            else:  # a verb of its own agrees: "rests on" for one, "rest on" for several
                assert (verb_used == predicate) == (len(phrases) == 1), verb_used
            return {re.sub(r"^(a|an) ", "", phrase) for phrase in phrases}
    return None


def relation_turns(record: ImageRecord, turns, relations=None) -> list[tuple[str, Relation]]:
    """Every relation turn among `turns`, checked; (kind, relation it is about)."""
    relations = list(record.relations if relations is None else relations)
    found = []
    for question, answer in turns:
        kind = relation_kind(question)
        if kind:
            found.append((kind, check_relation_turn(record, relations, kind, question, answer)))
    return found
