"""Instructions written by a model (the LLaVA-Instruct method).

For each image, task and sample: render the task's context, build the chat messages
(system, few-shot pairs, query), complete all prompts of a batch in one backend call,
parse each completion, retry a rejected one once with a new seed, and drop questions
already asked. Every kept instruction records how it was made; every rejection keeps the
raw completion.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from mminstruct.config import Config
from mminstruct.context import render_context
from mminstruct.errors import MminstructError
from mminstruct.generate.backends import Backend, Completion, Request, make_backend
from mminstruct.generate.parse import Parsed, parse_completion
from mminstruct.generate.prompts import build_messages, detail_questions, load_task_templates
from mminstruct.keys import derived_seed, image_seed
from mminstruct.records import Generated, ImageRecord, Instruction, Rejection
from mminstruct.redact import redact_text
from mminstruct.resources import resolve_path

TASKS = ("conversation", "detail", "reasoning")
_WORDS = re.compile(r"[a-z0-9]+")
MAX_ERROR_CHARS = 500  # a backend's exception message is cut here in the rejects file

log = logging.getLogger("mminstruct")


@dataclass(frozen=True)
class _Job:
    """One prompt: which image, task and sample it is for, and its seed."""

    index: int  # position of the record in the batch
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
            jobs += self._jobs(index, record, image, results[index])
        outcomes = self._complete(jobs)
        if self.config.generator.retry:
            for failed in (o for o in outcomes if o.parsed.reason):  # tokens spent all the same
                results[failed.job.index].tokens += failed.completion.completion_tokens
            retries = [_retry(o.job) for o in outcomes if o.parsed.reason]
            retried = {(o.job.index, o.job.task, o.job.sample): o for o in self._complete(retries)}
            outcomes = [retried.get((o.job.index, o.job.task, o.job.sample), o) for o in outcomes]
        for outcome in outcomes:
            self._collect(batch[outcome.job.index], outcome, results[outcome.job.index])
        return results

    def _jobs(
        self, index: int, record: ImageRecord, image: bytes | None, result: Generated
    ) -> list[_Job]:
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
            error = f"the {self.backend.name} backend raised {type(exc).__name__}: {exc}"
            error = redact_text(error)  # an exception may quote what a server sent
        else:
            if len(completions) == len(requests):
                return completions
            error = f"the backend gave {len(completions)} completions for {len(requests)} prompts"
        if len(requests) == 1:
            return [Completion("", "error", error=error[:MAX_ERROR_CHARS])]
        log.warning("%s; asking again one prompt at a time", error[:MAX_ERROR_CHARS])
        return [self._ask([request])[0] for request in requests]

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


def _retry(job: _Job) -> _Job:
    seed = derived_seed(job.request.seed, "retry")
    return dataclasses.replace(job, attempt=1, request=dataclasses.replace(job.request, seed=seed))


def _reject(
    record: ImageRecord, task: str, reason: str, detail: str, raw: str | None = None
) -> Rejection:
    return Rejection(reason, detail, record.dataset, record.image_id, task, raw)
