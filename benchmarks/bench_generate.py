"""Model-backed generation on the CPU: pipeline overhead and the gain from batching.

A small random-weight Llama (built here, saved, then loaded by mminstruct's `hf` backend
through `from_pretrained`, like a real model) writes instructions for the bundled demo
images with the shipped templates, greedy, `retry` off so every prompt is generated once:

- "pipeline": `mminstruct.pipeline.run` end to end (sources, images, prompts, generation,
  parsing, shards, finalize), the model already loaded;
- "generate only": the very same prompts, in the same batches, through `model.generate`
  directly (the batches are recorded during the pipeline run, then replayed);
- the pipeline again with batch size 1, for the batching factor.

Two prompt shapes: the shipped few-shot templates (about 2,800 tokens for this small
byte-level tokenizer: prefill-bound) and short templates of one's own (about 100 tokens:
decode-bound, where batching pays off most).

    python benchmarks/bench_generate.py [--images 16] [--batch-size 16] [--new-tokens 48]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from common import DATA_DIR, write_results

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the tiny tokenizer builder shared with the tests


def make_model(folder: Path) -> Path:
    """A random-weight Llama big enough that generation dominates (hidden 256, 4 layers)."""
    import torch
    from tiny_models import make_tiny_tokenizer
    from transformers import LlamaConfig, LlamaForCausalLM

    if (folder / "config.json").is_file():
        return folder
    tokenizer = make_tiny_tokenizer(folder)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=256,
        intermediate_size=688,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=4,
        max_position_embeddings=8192,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        initializer_range=0.5,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


SHORT = {
    "conversation": (
        "Write a short conversation about the image.",
        "Question: What?\nAnswer: A dog.",
    ),
    "detail": ("Describe the image.", "A dog on grass."),
    "reasoning": (
        "Ask and answer one question that needs reasoning.",
        "Question: Why?\nAnswer: Play.",
    ),
}


def short_templates(folder: Path) -> Path:
    """A user's own short templates: one line of system message, one tiny example."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    for task, (system, answer) in SHORT.items():
        text = {
            "system": system,
            "examples": [{"context": "A dog.", "answer": answer}],
            "query": "{context}",
        }
        (folder / f"{task}.yaml").write_text(json.dumps(text))
    return folder


def load_generator(
    model: Path,
    images: int,
    batch_size: int,
    new_tokens: int,
    out: Path,
    templates: Path | None = None,
):
    """The demo config with the hf backend, and a ModelGenerator with the model loaded."""
    from mminstruct.config import load_config
    from mminstruct.generate.model import ModelGenerator

    overrides = [
        "generator.backend=hf",
        f"generator.model={model}",
        f"generator.batch_size={batch_size}",
        f"generator.max_new_tokens={new_tokens}",
        "generator.temperature=0",
        "generator.retry=false",
        f"limit={images}",
        f"output.dir={out}",
    ]
    if templates is not None:
        overrides.append(f"generator.templates={templates}")
    config = load_config("demo", overrides)
    return config, ModelGenerator(config)


def record_batches(generator) -> list[list[str]]:
    """Wrap the backend so every batch of prompts it generates is remembered."""
    backend = generator.backend
    batches: list[list[str]] = []
    original = backend._generate

    def recording(batch, seed):
        batches.append([item.prompt for item in batch])
        return original(batch, seed)

    backend._generate = recording
    return batches


def time_pipeline(config, generator) -> float:
    """Wall time of `pipeline.run`, the generator (and its model) already made."""
    from mminstruct import pipeline

    shutil.rmtree(config.output.dir, ignore_errors=True)
    pipeline.make_generator = lambda _config: generator
    started = time.perf_counter()
    pipeline.run(config)
    return time.perf_counter() - started


def time_generate_only(generator, batches: list[list[str]]) -> float:
    """Time `model.generate` alone on the recorded batches, with the backend's arguments."""
    import torch

    backend = generator.backend
    total = 0.0
    for prompts in batches:
        inputs = backend.tokenizer(
            prompts,
            padding=True,
            add_special_tokens=backend.add_special_tokens,
            return_tensors="pt",
        )
        torch.manual_seed(0)
        started = time.perf_counter()
        with torch.inference_mode():
            backend.hf_model.generate(**inputs, **backend.generate_kwargs())
        total += time.perf_counter() - started
    return total


def scenario(model: Path, args: argparse.Namespace, templates: Path | None) -> dict:
    """Pipeline vs generate only at the batch size, and the pipeline at batch size 1."""
    out = DATA_DIR / "generate-out"
    config, generator = load_generator(
        model, args.images, args.batch_size, args.new_tokens, out, templates
    )
    batches = record_batches(generator)
    pipeline_s = time_pipeline(config, generator)
    generate_s = time_generate_only(generator, batches)
    config1, generator1 = load_generator(model, args.images, 1, args.new_tokens, out, templates)
    single_s = time_pipeline(config1, generator1)
    prompts = sum(map(len, batches))
    encode = generator.backend._encode
    return {
        "prompts": prompts,
        "prompt_tokens_mean": round(sum(len(encode(p)) for b in batches for p in b) / prompts),
        "pipeline_s": round(pipeline_s, 3),
        "generate_only_s": round(generate_s, 3),
        "pipeline_over_generate": round(pipeline_s / generate_s, 3),
        "pipeline_batch1_s": round(single_s, 3),
        "batching_speedup": round(single_s / pipeline_s, 2),
    }


def main() -> None:
    """Measure both prompt shapes and write results/generate.json."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=16, help="demo images (16 at most)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=48)
    args = parser.parse_args()
    model = make_model(DATA_DIR / "generate-model")
    shapes = {
        "shipped templates": scenario(model, args, None),
        "short templates": scenario(model, args, short_templates(DATA_DIR / "generate-templates")),
    }
    results = {
        "benchmark": "generate",
        "images": args.images,
        "batch_size": args.batch_size,
        "new_tokens": args.new_tokens,
        "goal_ratio": 1.10,
        "shapes": shapes,
    }
    path = write_results("generate", results)
    for name, r in shapes.items():
        print(
            f"{name}: {r['prompts']} prompts (mean {r['prompt_tokens_mean']} tokens), batch "
            f"{args.batch_size}: pipeline {r['pipeline_s']:.2f} s, generate only "
            f"{r['generate_only_s']:.2f} s -> {r['pipeline_over_generate']:.3f}x (goal <= 1.10x); "
            f"batch size 1: {r['pipeline_batch1_s']:.2f} s -> batching {r['batching_speedup']:.2f}x"
        )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
