"""The managed server on its own: a real separate process (the scripted fake run as a script
through `generator.server.command`), started, found ready, restarted, and stopped with its
whole process group; the presets' command lines; GPU placement; the config checks."""

from __future__ import annotations

import os
import signal
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from support.process_groups import leftovers, live_members, server_groups

from mminstruct.config import GeneratorConfig, load_config
from mminstruct.config.schema import ServerConfig
from mminstruct.errors import ConfigError, MminstructError
from mminstruct.generate.servers import PRESETS, ManagedServer, ServerError
from mminstruct.generate.servers.placement import server_env, tensor_parallel
from mminstruct.generate.servers.spec import Spec

FAKE = Path(__file__).parents[2] / "support" / "fake_server_process.py"


def fake_config(*options: str, **server: object) -> GeneratorConfig:
    command = (sys.executable, str(FAKE), "--port", "{port}", *options)
    settings = ServerConfig(command=command, **server)  # type: ignore[arg-type]
    return GeneratorConfig(backend="openai", model="served", server=settings)


def models(base_url: str) -> bytes:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(base_url + "/models", timeout=5) as answer:
        return answer.read()


def test_started_server_answers_and_stop_ends_its_whole_group(tmp_path):
    log = tmp_path / "_logs" / "server-0.log"
    server = ManagedServer(fake_config("--child", "--load-s", "0.5"), log)
    try:
        base_url = server.start()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        assert b"fake-model" in models(base_url)
        group = server.pid
        assert len(live_members(group)) == 2  # the server and its `sleep` worker
    finally:
        server.stop()
    assert server_groups(log) == [group]
    assert leftovers(log) == {}
    assert "fake server: ready" in log.read_text()


def test_a_dead_server_is_restarted_on_a_new_port_then_the_restarts_run_out(tmp_path, monkeypatch):
    monkeypatch.setattr("mminstruct.generate.servers.base.DEATH_GRACE_S", 0.3)
    log = tmp_path / "server-0.log"
    server = ManagedServer(fake_config("--child", restarts=1), log)
    try:
        first = server.start()
        assert server.recover(server.starts) is False  # alive: an ordinary retry
        os.kill(server.pid, signal.SIGKILL)
        assert server.recover(1) is True and server.starts == 2
        assert server.base_url != first and b"fake-model" in models(server.base_url)
        assert server.recover(1) is True  # another request of the old server: send again
        os.kill(server.pid, signal.SIGKILL)
        with pytest.raises(ServerError, match=r"restarted 1 time\(s\).*restarts=1") as error:
            server.recover(2)
        assert "rerun the same command to resume" in str(error.value)
        assert "fake server: ready" in str(error.value)  # the end of its log
    finally:
        server.stop()
    assert len(server_groups(log)) == 2
    assert leftovers(log) == {}  # the first server's `sleep` went with its group


def test_a_server_stopped_from_outside_is_not_restarted(tmp_path):
    """SIGTERM is what Slurm sends every process of a job at its time limit or on scancel:
    the build stops with the rest, it does not start the server again."""
    log = tmp_path / "server-0.log"
    server = ManagedServer(fake_config("--child"), log)
    try:
        server.start()
        os.killpg(server.pid, signal.SIGTERM)
        with pytest.raises(ServerError, match=r"stopped from outside.*not restarted"):
            server.recover(1)
    finally:
        server.stop()
    assert len(server_groups(log)) == 1
    assert leftovers(log) == {}


def test_a_server_that_exits_early_fails_with_the_end_of_its_log(tmp_path):
    log = tmp_path / "server-0.log"
    server = ManagedServer(fake_config("--exit", "3"), log)
    began = time.monotonic()
    with pytest.raises(ServerError) as error:
        server.start()
    assert time.monotonic() - began < 10  # seen at once, not after ready_timeout_s
    message = str(error.value)
    assert "exited with status 3 before it was ready" in message
    assert "cannot load the model (as told)" in message
    assert str(log) in message
    assert leftovers(log) == {}


