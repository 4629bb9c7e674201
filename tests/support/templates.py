"""Short task templates for the tiny-model tests: the shipped few-shot prompts are thousands of
tokens for the tiny byte-level tokenizer, which only slows the tests down."""

from __future__ import annotations

import json
from pathlib import Path

SHORT_TEMPLATES = {
    "conversation": "Write a short conversation about the image.",
    "detail": "Describe the image.",
    "reasoning": "Ask and answer one question that needs reasoning.",
}


def write_short_templates(folder: Path, query: str = "{context}") -> Path:
    """A user's own templates folder with one short template per task; returns `folder`."""
    answer = {"detail": "A dog on grass.", "conversation": "Question: What?\nAnswer: A dog."}
    for task, system in SHORT_TEMPLATES.items():
        example = {"context": "A dog.", "answer": answer.get(task, answer["conversation"])}
        text = {"system": system, "examples": [example], "query": query}
        (folder / f"{task}.yaml").write_text(json.dumps(text))
    return folder
