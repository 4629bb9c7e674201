"""Completions into turns: a corpus of realistic completions with their exact outcome.

Good completions, noisy ones a model really writes (bold, numbering, fences, CRLF, no
final separator) and bad ones for every rejection reason; then a property test that no
string makes the parser raise or keep a malformed turn.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.completions import BLOCKS, NOISY_TEXT

from mminstruct.generate.parse import REASONS, Parsed, parse_completion

Turns = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Case:
    """One completion and what the parser must make of it."""

    name: str
    task: str
    text: str
    expected: Turns | str  # the exact turns when kept, else the rejection reason
    finish_reason: str = "stop"


BIKE: Turns = (
    ("What is the man riding?", "He is riding a bicycle along a wet street."),
    ("Is it a sunny day?", "No. The road is wet and the sky is gray, so it has been raining."),
    (
        "Why do cyclists wear bright jackets?",
        "Bright colors make a rider easy to spot, so drivers see them sooner in poor light.",
    ),
)


def standard(turns: Turns, separator: str = "===") -> str:
    """The format the system messages ask for."""
    blocks = [f"Question: {q}\nAnswer: {a}" for q, a in turns]
    return f"\n{separator}\n".join(blocks)


DETAIL = (
    "A man in a yellow raincoat rides a bicycle down a wet city street, keeping close to a "
    "row of parked cars on the right.\n\nShops line the far side of the road, and the gray "
    "sky and shiny pavement show that it has been raining for a while."
)
REASONING: Turns = (
    (
        "What should the cyclist be careful about?",
        "The street is wet and he rides right next to parked cars. Wet brakes need longer to "
        "stop, and a car door could open in front of him. So he should ride slowly and leave "
        "some room between himself and the cars.",
    ),
)

GOOD = [
    Case("conversation, as asked", "conversation", standard(BIKE), BIKE),
    Case("reasoning, as asked", "reasoning", standard(REASONING), REASONING),
    Case("detail, as asked", "detail", DETAIL, (("", DETAIL),)),
    Case(
        "a plain 'no' and a pizza box are fine",
        "conversation",
        "Question: Is there a dog in the image?\nAnswer: No, I cannot see any dogs. There is "
        "a pizza box on the table.\n===\nQuestion: What is on the table?\nAnswer: A pizza box.",
        (
            (
                "Is there a dog in the image?",
                "No, I cannot see any dogs. There is a pizza box on the table.",
            ),
            ("What is on the table?", "A pizza box."),
        ),
    ),
]

NOISY = [
    Case(
        "markdown bold",
        "conversation",
        "\n===\n".join(f"**Question:** {q}\n**Answer:** {a}" for q, a in BIKE),
        BIKE,
    ),
    Case(
        "bold with the colon outside",
        "conversation",
        "\n===\n".join(f"**Question**: {q}\n**Answer**: {a}" for q, a in BIKE),
        BIKE,
    ),
    Case(
        "numbered blocks",
        "conversation",
        "\n\n".join(f"{i}. Question: {q}\n   Answer: {a}" for i, (q, a) in enumerate(BIKE, 1)),
        BIKE,
    ),
    Case(
        "Q1: / A1: short forms",
        "conversation",
        "\n".join(f"Q{i}: {q}\nA{i}: {a}" for i, (q, a) in enumerate(BIKE, 1)),
        BIKE,
    ),
    Case(
        "Q: / A: with markdown rules between",
        "conversation",
        "\n---\n".join(f"Q: {q}\nA: {a}" for q, a in BIKE),
        BIKE,
    ),
    Case(
        "code fence around everything",
        "conversation",
        "```text\n" + standard(BIKE) + "\n```",
        BIKE,
    ),
    Case("a final === left over", "conversation", standard(BIKE) + "\n===\n", BIKE),
    Case("CRLF line ends", "conversation", standard(BIKE).replace("\n", "\r\n"), BIKE),
    Case(
        "extra spaces and blank lines",
        "conversation",
        "\n\n".join(f"  Question :   {q}  \n\n\n  Answer:    {a}   \n   ===  " for q, a in BIKE),
        BIKE,
    ),
    Case(
        "question and answer on one line",
        "conversation",
        "\n===\n".join(f"Question: {q} Answer: {a}" for q, a in BIKE),
        BIKE,
    ),
    Case(
        "headings with numbers",
        "reasoning",
        "### Question 1:\n" + REASONING[0][0] + "\n### Answer 1:\n" + REASONING[0][1],
        REASONING,
    ),
    Case(
        "a chatty line before the first question is dropped",
        "conversation",
        "Here is a conversation about the photo:\n\n" + standard(BIKE),
        BIKE,
    ),
    Case(
        "bulleted bold markers, numbered questions",
        "conversation",
        "\n".join(
            f"- **Question {i}:** {q}\n- **Answer {i}:** {a}" for i, (q, a) in enumerate(BIKE, 1)
        ),
        BIKE,
    ),
    Case(
        "detail with a chatty first line and a label",
        "detail",
        "Sure! Here is what the photo shows:\n**Description:** " + DETAIL,
        (("", DETAIL),),
    ),
    Case(
        "detail in a fence with CRLF",
        "detail",
        ("```\n" + DETAIL + "\n```\n").replace("\n", "\r\n"),
        (("", DETAIL),),
    ),
]

LOOP = "The dog is sitting on the grass next to the bench. "

BAD = [
    Case("nothing at all", "conversation", "", "empty"),
    Case("only whitespace and a fence", "detail", "  \n```\n\n```\n ", "empty"),
    Case("markers with nothing in them", "reasoning", "Question:\nAnswer:\n===\n", "empty"),
    Case(
        "prose instead of blocks",
        "conversation",
        "The man rides a bicycle on a wet street. Cars are parked beside him.",
        "unparseable",
    ),
    Case(
        "answer before question",
        "conversation",
        "Answer: He is riding a bike.\nQuestion: What is he doing?",
        "unparseable",
    ),
    Case(
        "two questions in a row",
        "reasoning",
        "Question: Why is he here?\nQuestion: Where is he going?\nAnswer: To work.",
        "unparseable",
    ),
    Case(
        "an answer with no words",
        "conversation",
        "Question: What is he doing?\nAnswer: ...\n===\nQuestion: Is it wet?\nAnswer: Yes.",
        "unparseable",
    ),
    Case("detail written as blocks", "detail", standard(BIKE), "unparseable"),
    Case("cut at the token limit", "conversation", standard(BIKE), "truncated", "length"),
    Case(
        "ends mid-sentence",
        "conversation",
        standard(BIKE)[:-30],
        "truncated",
    ),
    Case(
        "the last question has no answer",
        "conversation",
        standard(BIKE) + "\n===\nQuestion: What color is the",
        "truncated",
    ),
    Case("detail ends mid-sentence", "detail", DETAIL[:-12], "truncated"),
    Case(
        "bounding boxes",
        "reasoning",
        "Question: Where is the dog?\nAnswer: Judging by its bounding box, it is on the left.",
        "source_leak",
    ),
    Case(
        "coordinates",
        "detail",
        "A dog lies on the grass; its coordinates put it near the bottom of the frame.",
        "source_leak",
    ),
    Case(
        "captions",
        "conversation",
        "Question: What is the man doing?\nAnswer: According to the captions, he is riding a bike.",
        "source_leak",
    ),
    Case(
        "the description",
        "detail",
        "Based on the description, a man rides a bicycle past parked cars in the rain.",
        "source_leak",
    ),
    Case(
        "the provided information",
        "reasoning",
        "Question: Is it cold?\nAnswer: The provided information does not say, so I would guess it is mild.",
        "source_leak",
    ),
    Case(
        "the given information",
        "conversation",
        "Question: How many cars are there?\nAnswer: From the given information, there are three cars.",
        "source_leak",
    ),
    Case(
        "a box written out",
        "conversation",
        "Question: Where is the bench?\nAnswer: The bench is at [0.12, 0.5, 0.48, 0.91].",
        "source_leak",
    ),
    Case(
        "the annotations",
        "detail",
        "The annotations list two people and a dog standing on a sandy beach at sunset.",
        "source_leak",
    ),
    Case(
        "apology without blocks",
        "conversation",
        "I'm sorry, but I can't help with describing images I cannot see.",
        "refusal",
    ),
    Case(
        "as an AI, inside an answer",
        "reasoning",
        "Question: What will the dog do next?\nAnswer: As an AI language model, I cannot predict the future.",
        "refusal",
    ),
    Case(
        "cannot see the image",
        "detail",
        "I cannot see the image, but it probably shows a man riding a bicycle in the rain.",
        "refusal",
    ),
    Case("a sentence looping", "detail", LOOP * 6, "degenerate"),
    Case(
        "a word looping",
        "conversation",
        "Question: How big is the cake?\nAnswer: It is very " + "very " * 20 + "big.",
        "degenerate",
    ),
    Case(
        "the same turn again and again",
        "conversation",
        standard([("What is on the bench?", "A small brown dog is sitting on it.")] * 4),
        "degenerate",
    ),
]

CORPUS = GOOD + NOISY + BAD


def test_corpus_covers_every_reason():
    assert len(CORPUS) >= 25
    assert {case.expected for case in BAD} == set(REASONS)


@pytest.mark.parametrize("case", CORPUS, ids=[case.name for case in CORPUS])
def test_corpus(case: Case):
    parsed = parse_completion(case.task, case.text, case.finish_reason)
    if isinstance(case.expected, str):
        assert (parsed.reason, parsed.turns) == (case.expected, ()), parsed.detail
        assert parsed.detail
    else:
        assert parsed == Parsed(turns=case.expected)


def test_rejections_say_what_they_found():
    case = next(case for case in BAD if case.name == "a box written out")
    parsed = parse_completion(case.task, case.text)
    assert parsed.detail == "found '[0.12, 0.5, 0.48, 0.91]'"


# --------------------------------------------------------------------------- properties

MARKER_LEFT = re.compile(r"(?:question|answer)[ \t]*:", re.IGNORECASE)


@settings(max_examples=200, deadline=None)
@given(
    task=st.sampled_from(("conversation", "detail", "reasoning")),
    text=st.one_of(st.text(), NOISY_TEXT, BLOCKS),
    finish_reason=st.sampled_from(("stop", "length", "error")),
)
def test_any_string_parses_or_is_rejected(task: str, text: str, finish_reason: str):
    parsed = parse_completion(task, text, finish_reason)
    assert parsed.reason is None or parsed.reason in REASONS
    if parsed.reason is not None:
        assert parsed.turns == ()
        return
    assert parsed.turns
    for question, answer in parsed.turns:
        assert re.search(r"\w", answer) and not MARKER_LEFT.search(answer)
        if task == "detail":
            assert question == ""
        else:
            assert re.search(r"\w", question) and not MARKER_LEFT.search(question)
