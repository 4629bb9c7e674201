"""Grounding checks: does a generated answer contradict the annotations it was made from?
Takes an image record and its generated text; gives findings (`Finding`) and a grounding score.
Start at `ground` here; then `reading.py` (claims), `known.py` (the record), `verdicts.py`."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from mminstruct.checks.grounding.known import Facts, categories_of, facts
from mminstruct.checks.grounding.placement import relation_family, relation_preposition
from mminstruct.checks.grounding.reading import claims, text_claims, text_hints
from mminstruct.checks.grounding.sentences import (
    Claim,
    Mention,
    Sentence,
    find_mentions,
    split_sentences,
)
from mminstruct.checks.grounding.verdicts import verdict
from mminstruct.records import Generated, ImageRecord, Instruction, Rejection

__all__ = [
    "KINDS",
    "MODES",
    "UNGROUNDED",
    "Claim",
    "Facts",
    "Finding",
    "Mention",
    "Sentence",
    "categories_of",
    "check_facts",
    "check_instruction",
    "check_text",
    "claims",
    "facts",
    "find_mentions",
    "ground",
    "relation_family",
    "relation_preposition",
    "report",
    "split_sentences",
    "text_claims",
    "text_hints",
    "verdict",
]

KINDS = ("count", "object", "absence", "position", "relation")
MODES = ("off", "annotate", "filter")
UNGROUNDED = "ungrounded"  # rejection reason of a contradicted instruction (mode "filter")


@dataclass(frozen=True)
class Finding:
    """A sentence of an answer that contradicts the annotations."""

    kind: str  # "count" | "object" | "absence" | "position" | "relation"
    sentence: str  # the sentence, as written in the answer
    claim: str  # what it claims: "three people", "no dog", "bench on the left side"
    truth: str  # the annotation it contradicts, readable: "2 person boxes annotated"

    def to_json(self) -> dict[str, str]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- public API


def check_text(record: ImageRecord, text: str) -> list[Finding]:
    """Findings for one answer text checked against the record."""
    return check_facts(facts(record), text)


def check_facts(known: Facts, text: str) -> list[Finding]:
    """`check_text` against a record's `facts`, for callers that check many texts."""
    return _check(known, text)[0]


def check_instruction(record: ImageRecord, instruction: Instruction) -> list[Finding]:
    """Findings for an instruction's answers (questions may name absent things)."""
    return report(facts(record), instruction)[0]


# The grounding score of an instruction is 1 - contradicted sentences / checkable sentences
# of its answers, where a sentence is checkable when it makes at least one claim (1.0 when
# none does).
def report(known: Facts, instruction: Instruction) -> tuple[list[Finding], float]:
    """An instruction's findings and grounding score."""
    findings: list[Finding] = []
    checkable = flagged = 0
    for _, answer in instruction.turns:
        found, claimed, contradicted = _check(known, answer)
        findings += found
        checkable += claimed
        flagged += contradicted
    score = 1.0 - flagged / checkable if checkable else 1.0
    return findings, round(score, 4)


def ground(record: ImageRecord, generated: Generated, mode: str) -> Generated:
    """Check every instruction; `annotate` records findings and score, `filter` also turns
    contradicted instructions into `ungrounded` rejections, `off` changes nothing."""
    if mode not in MODES:
        raise ValueError(f"generator.grounding: {mode!r}; choose one of {', '.join(MODES)}")
    if mode == "off" or not generated.instructions:
        return generated
    known = facts(record)
    kept: list[Instruction] = []
    rejections = list(generated.rejections)
    for instruction in generated.instructions:
        findings, score = report(known, instruction)
        grounding = {"score": score, "findings": [f.to_json() for f in findings]}
        if mode == "filter" and findings:
            rejections.append(_ungrounded(record, instruction, findings, grounding))
        else:
            kept.append(dataclasses.replace(instruction, grounding=grounding))
    return dataclasses.replace(generated, instructions=kept, rejections=rejections)


def _ungrounded(
    record: ImageRecord, instruction: Instruction, findings: list[Finding], grounding: dict
) -> Rejection:
    first = findings[0]
    more = f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""
    detail = f"{first.kind}: '{first.claim}' contradicts the annotations: {first.truth}{more}"
    raw = {"turns": [list(turn) for turn in instruction.turns], "grounding": grounding}
    return Rejection(
        reason=UNGROUNDED,
        detail=detail,
        dataset=record.dataset,
        image_id=record.image_id,
        task=instruction.task,
        raw=json.dumps(raw, ensure_ascii=False),
    )


def _check(known: Facts, text: str) -> tuple[list[Finding], int, int]:
    """(findings, sentences with a claim, sentences with a finding) of one text."""
    findings: list[Finding] = []
    claimed = contradicted = 0
    for sentence, sentence_claims in text_claims(text):
        found = []
        for claim in sentence_claims:
            truth = None if claim.key in known.said else verdict(claim, known)
            if truth is not None:
                found.append(Finding(claim.kind, sentence, claim.text, truth))
        claimed += bool(sentence_claims)
        contradicted += bool(found)
        findings += found
    return findings, claimed, contradicted
