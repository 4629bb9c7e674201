"""Instructions written by a model (the LLaVA-Instruct method).

For each image, task and sample: render the task's context, build the chat messages
(system, few-shot pairs, query), complete the prompts (in-process backends: all prompts of a
batch in one call; server backends: streamed one request at a time across batches by
`scheduler.py`), parse each completion, retry a rejected one once with a new seed, and drop
questions already asked. Every kept instruction records how it was made; every rejection
keeps the raw completion.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from mminstruct.config import Config
from mminstruct.context import render_context
from mminstruct.errors import MminstructError
from mminstruct.generate.backends import Backend, Completion, Request, make_backend
from mminstruct.generate.parse import Parsed, parse_completion
from mminstruct.generate.prompts import build_messages, detail_questions, load_task_templates
from mminstruct.generate.scheduler import Batch, one_batch_at_a_time, stream_requests
from mminstruct.keys import derived_seed, image_seed
from mminstruct.records import Generated, ImageRecord, Instruction, Rejection
from mminstruct.redact import redact_text
from mminstruct.resources import resolve_path

TASKS = ("conversation", "detail", "reasoning")
_WORDS = re.compile(r"[a-z0-9]+")
MAX_ERROR_CHARS = 500  # a backend's exception message is cut here in the rejects file
STREAM_BACKENDS = ("openai",)  # server backends: requests stream across batches (scheduler.py)
WINDOW_PER_REQUEST = 4  # images queued per request in flight (at least 2 batches' worth)
T = TypeVar("T")

log = logging.getLogger("mminstruct")


@dataclass(frozen=True)
class _Job:
    """One prompt: which image, task and sample it is for, and its seed."""

    index: int  # position of the record in the batch (or in the stream)
    task: str
    sample: int
    attempt: int
    request: Request


@dataclass(frozen=True)
class _Outcome:
    job: _Job
    completion: Completion
    parsed: Parsed


class ModelGenerator:
    """A Generator backed by a model (`hf`, `hf-vlm` or `openai`)."""

    def __init__(self, config: Config, backend: Backend | None = None):
        self.config = config
        folder = resolve_path(config.generator.templates) if config.generator.templates else None
        self.templates = load_task_templates(folder)
        self.questions = detail_questions(folder)
        self.backend = backend or make_backend(config.generator)
        self.asked: set[str] = set()  # questions kept so far in this unit (generator.dedup_dataset)
        # When a list, every prompt's outcome is appended to it: its job (task, sample,
        # attempt, request.messages), completion (raw text, tokens) and parse. `preview` shows it.
        self.trace: list[_Outcome] | None = None

    def start_unit(self) -> None:
        """Forget the questions of the previous unit: dedup stays unit-local, so resumed and
        multi-process runs give the same dataset as one uninterrupted process."""
        self.asked.clear()

    def generate(
        self, batch: Sequence[ImageRecord], images: Sequence[bytes] | None = None
    ) -> list[Generated]:
        """One Generated per record: kept instructions, and rejections with their reasons."""
        results = [Generated() for _ in batch]
        jobs = []
        for index, record in enumerate(batch):
            image = images[index] if images is not None else None
            jobs += self.plan(index, record, image, results[index])
        outcomes = self._complete(jobs)
        failed = [o for o in outcomes if o.parsed.reason] if self.config.generator.retry else []
        retried = {_slot(o.job): o for o in self._complete([_retry(o.job) for o in failed])}
        outcomes = [retried.get(_slot(o.job), o) for o in outcomes]
        for index, record in enumerate(batch):
            mine = [o for o in outcomes if o.job.index == index]
            self.finish(record, [o for o in failed if o.job.index == index], mine, results[index])
        return results

    def generate_stream(self, batches: Iterable[Batch[T]]) -> Iterator[tuple[T, list[Generated]]]:
        """`(batch.carry, results)` per batch, in order. On a server backend the requests of
        many batches stay in flight (`scheduler.py`); the in-process ones go a batch at a time."""
        if self.backend.name not in STREAM_BACKENDS or not hasattr(self.backend, "complete_one"):
            return one_batch_at_a_time(self, batches)
        generator = self.config.generator
        window = max(2 * generator.batch_size, WINDOW_PER_REQUEST * generator.concurrency)
        return stream_requests(self, batches, generator.concurrency, window)

    # ------------------------------------------------------------------ one image, one job

    def attempt(self, job: _Job) -> _Outcome:
        """One job asked alone (from a worker thread) and its completion parsed."""
        completion = self._ask_one(job.request)
        return _Outcome(job, completion, _parse(job.task, completion))

    def retry_of(self, outcome: _Outcome) -> _Job | None:
        """The retry of a first attempt that was rejected (`generator.retry`), else None."""
        if self.config.generator.retry and outcome.job.attempt == 0 and outcome.parsed.reason:
            return _retry(outcome.job)
        return None

    def finish(
        self,
        record: ImageRecord,
        failed: list[_Outcome],
        outcomes: list[_Outcome],
        result: Generated,
    ) -> None:
        """Collect one image: the tokens of its retried first attempts, then its final
        outcomes in the order of its jobs (dedup depends on that order, never on timing)."""
        for outcome in failed:  # tokens spent all the same
            result.tokens += outcome.completion.completion_tokens
        for outcome in outcomes:
            self._collect(record, outcome, result)

    def plan(
        self, index: int, record: ImageRecord, image: bytes | None, result: Generated
    ) -> list[_Job]:
        """The first-attempt jobs of one image (`index`: its place in the batch or stream);
        what cannot be asked goes into `result` as a rejection."""
        jobs = []
        sees_pixels = self.config.generator.backend == "hf-vlm"
        base = image_seed(self.config.generator.seed, record.dataset, record.image_id)
        for task in TASKS:
            settings = getattr(self.config.tasks, task)
            if not settings.enabled:
                continue
            boxes = self.config.context.boxes and settings.boxes
            options = dataclasses.replace(self.config.context, boxes=boxes)
            # A literal "<image>" in a caption would pass for the image placeholder.
            context = render_context(record, options).replace("<image>", "image")
            if not context and not sees_pixels:
                detail = "no captions and no boxes to write from"
                result.rejections.append(_reject(record, task, "insufficient_annotations", detail))
                continue
            messages = build_messages(self.templates[task], context)
            for sample in range(self.config.generator.samples_per_task):
                seed = derived_seed(base, task, sample, 0)
                request = Request(messages, seed, image if sees_pixels else None)
                jobs.append(_Job(index, task, sample, 0, request))
        return jobs

    def _complete(self, jobs: list[_Job]) -> list[_Outcome]:
        if not jobs:
            return []
        completions = self._ask([job.request for job in jobs])
        outcomes = [
            _Outcome(job, completion, _parse(job.task, completion))
            for job, completion in zip(jobs, completions, strict=True)
        ]
        if self.trace is not None:
            self.trace.extend(outcomes)
        return outcomes

    def _ask(self, requests: list[Request]) -> list[Completion]:
        """The backend's completions. When it raises (or miscounts), each request is asked
        again alone, so that only the prompts it fails on become error completions and the
        build goes on (`generator.max_failure_rate` stops it if that is most of them)."""
        try:
            completions = self.backend.complete(requests)
        except MminstructError:
            raise  # already says what to do (a missing extra, a refused key)
        except Exception as exc:  # a bad prompt or a backend bug: costs its prompts only
            error = self._raised(exc)
        else:
            if len(completions) == len(requests):
                return completions
            error = f"the backend gave {len(completions)} completions for {len(requests)} prompts"
        if len(requests) == 1:
            return [Completion("", "error", error=error[:MAX_ERROR_CHARS])]
        log.warning("%s; asking again one prompt at a time", error[:MAX_ERROR_CHARS])
        return [self._ask([request])[0] for request in requests]

    def _ask_one(self, request: Request) -> Completion:
        """The backend's completion of one request; an error Completion when it raises."""
        try:
            return self.backend.complete_one(request)  # type: ignore[attr-defined]
        except MminstructError:
            raise
        except Exception as exc:  # costs this request only
            return Completion("", "error", error=self._raised(exc)[:MAX_ERROR_CHARS])

    def _raised(self, exc: Exception) -> str:
        error = f"the {self.backend.name} backend raised {type(exc).__name__}: {exc}"
        return redact_text(error)  # an exception may quote what a server sent

    def _collect(self, record: ImageRecord, outcome: _Outcome, result: Generated) -> None:
        job, completion, parsed = outcome.job, outcome.completion, outcome.parsed
        result.tokens += completion.completion_tokens
        if parsed.reason:
            detail = parsed.detail or completion.error or parsed.reason
            result.rejections.append(
                _reject(record, job.task, parsed.reason, detail, raw=completion.text)
            )
            return
        turns = self._fresh_turns(record, job, parsed.turns, result)
        if turns:
            stamp = self._stamp(job, completion)
            result.instructions.append(Instruction(job.task, turns, stamp))

    def _fresh_turns(
        self, record: ImageRecord, job: _Job, turns: tuple, result: Generated
    ) -> tuple[tuple[str, str], ...]:
        """The turns to keep: a question for detail, capped counts, no repeated questions."""
        if job.task == "detail":
            rng = random.Random(job.request.seed)
            return ((rng.choice(self.questions), turns[0][1]),)
        tasks = self.config.tasks
        limit = (
            tasks.conversation.turns if job.task == "conversation" else tasks.reasoning.questions
        )
        kept = []
        seen = {normalize_question(q) for ins in result.instructions for q, _ in ins.turns}
        for question, answer in turns[:limit]:
            key = normalize_question(question)
            if key in seen or (self.config.generator.dedup_dataset and key in self.asked):
                detail = "the same question was asked before"
                result.rejections.append(_reject(record, job.task, "duplicate", detail, question))
                continue
            seen.add(key)
            self.asked.add(key)
            kept.append((question, answer))
        return tuple(kept)

    def _stamp(self, job: _Job, completion: Completion) -> dict:
        generator = self.config.generator
        template = self.templates[job.task]
        return {
            "backend": self.backend.name,
            "model": self.backend.model,
            "template": template.file,
            "template_sha256": template.sha256,
            "temperature": generator.temperature,
            "top_p": generator.top_p,
            "max_new_tokens": generator.max_new_tokens,
            "seed": job.request.seed,
            "attempt": job.attempt,
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            **completion.details,
        }


def normalize_question(text: str) -> str:
    """Lower-case words only: questions equal after this are the same question."""
    return " ".join(_WORDS.findall(text.lower()))


def _parse(task: str, completion: Completion) -> Parsed:
    if completion.finish_reason == "error":
        return Parsed((), "backend_error", completion.error or "the backend returned an error")
    return parse_completion(task, completion.text, completion.finish_reason)


def _slot(job: _Job) -> tuple[int, str, int]:
    return (job.index, job.task, job.sample)


def _retry(job: _Job) -> _Job:
    seed = derived_seed(job.request.seed, "retry")
    return dataclasses.replace(job, attempt=1, request=dataclasses.replace(job.request, seed=seed))


def _reject(
    record: ImageRecord, task: str, reason: str, detail: str, raw: str | None = None
) -> Rejection:
    return Rejection(reason, detail, record.dataset, record.image_id, task, raw)
