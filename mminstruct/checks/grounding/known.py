"""What an image record says, by COCO category, in the form the checks read (`Facts`):
its boxes (and the boxes that may hold an unboxed part), exhaustive vocabulary, caption
mentions and claims, and annotated relations."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from mminstruct.checks.grounding.placement import relation_family
from mminstruct.checks.grounding.reading import text_claims, text_hints
from mminstruct.lexicon import COCO_CATEGORIES, PART_OF, terms, tokens
from mminstruct.records import ImageRecord, ObjectBox


@dataclass(frozen=True)
class Facts:
    """What a record says, by COCO category, in the form the checks read."""

    width: int
    height: int
    boxes: dict[str, list[ObjectBox]]  # category -> its boxes, crowd boxes included
    # category -> boxes of things that may have one as an unboxed part (a laptop's keyboard)
    hosts: dict[str, list[ObjectBox]]
    vocabulary: frozenset[str]  # categories whose annotation is exhaustive for the image
    mentioned: frozenset[str]  # categories the captions (or region phrases) may mention
    # Annotated (not derived) relations: (subjects, predicate, family, objects).
    relations: tuple[tuple[tuple[str, ...], str, str, tuple[str, ...]], ...]
    said: frozenset[tuple]  # keys of the claims the captions make themselves


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
        hosts=_hosts(boxes),
        vocabulary=frozenset(vocabulary),
        mentioned=frozenset(mentioned),
        relations=_annotated_relations(record),
        said=frozenset(claim.key for _, found in analysed for claim in found),
    )


def _hosts(boxes: dict[str, list[ObjectBox]]) -> dict[str, list[ObjectBox]]:
    """For each part category (`PART_OF`), the boxes of the things it may be a part of."""
    hosts = {}
    for part, names in PART_OF.items():
        found = [b for name in names for b in boxes.get(name, [])]
        if found:
            hosts[part] = found
    return hosts


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
