"""Completions into turns: tolerant of format noise, strict about meaning.

A model asked for `Question:` / `Answer:` blocks separated by `===` lines often adds
numbering, markdown bold, code fences or Windows line ends; all of that is accepted. What
is not accepted is a completion that was cut off, refuses, loops, or gives away that the
model read text instead of looking at a picture: each of those is rejected with a reason
from `REASONS`. `parse_completion` never raises.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

REASONS = ("empty", "unparseable", "truncated", "refusal", "source_leak", "degenerate")
IMAGE_TOKEN = "<image>"  # LLaVA's image placeholder (mminstruct.output.samples.IMAGE_TOKEN)

SENTENCE_REPEATS = 3  # a sentence (of MIN_SENTENCE_WORDS or more) seen this often: a loop
MIN_SENTENCE_WORDS = 4
NGRAM = 10  # words in the n-grams checked for loops
NGRAM_REPEATS = 3  # an n-gram seen this often: a loop

# A code fence line (```json, ~~~), dropped wherever it appears.
_FENCE = re.compile(r"^[ \t]*(?:```|~~~).*$", re.MULTILINE)
# A separator line between blocks: ===, --- or *** (markdown rules), dropped.
_SEPARATOR = re.compile(r"^[ \t]*(?:={3,}|-{3,}|\*{3,}|_{3,})[ \t]*$", re.MULTILINE)
# Bold or italic marks that may wrap a marker: "**Question:**", "__A__:", "*Q1*:".
_EMPHASIS = r"(?:\*\*|__|\*|_)?[ \t]*"
# A question or answer marker at the start of a line, with the decorations models add:
# heading, quote or bullet marks, numbering ("1.", "(2)"), bold, short forms ("Q:", "A1:")
# and numbers ("Question 3:", "Q#2:").
_LINE_MARKER = (
    r"^[ \t]*(?:[#>*\-•+][ \t]*)*(?:\(?\d{1,3}[.)][ \t]*)?"
    + _EMPHASIS
    + r"(?P<line>question|answer|q|a)[ \t]*(?:#?\d{1,3})?[ \t]*"
    + _EMPHASIS
    + r"[:：](?:[ \t]*(?:\*\*|__))?"
)
# The full-word markers, anywhere: "...? Answer: Yes." on one line (even inside a word,
# so that no kept text holds "Question:" or "Answer:").
_INLINE_MARKER = (
    r"(?P<inline>question|answer)[ \t]*(?:#?\d{1,3})?[ \t]*"
    + _EMPHASIS
    + r"[:：](?:[ \t]*(?:\*\*|__))?"
)
_MARKER = re.compile(f"{_LINE_MARKER}|{_INLINE_MARKER}", re.IGNORECASE | re.MULTILINE)
# A label a description may start with: "Description:", "**Detailed description:**".
_DETAIL_LABEL = re.compile(
    r"^[ \t#>*_]*(?:detailed[ \t]+)?(?:description|answer)[ \t*_]*[:：][ \t*_]*", re.IGNORECASE
)
# A chatty first line before a description: "Sure! Here is a detailed description:".
_CHATTER = re.compile(
    r"^[ \t]*(?:sure|certainly|of course|okay|ok|here(?:[’']s|[ \t]+is|[ \t]+are))\b[^\n]*:[ \t]*\n",
    re.IGNORECASE,
)
# Something to say: a letter or digit.
_WORD_CHAR = re.compile(r"\w")
# A finished text ends with a sentence end, maybe followed by quotes, brackets or emphasis.
_SENTENCE_END = re.compile(r"[.!?…。！？][\"'”’)\]*_]*$")

# Words that show the model read annotations instead of looking at the picture.
_LEAK_WORDS = re.compile(
    r"\b(?:bounding[ -]?box(?:es)?|bbox(?:es)?|co-?ordinates?|captions?|captioned"
    r"|annotations?|annotated|(?:the|these|this|those|given|provided)[ \t]+descriptions?)\b",
    re.IGNORECASE,
)
# "The provided information", "the given text", "the information provided".
_LEAK_SOURCE = re.compile(
    r"\b(?:(?:provided|given|supplied)[ \t]+(?:information|text|context|data|details|sentences)"
    r"|(?:information|text|context|data|details|sentences)[ \t]+(?:provided|given|supplied)"
    r")\b",
    re.IGNORECASE,
)
# Four numbers in brackets or parentheses, as a box is written: "[0.1, 0.2, 0.5, 0.9]".
_NUMBER = r"-?(?:\d+(?:\.\d*)?|\.\d+)"
_LEAK_BOX = re.compile(rf"[\[(][ \t]*(?:{_NUMBER}[ \t]*,[ \t]*){{3}}{_NUMBER}[ \t]*[\])]")
# "I cannot", "I can't", "I'm unable to", "I don't have the ability to".
_CANNOT = (
    r"I[ \t]*(?:cannot|can[’']?t|can[ \t]+not|(?:[ \t]am|[’']m)[ \t]+(?:unable|not[ \t]+able)[ \t]+to"
    r"|[ \t]do(?:[ \t]+not|n[’']?t)[ \t]+have[ \t]+the[ \t]+ability[ \t]+to)"
)
# Refusals and disclaimers: apologies, "as an AI", "I can't see the image".
_REFUSAL = re.compile(
    r"\b(?:I(?:[’']m|[ \t]+am)[ \t]+sorry|I[ \t]+apologi[sz]e"
    r"|as[ \t]+an?[ \t]+(?:AI|artificial[ \t]+intelligence|(?:\w+[ \t]+)?language[ \t]+model)"
    rf"|{_CANNOT}[ \t]+(?:see|view|look[ \t]+at|access|perceive)[ \t]+"
    r"(?:(?:the|this|that|your|an?)[ \t]+)?(?:images?|pictures?|photos?|photographs?|visuals?))\b",
    re.IGNORECASE,
)
# Words, for the n-gram loop check.
_WORDS = re.compile(r"\w+")
# Sentence boundaries, for the repeated-sentence check.
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")
# One character repeated on and on: "!!!!!!!!..." or "aaaaaaaa...".
_CHAR_RUN = re.compile(r"(\S)\1{24,}")


@dataclass(frozen=True)
class Parsed:
    """What a completion gave: its turns, or the reason it was rejected."""

    turns: tuple[tuple[str, str], ...]  # (question, answer) pairs; empty when rejected
    reason: str | None = None  # one of REASONS when rejected, None when kept
    detail: str = ""  # what was found, for the rejects file


def parse_completion(task: str, text: str, finish_reason: str = "stop") -> Parsed:
    """The turns of one completion for `task`, or a rejection with its reason.

    For "detail" the whole text is the answer, returned as one turn with an empty question.
    Checks, in order: empty; cut at the token limit; the block structure (unparseable, or
    truncated when the last question has no answer); refusal; ends mid-sentence; source
    leak; degenerate repetition.
    """
    cleaned = clean_text(text if isinstance(text, str) else "")
    if not _WORD_CHAR.search(_MARKER.sub("", cleaned)):
        return _reject("empty", "nothing but whitespace and format marks")
    if finish_reason == "length":
        return _reject("truncated", "the completion reached the token limit")
    if task == "detail":
        preamble, parsed = "", detail_turn(cleaned)
    else:
        preamble, pieces = split_pieces(cleaned)
        parsed = pair_up(pieces)
    if parsed.reason == "unparseable" and _REFUSAL.search(cleaned):
        return _reject("refusal", _quote(_REFUSAL, cleaned))
    if parsed.reason:
        return parsed
    return _check_meaning(parsed.turns, preamble)


def clean_text(text: str) -> str:
    """Unix line ends, no code fences, no image placeholders, no surrounding whitespace."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\ufeff", "")
    # The dataset puts its own `<image>` in the first question; a turn must stand without one.
    text = text.replace(IMAGE_TOKEN, "")
    return _FENCE.sub("", text).strip()


