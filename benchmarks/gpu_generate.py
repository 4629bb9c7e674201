"""GPU throughput of the `hf` backend on a Llama-3.1-8B-shaped model (random weights, bf16).

One command, within about 5 minutes on an H100/H200:

    python benchmarks/gpu_generate.py                      # writes results/gpu_generate.json

It builds a random-weight model of Llama-3.1-8B's shape (hidden 4096, 32 layers, 32 heads,
8 KV heads, 14336 MLP, 128,256 vocabulary) in bf16, saves it to local disk and loads it back
through mminstruct's `hf` backend (`from_pretrained`, as for a real model). Prompts are
LLaVA-sized (~1,000 tokens) and every completion is exactly 256 new tokens (EOS ignored).
It prints generated tokens/s for:
- a naive loop: plain `model.generate`, one prompt at a time (the reference);
- the `hf` backend with the dynamic cache at each batch size;
- the `hf` backend with `generator.hf` speed settings, side by side in the same run:
  `cache: static` (eager), `cache: static, compile: true` (compiled decode step) and
  `continuous_batching: true` (`model.generate_batch`). Each is warmed up once (compile,
  CUDA graph capture) and the second call is timed.

`--shape tiny --device cpu` runs the same code on a toy model as a smoke test.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

from common import write_results

SHAPES = {
    "llama-3.1-8b": dict(
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        vocab_size=128256,
    ),
    "tiny": dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=4096,
    ),
}


def make_tokenizer(vocab_size: int, folder: Path):
    """A word-level tokenizer over `w0 ... wN` (one token per word) with a chat template."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, **{f"w{i}": i + 3 for i in range(vocab_size - 3)}}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    tokenizer.chat_template = (
        "{% for m in messages %}{{ m['role'] }} {{ m['content'] }} {% endfor %}"
        "{% if add_generation_prompt %}assistant {% endif %}"
    )
    tokenizer.save_pretrained(folder)
    return tokenizer


