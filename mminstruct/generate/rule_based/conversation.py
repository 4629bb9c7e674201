"""The conversation task: count, exists, absent, where, biggest, caption and relation turns."""

from __future__ import annotations

import random

from mminstruct.generate.rule_based.captions import _clean_captions
from mminstruct.generate.rule_based.phrasing import _Say
from mminstruct.generate.rule_based.relations import _relation_turns
from mminstruct.generate.rule_based.scene import (
    Scene,
    absent_categories,
    biggest_category,
    region,
    some,
)
from mminstruct.generate.rule_based.turns import _choose, _Turn
from mminstruct.records import ImageRecord
from mminstruct.words import noun, number_word


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
        turns.append(_Turn("exists", frozenset({category}), question, answer))
    return turns


def _absent_turns(record: ImageRecord, say: _Say, rng: random.Random) -> list[_Turn]:
    absent = absent_categories(record)
    turns = []
    for category in rng.sample(absent, min(3, len(absent))):
        values = {"object": noun(category).singular, "a_object": noun(category).a}
        question = say("conversation.exists.question", **values)
        answer = say("conversation.exists.answer_no", **values)
        turns.append(_Turn("absent", frozenset({category}), question, answer))
    return turns


def _where_turns(scene: Scene, say: _Say) -> list[_Turn]:
    turns = []
    for category, obj in scene.singles.items():
        forms = noun(category)
        where = region(obj, scene.width, scene.height)
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


def _conversation(
    record: ImageRecord, scene: Scene, say: _Say, rng: random.Random, limit: int
) -> list[tuple[str, str]]:
    if not record.objects and not record.captions:
        return []  # "no" answers alone do not make a conversation
    candidates = [
        *_count_turns(scene, say),
        *_exists_turns(scene, say),
        *_absent_turns(record, say, rng),
        *_where_turns(scene, say),
        *_biggest_turns(record, say),
        *_caption_turns(record, say, rng),
        *_relation_turns(scene, say, rng),
    ]
    return [(t.question, t.answer) for t in _choose(candidates, limit, rng)]
