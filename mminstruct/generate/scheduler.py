"""Streaming requests to a server backend: many images in flight, results in input order.

`generate_stream(generator, batches)` is what the pipeline calls: for each `Batch` it yields
`(batch.carry, [Generated, ...])`, in the order the batches came. A generator that can stream
(`ModelGenerator` on the `openai` backend) keeps `generator.concurrency` requests in flight
across batches, over a bounded window of images: `workers` threads each send one request at a
time (oldest image first), parse its answer and send a retry at once when the parse fails.
The caller's thread only pulls batches, collects finished images in order and yields them,
so checks and writing never hold up a request. Any other generator completes one batch at a
time (`generate`), as the in-process `hf` backends must.

The results do not depend on the order answers arrive in: each image's answers are collected
in the order of its requests, images in input order, when their batch is yielded.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from mminstruct.records import Generated, ImageRecord

T = TypeVar("T")
_STOP = object()  # a worker that takes this from the queue exits


@dataclass(frozen=True)
class Batch(Generic[T]):
    """Records to generate for, their image bytes, and what the caller wants back with them."""

    records: Sequence[ImageRecord]
    images: Sequence[bytes]
    carry: T  # handed back unchanged beside the results


class Streamer(Protocol):
    """What the scheduler needs of a generator: its requests, how to run one, how to collect."""

    def plan(self, index: int, record: ImageRecord, image: bytes | None, result: Generated) -> list:
        """The first-attempt jobs of image `index` (their `.index` is `index`)."""
        ...

    def attempt(self, job: Any) -> Any:
        """Run one job (in a worker thread): its outcome, with `.job`; never raises for a
        failed request."""
        ...

    def retry_of(self, outcome: Any) -> Any | None:
        """The job to send again for this outcome, or None when it is final."""
        ...

    def finish(self, record: ImageRecord, failed: list, outcomes: list, result: Generated) -> None:
        """Collect one image: `failed` first attempts that were retried, then the final
        outcomes in the order of its jobs."""
        ...


def generate_stream(generator: Any, batches: Iterable[Batch[T]]) -> Iterator[tuple[T, list]]:
    """`(batch.carry, one Generated per record)` for each batch, in order (see the module)."""
    stream = getattr(generator, "generate_stream", None)
    if stream is not None:
        return stream(batches)
    return one_batch_at_a_time(generator, batches)


def one_batch_at_a_time(generator: Any, batches: Iterable[Batch[T]]) -> Iterator[tuple[T, list]]:
    """The batch path: each batch completed (`generate`) when it is asked for."""
    for batch in batches:
        yield batch.carry, generator.generate(batch.records, batch.images)


def stream_requests(
    streamer: Streamer, batches: Iterable[Batch[T]], workers: int, window: int
) -> Iterator[tuple[T, list[Generated]]]:
    """The streamed path: up to `window` images' requests queued, `workers` in flight."""
    pool = RequestPool(streamer, workers)
    try:
        yield from _in_order(streamer, pool, iter(batches), window)
    finally:
        pool.close()  # also when the caller stops early (SIGTERM, an error)


# ---------------------------------------------------------------------- the window


@dataclass
class _Image:
    """One image whose requests are out."""

    index: int  # its place in the input (0, 1, ...), also its requests' priority
    record: ImageRecord
    jobs: list  # its first attempts, in order
    result: Generated = field(default_factory=Generated)
    finals: dict = field(default_factory=dict)  # (task, sample) -> final outcome
    failed: list = field(default_factory=list)  # first attempts that were retried
    left: int = 0  # jobs without a final outcome yet

    def outcomes(self) -> list:
        return [self.finals[(job.task, job.sample)] for job in self.jobs]


