"""`generator.hf` speed settings: static cache, compiled decoding, continuous batching.

Each must give the greedy completions plain `generate` gives on the tiny float32 model. The
compiled and continuous-batching runs are slow on CPU (a torch.compile, a paged-cache manager
thread), so they are marked `slow`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from mminstruct.config import config_from_dict  # noqa: E402
from mminstruct.errors import MminstructError  # noqa: E402
from mminstruct.generate.backends import Completion, Request  # noqa: E402
from mminstruct.generate.backends.hf import HFBackend  # noqa: E402

QUESTIONS = [
    "Describe the image in detail, including every object on the table and the colors.",
    "Hi",
    "How many dogs are playing in the green grass of the park?",
    "What color is the bus?",
]


def generator(model: Path, backend: str = "hf", **speed) -> dict:
    """A greedy generator section with `generator.hf` set to `speed`."""
    section = {"backend": backend, "model": str(model), "temperature": 0.0, "max_new_tokens": 8}
    return {**section, "batch_size": 4, "hf": speed} if speed else section


def load(generator_section: dict):
    """The whole config, through the real loader and validation."""
    source = {"kind": "coco", "name": "c", "images": "images", "instances": "instances.json"}
    return config_from_dict({"sources": [source], "generator": generator_section})


def complete(model: Path, **speed) -> list[Completion]:
    """Greedy completions of QUESTIONS through the hf backend with these speed settings."""
    backend = HFBackend(load(generator(model, **speed)).generator)
    return backend.complete(
        [Request(({"role": "user", "content": q},), i) for i, q in enumerate(QUESTIONS)]
    )


def texts(completions: list[Completion]) -> list[tuple]:
    """What must not depend on the decoding path (details record the batch, so they may)."""
    return [(c.text, c.finish_reason, c.prompt_tokens, c.completion_tokens) for c in completions]


@pytest.fixture(scope="module")
def plain(lm_dir: Path) -> list[Completion]:
    """Plain padded `generate` with the dynamic cache: the reference."""
    return complete(lm_dir)


def test_static_cache_matches_plain_generate(lm_dir: Path, plain: list[Completion]) -> None:
    static = complete(lm_dir, cache="static")
    assert all(c.finish_reason != "error" for c in static)
    assert texts(static) == texts(plain)
    assert any(c.completion_tokens > 0 for c in static)


@pytest.mark.slow
def test_compiled_static_cache_matches_plain_generate(lm_dir, plain) -> None:
    assert texts(complete(lm_dir, cache="static", compile=True)) == texts(plain)


@pytest.mark.slow
def test_continuous_batching_matches_plain_generate(lm_dir, plain) -> None:
    continuous = complete(lm_dir, continuous_batching=True)
    assert texts(continuous) == texts(plain)
    assert continuous[0].details["batch_size"] == len(QUESTIONS)


def test_speed_kwargs_reach_generate(lm_dir: Path) -> None:
    eager = HFBackend(load(generator(lm_dir, cache="static")).generator).generate_kwargs()
    assert eager["cache_implementation"] == "static" and eager["disable_compile"] is True
    compiled = HFBackend(load(generator(lm_dir, cache="static", compile=True)).generator)
    options = compiled.generate_kwargs()
    assert options["compile_config"]._compile_all_devices is True
    assert (
        "cache_implementation" not in HFBackend(load(generator(lm_dir)).generator).generate_kwargs()
    )


def test_continuous_batching_out_of_memory_is_halved(lm_dir: Path, monkeypatch) -> None:
    """A result whose error says out of memory halves the batch, down to single prompts."""
    backend = HFBackend(load(generator(lm_dir, continuous_batching=True)).generator)
    sizes = []

    class Result:
        def __init__(self, error: str | None) -> None:
            self.error, self.generated_tokens = error, [5, 6]

    def fake_generate_batch(inputs, generation_config):
        sizes.append(len(inputs))
        error = "CUDA out of memory" if len(inputs) > 1 else None
        return {f"req_{i}": Result(error) for i in range(len(inputs))}

    monkeypatch.setattr(backend.hf_model, "generate_batch", fake_generate_batch)
    done = backend.complete([Request(({"role": "user", "content": q},), 0) for q in QUESTIONS[:2]])
    assert sizes == [2, 1, 1]
    assert [c.completion_tokens for c in done] == [2, 2]


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"backend": "openai", "model": "m", "hf": {"cache": "static"}}, "generator.hf:"),
        ({"backend": "hf", "model": "m", "hf": {"compile": True}}, "generator.hf.compile"),
        (
            {"backend": "hf-vlm", "model": "m", "hf": {"continuous_batching": True}},
            "generator.hf.continuous_batching",
        ),
        (
            {"backend": "hf", "model": "m", "hf": {"continuous_batching": True, "cache": "static"}},
            "paged cache",
        ),
        (
            {
                "backend": "hf",
                "model": "m",
                "cache_implementation": "offloaded",
                "hf": {"cache": "static"},
            },
            "generator.hf.cache",
        ),
        ({"backend": "hf", "model": "m", "hf": {"cahce": "static"}}, "generator.hf.cahce"),
    ],
)
def test_invalid_speed_settings_are_refused(section: dict, message: str) -> None:
    with pytest.raises(MminstructError, match=message.replace(".", r"\.")):
        load(section)


def test_vision_static_cache_matches_plain_generate(vlm_dir: Path) -> None:
    """hf-vlm shares `generate_kwargs`: a static cache there gives the same greedy text too."""
    import io

    import numpy as np
    from PIL import Image

    from mminstruct.generate.backends.hf_vlm import HFVisionBackend

    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(buffer, "PNG")
    requests = [
        Request(({"role": "user", "content": q},), i, buffer.getvalue())
        for i, q in enumerate(QUESTIONS[:2])
    ]
    runs = [
        HFVisionBackend(load(generator(vlm_dir, "hf-vlm", **speed)).generator).complete(requests)
        for speed in ({}, {"cache": "static"})
    ]
    assert all(c.finish_reason != "error" for c in runs[1])
    assert texts(runs[1]) == texts(runs[0])
