"""`mminstruct build` with a managed server, run as the real CLI in a subprocess against a
real separate server process (the scripted fake, through `generator.server.command`): every
image accounted for, a server killed mid-build restarted with nothing lost, the restarts
spent stopping the build and a rerun resuming, and no server process left after a build,
an error, SIGTERM or Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.process_groups import leftovers, server_groups

FAKE = Path(__file__).parents[2] / "support" / "fake_server_process.py"


def command(out: Path, *options: str, settings: tuple[str, ...] = ()) -> list[str]:
    parts = [sys.executable, str(FAKE), "--port", "{port}", *options]
    server = ", ".join(f"'{part}'" for part in parts)  # YAML strings, numbers included
    args = [sys.executable, "-m", "mminstruct", "build", "demo", "-q", "--limit", "8"]
    args += ["--set", f"output.dir={out}", "--set", "output.shard_max_samples=2"]
    args += ["--set", "generator.backend=openai", "--set", "generator.model=served"]
    args += ["--set", "generator.concurrency=4", "--set", "generator.batch_size=2"]
    args += ["--set", f"generator.server.command=[{server}]"]
    return args + [item for setting in settings for item in ("--set", setting)]


def build(out: Path, *options: str, settings: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    args = command(out, *options, settings=settings)
    return subprocess.run(args, capture_output=True, text=True, timeout=180, env=_env())


def _env() -> dict[str, str]:
    return {**os.environ, "no_proxy": "127.0.0.1", "PYTHONUNBUFFERED": "1"}


def dataset(out: Path) -> tuple[dict[str, bytes], str]:
    shards = {p.name: p.read_bytes() for p in sorted(out.glob("shard-*.tar"))}
    return shards, (out / "rejects.jsonl").read_text()


def log_of(out: Path) -> Path:
    return out / "_logs" / "server-0.log"


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("whole") / "out"
    done = build(out, "--child")
    assert done.returncode == 0, done.stderr
    return out


def test_a_build_accounts_for_every_image_and_leaves_no_server(uninterrupted):
    stats = json.loads((uninterrupted / "stats.json").read_text())
    assert stats["images_in"] == 8 == stats["images_written"] + stats["images_rejected"]
    assert stats["images_written"] == 8 and stats["instructions"]["conversation"] > 0
    assert len(server_groups(log_of(uninterrupted))) == 1
    assert leftovers(log_of(uninterrupted)) == {}  # the server and its worker both gone


def test_a_server_killed_mid_build_is_restarted_and_nothing_is_lost(tmp_path, uninterrupted):
    out = tmp_path / "out"
    once = tmp_path / "died"
    done = build(out, "--child", "--die-after", "9", "--once", str(once))
    assert done.returncode == 0, done.stderr
    assert once.exists()  # it did die, with requests in flight
    assert "restarting it (restart 1 of 2)" in done.stderr
    assert len(server_groups(log_of(out))) == 2
    assert dataset(out) == dataset(uninterrupted)  # re-sent, none counted as failed
    assert "backend_error" not in dataset(out)[1]
    assert leftovers(log_of(out)) == {}


def test_spent_restarts_stop_the_build_clearly_and_a_rerun_resumes(tmp_path, uninterrupted):
    out = tmp_path / "out"
    once = tmp_path / "died"
    options = ("--child", "--die-after", "18", "--once", str(once))
    failed = build(out, *options, settings=("generator.server.restarts=0",))
    assert failed.returncode != 0
    assert "already restarted 0 time(s)" in failed.stderr
    assert "rerun the same command to resume" in failed.stderr
    assert leftovers(log_of(out)) == {}  # the error left no server behind
    finished_before = sorted(p.name for p in (out / "_parts").glob("*.json"))
    assert finished_before  # the shards done before the death are kept
    rerun = build(out, *options, settings=("generator.server.restarts=0",))
    assert rerun.returncode == 0, rerun.stderr
    assert dataset(out) == dataset(uninterrupted)
    assert leftovers(log_of(out)) == {}


def test_a_server_that_cannot_start_fails_the_build_with_its_log(tmp_path):
    failed = build(tmp_path / "out", "--exit", "7")
    assert failed.returncode != 0
    assert "exited with status 7 before it was ready" in failed.stderr
    assert "cannot load the model (as told)" in failed.stderr
    assert leftovers(log_of(tmp_path / "out")) == {}


@pytest.mark.parametrize(
    "moment, signum",
    [("loading", signal.SIGTERM), ("building", signal.SIGTERM), ("building", signal.SIGINT)],
)
def test_no_server_outlives_a_signalled_build(tmp_path, moment, signum):
    out = tmp_path / "out"
    options = ("--child", "--load-s", "60") if moment == "loading" else ("--child", "--delay", "1")
    build = subprocess.Popen(
        command(out, *options), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env()
    )
    try:
        _wait_for(log_of(out), "fake server: ready" if moment == "building" else "pid ")
        time.sleep(1.0)  # loading the model, or requests in flight
        build.send_signal(signum)
        _, stderr = build.communicate(timeout=60)
    finally:
        build.kill()
    assert build.returncode != 0
    assert leftovers(log_of(out)) == {}, stderr.decode()


def _wait_for(log: Path, text: str, timeout: float = 60.0) -> None:
    stop = time.monotonic() + timeout
    while time.monotonic() < stop:
        if log.exists() and text in log.read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in {log}")
