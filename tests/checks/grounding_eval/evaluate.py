"""Load the hand-labelled grounding set and score the checks on it (test and benchmark)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from mminstruct.checks.grounding import (
    KINDS,
    Finding,
    check_instruction,
    check_text,
    claims,
    split_sentences,
)
from mminstruct.config import config_from_dict
from mminstruct.generate.rule_based import RuleBasedGenerator
from mminstruct.lexicon import COCO_CATEGORIES
from mminstruct.records import ImageRecord, ObjectBox, Relation

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Case:
    """One labelled answer: the scene it is about and the findings it should get."""

    id: str
    scene: str  # key in scenes.json
    answer: str
    expected: tuple[str, ...]  # finding kinds, one per planted error; () when grounded
    note: str


def load_scenes(path: Path = HERE / "scenes.json") -> dict[str, ImageRecord]:
    """The scenes as image records (`"vocabulary": "coco"` means COCO's 80 categories)."""
    scenes = json.loads(path.read_text(encoding="utf-8"))
    return {name: scene_record(name, scene) for name, scene in scenes.items()}


def scene_record(name: str, scene: dict) -> ImageRecord:
    """One scene of scenes.json as an ImageRecord."""
    objects = tuple(
        ObjectBox(o["category"], *map(float, o["bbox"]), iscrowd=o.get("iscrowd", False))
        for o in scene["objects"]
    )
    vocabulary = scene["vocabulary"]
    relations = tuple(
        Relation(r["subject"], r["predicate"], r["object"]) for r in scene.get("relations", ())
    )
    return ImageRecord(
        dataset="eval",
        image_id=name,
        file_name=f"{name}.jpg",
        images_dir=None,
        width=scene["size"][0],
        height=scene["size"][1],
        captions=tuple(scene["captions"]),
        objects=objects,
        vocabulary=COCO_CATEGORIES if vocabulary == "coco" else tuple(vocabulary),
        relations=relations,
    )


def load_cases(path: Path = HERE / "cases.jsonl") -> list[Case]:
    """Every labelled case, in file order."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [
        Case(r["id"], r["scene"], r["answer"], tuple(r["expected"]), r.get("note", ""))
        for r in rows
    ]


def evaluate(cases: list[Case], scenes: dict[str, ImageRecord]) -> dict:
    """Per kind: true positives, false positives, false negatives, precision and recall
    (findings matched to the planted errors by kind, within each case); and the cases that
    disagree with their label."""
    tally = {kind: Counter() for kind in KINDS}
    wrong = []
    for case in cases:
        found = Counter(f.kind for f in check_text(scenes[case.scene], case.answer))
        expected = Counter(case.expected)
        for kind in KINDS:
            tally[kind]["tp"] += min(found[kind], expected[kind])
            tally[kind]["fp"] += max(found[kind] - expected[kind], 0)
            tally[kind]["fn"] += max(expected[kind] - found[kind], 0)
        if found != expected:
            wrong.append({"id": case.id, "expected": dict(expected), "found": dict(found)})
    per_kind = {kind: _rates(counts) for kind, counts in tally.items()}
    return {"cases": len(cases), "per_kind": per_kind, "disagreements": wrong}


@dataclass
class TrueOutput:
    """The grounding checks over output that is true by construction."""

    instructions: int = 0
    findings: list[Finding] = field(default_factory=list)  # should stay empty
    claims: Counter = field(default_factory=Counter)  # claims checked, by kind


def rule_based_output(records: list[ImageRecord], seeds=range(6)) -> TrueOutput:
    """The checks over the rule-based generator's output for `records`, with several seeds,
    with and without derived relations, long conversations and several reasoning
    questions; the claims checked are counted so that silence means something."""
    result = TrueOutput()
    for seed in seeds:
        for derive in ("off", "always"):
            config = config_from_dict(
                {
                    "sources": [{"kind": "coco", "images": ".", "instances": "i.json"}],
                    "generator": {"seed": seed},
                    "context": {"derive_relations": derive},
                    "tasks": {"conversation": {"turns": 8}, "reasoning": {"questions": 3}},
                }
            )
            outputs = RuleBasedGenerator(config).generate(records)
            for record, output in zip(records, outputs, strict=True):
                for instruction in output.instructions:
                    result.instructions += 1
                    result.findings += check_instruction(record, instruction)
                    answers = (answer for _, answer in instruction.turns)
                    result.claims.update(
                        c.kind for a in answers for s in split_sentences(a) for c in claims(s)
                    )
    return result


def caption_findings(records: list[ImageRecord]) -> tuple[int, list[tuple[str, Finding, str]]]:
    """Each human caption checked against the rest of its record (its boxes and its other
    captions): (captions checked, [(image id, finding, caption)])."""
    checked, found = 0, []
    for record in records:
        for i, caption in enumerate(record.captions):
            others = record.captions[:i] + record.captions[i + 1 :]
            rest = msgspec.structs.replace(record, captions=others)
            checked += 1
            found += [(str(record.image_id), f, caption) for f in check_text(rest, caption)]
    return checked, found


def _rates(counts: Counter) -> dict:
    tp, fp, fn = counts["tp"], counts["fp"], counts["fn"]
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": round(tp / (tp + fp), 3) if tp + fp else None,
        "recall": round(tp / (tp + fn), 3) if tp + fn else None,
    }
