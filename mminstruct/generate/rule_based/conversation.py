"""The conversation task: count, where, biggest, caption, purpose, attribute and relation
turns, with at most a quarter of yes/no questions (exists, absent, count checks), whose
answers are "yes" and "no" equally often."""

from __future__ import annotations

import random

from mminstruct.generate.rule_based.captions import _clean_captions
from mminstruct.generate.rule_based.knowledge import knowledge_of
from mminstruct.generate.rule_based.phrasing import _Say
from mminstruct.generate.rule_based.relations import _relation_turns, relation_checks
from mminstruct.generate.rule_based.scene import (
    Scene,
    absent_categories,
    biggest_category,
    clear_region,
    one_object,
    some,
)
from mminstruct.generate.rule_based.turns import _choose, _Turn, typed_pairs
from mminstruct.records import ImageRecord
from mminstruct.words import counted, join_phrases, noun, number_word

POLAR_RATE = 0.22  # the share of yes/no questions among all turns, on average (<= 1/4)
CAPTION_CHANCE = 0.75  # a caption never overlaps other turns' subjects: offered this often
# Question types that are rarer (they need a relation, attributes, a clear winner) come
# first more readily, and counts, possible in almost every image, less readily, so that no
# type crowds out the others.
_WEIGHTS = {"count": 0.6, "where": 1.5, "biggest": 2.0, "attribute": 2.0} | {
    kind: 2.5 for kind in ("relation_doing", "relation_choice", "relation_what", "relation_where")
}


def _count_turns(scene: Scene, say: _Say) -> list[_Turn]:
    turns = []
    for category in scene.countable:
        n, forms = scene.counts[category], noun(category)
        question = say("conversation.count.question", objects=forms.plural)
        if n == 1:
            answer = say("conversation.count.answer_one", object=forms.singular, a_object=forms.a)
        else:
            answer = say(
                "conversation.count.answer_many",
                count=number_word(n),
                object=forms.singular,
                objects=forms.plural,
            )
        turns.append(_Turn("count", frozenset({category}), question, answer))
    return turns


def _exists_turns(scene: Scene, say: _Say) -> list[_Turn]:
    turns = []
    for category in scene.counts:
        values = {"object": noun(category).singular, "a_object": noun(category).a}
        question = say("conversation.exists.question", **values)
        answer = say("conversation.exists.answer_yes", some=some(category, scene), **values)
        turns.append(_Turn("yes:exists", frozenset({category}), question, answer))
    return turns


def _absent_turns(record: ImageRecord, say: _Say, rng: random.Random) -> list[_Turn]:
    absent = absent_categories(record)
    turns = []
    for category in rng.sample(absent, min(3, len(absent))):
        values = {"object": noun(category).singular, "a_object": noun(category).a}
        question = say("conversation.exists.question", **values)
        answer = say("conversation.exists.answer_no", **values)
        turns.append(_Turn("no:exists", frozenset({category}), question, answer))
    return turns


def _count_check_turns(scene: Scene, say: _Say, rng: random.Random) -> list[_Turn]:
    """ "Are there three dogs?": asked with the true count ("yes") or one off ("no")."""
    turns = []
    for category in scene.countable:
        n = scene.counts[category]
        if n < 2:
            continue
        for asked, verdict in ((n, "yes"), (n + rng.choice((-1, 1)) if n > 2 else 3, "no")):
            question = say("conversation.count_check.question", some=counted(asked, category))
            answer = say(f"conversation.count_check.answer_{verdict}", some=counted(n, category))
            turns.append(_Turn(f"{verdict}:count_check", frozenset({category}), question, answer))
    return turns


def _where_turns(scene: Scene, say: _Say) -> list[_Turn]:
    turns = []
    for category, obj in scene.singles.items():
        where = clear_region(obj, scene)
        if where is None:
            continue
        forms = noun(category)
        question = say("conversation.where.question", object=forms.singular)
        answer = say("conversation.where.answer", object=forms.singular, region=where)
        turns.append(_Turn("where", frozenset({category}), question, answer))
    return turns


def _biggest_turns(record: ImageRecord, say: _Say) -> list[_Turn]:
    category = biggest_category(record) if record.vocabulary else None
    if category is None:
        return []
    question = say("conversation.biggest.question")
    answer = say("conversation.biggest.answer", a_object=noun(category).a)
    return [_Turn("biggest", frozenset({category}), question, answer)]


