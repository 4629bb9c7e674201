"""What a preview found, and how it reads on a console.

`Preview` holds everything `build` did with one image; `format_preview` writes it as text.
`html.py` renders the same object as a page.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Any

from mminstruct.images import LoadedImage
from mminstruct.records import ImageRecord, Rejection, Relation


@dataclass(frozen=True)
class Call:
    """One prompt a model backend completed: what went in, what came back, how it parsed."""

    task: str
    sample: int
    attempt: int  # 0, or 1 for the retry of a rejected completion
    seed: int
    messages: tuple[dict[str, str], ...]  # exactly as sent: system, few-shot pairs, query
    message_tokens: tuple[int, ...]  # per message, as the backend counts it alone
    with_image: bool  # the image went in with the prompt (hf-vlm, openai with a VLM)
    prompt_tokens: int  # the whole prompt, as the backend reported it
    completion: str  # the raw completion
    finish_reason: str
    completion_tokens: int
    verdict: str  # "parsed: N turns" or "rejected: reason: detail"


@dataclass(frozen=True)
class Preview:
    """Everything `build` did with one image."""

    record: ImageRecord
    key: str
    image: LoadedImage
    context: str  # the context as configured (model tasks may hide boxes: see the messages)
    shown: tuple[int, ...]  # indices of the objects the context shows
    backend: str
    model: str | None
    calls: tuple[Call, ...]  # empty for the template backend
    instructions: list[dict[str, Any]]  # as written to the shard (LLaVA conversations)
    rejections: list[Rejection]
    # The context's name of each shown object, by index (`person 2`, `red car`).
    labels: dict[int, str] = field(default_factory=dict)
    # The relations the context shows, derived ones included, as the picture draws them.
    relations: tuple[Relation, ...] = ()


def format_preview(p: Preview) -> str:
    """The whole preview as readable text: context, calls, instructions, rejections."""
    record = p.record
    size = f"{record.width}x{record.height} {p.image.extension}"
    model = f" with {p.model}" if p.model else ""
    parts = [
        f"image      {p.key}  ({size})  {p.image.path}",
        f"source     {record.dataset}, image id {record.image_id!r}; "
        f"{len(record.captions)} caption(s), {len(record.objects)} object(s) "
        f"({len(p.shown)} in the context), {relations_summary(p)}",
        f"generator  {p.backend}{model}",
        _heading("context (what a text-only model reads instead of the image)"),
        _indent(p.context or "(empty: no captions, boxes or relations)"),
        _heading("model calls"),
    ]
    if not p.calls:
        parts.append(_indent(_no_calls(p.backend)))
    parts += [_format_call(c) for c in p.calls]
    parts.append(_heading("instructions (as written to the shard)"))
    if not p.instructions:
        parts.append(_indent("(none)"))
    for instruction in p.instructions:
        turns = instruction["conversations"]
        parts.append(f"[{instruction['task']}] {len(turns) // 2} turn(s)")
        parts += [_turn(t["from"], t["value"]) for t in turns]
        if instruction.get("grounding"):
            parts.append(_indent(grounding_line(instruction["grounding"])))
    parts.append(_heading("rejections"))
    parts += [_indent(_format_rejection(r)) for r in p.rejections] or [_indent("(none)")]
    return "\n".join(parts)


def relations_summary(p: Preview) -> str:
    """`3 relation(s) in the context (2 derived from the boxes), 1 annotated`."""
    derived = sum(r.derived for r in p.relations)
    return (
        f"{len(p.relations)} relation(s) in the context ({derived} derived from the boxes), "
        f"{len(p.record.relations)} annotated"
    )


def grounding_line(grounding: dict[str, Any]) -> str:
    """`grounding: score 0.5; count: "three dogs" (2 dog boxes annotated)` for an instruction."""
    findings = [f'{f["kind"]}: "{f["claim"]}" ({f["truth"]})' for f in grounding["findings"]]
    return f"grounding: score {grounding['score']}; " + ("; ".join(findings) or "no findings")


def _no_calls(backend: str) -> str:
    if backend == "template":
        return "(none: the template backend writes from the annotations with rule_based.yaml)"
    return "(none: no task had anything to write from)"


def _format_call(call: Call) -> str:
    image = ", image attached" if call.with_image else ""
    lines = [
        f"[{call.task}] sample {call.sample}, attempt {call.attempt}, seed {call.seed}: "
        f"{call.prompt_tokens:,} prompt tokens{image}"
    ]
    for message, tokens in zip(call.messages, call.message_tokens, strict=True):
        lines.append(_indent(f"{message['role']} ({tokens:,} tokens):"))
        lines.append(_indent(message["content"] or "(empty)", 4))
    lines.append(
        _indent(f"completion ({call.completion_tokens:,} tokens, finish: {call.finish_reason}):")
    )
    lines.append(_indent(call.completion or "(empty)", 4))
    lines.append(_indent(f"-> {call.verdict}"))
    return "\n".join(lines)


def _format_rejection(r: Rejection) -> str:
    raw = f"\n  raw: {r.raw}" if r.raw and r.task else ""
    return f"[{r.task or 'image'}] {r.reason}: {r.detail}{raw}"


def _turn(speaker: str, text: str) -> str:
    """`  human: first line`, its further lines indented under the text."""
    first, *rest = text.split("\n")
    pad = " " * (len(speaker) + 4)
    return "\n".join([f"  {speaker}: {first}", *(f"{pad}{line}" for line in rest)])


def _heading(title: str) -> str:
    return f"\n== {title} =="


def _indent(text: str, spaces: int = 2) -> str:
    return textwrap.indent(text, " " * spaces, lambda _: True)