def split_pieces(text: str) -> tuple[str, list[tuple[str, str]]]:
    """The text before the first marker, and ("q" or "a", text) for every marked piece."""
    marks = list(_MARKER.finditer(text))
    if not marks:
        return text, []
    ends = [m.start() for m in marks[1:]] + [len(text)]
    pieces = []
    for mark, end in zip(marks, ends, strict=True):
        kind = (mark.group("line") or mark.group("inline"))[0].lower()
        pieces.append((kind, _trim(_SEPARATOR.sub("", text[mark.end() : end]))))
    return text[: marks[0].start()].strip(), pieces


def pair_up(pieces: list[tuple[str, str]]) -> Parsed:
    """Turns from pieces that alternate question, answer, ..., answer, each with words."""
    kinds = "".join(kind for kind, _ in pieces)
    pairs = len(kinds) // 2
    if not kinds:
        return _reject("unparseable", "no Question:/Answer: markers")
    if pairs and kinds == "qa" * pairs + "q":
        return _reject("truncated", "the last question has no answer")
    if kinds != "qa" * pairs:
        return _reject("unparseable", f"markers do not alternate question/answer: {kinds[:40]}")
    for i, (kind, piece) in enumerate(pieces):
        if not _WORD_CHAR.search(piece):
            name = "question" if kind == "q" else "answer"
            return _reject("unparseable", f"{name} {i // 2 + 1} is empty")
    return Parsed(turns=tuple((pieces[i][1], pieces[i + 1][1]) for i in range(0, len(pieces), 2)))


