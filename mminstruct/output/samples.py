"""One webdataset sample per image: the original image bytes plus a JSON record."""

from __future__ import annotations

import json
import random
from typing import Any

from mminstruct.images import LoadedImage
from mminstruct.records import ImageRecord, Instruction

IMAGE_TOKEN = "<image>"

# Every field a sample's JSON can hold, as `sample_record` writes it, with the `datasets`
# type the dataset card declares for it: `datasets.load_dataset` drops a field missing here
# without a word, so a field added to the record (or to a backend's `Completion.details`)
# is added here too. A dict is a struct, a one-item list a list of that item; absent fields
# load as null. "int64 or string": int64 when every image id of the build is an integer.
GENERATOR_FIELDS = {  # `Instruction.generator`: the rule-based stamp, or `model.py`'s
    "backend": "string",
    "model": "string",
    "template": "string",
    "template_sha256": "string",
    "seed": "int64",
    "question_types": ["string"],  # rule-based: each turn's question type, in turn order
    "attempt": "int64",
    "temperature": "float64",
    "top_p": "float64",
    "max_new_tokens": "int64",
    "prompt_tokens": "int64",
    "completion_tokens": "int64",
    "batch_seed": "int64",  # hf, hf-vlm `Completion.details`: the batch's torch seed
    "batch_size": "int64",  # hf, hf-vlm: the rows of that `generate` call
    "attempts": "int64",  # openai: the HTTP requests it took
}
_TURN = {"from": "string", "value": "string"}
SAMPLE_FIELDS = {
    "id": "string",
    "image": "string",
    "width": "int64",
    "height": "int64",
    "source": {
        "dataset": "string",
        "image_id": "int64 or string",
        "license": {"id": "int64", "name": "string", "url": "string"},
    },
    "instructions": [
        {
            "task": "string",
            "conversations": [_TURN],
            "generator": GENERATOR_FIELDS,
            "grounding": {  # `grounding.ground`: the score and each `Finding`
                "score": "float64",
                "findings": [
                    {"kind": "string", "sentence": "string", "claim": "string", "truth": "string"}
                ],
            },
            "preference": [  # `preference_record`
                {
                    "prompt": [_TURN],
                    "chosen": "string",
                    "rejected": "string",
                    "error": {  # `preference.Planted.error`, `rewritten` when it was
                        "kind": "string",
                        "detail": "string",
                        "span": ["int64"],
                        "original": "string",
                        "replacement": "string",
                        "rewritten": "bool",
                    },
                }
            ],
        }
    ],
}


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
