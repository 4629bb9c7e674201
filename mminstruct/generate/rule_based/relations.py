"""Relations between objects: doing/choice/what conversation turns, and facts for descriptions.

Which predicates make which question, and how a predicate reads as a verb phrase.
"""

from __future__ import annotations

import random

from mminstruct.generate.rule_based.phrasing import _Say
from mminstruct.generate.rule_based.scene import _PLACES, Scene
from mminstruct.generate.rule_based.turns import _Turn
from mminstruct.records import Relation
from mminstruct.words import join_phrases, noun

# Relations: which predicates make which question.
_PEOPLE = frozenset(
    {"person", "man", "woman", "boy", "girl", "child", "kid", "lady", "guy", "player"}
    | {"skier", "surfer", "skateboarder", "rider", "batter", "catcher", "pitcher"}
)
_ACTIONS = {  # predicates in the third person, as "-ing" forms
    "wears": "wearing", "holds": "holding", "rides": "riding", "carries": "carrying",
    "eats": "eating", "uses": "using", "throws": "throwing", "catches": "catching",
    "pulls": "pulling", "drinks": "drinking", "pushes": "pushing", "feeds": "feeding",
    "watches": "watching", "hits": "hitting", "swings": "swinging", "flies": "flying",
}  # fmt: skip
_OPPOSITES = {
    "on": "under", "under": "on", "above": "below", "below": "above",
    "left of": "right of", "right of": "left of", "in front of": "behind",
    "behind": "in front of", "on top of": "under",
}  # fmt: skip
_SAID = {"left of": "to the left of", "right of": "to the right of"}


def _said(predicate: str) -> str:
    return _SAID.get(predicate, predicate)


def _action(predicate: str) -> str | None:
    """The "-ing" form of an action predicate ("riding", "wears" -> "wearing"), else None."""
    first, _, rest = predicate.partition(" ")
    verb = _ACTIONS.get(first, first if first.endswith("ing") and len(first) > 4 else None)
    if verb is None or rest.split(" ")[-1:] == ["of"]:
        return None
    return f"{verb} {rest}".strip()


def _unique_pair(relation: Relation, scene: Scene) -> tuple[str, str] | None:
    """The two category names, when each names exactly one object ("the man", "the horse")."""
    subject = scene.objects[relation.subject].category
    obj = scene.objects[relation.object].category
    if subject == obj or subject not in scene.singles or obj not in scene.singles:
        return None
    return subject, obj


def _relation_turns(scene: Scene, say: _Say, rng: random.Random) -> list[_Turn]:
    """Questions about what objects do to each other and where they are relative to each
    other, each about two objects that are the only ones of their name."""
    turns = []
    for relation in scene.relations:
        pair = _unique_pair(relation, scene)
        if pair is None:
            continue
        action = None if relation.derived else _action(relation.predicate)
        if action and pair[0] in _PEOPLE:
            turns.append(_doing_turn(pair, action, say))
        if relation.predicate in _OPPOSITES and not _contradicted(relation, scene):
            turns.append(_choice_turn(pair, relation.predicate, say, rng))
        if _plain_place(relation, scene):
            turns.append(_place_turn(pair, relation.predicate, say))
    return turns + _what_turns(scene, say)


def _plain_place(relation: Relation, scene: Scene) -> bool:
    """Whether the relation says where one object is next to another in plain words
    ("left of", "on", "next to") and nothing contradicts it."""
    if relation.predicate == "next to":
        return True
    return relation.predicate in _OPPOSITES and not _contradicted(relation, scene)


def _place_turn(pair: tuple[str, str], predicate: str, say: _Say) -> _Turn:
    """ "Where is the cup in relation to the table?" -> "The cup is on the table." """
    values = {"subject": noun(pair[0]).singular, "object": noun(pair[1]).singular}
    question = say("conversation.relation_where.question", **values)
    answer = say("conversation.relation_where.answer", predicate=_said(predicate), **values)
    return _Turn("relation_where", frozenset(pair), question, answer)


def relation_checks(scene: Scene, say: _Say) -> list[_Turn]:
    """Yes/no questions about a relation: asked as annotated ("yes") or as its opposite
    ("no", and the answer says what holds). Kinds "yes:relation_check" and "no:relation_check"."""
    turns = []
    for relation in scene.relations:
        pair = _unique_pair(relation, scene)
        if pair is None or relation.predicate not in _OPPOSITES:
            continue
        if _contradicted(relation, scene):
            continue
        true, false = _said(relation.predicate), _said(_OPPOSITES[relation.predicate])
        values = {"subject": noun(pair[0]).singular, "object": noun(pair[1]).singular}
        for asked, verdict in ((true, "yes"), (false, "no")):
            question = say("conversation.relation_check.question", predicate=asked, **values)
            answer = say(f"conversation.relation_check.answer_{verdict}", predicate=true, **values)
            turns.append(_Turn(f"{verdict}:relation_check", frozenset(pair), question, answer))
    return turns


