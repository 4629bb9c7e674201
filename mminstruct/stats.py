"""Counting what happened: per-shard tallies, merged into `stats.json`."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from mminstruct.records import Instruction, Rejection


@dataclass
class Tally:
    """What one unit of work did: images in and out, instructions, rejections."""

    images_in: int = 0
    images_written: int = 0
    instructions: Counter = field(default_factory=Counter)
    turns: int = 0
    image_formats: Counter = field(default_factory=Counter)  # member extension -> samples
    id_types: set[str] = field(default_factory=set)  # Python types of the written image ids
    rejects: list[Rejection] = field(default_factory=list)

    def reject(self, rejection: Rejection) -> None:
        """Count a rejection; an image-scope one also counts the image in."""
        self.rejects.append(rejection)
        if rejection.scope == "image":
            self.images_in += 1

    def written(self, instructions: list[Instruction], extension: str, image_id: object) -> None:
        """Count an image written with its instructions."""
        self.images_in += 1
        self.images_written += 1
        self.image_formats[extension] += 1
        self.id_types.add(type(image_id).__name__)
        self.instructions.update(i.task for i in instructions)
        self.turns += sum(len(i.turns) for i in instructions)

    def to_json(self) -> dict[str, Any]:
        """The counts, as stored in each shard's stats file."""
        return {
            "images_in": self.images_in,
            "images_written": self.images_written,
            "images_rejected": sum(1 for r in self.rejects if r.scope == "image"),
            "instructions": dict(sorted(self.instructions.items())),
            "turns": self.turns,
            "image_formats": dict(sorted(self.image_formats.items())),
            "image_id_types": sorted(self.id_types),
            "rejects": dict(sorted(Counter(r.reason for r in self.rejects).items())),
        }


COUNTERS = ("images_in", "images_written", "images_rejected", "turns")


def merge_stats(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum per-shard stats into the dataset's totals."""
    merged: dict[str, Any] = {name: sum(p.get(name, 0) for p in parts) for name in COUNTERS}
    merged["image_id_types"] = sorted({t for p in parts for t in p.get("image_id_types", [])})
    for name in ("instructions", "rejects", "image_formats"):
        total: Counter = Counter()
        for part in parts:
            total.update(part.get(name, {}))
        merged[name] = dict(sorted(total.items()))
    merged["instructions_total"] = sum(merged["instructions"].values())
    merged["shards"] = [shard for part in parts for shard in part.get("shards", [])]
    merged["samples"] = sum(s["samples"] for s in merged["shards"])
    merged["bytes"] = sum(s["bytes"] for s in merged["shards"])
    return merged
