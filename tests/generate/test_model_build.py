"""`mminstruct build` with real model backends: tiny random models through the real loaders.

Their output is noise, so these tests assert what must hold anyway: every image is
accounted for, rejections carry reasons (and the raw completion), kept instructions carry
their provenance, and greedy decoding gives the same dataset whatever the batch size.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.templates import write_short_templates

pytest.importorskip("torch")
pytest.importorskip("transformers")


from mminstruct.cli import main

PARSE_REASONS = {"empty", "unparseable", "truncated", "refusal", "source_leak", "degenerate"}


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> Path:
    return write_short_templates(tmp_path_factory.mktemp("templates"))


def build(out: Path, backend: str, model: Path, templates: Path, *extra: str) -> dict:
    args = ["build", "demo", "-q", "--limit", "6", "--set", f"output.dir={out}"]
    args += ["--set", f"generator.templates={templates}"]
    args += ["--set", f"generator.backend={backend}", "--set", f"generator.model={model}"]
    args += ["--set", "generator.max_new_tokens=24", "--set", "generator.temperature=0", *extra]
    code = main(args)
    stats = json.loads((out / "stats.json").read_text())
    assert code == (0 if stats["images_written"] else 1)  # a build that writes nothing fails
    return stats


def shards(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in out.glob("shard-*.tar")}


def rejects(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("backend", ["hf", "hf-vlm"])
def test_every_image_accounted_for_with_reasons(tmp_path, backend, lm_dir, vlm_dir, templates):
    model = lm_dir if backend == "hf" else vlm_dir
    stats = build(tmp_path / "out", backend, model, templates)
    assert stats["images_in"] == 6 == stats["images_written"] + stats["images_rejected"]
    rows = rejects(tmp_path / "out")
    tasks = [r for r in rows if r["scope"] == "task"]
    assert tasks, "random weights write noise: the parser must have rejected some of it"
    assert all(r["reason"] in PARSE_REASONS | {"duplicate"} and r["detail"] for r in tasks)
    assert all("raw" in r for r in tasks if r["reason"] != "duplicate")
    assert stats["tokens"] > 0
    images = [r for r in rows if r["scope"] == "image"]
    assert all(r["reason"] == "no_instructions" for r in images)


def test_greedy_batching_gives_the_same_dataset(tmp_path, lm_dir, templates):
    one = build(tmp_path / "b1", "hf", lm_dir, templates, "--set", "generator.batch_size=1")
    three = build(tmp_path / "b3", "hf", lm_dir, templates, "--set", "generator.batch_size=3")
    assert shards(tmp_path / "b1") == shards(tmp_path / "b3")
    assert rejects(tmp_path / "b1") == rejects(tmp_path / "b3")
    assert one == three


def test_kept_instructions_record_their_provenance(tmp_path, lm_dir, templates, monkeypatch):
    from mminstruct.generate.backends import hf

    # Let the random model "answer" well-formed text so that something is kept.
    answer = "Question: What is shown?\nAnswer: A small scene with a few objects.\n"

    completion = _completion_maker()

    def scripted(self, batch, seed):
        return [completion(answer) for _ in batch]

    monkeypatch.setattr(hf.HFBackend, "_generate", scripted, raising=True)
    stats = build(tmp_path / "out", "hf", lm_dir, templates, "--set", "tasks.detail.enabled=false")
    assert stats["instructions"]["conversation"] == 6
    record = _first_record(tmp_path / "out")
    stamp = record["instructions"][0]["generator"]
    assert stamp["backend"] == "hf" and stamp["model"] == str(lm_dir)
    assert stamp["template"] == "conversation.yaml" and len(stamp["template_sha256"]) == 16
    assert stamp["template_sha256"] != _shipped_sha("conversation")  # the user's own templates
    assert stamp["temperature"] == 0 and stamp["max_new_tokens"] == 24 and "seed" in stamp


def _completion_maker():
    from mminstruct.generate.backends import Completion

    return lambda text: Completion(text, "stop", 5, 12)


def _first_record(out: Path) -> dict:
    import tarfile

    shard = sorted(out.glob("shard-*.tar"))[0]
    with tarfile.open(shard) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(".json"))
        return json.loads(tar.extractfile(member).read())


def _shipped_sha(task: str) -> str:
    from mminstruct.generate.prompts import load_task_templates

    return load_task_templates()[task].sha256


def test_openai_backend_through_the_cli(tmp_path, monkeypatch):
    """A real HTTP round trip per prompt against a local server that fails now and then."""
    import threading

    from support.fake_openai import FakeServer

    monkeypatch.setattr("mminstruct.generate.backends.openai.BASE_DELAY_S", 0.001)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    server = FakeServer()
    server.plan = ["500", "429", "drop"]  # retried with backoff, then fine
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    try:
        out = tmp_path / "out"
        args = ["build", "demo", "-q", "--limit", "4", "--set", f"output.dir={out}"]
        args += ["--set", "generator.backend=openai", "--set", "generator.model=served"]
        args += ["--set", f"generator.base_url={server.url}", "--set", "generator.concurrency=3"]
        assert main(args) == 0
    finally:
        server.shutdown()
        server.server_close()
    stats = json.loads((out / "stats.json").read_text())
    assert stats["images_in"] == 4 == stats["images_written"] + stats["images_rejected"]
    assert stats["instructions"].get("conversation", 0) > 0  # the fake's Q/A blocks parse
    record = _first_record(out)
    stamp = next(i for i in record["instructions"] if i["task"] == "conversation")["generator"]
    assert (
        stamp["backend"] == "openai"
        and stamp["model"] == "served"
        and stamp["completion_tokens"] == 7
    )
    assert all(
        r["reason"] and "raw" in r
        for r in rejects(out)
        if r["scope"] == "task" and r["reason"] != "duplicate"
    )


# --------------------------------------------------------------------------- the shipped hf config


def mminstruct(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "mminstruct", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_shipped_hf_config_without_its_model_folder_says_how_to_get_one(tmp_path):
    """`configs/coco_hf.yaml` names /models/Qwen2.5-7B-Instruct; where that folder (or the
    one given with --set) is missing, build and preview both say so, and how to get a model."""
    from mminstruct.resources import shipped_dir

    config = str(shipped_dir("configs") / "coco_hf.yaml")
    sample = shipped_dir("sample")
    missing = tmp_path / "models" / "Qwen2.5-7B-Instruct"
    items = {"images": "images", "instances": "instances.json", "captions": "captions.json"}
    overrides = [f"sources.0.{key}={sample / name}" for key, name in items.items()]
    overrides.append(f"generator.model={missing}")
    settings = [arg for item in overrides for arg in ("--set", item)]
    build = mminstruct(
        "build", config, "-q", "--limit", "2", *settings, "--set", f"output.dir={tmp_path / 'out'}"
    )
    image = next((sample / "images").iterdir())
    preview = mminstruct(
        "preview", config, "-q", "--image", str(image), *settings, "--out", str(tmp_path / "p")
    )
    for result in (build, preview):
        assert result.returncode == 1 and result.stderr.startswith("error: "), result.stderr
        assert "Traceback" not in result.stderr
        assert f"generator.model: the model folder {missing} does not exist" in result.stderr
        assert f"huggingface-cli download NAME --local-dir {missing}" in result.stderr
    assert not list(tmp_path.rglob("*.tar")) and not (tmp_path / "p" / "preview.html").exists()