def make_model(shape: str, folder: Path, device: str) -> None:
    """Random weights of the given shape, saved as safetensors (bf16 on GPU)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    config = LlamaConfig(
        **SHAPES[shape],
        max_position_embeddings=4096,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    torch.set_default_dtype(dtype)  # no float32 copy of 8B weights on the way
    try:
        with torch.device(device):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(torch.float32)
    model.save_pretrained(folder)
    del model


def prompts(count: int, tokens: int, vocab_size: int) -> list[str]:
    """`count` different prompts of about `tokens` words each."""
    import random

    rng = random.Random(0)
    return [
        " ".join(f"w{rng.randrange(vocab_size - 3)}" for _ in range(tokens)) for _ in range(count)
    ]


# `generator.hf` settings measured beside the plain dynamic cache: (row name, settings).
SPEED_SETTINGS = {
    "static": ("hf backend, static cache", {"cache": "static"}),
    "compiled": ("hf backend, static+compile", {"cache": "static", "compile": True}),
    "continuous": ("hf backend, generate_batch", {"continuous_batching": True}),
}


def backend_for(folder: Path, batch_size: int, new_tokens: int, speed: dict | None = None):
    """mminstruct's hf backend, greedy, completions forced to `new_tokens` (EOS ignored by
    `generate`; `generate_batch` may stop at EOS, so rows count the tokens generated)."""
    from mminstruct.config import GeneratorConfig
    from mminstruct.generate.backends.hf import HFBackend

    config = GeneratorConfig(
        backend="hf",
        model=str(folder),
        batch_size=batch_size,
        max_new_tokens=new_tokens,
        temperature=0,
        dtype="auto",
    )
    config = dataclasses.replace(config, hf=dataclasses.replace(config.hf, **(speed or {})))
    backend = HFBackend(config)
    plain = backend.generate_kwargs
    backend.generate_kwargs = lambda: {**plain(), "min_new_tokens": new_tokens}
    return backend


def run_backend(backend, texts: list[str], seed: int = 0) -> tuple[float, int]:
    """Seconds and generated tokens for one `complete` call over `texts`."""
    import torch

    from mminstruct.generate.backends import Request

    requests = [Request(({"role": "user", "content": t},), seed + i) for i, t in enumerate(texts)]
    _sync(torch)
    started = time.perf_counter()
    completions = backend.complete(requests)
    _sync(torch)
    return time.perf_counter() - started, sum(c.completion_tokens for c in completions)


def naive_loop(backend, texts: list[str], new_tokens: int) -> tuple[float, int]:
    """Plain `model.generate`, one prompt at a time, dynamic cache: the reference."""
    import torch

    model, tokenizer = backend.hf_model, backend.tokenizer
    _sync(torch)
    started = time.perf_counter()
    tokens = 0
    for text in texts:
        inputs = tokenizer(text, return_tensors="pt").to(model.device)
        with torch.inference_mode():
            out = model.generate(
                **inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False
            )
        tokens += out.shape[1] - inputs["input_ids"].shape[1]
    _sync(torch)
    return time.perf_counter() - started, tokens


def measure_setting(
    folder: Path, setting: str, sizes: list[int], texts: list[str], new_tokens: int
):
    """Rows for one `generator.hf` setting at each batch size, warmed up once first."""
    name, speed = SPEED_SETTINGS[setting]
    rows = []
    for size in sizes:
        backend = backend_for(folder, size, new_tokens, speed)
        run_backend(backend, texts[:size], seed=1)  # warm-up: compile, graph capture
        seconds, tokens = run_backend(backend, texts[:size])
        rows.append({"run": name, "batch": size, "seconds": seconds, "tokens": tokens})
        del backend
    return rows


def _sync(torch) -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def main() -> None:
    """Build, load, measure; print tokens/s and write results/gpu_generate.json."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="llama-3.1-8b")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--batch-sizes", default="64,192", help="comma-separated")
    parser.add_argument("--prompt-tokens", type=int, default=1000)
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--naive-prompts", type=int, default=2, help="prompts in the naive loop")
    parser.add_argument(
        "--speed",
        default=",".join(SPEED_SETTINGS),
        help=f"comma-separated generator.hf settings to measure ({', '.join(SPEED_SETTINGS)}); "
        "empty: none",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.batch_sizes.split(",")]
    folder = Path(tempfile.mkdtemp(prefix="mminstruct-gpu-"))
    vocab = SHAPES[args.shape]["vocab_size"]
    make_tokenizer(vocab, folder)
    make_model(args.shape, folder, args.device)
    texts = prompts(max(sizes), args.prompt_tokens, vocab)
    rows = []
    dynamic = backend_for(folder, max(sizes), args.new_tokens, None)
    seconds, tokens = naive_loop(dynamic, texts[: args.naive_prompts], args.new_tokens)
    rows.append({"run": "naive loop, batch 1", "batch": 1, "seconds": seconds, "tokens": tokens})
    for size in sizes:
        dynamic.config = dataclasses.replace(dynamic.config, batch_size=size)
        seconds, tokens = run_backend(dynamic, texts[:size])
        rows.append(
            {
                "run": "hf backend, dynamic cache",
                "batch": size,
                "seconds": seconds,
                "tokens": tokens,
            }
        )
    del dynamic
    for setting in filter(None, args.speed.split(",")):
        rows.extend(measure_setting(folder, setting, sizes, texts, args.new_tokens))
    for row in rows:
        row["tokens_per_s"] = round(row["tokens"] / row["seconds"], 1)
        print(f"{row['run']:<28} batch {row['batch']:>4}: {row['tokens_per_s']:>9.1f} tokens/s")
    name = "gpu_generate" if args.device == "cuda" else "gpu_generate_cpu_smoke"
    print(
        f"wrote {write_results(name, {'benchmark': 'gpu_generate', 'shape': args.shape, 'device': args.device, 'rows': rows})}"
    )


if __name__ == "__main__":
    sys.exit(main())
