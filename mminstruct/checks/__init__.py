"""Checks: generated instructions -> findings against the annotations they were made from.

Takes an image record and its `Generated`; gives grounding findings and scores, preference pairs
(a faithful answer and one with a planted error) and the build's failure-rate guard. Start at
`grounding/__init__.py` (`ground`), then `preference.py`.
"""

from mminstruct.checks.failures import FailureWatch
from mminstruct.checks.grounding import (
    KINDS,
    MODES,
    Facts,
    check_facts,
    check_instruction,
    check_text,
    facts,
    ground,
)
from mminstruct.checks.preference import ERROR_KINDS, add_preference_pairs, rewrite_rejected

__all__ = [
    "ERROR_KINDS",
    "KINDS",
    "MODES",
    "Facts",
    "FailureWatch",
    "add_preference_pairs",
    "check_facts",
    "check_instruction",
    "check_text",
    "facts",
    "ground",
    "rewrite_rejected",
]