def test_a_server_that_never_answers_is_stopped_after_ready_timeout_s(tmp_path):
    log = tmp_path / "server-0.log"
    server = ManagedServer(fake_config("--child", "--load-s", "60", ready_timeout_s=1.0), log)
    with pytest.raises(
        ServerError, match=r"did not answer within generator\.server\.ready_timeout_s"
    ):
        server.start()
    assert leftovers(log) == {}


def test_a_missing_engine_says_what_to_install(tmp_path):
    settings = ServerConfig(command=("no-such-engine-here", "--port", "{port}"))
    config = GeneratorConfig(backend="openai", model="m", server=settings)
    with pytest.raises(ServerError, match=r"no-such-engine-here.*generator\.server\.command"):
        ManagedServer(config, tmp_path / "server-0.log").start()


def test_presets_build_each_engines_command_line():
    spec = Spec("/models/Qwen", 8123, 8, "bfloat16", 8192, ("--enable-prefix-caching",))
    vllm = PRESETS["vllm"](spec)
    assert vllm[0].endswith("vllm") and vllm[1:3] == ["serve", "/models/Qwen"]
    assert _after(vllm, "--tensor-parallel-size") == "8" and _after(vllm, "--port") == "8123"
    assert _after(vllm, "--max-model-len") == "8192" and vllm[-1] == "--enable-prefix-caching"
    sglang = PRESETS["sglang"](spec)
    assert sglang[1:3] == ["-m", "sglang.launch_server"]
    assert _after(sglang, "--model-path") == "/models/Qwen" and _after(sglang, "--tp-size") == "8"
    assert _after(sglang, "--context-length") == "8192"
    served = PRESETS["transformers"](spec)
    assert served[0].endswith("transformers") and served[1:3] == ["serve", "/models/Qwen"]
    assert _after(served, "--host") == "127.0.0.1" and "--tensor-parallel-size" not in served


def _after(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_gpu_placement_gives_each_local_rank_its_own_gpus():
    gpus = ["0", "1", "2", "3", "4", "5", "6", "7"]
    env = {"CUDA_VISIBLE_DEVICES": ",".join(gpus), "HOME": "/h"}
    assert server_env("gpu", 1, 3, gpus, env)["CUDA_VISIBLE_DEVICES"] == "3"
    assert server_env("gpu", 2, 3, gpus, env)["CUDA_VISIBLE_DEVICES"] == "6,7"
    assert server_env("node", 8, 0, gpus, env) == env
    assert tensor_parallel("node", None, gpus) == 8 and tensor_parallel("gpu", None, gpus) == 1
    with pytest.raises(MminstructError, match="one task per node"):
        server_env("node", 8, 1, gpus, env)
    with pytest.raises(MminstructError, match="this node has 8"):
        server_env("gpu", 4, 2, gpus, env)


def test_server_config_is_checked_with_dotted_paths(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text(
        "sources: [{kind: coco, images: x, captions: [c.json]}]\n"
        "generator:\n  backend: hf\n  model: m\n"
        "  server: {preset: vllm, command: [x, '{prot}'], restarts: -1, ready_timeout_s: 0,"
        " tensor_parallel: 0, placement: rack}\n"
    )
    with pytest.raises(ConfigError) as error:
        load_config(config)
    message = str(error.value)
    assert "generator.server.placement" in message  # not one of node, gpu
    config.write_text(config.read_text().replace(", placement: rack", ""))
    with pytest.raises(ConfigError) as error:
        load_config(config)
    message = str(error.value)
    for expected in (
        "generator.server: a started server is reached through the openai backend",
        "generator.server: give a preset (vllm, sglang, transformers) or a command",
        "generator.server.command.1: bad placeholder 'prot'",
        "generator.server.restarts: must be at least 0",
        "generator.server.ready_timeout_s: must be more than 0",
        "generator.server.tensor_parallel: must be at least 1",
    ):
        assert expected in message


def test_gpus_the_launcher_bound_to_the_task_are_used_as_they_are():
    """--gpus-per-task=1 leaves each task one visible GPU, whatever its local rank."""
    env = server_env("gpu", 1, 3, ["0"], {"CUDA_VISIBLE_DEVICES": "0"})
    assert env["CUDA_VISIBLE_DEVICES"] == "0"
