"""Hypothesis strategies for model completions: noisy fragments and well-formed blocks."""

from __future__ import annotations

from hypothesis import strategies as st

# Pieces that completions are made of, so random strings often come close to parsing.
FRAGMENTS = (
    *("Question:", "Answer:", "question :", "Q1:", "A:", "**Question:**", "**Answer**:"),
    *("1. ", "===", "---", "\n", "\r\n", "```", " ", "Is it a dog?", "Yes, it is a dog."),
    *("the", ".", "?", "[0.1, 0.2, 0.3, 0.4]", "I'm sorry", "Description:", "*", "#", "_"),
)
NOISY_TEXT = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=12)), max_size=40).map(
    "".join
)
# Well-formed blocks with random text inside: completions that are often kept.
STYLES = (("Question: ", "Answer: "), ("**Question:** ", "**Answer:** "), ("Q1: ", "A1: "))
BLOCKS = st.lists(
    st.tuples(st.sampled_from(STYLES), st.text(max_size=30), st.text(max_size=30)),
    min_size=1,
    max_size=4,
).map(lambda blocks: "\n===\n".join(f"{m[0]}{q}\n{m[1]}{a}." for m, q, a in blocks))
