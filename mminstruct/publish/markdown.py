"""Markdown for what came from input or config (license names and URLs, names, file names,
the dataset's title): shown as text by any CommonMark renderer, never as HTML, a link, an
image, a list or a table cell boundary. Names are cut to `NAME_LIMIT` characters where the
card and its plots show them.

Everything these functions return is a `Md`: Markdown that is safe to put in the card as is.
`card_sections._cell` escapes any other string it is given.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

NAME_LIMIT = 60  # characters of a name the card and the plots show
ELLIPSIS = "…"
URL_LIMIT = 2_000  # a longer URL is shown as text, cut
# ASCII punctuation that starts no inline markup once `[`, `<`, `&` and `` ` `` are escaped.
_PLAIN = set(",.:;/?%@=-+(){}!^")
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}
_ESCAPED = {chr(c) for c in range(33, 127) if not chr(c).isalnum()} - _PLAIN - set(_ENTITIES)
# Text that would start a list item, heading or block quote if it began a line.
_LINE_START = re.compile(r"\d{1,9}[.)](?= |$)|[-+=]")
_WEB_URL = re.compile(r"https?://[^\s<>\"'`\\]+", re.IGNORECASE)


class Md(str):
    """Markdown that is safe to put in the card as is."""


def shorten(value: Any, limit: int = NAME_LIMIT) -> str:
    """`value` on one line, cut to `limit` characters (the last one `…`) when longer."""
    raw = str(value)
    flat = " ".join(raw[: 4 * limit].split())  # never walk all of a 10 MB name
    if len(flat) <= limit and len(raw) <= 4 * limit:
        return flat
    return flat[: limit - 1] + ELLIPSIS


def is_long(value: Any, limit: int = NAME_LIMIT) -> bool:
    """Whether the card shows `value` cut."""
    return len(str(value)) > limit


def text(value: Any) -> Md:
    """`value` as plain inline text: one line, HTML special characters as entities, Markdown
    punctuation backslash-escaped (a `|` too, so a table cell ends only where we say)."""
    flat = " ".join(str(value).split())
    escaped = "".join(_char(c) if not _intraword(flat, i) else c for i, c in enumerate(flat))
    start = _LINE_START.match(escaped)
    if start:
        cut = start.end() - 1
        escaped = f"{escaped[:cut]}\\{escaped[cut:]}"
    return Md(escaped)


def _intraword(flat: str, i: int) -> bool:
    """An `_` between two letters or digits, which never starts or ends emphasis."""
    return (
        flat[i] == "_" and 0 < i < len(flat) - 1 and flat[i - 1].isalnum() and flat[i + 1].isalnum()
    )


def _char(c: str) -> str:
    if c in _ENTITIES:
        return _ENTITIES[c]
    if c in _ESCAPED:
        return "\\" + c
    return "\ufffd" if _is_control(c) else c


def code(value: Any) -> Md:
    """`value` as an inline code span; as escaped `text` when it holds a backtick or a pipe
    (which a table row would split on even inside a code span)."""
    flat = " ".join(str(value).split())
    if not flat or any(c in flat for c in "`|") or any(_is_control(c) for c in flat):
        return text(flat)
    return Md(f"`{flat}`")


def _is_control(c: str) -> bool:
    return unicodedata.category(c) == "Cc"


def web_url(value: Any) -> str | None:
    """`value` when it is a plain http(s) URL a link may point at, else None."""
    url = str(value or "")
    if len(url) > URL_LIMIT or not _WEB_URL.fullmatch(url):
        return None
    return url.replace("|", "%7C").replace("(", "%28").replace(")", "%29")


def link(label: Any, url: Any) -> Md:
    """A link to `url` shown as `label` (cut to `NAME_LIMIT`), when `url` is http(s); else
    the label and the URL as text."""
    shown = text(shorten(label))
    target = web_url(url)
    if target:
        return Md(f"[{shown}]({target})")
    return Md(f"{shown} ({text(shorten(url))})") if url else shown


def fence(body: str, info: str = "text") -> Md:
    """A fenced code block holding `body`: its fence is longer than any run of backticks in
    it, so no line of `body` can close it."""
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    ticks = "`" * max(3, longest + 1)
    return Md(f"{ticks}{info}\n{body}\n{ticks}")
