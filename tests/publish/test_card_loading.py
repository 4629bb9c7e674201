"""`datasets.load_dataset(out_dir)` returns every field of every sample, whatever backend wrote
it: the card declares the columns from `output.SAMPLE_FIELDS`, the writer's own schema.

Before, the openai backend's `generator.attempts` and the hf backends' `batch_size` were
written into the shards and silently dropped on loading. Each build here is compared row by
row, field by field, with the JSON in its shards.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.shards import shard_records

from mminstruct.cli import main

datasets = pytest.importorskip("datasets")

ANSWER = "Question: What is shown?\nAnswer: A small scene with a few objects.\n"
# Fields only some backends write: each build must hold its own, or the test proves nothing.
OWN_FIELDS = {
    "template": {"template_sha256"},
    "hf": {"batch_seed", "batch_size", "attempt", "prompt_tokens"},
    "hf-vlm": {"batch_seed", "batch_size"},
    "openai": {"attempts", "completion_tokens"},
}


def differences(written: Any, loaded: Any, path: str = "json") -> Iterator[str]:
    """Where `loaded` lost or changed a field of `written` (a null it adds is no field)."""
    if isinstance(written, dict):
        if not isinstance(loaded, dict):
            yield f"{path}: written a struct, loaded {loaded!r}"
            return
        for key, value in written.items():
            if value is not None and loaded.get(key) is None:
                yield f"{path}.{key}: dropped (written {value!r})"
            else:
                yield from differences(value, loaded.get(key), f"{path}.{key}")
        extra = {k for k, v in loaded.items() if v is not None and k not in written}
        if extra:
            yield f"{path}: loaded fields never written: {sorted(extra)}"
    elif isinstance(written, list):
        if not isinstance(loaded, list) or len(loaded) != len(written):
            yield f"{path}: written {len(written)} items, loaded {loaded!r}"
            return
        for i, pair in enumerate(zip(written, loaded, strict=True)):
            yield from differences(*pair, f"{path}[{i}]")
    elif written != loaded or kind(written) != kind(loaded):
        yield f"{path}: written {written!r}, loaded {loaded!r}"


def kind(value: Any) -> str:
    """What a JSON value is: an integer written may load as a float64 (same number)."""
    if isinstance(value, bool):
        return "bool"
    return "number" if isinstance(value, int | float) else type(value).__name__


def stamp_fields(records: dict[str, dict]) -> set[str]:
    return {k for r in records.values() for i in r["instructions"] for k in i["generator"]}


def assert_loads_every_field(out: Path, backend: str, tmp_path: Path) -> None:
    written = shard_records(out)
    assert written and all(r["instructions"] for r in written.values()), "nothing to compare"
    assert OWN_FIELDS[backend] <= stamp_fields(written)
    loaded = datasets.load_dataset(str(out), split="train", cache_dir=str(tmp_path / "cache"))
    assert sorted(loaded["__key__"]) == sorted(written)
    problems = [p for row in loaded for p in differences(written[row["__key__"]], row["json"])]
    assert problems == []


def build(out: Path, *settings: str, limit: int = 4) -> None:
    args = ["build", "demo", "-q", "--limit", str(limit), "--set", f"output.dir={out}"]
    for setting in settings:
        args += ["--set", setting]
    assert main(args) == 0


def test_template_build_loads_every_field(tmp_path):
    out = tmp_path / "out"
    build(out, "tasks.preference.enabled=true", limit=16)
    records = shard_records(out)
    assert any(i.get("preference") for r in records.values() for i in r["instructions"])
    assert_loads_every_field(out, "template", tmp_path)


def test_openai_build_loads_every_field(tmp_path, monkeypatch):
    from support.fake_openai import FakeServer

    monkeypatch.setattr("mminstruct.generate.backends.openai.BASE_DELAY_S", 0.001)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    server = FakeServer()
    server.plan = ["500"]  # one request takes two attempts
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    out = tmp_path / "out"
    try:
        settings = ["generator.backend=openai", "generator.model=served"]
        build(out, *settings, f"generator.base_url={server.url}", "tasks.detail.enabled=false")
    finally:
        server.shutdown()
        server.server_close()
    assert_loads_every_field(out, "openai", tmp_path)


@pytest.fixture
def scripted_decoding(monkeypatch) -> None:
    """The tiny models' real `generate` runs, and their noise is replaced by a well-formed
    answer after decoding, so instructions are kept with the backend's own `details`."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from mminstruct.generate.backends import hf, hf_vlm

    real = hf.decode_batch

    def decode(*args, **kwargs):
        return [
            dataclasses.replace(c, text=ANSWER, finish_reason="stop") for c in real(*args, **kwargs)
        ]

    monkeypatch.setattr(hf, "decode_batch", decode)
    monkeypatch.setattr(hf_vlm, "decode_batch", decode)


@pytest.mark.parametrize("backend", ["hf", "hf-vlm"])
def test_hf_builds_load_every_field(backend, tmp_path, scripted_decoding, request):
    model = request.getfixturevalue("lm_dir" if backend == "hf" else "vlm_dir")
    templates = tmp_path / "templates"
    templates.mkdir()
    for task in ("conversation", "detail", "reasoning"):
        example = {"context": "A dog.", "answer": "Question: What?\nAnswer: A dog."}
        text = {"system": "Ask and answer.", "examples": [example], "query": "{context}"}
        (templates / f"{task}.yaml").write_text(json.dumps(text))
    out = tmp_path / "out"
    settings = [f"generator.backend={backend}", f"generator.model={model}"]
    settings += [f"generator.templates={templates}", "generator.max_new_tokens=8"]
    build(out, *settings, "generator.batch_size=3", "tasks.detail.enabled=false", limit=3)
    assert_loads_every_field(out, backend, tmp_path)
