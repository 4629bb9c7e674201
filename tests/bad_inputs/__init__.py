"""The bad-input corpus: broken annotation files, records, images, paths and configs.

Each case writes its own small inputs at run time (`cases.py`, with `files.py` drawing the
images) and names the one outcome a build must have; `tests/test_bad_inputs.py` runs them.
"""

from bad_inputs.cases import CASES, Built, Case, Fails

# Each module registers its cases into CASES when imported (after cases.py, in this order).
from bad_inputs import (  # noqa: F401  isort: skip
    cases_converters,
    cases_config,
    cases_backends,
    cases_publish,
    cases_preview,
)

__all__ = ["CASES", "Built", "Case", "Fails"]
