"""Causal language models through transformers: batched, seeded, out-of-memory tolerant.

`HFBackend` renders each request with the tokenizer's chat template (`render_prompt`), sorts
the prompts by token length, and generates `generator.batch_size` of them at a time with left
padding. Under greedy decoding (`temperature: 0`) a batch gives exactly what one prompt at a
time gives (in float32; half-precision GPU kernels may differ in the last bits). Before each `generate` call, torch is seeded from the seeds of the requests in
that batch (`Completion.details["batch_seed"]`), so a rerun with the same requests and batch
size samples the same text. A batch that runs out of memory is halved and retried, down to
single prompts; only a prompt that fails alone becomes an error completion.

`generator.hf` (off by default) selects transformers' speed paths: a static KV cache, a
compiled decode step, and (hf only) continuous batching through `model.generate_batch`, which
takes each batch unpadded; all give the same greedy tokens as plain `generate` in float32.

The batching, seeding, halving and decoding helpers here are shared with `hf_vlm.py`.
"""

from __future__ import annotations

import gc
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mminstruct.config import GeneratorConfig
from mminstruct.errors import MminstructError
from mminstruct.generate.backends.base import (
    Completion,
    Message,
    Request,
    model_location,
    require,
)
from mminstruct.launch import detect_launch

torch = require("torch")
transformers = require("transformers")
jinja2 = require("jinja2")

log = logging.getLogger(__name__)

# Problems with one request (a template that rejects its messages, an unreadable image) that
# make that request an error completion instead of stopping the run.
REQUEST_ERRORS = (ValueError, OSError, jinja2.TemplateError)


@dataclass(frozen=True)
class Prepared:
    """A request ready for batching."""

    index: int  # position in the `complete` call
    request: Request
    prompt: str  # the rendered prompt text
    length: int  # its tokens (image placeholders count as written), used to sort
    image: Any = None  # the decoded image (PIL), for vision backends


# Generates one batch: the prepared requests and their batch seed in, a completion each out.
RunBatch = Callable[[list[Prepared], int], list[Completion]]


# --------------------------------------------------------------------------- prompts


def render_prompt(tokenizer: Any, messages: Sequence[Message]) -> str:
    """The prompt text for chat messages, ending where the assistant's answer starts.

    Uses the tokenizer's chat template (`add_generation_prompt=True`). A tokenizer without one
    gets a plain transcript instead: "System: ...\\n\\nUser: ...\\n\\nAssistant: ...\\n\\n"
    for each message, then "Assistant:".
    """
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            [dict(m) for m in messages], tokenize=False, add_generation_prompt=True
        )
    turns = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n\n".join([*turns, "Assistant:"])


# --------------------------------------------------------------------------- loading


def default_device() -> str:
    """`cuda:<LOCAL_RANK mod GPUs>` when CUDA is available, else `cpu`."""
    if torch.cuda.is_available():
        return f"cuda:{detect_launch().local_rank % torch.cuda.device_count()}"
    return "cpu"


def load_options(config: GeneratorConfig) -> dict[str, Any]:
    """`from_pretrained` keyword arguments for the model, from `generator.*`."""
    device_map = config.device_map or default_device()
    on_cpu = device_map == "cpu" or not torch.cuda.is_available()
    if config.dtype == "auto":
        dtype = torch.float32 if on_cpu else "auto"  # half precision on CPU is slow and lossy
    else:
        dtype = getattr(torch, config.dtype)
    return {
        "dtype": dtype,
        "device_map": device_map,
        "attn_implementation": config.attn_implementation,
        "trust_remote_code": config.trust_remote_code,
        # None: safetensors when present, else pickle; True: safetensors or nothing.
        "use_safetensors": None if config.allow_pickle else True,
    }


