"""The data that flows between stages: image records, instructions and rejections."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

ImageId = int | str


class ObjectBox(msgspec.Struct, frozen=True, order=True, gc=False):
    """One annotated object: its box in pixels (COCO `bbox` order), inside its image.

    Converters clip boxes to the image, so 0 <= x, x + w <= width (and likewise for y).
    A msgspec Struct rather than a dataclass: COCO train makes 860k of them, and a Struct
    is created several times faster and is smaller.
    """

    category: str
    x: float
    y: float
    w: float
    h: float
    iscrowd: bool = False  # a COCO crowd box covers a group of objects, not one
    attributes: tuple[str, ...] = ()  # e.g. ("red", "parked"), from Visual Genome attributes
    # The object's own outline area in pixels (COCO `area`: its segment's area, as
    # pycocotools computes it); 0.0 when unknown, and then the box area stands in.
    segment_area: float = 0.0


class Relation(msgspec.Struct, frozen=True, gc=False):
    """`subject predicate object` between two objects of one image ("man riding horse").

    `subject` and `object` index the image's `ImageRecord.objects`.
    """

    subject: int
    predicate: str
    object: int
    derived: bool = False  # computed from the two boxes (`context.derive_relations`)


def bare_predicate(predicate: str) -> str:
    """A predicate without trailing articles ("wearing a" -> "wearing"), as converters store
    it and generators phrase it."""
    words = predicate.split(" ")
    while len(words) > 1 and words[-1] in ("a", "an", "the"):
        words.pop()
    return " ".join(words)


class Region(msgspec.Struct, frozen=True, gc=False):
    """A Visual Genome region description: a phrase about one box of the image."""

    phrase: str
    x: float
    y: float
    w: float
    h: float


class ImageRecord(msgspec.Struct, frozen=True, gc=False):
    """Everything a source knows about one image, independent of the source format.

    A msgspec Struct, like ObjectBox: made once per image, 20x faster than a dataclass.
    """

    dataset: str  # source name, used in keys and `source.dataset` (e.g. "coco")
    image_id: ImageId  # the dataset's own id for the image
    file_name: str  # file name as given by the annotations
    images_dir: Path | None  # folder the file name is resolved under
    width: int
    height: int
    captions: tuple[str, ...] = ()
    objects: tuple[ObjectBox, ...] = ()
    # Categories whose annotation is exhaustive for this image: an absent one is truly absent.
    vocabulary: tuple[str, ...] = ()
    license: dict[str, Any] | None = None  # {"id", "name", "url"} when the source names one
    relations: tuple[Relation, ...] = ()  # annotated relations between `objects`
    regions: tuple[Region, ...] = ()  # region descriptions (Visual Genome)
    # Referring expressions (RefCOCO-style `refexps` files): each names exactly one object.
    referring: tuple[Region, ...] = ()


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why an image, or one instruction of it, did not make it into the dataset."""

    reason: str  # short snake_case reason, counted in stats.json
    detail: str  # human-readable: names the file, record and field where possible
    dataset: str = ""
    image_id: ImageId | None = None
    task: str | None = None  # None when the whole image is rejected
    raw: str | None = None  # the raw input or completion, when there is one
    record_only: bool = False  # one annotation/caption record was skipped; its image lives on

    @property
    def scope(self) -> str:
        """ "image" (the image is out), "task" (one task of it is), or "record"."""
        if self.task is not None:
            return "task"
        return "record" if self.record_only else "image"

    def to_json(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "dataset": self.dataset,
            "image_id": self.image_id,
            "task": self.task,
            "scope": self.scope,
            "reason": self.reason,
            "detail": self.detail,
        }
        if self.raw is not None:
            row["raw"] = self.raw
        return row


@dataclass(frozen=True, slots=True)
class Instruction:
    """One generated instruction: a task and its turns, human first."""

    task: str  # "conversation" | "detail" | "reasoning"
    turns: tuple[tuple[str, str], ...]  # (question, answer) pairs, without the <image> token
    generator: dict[str, Any] = field(default_factory=dict)  # backend, seed, template, ...
    # `grounding.ground`: {"score": float, "findings": [...]}; None when not checked.
    grounding: dict[str, Any] | None = None
    # `preference.add_preference_pairs`: {"turn", "chosen", "rejected", "error"} each.
    preference: tuple[dict[str, Any], ...] = ()


@dataclass
class Generated:
    """What a generator made for one image: kept instructions and per-task rejections."""

    instructions: list[Instruction] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    tokens: int = 0  # completion tokens a model spent on this image, kept or not
    # Preference pairs not made, by reason ("unconfirmed_count", "chosen_ungrounded", ...).
    preference_dropped: Counter = field(default_factory=Counter)
