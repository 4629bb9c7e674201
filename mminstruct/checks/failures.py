"""Stop a build that burns its allocation: too many images the model failed on.

An image counts as failed when the model was asked and nothing usable came back: it got no
instruction, and a task of it was rejected because the backend failed (`backend_error`: it
raised, timed out, or the server answered with an error) or wrote something unusable (a
parse rejection: `empty`, `unparseable`, `truncated`, ...). After every batch the share of
failed images among the latest `failure_window` images is compared with
`generator.max_failure_rate`; past it, the build stops with a message naming the rate, the
threshold and the commonest reasons. Images without a context to write from, or rejected
before the model saw them (a missing file), do not count.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

from mminstruct.config import GeneratorConfig
from mminstruct.errors import MminstructError
from mminstruct.generate import REASONS
from mminstruct.records import Generated

MODEL_FAILURES = frozenset(("backend_error", *REASONS))  # reasons that mean "the model failed"
MIN_WINDOW = 20  # the rate is never judged on fewer images than this
SHOWN_REASONS = 3  # reasons quoted in the message, commonest first


def failure_window(batch_size: int) -> int:
    """How many of the latest images the rate is taken over: two batches, and at least 20."""
    return max(2 * batch_size, MIN_WINDOW)


def model_failures(generated: Generated) -> tuple[tuple[str, str], ...]:
    """(reason, detail) of each model failure of an image that got no instruction; () when
    the image got an instruction or failed for another reason."""
    if generated.instructions:
        return ()
    return tuple((r.reason, r.detail) for r in generated.rejections if r.reason in MODEL_FAILURES)


@dataclass
class FailureWatch:
    """The latest images' model failures, and the check against the threshold."""

    window: int  # images the rate is taken over (`failure_window`)
    limit: float  # `generator.max_failure_rate`
    recent: deque = field(default_factory=deque)  # per image: its model failures, or ()

    @classmethod
    def of(cls, config: GeneratorConfig) -> FailureWatch:
        """The watch for a job's `generator` settings."""
        return cls(failure_window(config.batch_size), config.max_failure_rate)

    def add(self, generated: Generated) -> None:
        """Record one image that went through the generator."""
        self.recent.append(model_failures(generated))
        if len(self.recent) > self.window:
            self.recent.popleft()

    def check(self) -> None:
        """Raise when more than `limit` of the latest `window` images failed."""
        failed = [reasons for reasons in self.recent if reasons]
        if len(self.recent) < self.window or len(failed) <= self.limit * len(self.recent):
            return
        raise MminstructError(failure_message(failed, len(self.recent), self.limit))


def failure_message(failed: list[tuple[tuple[str, str], ...]], tried: int, limit: float) -> str:
    """Why the build stops: the rate, the threshold, the commonest reasons and what to do."""
    images: Counter = Counter()
    example: dict[str, str] = {}
    for reasons in failed:
        for reason, detail in dict(reasons).items():  # each reason once per image
            images[reason] += 1
            example.setdefault(reason, detail)
    shown = "; ".join(
        f"{reason} ({count} images, e.g. {example[reason][:160]!r})"
        for reason, count in images.most_common(SHOWN_REASONS)
    )
    return (
        f"stopping early: the model failed on {len(failed)} of the last {tried} images "
        f"({len(failed) / tried:.0%}), more than generator.max_failure_rate = {limit:g} allows. "
        f"Commonest reasons: {shown}. Fix the backend (is the server up, the model right, the "
        "prompt too long?) and rerun the same command to resume (finished shards are kept); "
        "or set generator.max_failure_rate higher (1 never stops)."
    )