def load_model(auto_class: Any, config: GeneratorConfig) -> Any:
    """`auto_class.from_pretrained(generator.model)`, refusing pickle weights unless allowed."""
    if not config.model:
        raise MminstructError("generator.model: a model backend needs a model path or hub name")
    location = model_location(config.model)  # a path-like name must be an existing folder
    _check_local_weights(config)
    try:
        return auto_class.from_pretrained(location, **load_options(config))
    except OSError as exc:
        # A hub model without safetensors (local folders were checked above).
        remote = not Path(location).is_dir()
        if remote and not config.allow_pickle and "safetensors" in str(exc):
            raise MminstructError(_pickle_message(config.model)) from exc
        raise MminstructError(_not_loaded_message(config.model, exc)) from exc


def _not_loaded_message(model: str, exc: OSError) -> str:
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    return (
        f"generator.model: cannot load {model} ({reason}). For a hub name, download the model "
        f"on a machine with network access (`huggingface-cli download {model} --local-dir PATH`) "
        "and set generator.model=PATH; for a folder, check that it holds config.json and the "
        "weights"
    )


def _check_local_weights(config: GeneratorConfig) -> None:
    folder = Path(model_location(config.model))
    if config.allow_pickle or not folder.is_dir() or any(folder.glob("*.safetensors*")):
        return
    if any(folder.glob("*.bin*")) or any(folder.glob("*.pt")):
        raise MminstructError(_pickle_message(config.model))


def _pickle_message(model: str) -> str:
    return (
        f"generator.model: {model} has no safetensors weights; pickle weights (.bin) can run "
        "arbitrary code when loaded, so they are refused by default. Convert them to safetensors "
        "(load the model once and `save_pretrained` it), or, for a model you trust, set "
        "`generator.allow_pickle: true`"
    )


def prepare_tokenizer(tokenizer: Any) -> Any:
    """Left padding, and the end-of-sequence token as pad token when there is none."""
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise MminstructError("the tokenizer has neither a pad nor an end-of-sequence token")
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def stop_token_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    """Tokens that end a completion: the generation config's EOS ids and the tokenizer's."""
    eos = getattr(model.generation_config, "eos_token_id", None)
    ids = set(eos if isinstance(eos, list) else [eos])
    ids.add(tokenizer.eos_token_id)
    return frozenset(i for i in ids if i is not None)


def generation_kwargs(config: GeneratorConfig, pad_token_id: int) -> dict[str, Any]:
    """Length, padding and decoding arguments for `generate` (greedy when temperature is 0)."""
    kwargs: dict[str, Any] = {"max_new_tokens": config.max_new_tokens, "pad_token_id": pad_token_id}
    if config.cache_implementation:
        kwargs["cache_implementation"] = config.cache_implementation
    kwargs.update(speed_kwargs(config))
    if config.temperature == 0:
        kwargs["do_sample"] = False
    else:
        kwargs.update(do_sample=True, temperature=config.temperature, top_p=config.top_p)
    return kwargs


def speed_kwargs(config: GeneratorConfig) -> dict[str, Any]:
    """`generate` arguments for `generator.hf.cache` and `generator.hf.compile`.

    `compile: true` compiles the decode step on every device (transformers by itself compiles
    only on accelerators); `cache: static` with `compile: false` decodes eagerly everywhere.
    """
    if config.hf.cache != "static":
        return {}
    if not config.hf.compile:
        return {"cache_implementation": "static", "disable_compile": True}
    compile_config = transformers.CompileConfig()
    compile_config._compile_all_devices = True  # also on CPU (tests); the GPU default anyway
    return {"cache_implementation": "static", "compile_config": compile_config}


# --------------------------------------------------------------------------- batching


def prepare_requests(
    requests: Sequence[Request], prepare: Callable[[int, Request], Prepared]
) -> tuple[list[Prepared], dict[int, Completion]]:
    """Prepare each request; one that cannot be prepared becomes an error completion."""
    items: list[Prepared] = []
    failed: dict[int, Completion] = {}
    for index, request in enumerate(requests):
        try:
            items.append(prepare(index, request))
        except REQUEST_ERRORS as exc:
            failed[index] = Completion("", "error", error=f"{type(exc).__name__}: {exc}")
    return items, failed