def _caption_turns(record: ImageRecord, say: _Say, rng: random.Random) -> list[_Turn]:
    captions = _clean_captions(record)
    if not captions:
        return []
    question = say("conversation.caption.question")
    answer = say("conversation.caption.answer", caption=rng.choice(captions))
    return [_Turn("caption", frozenset({"<caption>"}), question, answer)]


def _purpose_turns(scene: Scene, say: _Say) -> list[_Turn]:
    """ "What is the kite for?" (one kite) or "What are the kites for?" (several), answered
    from the knowledge table."""
    turns = []
    for category in scene.counts:
        known = knowledge_of(category) if category != "person" else None
        if known is None or not known.use or category not in scene.vocabulary:
            continue
        forms = noun(category)
        if one_object(category, scene):
            question = say("conversation.purpose.question", object=forms.singular)
            answer = say("conversation.purpose.answer", a_object=forms.a, use=known.use)
        else:
            question = say("conversation.purpose_many.question", objects=forms.plural)
            answer = say("conversation.purpose_many.answer", objects=forms.plural, use=known.use)
        turns.append(_Turn("purpose", frozenset({category}), question, answer))
    return turns


def _attribute_turns(scene: Scene, say: _Say) -> list[_Turn]:
    """ "What does the shirt look like?": the annotated attributes of a single object."""
    turns = []
    for category, obj in scene.singles.items():
        attributes = [a for a in obj.attributes if a.replace(" ", "").isalpha()][:2]
        if not attributes:
            continue
        values = {"object": noun(category).singular, "attributes": join_phrases(attributes)}
        question = say("conversation.attribute.question", **values)
        answer = say("conversation.attribute.answer", **values)
        turns.append(_Turn("attribute", frozenset({category}), question, answer))
    return turns


def _polar(candidates: list[_Turn], used: set[str], rng: random.Random, n: int) -> list[_Turn]:
    """Up to `n` yes/no turns, about fresh subjects where possible, "yes" and "no" taken in turn from a
    random first one, so that each answer comes up about half the time. Kinds read
    "yes:<type>" / "no:<type>"; the type is drawn first, then a turn of it."""
    fresh = [t for t in candidates if not t.subjects & used]
    verdicts = ["yes", "no"] if rng.random() < 0.5 else ["no", "yes"]
    chosen: list[_Turn] = []
    for k in range(n):
        for verdict in (verdicts[k % 2], verdicts[(k + 1) % 2]):
            pool = [t for t in candidates if t.kind.startswith(verdict) and t not in chosen]
            pool = [t for t in pool if t in fresh] or pool  # a fresh subject, if any
            if pool:  # a question type first, so that no one type crowds out the others
                kind = rng.choice(sorted({t.kind for t in pool}))
                chosen.append(rng.choice([t for t in pool if t.kind == kind]))
                break
    return chosen


def _polar_slots(open_turns: int, rng: random.Random) -> int:
    """How many yes/no turns go with `open_turns` others: on average POLAR_RATE of all
    turns (a fraction is drawn by `rng`), and one when there is nothing else to ask."""
    if open_turns == 0:
        return 1
    share = open_turns * POLAR_RATE / (1 - POLAR_RATE)
    return int(share) + (rng.random() < share - int(share))


def _conversation(
    record: ImageRecord, scene: Scene, say: _Say, rng: random.Random, limit: int
) -> list[tuple[str, str]]:
    if not record.objects and not record.captions:
        return []  # "no" answers alone do not make a conversation
    open_ended = [
        *_count_turns(scene, say),
        *_where_turns(scene, say),
        *_biggest_turns(record, say),
        *_purpose_turns(scene, say),
        *_attribute_turns(scene, say),
        *_relation_turns(scene, say, rng),
    ]
    if rng.random() < CAPTION_CHANCE or not open_ended:  # the caption, or nothing else
        open_ended += _caption_turns(record, say, rng)
    polar = [
        *_exists_turns(scene, say),
        *_absent_turns(record, say, rng),
        *_count_check_turns(scene, say, rng),
        *relation_checks(scene, say),
    ]
    chosen = _choose(open_ended, max(1, limit - 1), rng, _WEIGHTS)
    slots = min(limit - len(chosen), _polar_slots(len(chosen), rng))
    used = {s for t in chosen for s in t.subjects}
    for turn in _polar(polar, used, rng, slots):
        chosen.insert(rng.randrange(len(chosen) + 1), turn)
    return typed_pairs(chosen)
