"""The bad-input corpus: broken annotation files, records, images, paths and configs.

Each case writes its own small inputs at run time (`cases.py`, with `files.py` drawing the
images) and names the one outcome a build must have; `tests/test_bad_inputs.py` runs them.
"""

from bad_inputs.cases import CASES, Built, Case, Fails

__all__ = ["CASES", "Built", "Case", "Fails"]
