"""A real inference server in the loop: `transformers serve` (transformers' own
OpenAI-compatible server, the `serve` extra) on the tiny local model, started, restarted and
stopped by `generator.server` (preset `transformers`) inside `mminstruct build`, offline on
the CPU."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
for module in ("fastapi", "uvicorn", "openai"):
    pytest.importorskip(module, reason="needs the serve extra: pip install 'mminstruct[serve]'")

from support.process_groups import leftovers, server_groups  # noqa: E402
from support.templates import write_short_templates  # noqa: E402

# A real server in the default suite (what CI runs): each build starts one, ~10-15 s on 2 cores.

REQUEST_LINE = b'"POST /v1/chat/completions HTTP/1.1" 200'


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> Path:
    return write_short_templates(tmp_path_factory.mktemp("templates"))


def command(out: Path, model: Path, templates: Path) -> list[str]:
    args = [sys.executable, "-m", "mminstruct", "build", "demo", "-q", "--limit", "6"]
    settings = [
        f"output.dir={out}",
        "output.shard_max_samples=2",
        f"generator.templates={templates}",
        "generator.backend=openai",
        f"generator.model={model}",
        "generator.server.preset=transformers",
        "generator.server.args=[--device, cpu]",
        "generator.server.ready_timeout_s=120",
        "generator.max_new_tokens=24",
        "generator.temperature=0",
        "generator.concurrency=1",  # one at a time: greedy answers never depend on batching
        "generator.batch_size=2",
    ]
    return args + [item for setting in settings for item in ("--set", setting)]


def offline() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "no_proxy": "127.0.0.1"}


def dataset(out: Path) -> tuple[dict[str, bytes], str]:
    shards = {p.name: p.read_bytes() for p in sorted(out.glob("shard-*.tar"))}
    return shards, (out / "rejects.jsonl").read_text()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, lm_dir, templates) -> Path:
    out = tmp_path_factory.mktemp("whole") / "out"
    done = subprocess.run(
        command(out, lm_dir, templates), capture_output=True, text=True, env=offline()
    )
    assert done.returncode in (0, 1), done.stderr  # 1: random weights may write nothing
    return out


def test_a_build_against_transformers_serve_accounts_for_every_image(uninterrupted):
    stats = json.loads((uninterrupted / "stats.json").read_text())
    assert stats["images_in"] == 6 == stats["images_written"] + stats["images_rejected"]
    assert stats["tokens"] > 0  # the server generated
    rows = [json.loads(line) for line in (uninterrupted / "rejects.jsonl").read_text().splitlines()]
    assert not [r for r in rows if r["reason"] == "backend_error"]
    log = uninterrupted / "_logs" / "server-0.log"
    assert log.read_bytes().count(REQUEST_LINE) >= 18  # 6 images x 3 tasks, served
    assert len(server_groups(log)) == 1
    assert leftovers(log) == {}


def test_transformers_serve_killed_mid_build_is_restarted_with_the_same_output(
    tmp_path, lm_dir, templates, uninterrupted
):
    out = tmp_path / "out"
    log = out / "_logs" / "server-0.log"
    build = subprocess.Popen(
        command(out, lm_dir, templates), stderr=subprocess.PIPE, text=True, env=offline()
    )
    try:
        _wait(lambda: log.exists() and log.read_bytes().count(REQUEST_LINE) >= 4)
        os.killpg(server_groups(log)[0], signal.SIGKILL)
        _, stderr = build.communicate(timeout=300)
    finally:
        build.kill()
    assert build.returncode in (0, 1), stderr
    assert "restarting it (restart 1 of 2)" in stderr
    assert len(server_groups(log)) == 2
    assert dataset(out) == dataset(uninterrupted)  # greedy: the re-sent requests, same answers
    assert leftovers(log) == {}


def _wait(ready: Callable[[], bool], timeout: float = 180.0) -> None:
    stop = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < stop, "the build never got that far"
        time.sleep(0.02)
