"""The CUDA paths of the `hf` and `hf-vlm` backends, on a real device: the model placed on
it, in the configured dtype, and a batch that really runs out of device memory halved until
it fits, with every completion coming back.

Marked `gpu`: deselected by default, run with `python -m pytest -m gpu`; without a CUDA
device (or without torch) they skip and say why.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="the gpu tests need torch: pip install -e '.[hf]'")
transformers = pytest.importorskip("transformers", reason="the gpu tests need transformers")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not torch.cuda.is_available(),
        reason="no CUDA device here; the gpu tests run where one is (python -m pytest -m gpu)",
    ),
]

from PIL import Image  # noqa: E402

from mminstruct.config import GeneratorConfig  # noqa: E402
from mminstruct.generate.backends import Request, hf  # noqa: E402
from mminstruct.generate.backends.hf import HFBackend, load_options  # noqa: E402
from mminstruct.generate.backends.hf_vlm import HFVisionBackend  # noqa: E402

OOM_BATCH = 256  # prompts in the batch that must run out of the capped memory
HALF_PRECISION = ["float16", "bfloat16"]


@pytest.fixture(autouse=True)
def whole_device():
    """Every test starts and ends with the device's whole memory allowed and no cache."""
    torch.cuda.set_per_process_memory_fraction(1.0)
    torch.cuda.empty_cache()
    yield
    torch.cuda.set_per_process_memory_fraction(1.0)
    torch.cuda.empty_cache()


def config(model: Path, backend: str = "hf", **options) -> GeneratorConfig:
    settings = {"temperature": 0.0, "max_new_tokens": 8, **options}
    return GeneratorConfig(backend=backend, model=str(model), **settings)


def request(question: str, seed: int = 0, image: bytes | None = None) -> Request:
    messages = (
        {"role": "system", "content": "You describe images."},
        {"role": "user", "content": question},
    )
    return Request(messages, seed, image)


def png(color: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(buffer, "PNG")
    return buffer.getvalue()


def supported(dtype: str) -> None:
    if dtype == "bfloat16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this CUDA device has no bfloat16")


def assert_on_cuda_in(model, dtype: torch.dtype) -> None:
    assert model.device.type == "cuda"
    assert {p.device.type for p in model.parameters()} == {"cuda"}
    assert {p.dtype for p in model.parameters()} == {dtype}


# --------------------------------------------------------------------------- placement, dtype


def test_default_device_is_the_local_ranks_gpu(monkeypatch, lm_dir) -> None:
    monkeypatch.setenv("LOCAL_RANK", str(torch.cuda.device_count()))  # wraps around to 0
    options = load_options(config(lm_dir))
    assert options["device_map"] == "cuda:0"
    assert options["dtype"] == "auto"  # on a GPU the checkpoint's own dtype


@pytest.mark.parametrize("dtype", HALF_PRECISION)
def test_hf_model_runs_on_the_gpu_in_the_configured_dtype(lm_dir, dtype) -> None:
    supported(dtype)
    backend = HFBackend(config(lm_dir, dtype=dtype, batch_size=4))
    assert_on_cuda_in(backend.hf_model, getattr(torch, dtype))
    results = backend.complete([request(f"What is in picture {i}?", seed=i) for i in range(6)])
    assert all(c.error is None and c.completion_tokens >= 1 for c in results)
    assert {c.details["batch_size"] for c in results} == {4, 2}


@pytest.mark.parametrize("dtype", HALF_PRECISION)
def test_hf_vlm_runs_on_the_gpu_with_pixels_in_the_model_dtype(vlm_dir, monkeypatch, dtype) -> None:
    supported(dtype)
    backend = HFVisionBackend(config(vlm_dir, "hf-vlm", dtype=dtype, batch_size=2))
    assert_on_cuda_in(backend.hf_model, getattr(torch, dtype))
    seen = []
    real = backend.hf_model.generate

    def generate(**kwargs):
        seen.append((kwargs["pixel_values"].device.type, kwargs["pixel_values"].dtype))
        seen.append((kwargs["input_ids"].device.type, kwargs["input_ids"].dtype))
        return real(**kwargs)

    monkeypatch.setattr(backend.hf_model, "generate", generate)
    results = backend.complete([request("What is this?", image=png(c)) for c in ("red", "blue")])
    assert all(c.error is None and c.completion_tokens >= 1 for c in results)
    assert seen == [("cuda", getattr(torch, dtype)), ("cuda", torch.int64)]


# --------------------------------------------------------------------------- out of memory


def long_question(backend: HFBackend, tokens: int) -> str:
    """A question whose prompt is about `tokens` tokens long."""
    sentence = "Describe every object on the table, the colors and the people near the bus. "
    question = sentence
    while backend.count_tokens(request(question).messages) < tokens:
        question += sentence
    return question


def peak_reserved(run) -> int:
    """Device memory the caching allocator reserved at most while `run()` ran, beyond what
    it held before."""
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    before = torch.cuda.memory_reserved()
    torch.cuda.reset_peak_memory_stats()
    run()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_reserved() - before


def test_a_batch_that_runs_out_of_device_memory_is_halved(lm_dir, monkeypatch) -> None:
    """Cap the process's device memory between what one prompt and the whole batch need: the
    allocator raises a real `torch.cuda.OutOfMemoryError`, the batch is halved until it
    fits, and every completion comes back."""
    backend = HFBackend(
        config(lm_dir, batch_size=OOM_BATCH, attn_implementation="eager", dtype="float32")
    )
    question = long_question(backend, 400)  # eager attention: 400 x 400 scores per head and row
    requests = [request(question, seed=i) for i in range(OOM_BATCH)]
    one = peak_reserved(lambda: backend.complete(requests[:1]))
    whole = peak_reserved(lambda: backend.complete(requests))
    assert whole > 8 * max(one, 1), (one, whole)  # room for a cap between the two
    torch.cuda.empty_cache()
    cap = torch.cuda.memory_reserved() + (one + whole) // 2
    total = torch.cuda.get_device_properties(0).total_memory
    seen: list[BaseException] = []
    recognize = hf.is_out_of_memory

    def spy(exc: BaseException) -> bool:
        seen.append(exc)
        return recognize(exc)

    monkeypatch.setattr(hf, "is_out_of_memory", spy)
    torch.cuda.set_per_process_memory_fraction(cap / total)
    results = backend.complete(requests)
    assert any(isinstance(exc, torch.cuda.OutOfMemoryError) for exc in seen), seen
    assert len(results) == OOM_BATCH
    assert all(c.error is None and c.completion_tokens >= 1 for c in results)
    sizes = {c.details["batch_size"] for c in results}
    assert max(sizes) < OOM_BATCH and min(sizes) >= 1, sizes