@dataclass
class _Window:
    """The batches pulled so far and not yet yielded, oldest first."""

    streamer: Streamer
    pool: RequestPool
    batches: deque = field(default_factory=deque)  # (batch, [_Image])
    open: dict = field(default_factory=dict)  # image index -> _Image
    count: itertools.count = field(default_factory=itertools.count)

    def add(self, batch: Batch) -> None:
        """Plan the batch's images and queue their requests."""
        images = []
        for record, data in zip(batch.records, batch.images, strict=True):
            image = _Image(next(self.count), record, [])
            image.jobs = self.streamer.plan(image.index, record, data, image.result)
            image.left = len(image.jobs)
            for job in image.jobs:
                self.pool.submit(image.index, job)
            self.open[image.index] = image
            images.append(image)
        self.batches.append((batch, images))

    def room(self, window: int) -> bool:
        """Whether another batch may be pulled: fewer than `window` images out, and fewer
        than `window` batches held (a batch whose images were all refused holds none)."""
        return len(self.open) < window and len(self.batches) < window

    def wait_for_oldest(self) -> None:
        """Take finished requests until every image of the oldest batch is complete."""
        _, images = self.batches[0]
        while any(image.left for image in images):
            outcome, retried = self.pool.take()
            image = self.open[outcome.job.index]
            if retried:
                image.failed.append(outcome)
                continue
            image.finals[(outcome.job.task, outcome.job.sample)] = outcome
            image.left -= 1

    def pop_oldest(self) -> tuple[Batch, list[Generated]]:
        """The oldest batch, each image collected in order."""
        batch, images = self.batches.popleft()
        for image in images:
            self.streamer.finish(image.record, image.failed, image.outcomes(), image.result)
            del self.open[image.index]
        return batch, [image.result for image in images]


def _in_order(
    streamer: Streamer, pool: RequestPool, batches: Iterator[Batch[T]], window: int
) -> Iterator[tuple[T, list[Generated]]]:
    pending = _Window(streamer, pool)
    exhausted = False
    while True:
        while not exhausted and (not pending.batches or pending.room(window)):
            batch = next(batches, None)
            exhausted = batch is None
            if batch is not None:
                pending.add(batch)
        if not pending.batches:
            return
        pending.wait_for_oldest()
        batch, results = pending.pop_oldest()
        yield batch.carry, results


# ---------------------------------------------------------------------- the workers


class _Raised:
    """An exception from a worker, to raise in the caller's thread."""

    def __init__(self, exc: BaseException):
        self.exc = exc


class RequestPool:
    """`workers` daemon threads running jobs from a queue, lowest priority number first.

    A worker runs `streamer.attempt(job)`; when `streamer.retry_of` gives a retry, the worker
    queues it right away (at its image's priority) and reports the first outcome as retried.
    Daemon threads: a request still waiting on a slow server never holds up the exit.
    """

    def __init__(self, streamer: Streamer, workers: int):
        self._streamer = streamer
        self._todo: queue.PriorityQueue = queue.PriorityQueue()
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        self._order = itertools.count()  # first in, first out within one priority
        self._threads = [
            threading.Thread(target=self._serve, name=f"mminstruct-request-{i}", daemon=True)
            for i in range(max(1, workers))
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, priority: int, job: Any) -> None:
        """Queue a job; lower `priority` goes first (the image's place in the input)."""
        self._todo.put((priority, next(self._order), job))

    def take(self) -> tuple[Any, bool]:
        """The next finished outcome and whether it was retried; a worker's error is raised."""
        outcome, retried = self._done.get()
        if isinstance(outcome, _Raised):
            raise outcome.exc
        return outcome, retried

    def close(self) -> None:
        """Stop the workers after their current request; queued jobs are dropped."""
        for _ in self._threads:
            self._todo.put((-1, next(self._order), _STOP))

    def _serve(self) -> None:
        while True:
            priority, _, job = self._todo.get()
            if job is _STOP:
                return
            self._done.put(self._run(priority, job))

    def _run(self, priority: int, job: Any) -> tuple[Any, bool]:
        try:
            outcome = self._streamer.attempt(job)
            retry = self._streamer.retry_of(outcome)
        except BaseException as exc:  # raised again in the caller's thread
            return _Raised(exc), False
        if retry is not None:
            self.submit(priority, retry)
        return outcome, retry is not None
