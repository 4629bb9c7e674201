"""The detail task: one paragraph that fuses the captions with the objects, the layout,
the relations and what the main objects are for, each fact said once.

Captions lead; the inventory then names (and counts) only the categories the chosen
captions leave out, so no count is said twice; positions come only with a clear margin.
"""

from __future__ import annotations

import random

from mminstruct.generate.rule_based.captions import _clean_captions, mentioned, named
from mminstruct.generate.rule_based.knowledge import knowledge_of
from mminstruct.generate.rule_based.phrasing import _Say
from mminstruct.generate.rule_based.relations import relation_facts
from mminstruct.generate.rule_based.scene import Scene, biggest_category, clear_region, some
from mminstruct.records import ImageRecord
from mminstruct.words import join_phrases, noun

MAX_INVENTORY = 8  # categories listed by name in a description
MAX_PLACED = 3  # objects whose place a description states


def _inventory_items(scene: Scene, leave_out: frozenset[str]) -> list[str]:
    """The objects by prominence (at most MAX_INVENTORY), without those in `leave_out`."""
    order = [c for c in sorted(scene.counts, key=lambda c: -scene.areas[c]) if c not in leave_out]
    items = [some(c, scene) for c in order[:MAX_INVENTORY]]
    if len(order) > MAX_INVENTORY:
        items.append("other objects")
    return items


def inventory(scene: Scene, leave_out: frozenset[str] = frozenset()) -> str:
    """The objects by prominence: "two people, a dog and a bench" (at most MAX_INVENTORY),
    without the categories in `leave_out`."""
    return join_phrases(_inventory_items(scene, leave_out))


def _lead(record: ImageRecord, rng: random.Random) -> list[str]:
    """One caption, and a second one when every category it names is one the first does
    not name (so no fact is told twice)."""
    captions = _clean_captions(record)
    if not captions:
        return []
    rng.shuffle(captions)
    lead = [captions[0]]
    categories = {o.category for o in record.objects}
    named = {c for c in categories if mentioned(c, lead)}
    for other in captions[1:]:
        new = {c for c in categories if mentioned(c, [other])}
        if new and not new & named:  # only new facts: a second view of the same scene
            return [*lead, other]
    return lead


def _inventory_sentence(scene: Scene, lead: list[str], say: _Say) -> list[str]:
    said = frozenset(c for c in scene.counts if lead and named(c, lead))  # the name itself
    items = _inventory_items(scene, said)
    if not items:
        return []
    be = "is" if items[0].startswith(("a ", "an ")) else "are"  # "there is a dog and two cats"
    key = "detail.inventory_more" if lead else "detail.inventory"
    return [say(key, objects=join_phrases(items), be=be)]


def _layout(scene: Scene, say: _Say, rng: random.Random) -> list[str]:
    """Where up to MAX_PLACED single objects are, those in one region said together."""
    by_region: dict[str, list[str]] = {}
    placed = 0
    for category in rng.sample(list(scene.singles), len(scene.singles)):
        where = clear_region(scene.singles[category], scene)
        if where is not None and placed < MAX_PLACED:
            by_region.setdefault(where, []).append(f"the {noun(category).singular}")
            placed += 1
    clauses = [
        f"{join_phrases(names)} {'is' if len(names) == 1 else 'are'} {where}"
        for where, names in by_region.items()
    ]
    return [say("detail.layout", placements=join_phrases(clauses))] if clauses else []


def _useful(category: str) -> bool:
    entry = knowledge_of(category)
    return entry is not None and bool(entry.use)


def _knowledge(scene: Scene, say: _Say, rng: random.Random) -> list[str]:
    known = [c for c in scene.counts if c != "person" and c in scene.vocabulary and _useful(c)]
    if not known:
        return []
    known.sort(key=lambda c: -scene.areas[c])
    category = rng.choice(known[:3])  # one of the most prominent
    entry = knowledge_of(category)
    assert entry is not None
    values = {"a_object": noun(category).a, "use": entry.use, "place": entry.place}
    return [say("detail.knowledge", **values)]


def _object_sentences(
    record: ImageRecord, scene: Scene, lead: list[str], say: _Say, rng: random.Random
) -> list[str]:
    if not scene.counts:
        return []
    rest = _layout(scene, say, rng)
    biggest = biggest_category(record) if scene.exhaustive else None
    if biggest is not None:
        rest.append(say("detail.biggest", a_object=noun(biggest).a))
    facts = relation_facts(scene, limit=3)
    if facts:
        rest.append(say("detail.relations", facts=join_phrases(facts)))
    rng.shuffle(rest)  # layout, size and relations in any order; what things are for last
    return _inventory_sentence(scene, lead, say) + rest + _knowledge(scene, say, rng)


def _detail(
    record: ImageRecord, scene: Scene, say: _Say, rng: random.Random, limit: int
) -> list[tuple[str, str]]:
    lead = _lead(record, rng)
    sentences = lead + _object_sentences(record, scene, lead, say, rng)
    if not sentences:
        return []
    sentences = list(dict.fromkeys(sentences))  # a sentence is never said twice
    return [(say("detail.question"), " ".join(sentences))]  # one description: limit is 1
