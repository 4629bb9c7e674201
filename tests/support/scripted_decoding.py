"""Answers the parser keeps, from the tiny random-weight models (test-only).

A random model writes noise, so a build with it keeps nothing. Installed in a build process
(through `kill_points.WRAPPER`, when `MMINSTRUCT_TEST_SCRIPTED_DECODE` is set), this lets the
model's real `generate` run and then replaces each decoded completion with `good_answer`
for the prompt's task (its system message says `TASK <task>`), numbered from a hash of the
prompt: the same prompt always gets the same answer, different prompts different ones.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re

SCRIPTED_ENV = "MMINSTRUCT_TEST_SCRIPTED_DECODE"


def good_answer(task: str, seed: int) -> str:
    """A completion the parser keeps for `task`, different for each seed."""
    n = seed % 997
    if task == "detail":
        return f"A dog stands in a green field on a sunny day, number {n}."
    if task == "reasoning":
        return (
            "Question: Why might the dog be outside?\nAnswer: The sun is out, so the dog is "
            f"probably enjoying the warm weather, number {n}."
        )
    return f"Question: What animal is in the field?\nAnswer: A dog is standing there, number {n}."


def answer_for(prompt: str) -> str:
    """The scripted answer to a rendered prompt."""
    found = re.search(r"TASK (\w+)", prompt)
    number = int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:4], "big")
    return good_answer(found.group(1) if found else "conversation", number)


def install() -> None:
    """Replace the `hf` backend's decoded text by scripted answers, in this process."""
    from mminstruct.generate.backends import hf

    real = hf.decode_batch

    def decode(tokenizer, sequences, inputs, *args, **kwargs):
        completions = real(tokenizer, sequences, inputs, *args, **kwargs)
        prompts = tokenizer.batch_decode(inputs["input_ids"], skip_special_tokens=True)
        return [
            dataclasses.replace(c, text=answer_for(p), finish_reason="stop")
            for c, p in zip(completions, prompts, strict=True)
        ]

    hf.decode_batch = decode
