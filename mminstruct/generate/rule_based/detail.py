"""The detail task: one description from captions, an inventory, positions and relations."""

from __future__ import annotations

import random

from mminstruct.generate.rule_based.captions import _clean_captions
from mminstruct.generate.rule_based.phrasing import _Say
from mminstruct.generate.rule_based.relations import relation_facts
from mminstruct.generate.rule_based.scene import Scene, biggest_category, region, some
from mminstruct.records import ImageRecord
from mminstruct.words import join_phrases, noun

MAX_INVENTORY = 8  # categories listed by name in a description


def inventory(scene: Scene) -> str:
    """The objects by prominence: "two people, a dog and a bench" (at most MAX_INVENTORY)."""
    order = sorted(scene.counts, key=lambda c: -scene.areas[c])
    items = [some(c, scene) for c in order[:MAX_INVENTORY]]
    if len(order) > MAX_INVENTORY:
        items.append("other objects")
    return join_phrases(items)


def _object_sentences(
    record: ImageRecord, scene: Scene, say: _Say, rng: random.Random
) -> list[str]:
    if not scene.counts:
        return []
    sentences = [say("detail.inventory", objects=inventory(scene))]
    for category in rng.sample(list(scene.singles), min(2, len(scene.singles))):
        where = region(scene.singles[category], scene.width, scene.height)
        forms = noun(category)
        sentences.append(
            say("detail.position", object=forms.singular, a_object=forms.a, region=where)
        )
    biggest = biggest_category(record) if scene.exhaustive else None
    if biggest is not None:
        sentences.append(say("detail.biggest", a_object=noun(biggest).a))
    facts = relation_facts(scene)
    if facts:
        sentences.append(say("detail.relations", facts=join_phrases(facts)))
    return sentences


def _detail(
    record: ImageRecord, scene: Scene, say: _Say, rng: random.Random, limit: int
) -> list[tuple[str, str]]:
    captions = _clean_captions(record)
    sentences = rng.sample(captions, min(rng.choice((1, 2)), len(captions)))
    sentences += _object_sentences(record, scene, say, rng)
    if not sentences:
        return []
    return [(say("detail.question"), " ".join(sentences))]  # one description: limit is 1
