"""Faults during a build: model backends that raise, hang or write garbage, servers that
fail, and processes killed at chosen points (support/kill_points.py).

A word in each image's caption picks what the (fake) model does with that image's prompts
(`FAULTS`); every other prompt gets a good completion for its task. The build must go on,
reject exactly the faulty images with their reasons, stop early when most images fail,
and, killed at any point, resume to the same dataset an uninterrupted build makes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image
from support import kill_points
from support.kill_points import Stop, assert_state_at, kill_at_each, markers, wait_paused
from support.scripted_decoding import SCRIPTED_ENV
from support.scripted_decoding import good_answer as answer

from mminstruct.checks.failures import FailureWatch, failure_window
from mminstruct.cli import main
from mminstruct.errors import MminstructError
from mminstruct.generate import backends
from mminstruct.generate.backends import Completion, Request
from mminstruct.generate.backends import openai as openai_backend
from mminstruct.records import Generated, Instruction, Rejection

RESULT_FILES = ("stats.json", "rejects.jsonl", "manifest.json", "shards.wids.json")
FAULTS = ("explode", "garbage", "drop", "error500", "ratelimited", "hang", "malformed")
GARBAGE = "lorem ipsum dolor sit amet"  # no markers (unparseable), no sentence end (truncated)


# --------------------------------------------------------------------------- the fake model


def fault_of(request_text: str) -> str | None:
    """The fault word in a prompt's last user message (the image's caption), if any."""
    found = re.search(r"\b(" + "|".join(FAULTS) + r")\b", request_text)
    return found.group(1) if found else None


def parts(messages: Sequence[dict]) -> tuple[str, str]:
    """(task, last user message) of a prompt built from `templates` below."""
    task = messages[0]["content"].removeprefix("TASK ")
    user = [m["content"] for m in messages if m["role"] == "user"][-1]
    return task, user if isinstance(user, str) else user[-1]["text"]


class FlakyBackend:
    """A model backend (in place of `hf`) that raises on some prompts and writes garbage on
    others; it raises for the whole batch, as a real model does when one input breaks it."""

    name = "hf"
    model = "flaky"

    def __init__(self, config) -> None:
        self.calls: list[int] = []  # requests per call
        self.prompts: Counter = Counter()  # fault word (or None) -> prompts asked

    def complete(self, requests: Sequence[Request]) -> list[Completion]:
        self.calls.append(len(requests))
        out = []
        for request in requests:
            task, text = parts(request.messages)
            fault = fault_of(text)
            self.prompts[fault] += 1
            if fault == "explode":
                raise RuntimeError("CUDA error: device-side assert triggered")
            body = GARBAGE if fault == "garbage" else answer(task, request.seed)
            out.append(Completion(body, "stop", 10, 20))
        return out

    def count_tokens(self, messages) -> int:
        return 10


@pytest.fixture
def flaky(monkeypatch) -> Iterator[list[FlakyBackend]]:
    """`generator.backend: hf` makes a FlakyBackend; the list holds the ones made."""
    made: list[FlakyBackend] = []

    def factory(config) -> FlakyBackend:
        made.append(FlakyBackend(config))
        return made[-1]

    monkeypatch.setitem(backends.BACKENDS, "hf", factory)
    yield made


# --------------------------------------------------------------------------- the fake server


class ScriptedServer(ThreadingHTTPServer):
    """An OpenAI-compatible server on 127.0.0.1 that fails on the prompts of faulty images."""

    def __init__(self, delay_s: float = 0.0) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.delay_s = delay_s  # every good answer takes this long
        self.attempts: Counter = Counter()  # (fault word, task) -> POSTs
        self.lock = threading.Lock()
        self.stopping = threading.Event()  # ends the waits of "hang" answers

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def handle_error(self, request, client_address) -> None:
        """A client that gave up on a hanging answer is expected; stay quiet."""


class _Handler(BaseHTTPRequestHandler):
    server: ScriptedServer

    def log_message(self, format, *args) -> None:
        """No access log."""

    def do_GET(self) -> None:
        self.reply(200, json.dumps({"object": "list", "data": [{"id": "served"}]}).encode())

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        task, text = parts(body["messages"])
        fault = fault_of(text)
        with self.server.lock:
            self.server.attempts[fault, task] += 1
        if fault == "drop":
            return  # close the connection without an answer
        if fault == "hang":
            self.server.stopping.wait(30)  # far past the client's timeout
        if fault in ("error500", "ratelimited"):
            status = 500 if fault == "error500" else 429
            message = json.dumps({"error": {"message": f"scripted {status}"}}).encode()
            return self.reply(status, message, {"Retry-After": "0"})
        if fault == "malformed":
            return self.reply(200, b"<html>not json</html>")
        time.sleep(self.server.delay_s)
        content = GARBAGE if fault == "garbage" else answer(task, body["seed"])
        choice = {"message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        usage = {"prompt_tokens": 40, "completion_tokens": 12}
        self.reply(200, json.dumps({"choices": [choice], "usage": usage}).encode())

    def reply(self, status: int, data: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def start(server: ScriptedServer) -> ScriptedServer:
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    return server


def stop(server: ScriptedServer) -> None:
    server.stopping.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def server(monkeypatch) -> Iterator[ScriptedServer]:
    monkeypatch.setattr(openai_backend, "BASE_DELAY_S", 0.001)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    fake = start(ScriptedServer())
    yield fake
    stop(fake)


# --------------------------------------------------------------------------- the dataset


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> Path:
    """Short templates whose system message names the task (the fakes answer by task)."""
    folder = tmp_path_factory.mktemp("templates")
    for task in ("conversation", "detail", "reasoning"):
        example = {"context": "A cat.", "answer": answer(task, 0)}
        text = {"system": f"TASK {task}", "examples": [example], "query": "{context}"}
        (folder / f"{task}.yaml").write_text(json.dumps(text))
    return folder


def make_dataset(folder: Path, words: list[str], templates: Path, **settings) -> Path:
    """Image i (from 1) has the caption "A dog <words[i-1]> in the field."; the job file."""
    (folder / "images").mkdir(parents=True)
    images, boxes, captions = [], [], []
    for i, word in enumerate(words, 1):
        name = f"{i:012d}.png"
        Image.new("RGB", (32, 24), (i * 7 % 256, 90, 160)).save(folder / "images" / name)
        images.append({"id": i, "file_name": name, "width": 32, "height": 24})
        boxes.append({"id": i, "image_id": i, "category_id": 1, "bbox": [2, 2, 20, 16]})
        captions.append({"id": i, "image_id": i, "caption": f"A dog {word} in the field."})
    instances = {"images": images, "annotations": boxes, "categories": [{"id": 1, "name": "dog"}]}
    (folder / "instances.json").write_text(json.dumps(instances))
    (folder / "captions.json").write_text(json.dumps({"images": images, "annotations": captions}))
    source = {"kind": "coco", "images": str(folder / "images")}
    source |= {
        "instances": str(folder / "instances.json"),
        "captions": str(folder / "captions.json"),
    }
    generator = {"backend": "hf", "model": "flaky", "templates": str(templates), "batch_size": 2}
    job = {
        "sources": [source],
        "generator": generator | settings.pop("generator", {}),
        "output": {"shard_max_samples": 4, "dir": str(folder / "out")} | settings.pop("output", {}),
    }
    (folder / "job.yaml").write_text(json.dumps(job))
    return folder / "job.yaml"


def results(out: Path) -> tuple[dict, list[dict]]:
    stats = json.loads((out / "stats.json").read_text())
    rows = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    assert stats["images_in"] == stats["images_written"] + stats["images_rejected"]
    return stats, rows


def rejected_ids(rows: list[dict], reason: str) -> set:
    return {row["image_id"] for row in rows if row["reason"] == reason}


def garbage_reasons(rows: list[dict]) -> dict:
    """Image id -> the parse reasons of its task rejections, sorted."""
    found: dict = {}
    for row in rows:
        if row["reason"] in ("unparseable", "truncated"):
            found.setdefault(row["image_id"], []).append(row["reason"])
    return {image: sorted(reasons) for image, reasons in found.items()}


# --------------------------------------------------------------------------- raise, garbage


def test_backend_that_raises_or_writes_garbage_costs_only_those_images(
    tmp_path, templates, flaky, capsys
):
    words = ["fine"] * 24
    for i in (2, 9, 15, 22):
        words[i] = "explode"
    for i in (4, 11, 18, 20):
        words[i] = "garbage"
    job = make_dataset(tmp_path, words, templates)
    assert main(["build", str(job), "-q"]) == 0, capsys.readouterr().err
    stats, rows = results(tmp_path / "out")
    assert (stats["images_written"], stats["images_rejected"]) == (16, 8)
    explode = {i + 1 for i, w in enumerate(words) if w == "explode"}
    garbage = {i + 1 for i, w in enumerate(words) if w == "garbage"}
    assert rejected_ids(rows, "backend_error") == explode
    assert garbage_reasons(rows) == {
        i: ["truncated", "unparseable", "unparseable"] for i in garbage
    }
    assert rejected_ids(rows, "no_instructions") == explode | garbage
    errors = [r for r in rows if r["reason"] == "backend_error"]
    assert len(errors) == 4 * 3  # every task of every exploding image, with the cause
    assert all(
        r["detail"] == "the hf backend raised RuntimeError: CUDA error: device-side assert "
        "triggered"
        for r in errors
    )
    assert all(r["raw"] == GARBAGE for r in rows if r["reason"] in ("unparseable", "truncated"))
    # A batch that raised was asked again one prompt at a time; the good prompts in it too.
    assert 1 in flaky[0].calls and stats["instructions"] == {
        "conversation": 16,
        "detail": 16,
        "reasoning": 16,
    }


def test_a_run_that_mostly_fails_stops_early_and_resumes(tmp_path, templates, flaky, capsys):
    words = ["explode" if i % 4 else "fine" for i in range(48)]  # 3 of 4 images fail
    job = make_dataset(tmp_path, words, templates)
    out = tmp_path / "out"
    assert main(["build", str(job), "-q"]) == 1
    message = capsys.readouterr().err
    assert "stopping early: the model failed on 15 of the last 20 images (75%)" in message
    assert "more than generator.max_failure_rate = 0.5 allows" in message
    assert "backend_error (15 images, e.g. 'the hf backend raised RuntimeError: CUDA" in message
    assert "rerun the same command to resume" in message and "Traceback" not in message
    asked = sum(flaky[0].prompts.values())
    assert asked < 48 * 3  # it did not go through the whole dataset
    done = sorted(p.name for p in (out / "_parts").glob("*.stats.json"))
    assert done == [f"shard-00000{i}.stats.json" for i in range(4)]  # 16 images, 4 shards kept
    kept = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*.tar")}
    # Raising the threshold is not a new config: the rerun resumes, nothing is rebuilt.
    assert main(["build", str(job), "-q", "--set", "generator.max_failure_rate=1"]) == 0
    stats, _ = results(out)
    assert (stats["images_written"], stats["images_rejected"]) == (12, 36)
    assert all(out.joinpath(name).stat().st_mtime_ns == t for name, t in kept.items())


def generated(*reasons: str, kept: bool = False) -> Generated:
    result = Generated([Instruction("detail", (("q", "a"),))] if kept else [])
    result.rejections += [
        Rejection(r, f"detail of {r}", "coco", 1, "conversation") for r in reasons
    ]
    return result


def test_failure_rate_counts_only_model_failures_over_the_latest_images():
    assert failure_window(2) == 20 and failure_window(32) == 64
    watch = FailureWatch(window=4, limit=0.5)
    for outcome in (
        generated("insufficient_annotations"),  # nothing to write from: not the model's fault
        generated("unparseable", kept=True),  # one task failed, another was kept
        generated("backend_error"),
        generated("unparseable"),
    ):
        watch.add(outcome)
    watch.check()  # 2 of 4: not more than half
    watch.add(generated("backend_error", "truncated"))  # the oldest drops out: 3 of 4
    with pytest.raises(MminstructError, match=r"failed on 3 of the last 4 images \(75%\)") as info:
        watch.check()
    message = str(info.value)
    assert "backend_error (2 images, e.g. 'detail of backend_error')" in message
    assert "unparseable (1 images" in message and "truncated (1 images" in message
    for rate, stops in ((1.0, False), (0.0, True)):
        strict = FailureWatch(window=1, limit=rate)
        strict.add(generated("backend_error"))
        if stops:
            with pytest.raises(MminstructError, match="stopping early"):
                strict.check()
        else:
            strict.check()


# --------------------------------------------------------------------------- the openai server


def test_server_faults_are_retried_boundedly_then_counted(tmp_path, templates, server, capsys):
    words = ["fine", "drop", "error500", "ratelimited", "hang", "malformed", "garbage", "fine"]
    settings = {"backend": "openai", "model": "served", "base_url": server.url}
    settings |= {"timeout_s": 0.3, "max_retries": 2, "retry": False, "concurrency": 4}
    job = make_dataset(tmp_path, words, templates, generator=settings)
    started = time.monotonic()
    assert main(["build", str(job), "-q"]) == 0, capsys.readouterr().err
    took = time.monotonic() - started
    stats, rows = results(tmp_path / "out")
    assert (stats["images_written"], stats["images_rejected"]) == (2, 6)
    details = {row["image_id"]: row["detail"] for row in rows if row["reason"] == "backend_error"}
    assert details[2].startswith(f"no answer from {server.url}: ")  # dropped
    assert details[3] == f"HTTP 500 from {server.url}: scripted 500"
    assert details[4] == f"HTTP 429 from {server.url}: scripted 429"
    assert details[5] == f"no answer from {server.url}: timed out"  # it hangs
    assert details[6].startswith("malformed response (JSONDecodeError")
    assert garbage_reasons(rows) == {7: ["truncated", "unparseable", "unparseable"]}
    for fault in ("drop", "error500", "ratelimited", "hang"):  # retried, then given up
        assert [server.attempts[fault, task] for task in ("conversation", "detail")] == [3, 3]
    assert server.attempts["malformed", "detail"] == 1  # a broken answer is not retried
    # Bounded: 3 tries of 0.3 s for each hanging prompt, 4 at a time; never the server's 30 s.
    assert took < 10


# --------------------------------------------------------------------------- kill and resume


def command(job: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "mminstruct", "build", str(job), *extra]


def snapshot(out: Path) -> dict[str, bytes]:
    files = {p.name: p.read_bytes() for p in out.glob("shard-*.tar")}
    return files | {name: (out / name).read_bytes() for name in RESULT_FILES}


@pytest.fixture(scope="module")
def served(tmp_path_factory, templates) -> Iterator[tuple[Path, Path, dict]]:
    """A 24-image job on the openai backend against a server that answers in 20 ms, the
    uninterrupted build of it, and the environment for the build processes."""
    fake = start(ScriptedServer(delay_s=0.02))
    folder = tmp_path_factory.mktemp("served")
    words = ["fine"] * 24
    words[5] = words[17] = "garbage"  # some rejections, so rejects.jsonl is compared too
    settings = {"backend": "openai", "model": "served", "base_url": fake.url, "concurrency": 2}
    job = make_dataset(
        folder, words, templates, generator=settings, output={"shard_max_samples": 2}
    )
    env = {**os.environ, "no_proxy": "127.0.0.1"}
    reference = folder / "reference"
    result = subprocess.run(
        command(job, "-q", "--set", f"output.dir={reference}"),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    yield job, reference, env
    stop(fake)


def build_args(job: Path, out: Path, *extra: str) -> list[str]:
    return ["build", str(job), "--set", f"output.dir={out}", *extra]


def kill_and_resume(
    job: Path, reference: Path, env: dict, out: Path, stops: list[Stop], units: int
) -> None:
    """Kill a build at each stop in turn (checking that it was still running there and what
    the disk shows), then let one finish: the result must be the uninterrupted build's,
    byte for byte."""
    args = build_args(job, out, "-q")
    kill_at_each(args, stops, out, units, handshakes=out.parent, env=env)
    result = subprocess.run(
        kill_points.wrapped(args), capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert not list(out.rglob("*.tmp"))
    assert snapshot(out) == snapshot(reference)


SERVED_UNITS = 12  # 24 images, 2 a shard; images 6 and 18 are rejected, so 22 samples


def test_openai_build_killed_at_chosen_points_resumes_to_the_same_dataset(served, tmp_path):
    job, reference, env = served
    stops = [Stop("in_shard", 5), Stop("marker_pending", 4)]
    kill_and_resume(job, reference, env, tmp_path / "out", stops, SERVED_UNITS)


@pytest.mark.slow
@pytest.mark.parametrize(
    "stops",
    [
        [Stop("in_shard", 1)],
        [Stop("in_shard", 22)],
        [Stop("shard_renamed", 1), Stop("shard_renamed", 11)],
        [Stop("marker_pending", 12)],
        [Stop("finalizing")],
        [Stop("marker_pending", 6), Stop("in_shard", 3), Stop("finalizing")],
        [Stop("finalizing"), Stop("finalizing")],
        [Stop("shard_renamed", 7), Stop("marker_pending", 1), Stop("in_shard", 8)],
    ],
    ids=lambda stops: "+".join(f"{s.point}{s.n}" for s in stops),
)
def test_openai_build_killed_at_more_points(served, tmp_path, stops):
    job, reference, env = served
    kill_and_resume(job, reference, env, tmp_path / "out", stops, SERVED_UNITS)


def test_openai_build_stopped_by_sigterm_resumes_to_the_same_dataset(served, tmp_path):
    """SIGTERM while shard 1 is being written (one batch a shard): the build finishes that
    shard, abandons shard 2 before it starts and exits 143; kills and a rerun then give
    the uninterrupted bytes."""
    job, reference, env = served
    out, handshake = tmp_path / "out", tmp_path / "stop"
    with open(tmp_path / "stderr", "w") as stderr:
        args = build_args(job, out)
        process = kill_points.start(args, Stop("in_shard", 3), handshake, env, stderr=stderr)
        paused = wait_paused(process, handshake)
        assert assert_state_at(paused, out, SERVED_UNITS) == "shard-000001"
        paused.terminate_and_release()
        assert process.wait(timeout=60) == 143
    message = (tmp_path / "stderr").read_text()
    assert "stopped by SIGTERM; shard-000002 was abandoned" in message
    assert markers(out) == {"shard-000000", "shard-000001"}
    assert not list(out.rglob("*.tmp"))
    kill_and_resume(job, reference, env, out, [Stop("shard_renamed", 2)], SERVED_UNITS)


@pytest.mark.slow
@pytest.mark.parametrize(
    "stops",
    [[Stop("in_shard", 2)], [Stop("shard_renamed", 1), Stop("finalizing")]],
    ids=["inside-a-shard", "renamed-then-finalize"],
)
def test_hf_build_killed_at_chosen_points_resumes_to_the_same_dataset(
    lm_dir, templates, tmp_path, stops
):
    """The same with a real (tiny, random-weight) transformers model in each process; its
    noise is replaced by well-formed answers after decoding (support/scripted_decoding.py),
    so the shards hold samples."""
    model = lm_dir
    settings = {"model": str(model), "temperature": 0, "max_new_tokens": 4}
    job = make_dataset(tmp_path / "data", ["fine"] * 8, templates, generator=settings)
    reference = tmp_path / "reference"
    env = {**os.environ, SCRIPTED_ENV: "1"}
    result = subprocess.run(
        kill_points.wrapped(build_args(job, reference, "-q")),
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    stats, _ = results(reference)
    assert stats["images_written"] == 8 and len(list(reference.glob("shard-*.tar"))) == 2
    kill_and_resume(job, reference, env, tmp_path / "out", stops, units=2)