def detail_turn(text: str) -> Parsed:
    """The description as one turn with an empty question; rejected if it holds markers."""
    text = _DETAIL_LABEL.sub("", _CHATTER.sub("", text, count=1), count=1)
    text = _trim(_SEPARATOR.sub("", text))
    if not _WORD_CHAR.search(text):  # "Description: ..." and nothing more
        return _reject("empty", "nothing but a label and format marks")
    found = _MARKER.search(text)
    if found:
        return _reject("unparseable", f"a description holds a marker: {found.group().strip()!r}")
    return Parsed(turns=(("", text),))


def _check_meaning(turns: tuple[tuple[str, str], ...], preamble: str) -> Parsed:
    answers = "\n".join([preamble, *(answer for _, answer in turns)])
    everything = "\n".join(f"{q}\n{a}" for q, a in turns)
    if _REFUSAL.search(answers):
        return _reject("refusal", _quote(_REFUSAL, answers))
    if not _SENTENCE_END.search(turns[-1][1]):
        return _reject("truncated", f"ends mid-sentence: ...{turns[-1][1][-40:]!r}")
    for pattern in (_LEAK_WORDS, _LEAK_SOURCE, _LEAK_BOX):
        if pattern.search(everything):
            return _reject("source_leak", _quote(pattern, everything))
    loop = find_loop(everything)
    if loop:
        return _reject("degenerate", loop)
    return Parsed(turns=turns)


def find_loop(text: str) -> str:
    """What repeats too often in `text` (a sentence, an n-gram, a character), or ""."""
    sentences = Counter(
        " ".join(s.lower().split())
        for s in _SENTENCE_SPLIT.split(text)
        if len(s.split()) >= MIN_SENTENCE_WORDS
    )
    for sentence, count in sentences.most_common(1):
        if count >= SENTENCE_REPEATS:
            return f"sentence repeated {count} times: {sentence[:60]!r}"
    words = [w.lower() for w in _WORDS.findall(text)]
    grams = Counter(tuple(words[i : i + NGRAM]) for i in range(len(words) - NGRAM + 1))
    for gram, count in grams.most_common(1):
        if count >= NGRAM_REPEATS:
            return f"{NGRAM} words repeated {count} times: {' '.join(gram)[:60]!r}"
    run = _CHAR_RUN.search(text)
    return f"character repeated: {run.group()[:30]!r}" if run else ""


def _trim(piece: str) -> str:
    """A question or answer without surrounding space or a dangling bold mark."""
    piece = piece.strip()
    for mark in ("**", "__"):
        if piece.count(mark) % 2:
            if piece.startswith(mark):
                piece = piece[len(mark) :].strip()
            elif piece.endswith(mark):
                piece = piece[: -len(mark)].strip()
    return piece


def _quote(pattern: re.Pattern[str], text: str) -> str:
    found = pattern.search(text)
    return f"found {found.group()!r}" if found else ""


def _reject(reason: str, detail: str) -> Parsed:
    return Parsed(turns=(), reason=reason, detail=detail)