def complete_all(
    items: Sequence[Prepared],
    failed: dict[int, Completion],
    total: int,
    batch_size: int,
    run_batch: RunBatch,
) -> list[Completion]:
    """Longest prompts first, `batch_size` at a time; completions come back in request order."""
    results: list[Completion | None] = [None] * total
    for index, completion in failed.items():
        results[index] = completion
    ordered = sorted(items, key=lambda item: (-item.length, item.index))
    for start in range(0, len(ordered), batch_size):
        batch = ordered[start : start + batch_size]
        for item, completion in zip(batch, generate_halving(batch, run_batch), strict=True):
            results[item.index] = completion
    return results  # type: ignore[return-value]  # every index was filled


def batch_seed(seeds: Sequence[int]) -> int:
    """A 63-bit torch seed derived from the seeds of the requests in a batch, in batch order."""
    digest = hashlib.sha256(",".join(str(s) for s in seeds).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def generate_halving(batch: list[Prepared], run_batch: RunBatch) -> list[Completion]:
    """Seed torch and run the batch; out of memory, run each half, down to single requests."""
    seed = batch_seed([item.request.seed for item in batch])
    try:
        torch.manual_seed(seed)
        with torch.inference_mode():
            return run_batch(batch, seed)
    except Exception as exc:  # only out-of-memory errors are handled; the rest is re-raised
        if not is_out_of_memory(exc):
            raise
        error = f"out of memory with a batch of {len(batch)}: {exc}"
    # Outside the except block, so the traceback (and the tensors it holds) can be freed.
    free_accelerator_memory()
    if len(batch) == 1:
        log.warning("request %d failed alone: %s", batch[0].index, error)
        return [Completion("", "error", error=error, details={"batch_seed": seed})]
    half = (len(batch) + 1) // 2
    log.warning(
        "out of memory with %d prompts; retrying as %d + %d", len(batch), half, len(batch) - half
    )
    return generate_halving(batch[:half], run_batch) + generate_halving(batch[half:], run_batch)


def is_out_of_memory(exc: BaseException) -> bool:
    """A CUDA out-of-memory error (or another backend's RuntimeError saying so)."""
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def free_accelerator_memory() -> None:
    """Drop unreachable tensors and return cached CUDA blocks before a retry."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# --------------------------------------------------------------------------- decoding


def trim_completion(
    new_ids: Sequence[int], stop_ids: frozenset[int], max_new_tokens: int
) -> tuple[list[int], str]:
    """The generated tokens up to and including the first stop token, and the finish reason."""
    for position, token in enumerate(new_ids):
        if token in stop_ids:
            return list(new_ids[: position + 1]), "stop"
    reason = "length" if len(new_ids) >= max_new_tokens else "stop"
    return list(new_ids), reason


def decode_batch(
    tokenizer: Any,
    sequences: Any,
    inputs: Any,
    stop_ids: frozenset[int],
    max_new_tokens: int,
    seed: int,
) -> list[Completion]:
    """Completions from `generate` output (prompt + new tokens per row, prompts left-padded).

    `details` records the batch seed and the rows of the `generate` call (`batch_size`).
    """
    new_rows = sequences[:, inputs["input_ids"].shape[1] :].tolist()
    prompt_lengths = inputs["attention_mask"].sum(dim=1).tolist()
    completions = []
    for new_ids, prompt_tokens in zip(new_rows, prompt_lengths, strict=True):
        kept, reason = trim_completion(new_ids, stop_ids, max_new_tokens)
        text = tokenizer.decode(kept, skip_special_tokens=True)
        details = {"batch_seed": seed, "batch_size": len(new_rows)}
        completions.append(Completion(text, reason, int(prompt_tokens), len(kept), details=details))
    return completions


# --------------------------------------------------------------------------- the backend


class BatchedBackend:
    """What the transformers backends share: generation arguments and the batched `complete`.

    A subclass sets `config` and `tokenizer` and provides `_prepare` (a request to a
    `Prepared`) and `_generate` (a batch of them to completions).
    """

    config: GeneratorConfig
    tokenizer: Any

    def generate_kwargs(self) -> dict[str, Any]:
        """Arguments for every `generate` call (`generator.cache_implementation` included)."""
        return generation_kwargs(self.config, self.tokenizer.pad_token_id)

    def complete(self, requests: Sequence[Request]) -> list[Completion]:
        """One completion per request, in request order; failures are error completions."""
        items, failed = prepare_requests(requests, self._prepare)
        return complete_all(items, failed, len(requests), self.config.batch_size, self._generate)

    def _prepare(self, index: int, request: Request) -> Prepared:
        raise NotImplementedError

    def _generate(self, batch: list[Prepared], seed: int) -> list[Completion]:
        raise NotImplementedError


class HFBackend(BatchedBackend):
    """A causal LM from a local folder or the hub (`generator.model`), run with transformers."""

    name = "hf"

    def __init__(self, config: GeneratorConfig) -> None:
        self.config = config
        self.model = str(config.model)
        self.hf_model = load_model(transformers.AutoModelForCausalLM, config)
        self.tokenizer = prepare_tokenizer(
            transformers.AutoTokenizer.from_pretrained(
                model_location(config.model), trust_remote_code=config.trust_remote_code
            )
        )
        self.stop_ids = stop_token_ids(self.hf_model, self.tokenizer)
        # A chat template writes its own special tokens; the plain fallback lets the tokenizer
        # add them (as `apply_chat_template(tokenize=True)` and plain `tokenizer(text)` do).
        self.add_special_tokens = not getattr(self.tokenizer, "chat_template", None)

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """Prompt tokens for these messages, as the model will see them."""
        return len(self._encode(render_prompt(self.tokenizer, messages)))

    def _encode(self, prompt: str) -> list[int]:
        return self.tokenizer(prompt, add_special_tokens=self.add_special_tokens)["input_ids"]

    def _prepare(self, index: int, request: Request) -> Prepared:
        prompt = render_prompt(self.tokenizer, request.messages)
        return Prepared(index, request, prompt, len(self._encode(prompt)))

    def _generate(self, batch: list[Prepared], seed: int) -> list[Completion]:
        if self.config.hf.continuous_batching:
            return self._generate_continuous(batch, seed)
        inputs = self.tokenizer(
            [item.prompt for item in batch],
            padding=True,
            add_special_tokens=self.add_special_tokens,
            return_tensors="pt",
        ).to(self.hf_model.device)
        sequences = self.hf_model.generate(**inputs, **self.generate_kwargs())
        return decode_batch(
            self.tokenizer, sequences, inputs, self.stop_ids, self.config.max_new_tokens, seed
        )

    def _generate_continuous(self, batch: list[Prepared], seed: int) -> list[Completion]:
        """The batch through `generate_batch` (continuous batching, paged cache, no padding).

        `generate_batch` logs a failed request instead of raising: an out-of-memory failure is
        raised again here so the batch is halved; any other becomes that request's error.
        """
        prompts = [self._encode(item.prompt) for item in batch]
        options = self.generate_kwargs()
        config = transformers.GenerationConfig(eos_token_id=sorted(self.stop_ids), **options)
        results = list(
            self.hf_model.generate_batch(inputs=prompts, generation_config=config).values()
        )
        if len(results) != len(batch):
            raise MminstructError(
                f"generate_batch returned {len(results)} results for {len(batch)} prompts"
            )
        return [
            self._continuous_completion(result, len(prompt), seed, len(batch))
            for result, prompt in zip(results, prompts, strict=True)
        ]

    def _continuous_completion(
        self, result: Any, prompt_tokens: int, seed: int, rows: int
    ) -> Completion:
        details = {"batch_seed": seed, "batch_size": rows}
        if result.error is not None:
            if "out of memory" in str(result.error).lower():
                raise RuntimeError(f"out of memory in generate_batch: {result.error}")
            return Completion("", "error", error=str(result.error), details=details)
        kept, reason = trim_completion(
            result.generated_tokens, self.stop_ids, self.config.max_new_tokens
        )
        text = self.tokenizer.decode(kept, skip_special_tokens=True)
        return Completion(text, reason, prompt_tokens, len(kept), details=details)
