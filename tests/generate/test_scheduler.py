"""The streaming request scheduler: order, bounds, retries and errors, then whole builds
against a local server whose answers arrive in random order, byte-compared with the batch path."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support.fake_openai import FakeServer, Handler

from mminstruct.cli import main
from mminstruct.config import config_from_dict
from mminstruct.errors import MminstructError
from mminstruct.generate import Batch, generate_stream, model
from mminstruct.generate.backends import Completion, Request
from mminstruct.generate.backends import openai as openai_backend
from mminstruct.generate.model import ModelGenerator
from mminstruct.generate.scheduler import stream_requests
from mminstruct.records import ImageRecord, ObjectBox

# --------------------------------------------------------------------------- the scheduler alone


@dataclass(frozen=True)
class Job:
    index: int
    task: str
    sample: int
    attempt: int = 0


@dataclass(frozen=True)
class Outcome:
    job: Job
    good: bool


@dataclass
class Recorder:
    """A Streamer whose jobs sleep a random while; job 'b' of image 3 fails its first try."""

    open_now: int = 0
    open_max: int = 0
    started: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    raise_on: int | None = None  # the image whose first job raises

    def plan(self, index, record, image, result):
        return [Job(index, task, 0) for task in "abc"]

    def attempt(self, job: Job) -> Outcome:
        with self.lock:
            self.started.append(job)
            self.open_now += 1
            self.open_max = max(self.open_max, self.open_now)
        time.sleep(random.uniform(0, 0.005))
        with self.lock:
            self.open_now -= 1
        if job.index == self.raise_on:
            raise RuntimeError("a bug in the worker")
        return Outcome(job, not (job.index == 3 and job.task == "b" and job.attempt == 0))

    def retry_of(self, outcome: Outcome) -> Job | None:
        job = outcome.job
        return None if outcome.good else Job(job.index, job.task, job.sample, 1)

    def finish(self, record, failed, outcomes, result):
        result.tokens = len(failed)
        result.rejections = [(o.job.index, o.job.task, o.job.attempt) for o in outcomes]


def records(n: int) -> list[ImageRecord]:
    return [ImageRecord("t", i, f"{i}.jpg", None, 10, 10, ("A cat.",), (), ()) for i in range(n)]


def batches(n: int, size: int, pulled: list[int] | None = None) -> Iterator[Batch]:
    items = records(n)
    for start in range(0, n, size):
        if pulled is not None:
            pulled.append(start)
        chunk = items[start : start + size]
        yield Batch(chunk, [b""] * len(chunk), start)


def test_results_come_in_input_order_whatever_order_answers_arrive_in():
    streamer = Recorder()
    out = list(stream_requests(streamer, batches(40, 3), workers=6, window=9))
    assert [carry for carry, _ in out] == list(range(0, 40, 3))
    flat = [result for _, results in out for result in results]
    assert [r.rejections for r in flat] == [
        [(i, "a", 0), (i, "b", int(i == 3)), (i, "c", 0)] for i in range(40)
    ]
    assert [r.tokens for r in flat] == [int(i == 3) for i in range(40)]  # the retried try
    assert streamer.open_max == 6  # all workers busy at once, never more
    assert len(streamer.started) == 121


def test_the_window_bounds_how_far_ahead_batches_are_pulled():
    pulled: list[int] = []
    stream = stream_requests(Recorder(), batches(60, 5, pulled), workers=4, window=12)
    carry, _ = next(stream)
    assert carry == 0 and pulled == [0, 5, 10]  # 15 images: the first batch past 12 is the last
    stream.close()


def test_batches_without_images_are_not_pulled_without_bound():
    """A run of images all refused on loading: batches of none, held at most `window`."""
    pulled: list[int] = []

    def empty() -> Iterator[Batch]:
        for start in range(1000):
            pulled.append(start)
            yield Batch([], [], start)

    stream = stream_requests(Recorder(), empty(), workers=2, window=8)
    assert next(stream)[0] == 0 and len(pulled) == 8
    assert [carry for carry, _ in stream] == list(range(1, 1000))


def test_a_retry_goes_before_newer_images():
    streamer = Recorder()
    list(stream_requests(streamer, batches(30, 30), workers=1, window=30))
    started = streamer.started
    assert started.index(Job(3, "b", 0, 1)) + 1 == started.index(Job(4, "a", 0))


def test_a_worker_error_is_raised_in_the_callers_thread():
    stream = stream_requests(Recorder(raise_on=2), batches(12, 4), workers=3, window=12)
    with pytest.raises(RuntimeError, match="a bug in the worker"):
        list(stream)


def test_workers_stop_when_the_stream_is_closed():
    before = {t for t in threading.enumerate() if t.name.startswith("mminstruct-request")}
    stream = stream_requests(Recorder(), batches(30, 3), workers=5, window=9)
    next(stream)
    stream.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        now = {t for t in threading.enumerate() if t.name.startswith("mminstruct-request")}
        if not now - before:
            break
        time.sleep(0.01)
    assert not now - before


# --------------------------------------------------------------------------- the model generator


GOOD = "Question: What is dog {} doing?\nAnswer: It is running on the grass, chasing a ball."


class OneAtATime:
    """A server-like backend: each request alone, after a random wait; some prompts raise,
    some get garbage (so the generator retries them)."""

    name = "openai"
    model = "scripted"

    def __init__(self) -> None:
        self.calls = 0
        self.lock = threading.Lock()

    def complete_one(self, request: Request) -> Completion:
        with self.lock:
            self.calls += 1
        time.sleep(random.uniform(0, 0.003))
        if request.seed % 11 == 0:
            raise ConnectionError(f"lost the line for seed {request.seed}")
        text = "lorem ipsum" if request.seed % 5 == 0 else GOOD.format(request.seed)
        return Completion(text, "stop", 10, 20)

    def complete(self, requests: Sequence[Request]) -> list[Completion]:
        return [self.complete_one(request) for request in requests]  # raises for the lot

    def count_tokens(self, messages) -> int:
        return 10


def model_generator(**generator) -> ModelGenerator:
    raw = {
        "sources": [{"kind": "coco", "images": "x", "instances": "y.json"}],
        "generator": {"backend": "openai", "model": "m", "concurrency": 5, **generator},
    }
    return ModelGenerator(config_from_dict(raw), backend=OneAtATime())


def dogs(n: int) -> list[ImageRecord]:
    dog = ObjectBox("dog", 10, 10, 50, 40)
    captions = ("A dog running on grass.",)
    return [ImageRecord("t", i, f"{i}.jpg", None, 100, 80, captions, (dog,), ()) for i in range(n)]


def test_streamed_results_equal_one_batch_at_a_time():
    items = dogs(23)
    streamed_generator = model_generator(batch_size=4)
    chunks = [Batch(items[i : i + 4], [b""] * len(items[i : i + 4]), i) for i in range(0, 23, 4)]
    streamed = [r for _, rs in streamed_generator.generate_stream(chunks) for r in rs]
    batched = [r for chunk in chunks for r in model_generator().generate(chunk.records)]
    assert streamed == batched
    reasons = {r.reason for g in streamed for r in g.rejections}
    assert {"backend_error", "unparseable"} <= reasons  # errors and retries were exercised
    errors = [r for g in streamed for r in g.rejections if r.reason == "backend_error"]
    assert all("ConnectionError: lost the line for seed" in r.detail for r in errors)
    kept = sum(len(g.instructions) for g in streamed)
    assert kept > len(items)  # an error cost only its own request, never its batch


def test_a_backend_without_requests_one_at_a_time_keeps_its_batches(monkeypatch):
    generator = model_generator()
    monkeypatch.setattr(model, "STREAM_BACKENDS", ())
    stream = generate_stream(generator, [Batch(dogs(2), [b"", b""], "x")])
    ((carry, results),) = list(stream)
    assert carry == "x" and len(results) == 2


def test_a_refused_key_stops_the_stream():
    generator = model_generator()

    def refused(request: Request) -> Completion:
        raise MminstructError("the server refused the API key")

    generator.backend.complete_one = refused
    with pytest.raises(MminstructError, match="refused the API key"):
        list(generator.generate_stream([Batch(dogs(3), [b""] * 3, 0)]))


# --------------------------------------------------------------------------- whole builds


class Jittery(Handler):
    """The fake server's answers after a random wait (so they arrive out of order); a seed
    divisible by 7 gets HTTP 400 (the generator retries it with a new seed) and one divisible
    by 5 an HTTP 500 the first time (the backend sends it again)."""

    def act(self, action: str, body: dict) -> None:
        time.sleep(random.expovariate(1 / self.server.mean_delay_s))
        seed = body["seed"]
        with self.server.lock:
            first = seed not in self.server.seen
            self.server.seen.add(seed)
        if seed % 7 == 0:
            action = "400"
        elif seed % 5 == 0 and first:
            action = "500"
        super().act(action, body)


class JitteryServer(FakeServer):
    request_queue_size = 64  # connections waiting to be accepted (socketserver's default: 5)

    def __init__(self) -> None:
        super().__init__()
        self.RequestHandlerClass = Jittery
        self.seen: set[int] = set()  # seeds asked for so far
        self.mean_delay_s = 0.02  # answers wait a random while, this long on average


def serve() -> JitteryServer:
    server = JitteryServer()
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    return server


def build(out: Path, source: dict, server: JitteryServer, concurrency: int) -> dict[str, bytes]:
    """Build `source` against `server` (its first-time failures reset); the result files,
    the manifest without its config fingerprint."""
    server.seen.clear()
    job = out.parent / f"{out.name}.yaml"
    job.write_text(json.dumps({"sources": [source]}))  # JSON is YAML
    args = ["build", str(job), "-q", "--set", f"output.dir={out}"]
    settings = {
        "backend": "openai",
        "model": "served",
        "base_url": server.url,
        "concurrency": concurrency,
        "batch_size": 3,
    }
    args += [item for k, v in settings.items() for item in ("--set", f"generator.{k}={v}")]
    args += ["--set", "output.shard_max_samples=7", "--set", "tasks.preference.enabled=true"]
    assert main(args) == 0
    files = {p.name: p.read_bytes() for p in sorted(out.glob("shard-*.tar"))}
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["fingerprint"]  # of the config, which names the concurrency
    names = ("stats.json", "rejects.jsonl", "shards.wids.json")
    return files | {name: (out / name).read_bytes() for name in names} | {"manifest": manifest}


@pytest.fixture
def server(monkeypatch) -> Iterator[JitteryServer]:
    monkeypatch.setattr(openai_backend, "BASE_DELAY_S", 0.001)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    server = serve()
    yield server
    server.shutdown()
    server.server_close()


def test_streamed_build_is_byte_identical_to_the_batch_path(
    tmp_path, coco_mini, server, monkeypatch
):
    """coco_mini: 79 images, 66 of them missing (rejected in order among the others)."""
    streamed = build(tmp_path / "streamed", coco_mini, server, concurrency=12)
    in_flight, server.max_in_flight = server.max_in_flight, 0
    server.mean_delay_s = 0.002  # one at a time: only the order of failures matters
    alone = build(tmp_path / "alone", coco_mini, server, concurrency=1)
    server.mean_delay_s = 0.02
    monkeypatch.setattr(model, "STREAM_BACKENDS", ())
    server.max_in_flight = 0
    batched = build(tmp_path / "batched", coco_mini, server, concurrency=12)
    assert streamed == batched == alone
    assert len([name for name in streamed if name.startswith("shard-")]) >= 2
    rejects = streamed["rejects.jsonl"].decode()
    assert '"missing_image"' in rejects and "HTTP 400" in rejects  # a retry failed too
    # A batch of 3 images makes 9 requests: only the stream has more in flight at once.
    assert in_flight > 9 >= server.max_in_flight


# --------------------------------------------------------------------------- the benchmark


def test_the_scheduler_benchmark_runs_in_its_quick_mode():
    """`benchmarks/bench_scheduler.py --quick`: both builds and both ceilings, every request."""
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_scheduler.py"
    env = {**os.environ, "no_proxy": "127.0.0.1"}
    done = subprocess.run(
        [sys.executable, str(script), "--quick"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout)
    builds = results["utilization"]
    for build in (builds["batch_path"], builds["scheduler"], results["ceiling"]["whole_build"]):
        assert build["images_written"] == 24 and build["requests"] == 72
    assert (
        0 < builds["batch_path"]["utilization"] <= 1 and 0 < builds["scheduler"]["utilization"] <= 1
    )
    for alone in results["ceiling"]["scheduler_and_backend"].values():
        assert alone["instructions"] == alone["requests"] == 180 and alone["requests_per_s"] > 0
