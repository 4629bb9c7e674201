"""One webdataset sample per image: the original image bytes plus a JSON record."""

from __future__ import annotations

import json
import random
from typing import Any

from mminstruct.images import LoadedImage
from mminstruct.records import ImageRecord, Instruction

IMAGE_TOKEN = "<image>"


def sample_record(
    record: ImageRecord, key: str, instructions: list[Instruction], seed: int
) -> dict[str, Any]:
    """The `<key>.json` content: image facts, source, and the instructions in LLaVA's format."""
    return {
        "id": key,
        "image": record.file_name,
        "width": record.width,
        "height": record.height,
        "source": {
            "dataset": record.dataset,
            "image_id": record.image_id,
            "license": record.license,
        },
        "instructions": [
            instruction_record(ins, random.Random(f"{seed}:{key}:{i}"))
            for i, ins in enumerate(instructions)
        ],
    }


def instruction_record(instruction: Instruction, rng: random.Random) -> dict[str, Any]:
    """One instruction in the sample JSON: task, LLaVA turns, generator stamp, and, when
    they ran, its grounding result and preference pairs."""
    conversations = llava_conversation(instruction, rng)
    record: dict[str, Any] = {
        "task": instruction.task,
        "conversations": conversations,
        "generator": instruction.generator,
    }
    if instruction.grounding is not None:  # {"score", "findings"} from `grounding.ground`
        record["grounding"] = instruction.grounding
    if instruction.preference:
        record["preference"] = [preference_record(p, conversations) for p in instruction.preference]
    return record


def preference_record(pair: dict[str, Any], conversations: list[dict[str, str]]) -> dict:
    """A pair as written: the prompt is the conversation up to the answered question."""
    prompt = conversations[: 2 * pair["turn"] + 1]
    return {
        "prompt": prompt,
        "chosen": pair["chosen"],
        "rejected": pair["rejected"],
        "error": pair["error"],
    }


def llava_conversation(instruction: Instruction, rng: random.Random) -> list[dict[str, str]]:
    """Turns as `{"from": "human"|"gpt", "value"}`; the first question holds `<image>` once.

    LLaVA's data puts the token before or after the first question; which one is seeded.
    """
    turns = []
    for i, (question, answer) in enumerate(instruction.turns):
        question = question.replace(IMAGE_TOKEN, "").strip()
        if i == 0:
            before = rng.random() < 0.5
            question = f"{IMAGE_TOKEN}\n{question}" if before else f"{question}\n{IMAGE_TOKEN}"
        answer = answer.replace(IMAGE_TOKEN, "").strip()
        turns += [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]
    return turns


def sample_members(key: str, image: LoadedImage, record: dict[str, Any]) -> list[tuple[str, bytes]]:
    """The tar members of a sample: `(<extension>, bytes)` for the image and the JSON."""
    payload = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return [(image.extension, image.data), ("json", payload)]
