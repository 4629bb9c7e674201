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
    rejects: list[Rejection] = field(default_factory=list)

    def reject(self, rejection: Rejection) -> None:
        """Count a rejection; an image-scope one also counts the image in."""
        self.rejects.append(rejection)
        if rejection.scope == "image":
            self.images_in += 1

    def written(self, instructions: list[Instruction]) -> None:
        """Count an image written with its instructions."""
        self.images_in += 1
        self.images_written += 1
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
            "rejects": dict(sorted(Counter(r.reason for r in self.rejects).items())),
        }


COUNTERS = ("images_in", "images_written", "images_rejected", "turns")


def merge_stats(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum per-shard stats into the dataset's totals."""
    merged: dict[str, Any] = {name: sum(p.get(name, 0) for p in parts) for name in COUNTERS}
    for name in ("instructions", "rejects"):
        total: Counter = Counter()
        for part in parts:
            total.update(part.get(name, {}))
        merged[name] = dict(sorted(total.items()))
    merged["instructions_total"] = sum(merged["instructions"].values())
    merged["shards"] = [shard for part in parts for shard in part.get("shards", [])]
    merged["samples"] = sum(s["samples"] for s in merged["shards"])
    merged["bytes"] = sum(s["bytes"] for s in merged["shards"])
    return merged