def _doing_turn(pair: tuple[str, str], action: str, say: _Say) -> _Turn:
    values = {"subject": noun(pair[0]).singular, "object": noun(pair[1]).singular}
    question = say("conversation.relation_doing.question", **values)
    answer = say("conversation.relation_doing.answer", action=action, **values)
    return _Turn("relation_doing", frozenset(pair), question, answer)


def _contradicted(relation: Relation, scene: Scene) -> bool:
    """Whether the annotations also say the opposite about the same two objects."""
    opposite = _OPPOSITES[relation.predicate]
    return any(
        {r.subject, r.object} == {relation.subject, relation.object}
        and (r.predicate == opposite) == (r.subject == relation.subject)
        for r in scene.relations
    )


def _choice_turn(pair: tuple[str, str], predicate: str, say: _Say, rng: random.Random) -> _Turn:
    options = [_said(predicate), _said(_OPPOSITES[predicate])]
    rng.shuffle(options)
    values = {"subject": noun(pair[0]).singular, "object": noun(pair[1]).singular}
    question = say(
        "conversation.relation_choice.question", first=options[0], second=options[1], **values
    )
    answer = say("conversation.relation_choice.answer", predicate=_said(predicate), **values)
    return _Turn("relation_choice", frozenset(pair), question, answer)


def _what_turns(scene: Scene, say: _Say) -> list[_Turn]:
    """ "What is on the table?": every annotated subject with that predicate and object."""
    groups: dict[tuple[str, int], list[str]] = {}
    for relation in scene.relations:
        obj = scene.objects[relation.object].category
        subject = scene.objects[relation.subject].category
        verbs = _where_verbs(relation.predicate)
        if relation.derived or not verbs or obj not in scene.singles or subject not in scene.counts:
            continue
        names = groups.setdefault((relation.predicate, relation.object), [])
        if subject != obj and subject not in names:
            names.append(subject)
    turns = []
    for (predicate, index), subjects in groups.items():
        obj = noun(scene.objects[index].category).singular
        one, many = _where_verbs(predicate)
        question = say("conversation.relation_what.question", verb=one, object=obj)
        answer = say(
            "conversation.relation_what.answer",
            subjects=join_phrases([noun(s).a for s in subjects]),
            verb=one if len(subjects) == 1 else many,
            object=obj,
        )
        subject_of = frozenset({scene.objects[index].category})
        turns.append(_Turn("relation_what", subject_of, question, answer))
    return turns


def _where_verbs(predicate: str) -> tuple[str, str] | None:
    """A where-predicate as it reads after one subject and after several: ("is on", "are
    on"), ("rests on", "rest on"); None when the predicate says no place ("has", "of")."""
    words = predicate.split(" ")
    if words[-1] not in _PLACES or len(words) > 4:
        return None
    if _is_place(predicate):
        return f"is {predicate}", f"are {predicate}"
    verb = words[0]
    if len(words) == 2 and verb.endswith("s") and not verb.endswith(("ss", "us")):
        base = verb[:-2] if verb.endswith(("ches", "shes", "sses", "xes")) else verb[:-1]
        return predicate, " ".join([base, *words[1:]])
    return None


def relation_facts(scene: Scene, limit: int = 2) -> list[str]:
    """Up to `limit` relations between unique objects, as clauses for a description ("the
    man is riding the horse", "the cup is to the left of the bowl"), most prominent first;
    relations derived from boxes only where they say a plain place."""
    facts = []
    for relation in scene.relations:
        pair = _unique_pair(relation, scene)
        if pair is None or len(facts) >= limit:
            continue
        if relation.derived and not _plain_place(relation, scene):
            continue
        verb = f"is {_said(relation.predicate)}" if relation.derived else None
        verb = verb or _verb_phrase(relation.predicate)
        if verb is None:
            continue
        subject, obj = noun(pair[0]).singular, noun(pair[1]).singular
        facts.append(f"the {subject} {verb} the {obj}")
    return facts


def _verb_phrase(predicate: str) -> str | None:
    """How a predicate reads after a singular subject: "is riding", "is parked on", "has";
    None for predicates that do not read as a clause ("of", "with")."""
    action = _action(predicate)
    if action:
        return f"is {action}"
    if _is_place(predicate):
        return f"is {predicate}"
    return "has" if predicate in ("has", "have") else None


def _is_place(predicate: str) -> bool:
    """Whether a predicate says where something is ("on", "next to", "parked on"), so that
    "X is <predicate> Y" reads well."""
    words = predicate.split(" ")
    place_word = words[0] in _PLACES or words[0] in ("next", "in", "near", "beside")
    participle = words[0].endswith(("ed", "ing")) and len(words) > 1
    return (place_word or participle) and words[-1] in _PLACES | {"to", "of"}
