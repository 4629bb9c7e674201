"""The `hf` and `hf-vlm` backends on tiny random models, loaded through the real code paths."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from PIL import Image  # noqa: E402
from tiny_models import make_tiny_tokenizer  # noqa: E402

from mminstruct.config import GeneratorConfig  # noqa: E402
from mminstruct.errors import MminstructError  # noqa: E402
from mminstruct.generate.backends import Completion, Request, make_backend  # noqa: E402
from mminstruct.generate.backends.hf import (  # noqa: E402
    HFBackend,
    batch_seed,
    load_options,
    render_prompt,
    trim_completion,
)
from mminstruct.generate.backends.hf_vlm import HFVisionBackend, vision_messages  # noqa: E402

QUESTIONS = [
    "What is the man doing?",
    "Describe the image in detail, including every object on the table and the colors. " * 2,
    "Hi",
    "How many dogs are playing in the green grass of the park?",
    "What color is the bus?",
]


def request(question: str, seed: int = 0, image: bytes | None = None) -> Request:
    """A system prompt, one few-shot pair and the question."""
    messages = (
        {"role": "system", "content": "You describe images."},
        {"role": "user", "content": "What is on the table?"},
        {"role": "assistant", "content": "A plate of food."},
        {"role": "user", "content": question},
    )
    return Request(messages, seed, image)


def hf(model: Path, backend: str = "hf", **options) -> GeneratorConfig:
    """Greedy, short completions unless the options say otherwise."""
    settings = {"temperature": 0.0, "max_new_tokens": 10, **options}
    return GeneratorConfig(backend=backend, model=str(model), **settings)


def outcome(completions: list[Completion]) -> list[tuple]:
    """What must not depend on batching (details record the batch, so they may)."""
    return [
        (c.text, c.finish_reason, c.prompt_tokens, c.completion_tokens, c.error)
        for c in completions
    ]


def encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def noise_image(size: tuple[int, int], seed: int) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def record_generate(
    backend, monkeypatch: pytest.MonkeyPatch, fail_above: int | None = None, error=None
) -> list[int]:
    """Log the rows of every `generate` call; raise `error` (CUDA OOM) above `fail_above` rows."""
    calls: list[int] = []
    real = backend.hf_model.generate
    error = error or torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")

    def generate(**kwargs):
        rows = kwargs["input_ids"].shape[0]
        calls.append(rows)
        if fail_above is not None and rows > fail_above:
            raise error
        return real(**kwargs)

    monkeypatch.setattr(backend.hf_model, "generate", generate)
    return calls


# --------------------------------------------------------------------------- hf: generation


def test_batched_equals_one_at_a_time_under_greedy(lm_dir: Path) -> None:
    requests = [request(q) for q in QUESTIONS]
    results = {
        size: outcome(HFBackend(hf(lm_dir, batch_size=size)).complete(requests))
        for size in (1, 2, 3)
    }
    assert results[2] == results[1]
    assert results[3] == results[1]
    assert len({text for text, *_ in results[1]}) == len(QUESTIONS)  # prompts matter


def test_results_come_back_in_request_order(lm_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = make_backend(hf(lm_dir, batch_size=2))
    assert isinstance(backend, HFBackend)
    requests = [request(q) for q in QUESTIONS]
    calls = record_generate(backend, monkeypatch)
    results = backend.complete(requests)
    assert calls == [2, 2, 1]
    assert backend.complete([]) == []
    for req, completion in zip(requests, results, strict=True):
        assert completion.prompt_tokens == backend.count_tokens(req.messages)
        assert outcome([completion]) == outcome(backend.complete([req]))


def test_finish_reason_length_when_cut(lm_dir: Path) -> None:
    requests = [request(q) for q in QUESTIONS]
    longer = HFBackend(hf(lm_dir, max_new_tokens=10)).complete(requests)
    cut = HFBackend(hf(lm_dir, max_new_tokens=3)).complete(requests)
    for short, full in zip(cut, longer, strict=True):
        if full.completion_tokens > 3:  # went on past 3 tokens: cut there now
            assert (short.finish_reason, short.completion_tokens) == ("length", 3)
        else:  # stopped (EOS) within 3 tokens: the same either way
            assert outcome([short]) == outcome([full]) and full.finish_reason == "stop"
    assert "length" in {c.finish_reason for c in cut}


def test_token_counts(lm_dir: Path) -> None:
    backend = HFBackend(hf(lm_dir, batch_size=3))
    requests = [request(q) for q in QUESTIONS]
    results = backend.complete(requests)
    for req, completion in zip(requests, results, strict=True):
        prompt = render_prompt(backend.tokenizer, req.messages)
        ids = backend.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        assert completion.prompt_tokens == len(ids) == backend.count_tokens(req.messages)
        assert 1 <= completion.completion_tokens <= 10
        assert completion.finish_reason in ("stop", "length")
        if completion.finish_reason == "length":
            assert completion.completion_tokens == 10
    assert results[1].prompt_tokens > results[0].prompt_tokens > results[2].prompt_tokens


def test_trim_completion_finds_stop_and_length() -> None:
    stops = frozenset({2})
    assert trim_completion([5, 6, 2, 2, 2], stops, 5) == ([5, 6, 2], "stop")
    assert trim_completion([5, 6, 7], stops, 3) == ([5, 6, 7], "length")
    assert trim_completion([5, 6], stops, 3) == ([5, 6], "stop")  # ended early by other means
    assert trim_completion([2], stops, 1) == ([2], "stop")  # EOS as the last allowed token


def test_sampling_is_reproducible_with_the_same_seeds(lm_dir: Path) -> None:
    config = hf(lm_dir, temperature=1.0, top_p=0.95, batch_size=2, max_new_tokens=12)
    requests = [request(q, seed=100 + i) for i, q in enumerate(QUESTIONS)]
    first = HFBackend(config).complete(requests)
    again = HFBackend(config).complete(requests)
    assert outcome(first) == outcome(again)
    assert [c.details for c in first] == [c.details for c in again]
    other = HFBackend(config).complete([request(q, seed=7 + i) for i, q in enumerate(QUESTIONS)])
    assert [c.text for c in other] != [c.text for c in first]
    # The longest prompt (index 1) shares the first batch with the next longest (index 3).
    assert first[1].details["batch_seed"] == batch_seed([101, 103])
    assert first[1].details["batch_seed"] != first[0].details["batch_seed"]


# --------------------------------------------------------------------------- hf: out of memory


def test_out_of_memory_halves_the_batch(lm_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    requests = [request(q) for q in QUESTIONS]
    expected = outcome(HFBackend(hf(lm_dir, batch_size=1)).complete(requests))
    backend = HFBackend(hf(lm_dir, batch_size=4))
    calls = record_generate(backend, monkeypatch, fail_above=1)
    results = backend.complete(requests)
    assert calls == [4, 2, 1, 1, 2, 1, 1, 1]  # 4 -> 2 + 2 -> 1 + 1 + 1 + 1, then the fifth
    assert outcome(results) == expected
    assert {c.details["batch_size"] for c in results} == {1}


def test_out_of_memory_runtime_error_is_recognized(
    lm_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = HFBackend(hf(lm_dir, batch_size=2))
    error = RuntimeError("CUDA error: out of memory")
    calls = record_generate(backend, monkeypatch, fail_above=1, error=error)
    results = backend.complete([request(q) for q in QUESTIONS[:2]])
    assert calls == [2, 1, 1]
    assert all(c.error is None and c.text for c in results)


def test_a_request_that_fails_alone_is_an_error(
    lm_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = HFBackend(hf(lm_dir, batch_size=3))
    calls = record_generate(backend, monkeypatch, fail_above=0)
    results = backend.complete([request(q) for q in QUESTIONS[:3]])
    assert calls == [3, 2, 1, 1, 1]
    assert [c.finish_reason for c in results] == ["error"] * 3
    assert all("out of memory" in c.error for c in results)


def test_other_errors_are_not_swallowed(lm_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = HFBackend(hf(lm_dir))

    def generate(**kwargs):
        raise RuntimeError("shapes do not match")

    monkeypatch.setattr(backend.hf_model, "generate", generate)
    with pytest.raises(RuntimeError, match="shapes"):
        backend.complete([request("Hi")])


# --------------------------------------------------------------------------- hf: loading


def spy_from_pretrained(monkeypatch: pytest.MonkeyPatch, auto_class) -> list[dict]:
    """Record the keyword arguments of `auto_class.from_pretrained`, then really load."""
    seen: list[dict] = []
    real = auto_class.from_pretrained

    def from_pretrained(name, **kwargs):
        seen.append(kwargs)
        return real(name, **kwargs)

    monkeypatch.setattr(auto_class, "from_pretrained", from_pretrained)
    return seen


@pytest.mark.parametrize("trust", [False, True])
def test_trust_remote_code_only_when_set(
    lm_dir: Path, monkeypatch: pytest.MonkeyPatch, trust: bool
) -> None:
    models = spy_from_pretrained(monkeypatch, transformers.AutoModelForCausalLM)
    tokenizers = spy_from_pretrained(monkeypatch, transformers.AutoTokenizer)
    options = {"trust_remote_code": True} if trust else {}
    HFBackend(hf(lm_dir, **options))
    assert [kw["trust_remote_code"] for kw in models + tokenizers] == [trust, trust]
    assert models[0]["use_safetensors"] is True
    assert models[0]["dtype"] == torch.float32 and models[0]["device_map"] == "cpu"


def test_load_options() -> None:
    options = load_options(GeneratorConfig(dtype="bfloat16", allow_pickle=True))
    assert options["dtype"] == torch.bfloat16
    assert options["use_safetensors"] is None  # safetensors preferred, pickle allowed
    assert options["trust_remote_code"] is False
    if not torch.cuda.is_available():
        assert load_options(GeneratorConfig())["device_map"] == "cpu"


def test_pickle_weights_need_allow_pickle(lm_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "pickled"
    shutil.copytree(lm_dir, folder)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder)
    torch.save(model.state_dict(), folder / "pytorch_model.bin")  # v5 saves safetensors only
    (folder / "model.safetensors").unlink()
    with pytest.raises(MminstructError, match=r"generator\.allow_pickle: true"):
        HFBackend(hf(folder))
    requests = [request(q) for q in QUESTIONS[:2]]
    pickled = HFBackend(hf(folder, allow_pickle=True)).complete(requests)
    assert outcome(pickled) == outcome(HFBackend(hf(lm_dir)).complete(requests))


def test_hub_model_without_safetensors_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def from_pretrained(name, **kwargs):
        raise OSError(f"{name} does not appear to have a file named model.safetensors")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", from_pretrained)
    with pytest.raises(MminstructError, match=r"org/model has no safetensors"):
        HFBackend(hf(Path("org/model")))


# --------------------------------------------------------------------------- prompts


def test_render_prompt_uses_the_chat_template(tmp_path: Path) -> None:
    tokenizer = make_tiny_tokenizer(tmp_path)
    messages = request("Hi").messages
    prompt = render_prompt(tokenizer, messages)
    expected = tokenizer.apply_chat_template(
        list(messages), tokenize=False, add_generation_prompt=True
    )
    assert prompt == expected
    assert prompt.startswith("<s><|system|>\nYou describe images.</s>\n")
    assert prompt.endswith("<|user|>\nHi</s>\n<|assistant|>\n")


def test_render_prompt_without_a_chat_template(tmp_path: Path) -> None:
    tokenizer = make_tiny_tokenizer(tmp_path)
    tokenizer.chat_template = None
    assert render_prompt(tokenizer, request("Hi").messages) == (
        "System: You describe images.\n\nUser: What is on the table?\n\n"
        "Assistant: A plate of food.\n\nUser: Hi\n\nAssistant:"
    )


def test_plain_prompts_get_the_tokenizer_special_tokens(lm_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "no-template"
    shutil.copytree(lm_dir, folder)
    (folder / "chat_template.jinja").unlink()
    backend = HFBackend(hf(folder))
    assert backend.tokenizer.chat_template is None
    [completion] = backend.complete([request("Hi")])
    assert completion.finish_reason in ("stop", "length") and completion.text
    assert render_prompt(backend.tokenizer, request("Hi").messages).endswith("Assistant:")


# --------------------------------------------------------------------------- hf-vlm


def vision_requests() -> list[Request]:
    """Pictures of different sizes and formats, one text-only request, one broken image."""
    return [
        request("What is in the image?", image=encoded(noise_image((40, 30), 1), "PNG")),
        request(QUESTIONS[1], image=encoded(noise_image((64, 48), 2), "JPEG")),
        request("What is in the image?", image=encoded(noise_image((32, 32), 3), "PNG")),
        request("Hi"),
        request("What color is it?", image=encoded(Image.new("RGB", (20, 50), "red"), "JPEG")),
        request("What is this?", image=b"not an image"),
    ]


def test_vision_backend_batched_equals_one_at_a_time(vlm_dir: Path) -> None:
    requests = vision_requests()
    results = {
        size: HFVisionBackend(hf(vlm_dir, "hf-vlm", batch_size=size)).complete(requests)
        for size in (1, 2, 3)
    }
    assert outcome(results[2]) == outcome(results[1])
    assert outcome(results[3]) == outcome(results[1])
    texts = [c.text for c in results[1]]
    assert texts[0] != texts[2]  # same question, different pixels
    assert [c.finish_reason == "error" for c in results[1]] == [False] * 5 + [True]
    assert "image not readable" in results[1][5].error


def test_vision_backend_counts_image_tokens(vlm_dir: Path) -> None:
    backend = make_backend(hf(vlm_dir, "hf-vlm", batch_size=4))
    assert isinstance(backend, HFVisionBackend)
    with_image, text_only = vision_requests()[0], vision_requests()[3]
    results = backend.complete([with_image, text_only])
    rendered = backend.render(with_image.messages, with_image=True)
    assert "<image>\nWhat is in the image?" in rendered
    placeholder = len(backend.tokenizer(rendered, add_special_tokens=False)["input_ids"])
    assert results[0].prompt_tokens == placeholder - 1 + 16  # 4x4 patches of a 32x32 image
    assert results[1].prompt_tokens == backend.count_tokens(text_only.messages)
    assert all(1 <= c.completion_tokens <= 10 for c in results)


def test_vision_backend_loading_options(vlm_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    models = spy_from_pretrained(monkeypatch, transformers.AutoModelForImageTextToText)
    processors = spy_from_pretrained(monkeypatch, transformers.AutoProcessor)
    HFVisionBackend(hf(vlm_dir, "hf-vlm"))
    assert [kw["trust_remote_code"] for kw in models + processors] == [False, False]
    assert models[0]["use_safetensors"] is True


def test_vision_messages_put_the_image_in_the_last_user_turn() -> None:
    parts = vision_messages(request("Why?").messages, with_image=True)
    assert parts[3]["content"] == [{"type": "image"}, {"type": "text", "text": "Why?"}]
    assert all(len(m["content"]) == 1 for m in parts[:3])
    with pytest.raises(ValueError, match="user message"):
        vision_messages(({"role": "system", "content": "x"},), with_image=True)


# --------------------------------------------------------------------------- imports


def test_importing_mminstruct_does_not_import_torch() -> None:
    code = (
        "import sys, mminstruct, mminstruct.generate.backends, mminstruct.config\n"
        "heavy = sorted(m for m in ('torch', 'transformers') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- finding the model (issue 13)


@pytest.mark.parametrize("backend", ["hf", "hf-vlm"])
def test_a_missing_model_folder_is_named_not_taken_for_a_hub_name(
    tmp_path: Path, backend: str
) -> None:
    for missing in (tmp_path / "models" / "absent", "./absent", "~/absent-mminstruct-model"):
        with pytest.raises(MminstructError) as info:
            make_backend(hf(missing, backend))
        message = str(info.value)
        assert f"generator.model: the model folder {missing} does not exist" in message
        assert f"huggingface-cli download NAME --local-dir {missing}" in message
    (tmp_path / "weights.safetensors").write_bytes(b"")
    with pytest.raises(MminstructError, match="is a file, not a model folder"):
        make_backend(hf(tmp_path / "weights.safetensors", backend))


def test_a_model_folder_under_home_is_found(lm_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`~/...` is expanded (transformers would take it for a hub name)."""
    monkeypatch.setenv("HOME", str(lm_dir.parent))
    backend = HFBackend(hf(Path("~") / lm_dir.name))
    assert backend.model == f"~/{lm_dir.name}"  # recorded as configured
    assert backend.complete([request(QUESTIONS[0])])[0].finish_reason in ("stop", "length")


def test_a_hub_model_that_cannot_be_loaded_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def from_pretrained(name, **kwargs):
        raise OSError(f"cannot reach the hub for {name}\nmore lines")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", from_pretrained)
    with pytest.raises(MminstructError) as info:
        HFBackend(hf(Path("org/model")))
    message = str(info.value)
    assert message.startswith("generator.model: cannot load org/model (")
    assert "huggingface-cli download org/model --local-dir PATH" in message
