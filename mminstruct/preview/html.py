"""`preview.html`: the image, its context and its conversations side by side.

One self-contained file (the picture is embedded as a data URI, the style inline), so it
opens offline and can be sent to someone as is. Every text is HTML-escaped.
"""

from __future__ import annotations

import base64
from html import escape

from mminstruct.preview.report import Call, Preview, grounding_line, relations_summary

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; margin: 0 0 .2em; } h2 { font-size: 1.05em; margin: 1.2em 0 .4em; }
.meta { color: #555; margin-bottom: 1em; }
.grid { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 2em; }
img { max-width: 100%; border: 1px solid #ccc; }
pre { white-space: pre-wrap; background: #f6f6f6; padding: .6em; border-radius: 4px; margin: .3em 0; }
.turn { margin: .25em 0; padding: .35em .6em; border-radius: 6px; white-space: pre-wrap; }
.human { background: #e8f0fe; } .gpt { background: #eef7ee; }
.who { font-weight: 600; margin-right: .4em; }
.task { margin-top: 1em; font-weight: 600; }
.reject { background: #fdecea; padding: .35em .6em; border-radius: 6px; margin: .25em 0; }
details { margin: .4em 0; } summary { cursor: pointer; }
.role { color: #555; font-size: .9em; margin-top: .4em; }
"""


def render_html(p: Preview, png: bytes) -> str:
    """The page for preview `p`, with `png` (the annotated image) embedded."""
    image = base64.b64encode(png).decode("ascii")
    model = f" with {escape(p.model)}" if p.model else ""
    record = p.record
    meta = (
        f"{record.width}&times;{record.height} {escape(p.image.extension)} &middot; "
        f"{len(record.captions)} caption(s), {len(record.objects)} object(s), "
        f"{escape(relations_summary(p))} &middot; generator <b>{escape(p.backend)}</b>{model}"
    )
    left = (
        f'<img src="data:image/png;base64,{image}" alt="{escape(p.key)} with its boxes">'
        f"<h2>Context</h2><pre>{escape(p.context) or '(empty)'}</pre>"
    )
    right = (
        f"<h2>Instructions</h2>{_instructions(p)}"
        f"<h2>Rejections</h2>{_rejections(p)}"
        f"<h2>Model calls</h2>{_calls(p)}"
    )
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>preview {escape(p.key)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{escape(p.key)}</h1><div class=meta>{escape(str(p.image.path))}<br>{meta}</div>"
        f"<div class=grid><div>{left}</div><div>{right}</div></div></body></html>\n"
    )


def _instructions(p: Preview) -> str:

    if not p.instructions:
        return "<p>None.</p>"
    parts = []
    for instruction in p.instructions:
        parts.append(f"<div class=task>{escape(instruction['task'])}</div>")
        for turn in instruction["conversations"]:
            who = escape(turn["from"])
            parts.append(
                f"<div class='turn {who}'><span class=who>{who}</span>{escape(turn['value'])}</div>"
            )
        if instruction.get("grounding"):
            parts.append(
                f"<div class=role>{escape(grounding_line(instruction['grounding']))}</div>"
            )
    return "".join(parts)


def _rejections(p: Preview) -> str:
    if not p.rejections:
        return "<p>None.</p>"
    return "".join(
        f"<div class=reject><b>{escape(r.task or 'image')}</b> <code>{escape(r.reason)}</code>: "
        f"{escape(r.detail)}</div>"
        for r in p.rejections
    )


def _calls(p: Preview) -> str:
    if not p.calls:
        if p.backend == "template":
            return (
                "<p>None: the template backend writes from the annotations, no model is asked.</p>"
            )
        return "<p>None.</p>"
    return "".join(_call(c) for c in p.calls)


def _call(call: Call) -> str:
    image = ", image attached" if call.with_image else ""
    summary = (
        f"{escape(call.task)} &middot; sample {call.sample}, attempt {call.attempt} &middot; "
        f"{call.prompt_tokens:,} prompt tokens{image} &middot; {escape(call.verdict)}"
    )
    messages = "".join(
        f"<div class=role>{escape(m['role'])} ({n:,} tokens)</div><pre>{escape(m['content'])}</pre>"
        for m, n in zip(call.messages, call.message_tokens, strict=True)
    )
    completion = (
        f"<div class=role>completion ({call.completion_tokens:,} tokens, finish: "
        f"{escape(call.finish_reason)})</div><pre>{escape(call.completion) or '(empty)'}</pre>"
    )
    return f"<details><summary>{summary}</summary>{messages}{completion}</details>"
