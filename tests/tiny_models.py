"""Tiny random-weight models for the model-backend tests, built offline in a few seconds.

Everything is made from config classes and the `tokenizers` library, then saved with
`save_pretrained`, so the tests load it back through the same `from_pretrained` code a real
model goes through. Nothing here touches the network.

- `make_tiny_tokenizer`: a byte-level BPE tokenizer trained on `CORPUS` (a few hundred words),
  with `<s>`, `</s>` and `<pad>` and a small Jinja chat template.
- `make_tiny_causal_lm`: a 2-layer Llama (hidden size 32) over that vocabulary, safetensors.
- `make_tiny_vlm`: a tiny LLaVA (CLIP vision tower on 32x32 images, 8x8 patches, so 16 image
  tokens per image) with a `LlavaProcessor`, loadable by `AutoProcessor` and
  `AutoModelForImageTextToText`.

Weights are seeded, so the same call gives the same model.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    CLIPImageProcessorPil,
    CLIPVisionConfig,
    LlamaConfig,
    LlamaForCausalLM,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    PreTrainedTokenizerFast,
)

BOS, EOS, PAD, IMAGE = "<s>", "</s>", "<pad>", "<image>"

# Renders string contents and, for vision models, lists of {"type": "image" | "text"} parts.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image>\n"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ eos_token }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

CORPUS = """
A man is riding a bicycle down a busy city street next to a red bus. Two dogs are playing
with a frisbee in the green grass of a park while children watch from a wooden bench.
A plate of food with broccoli, rice and chicken sits on a white table beside a glass of water.
The kitchen has a stainless steel refrigerator, a stove, an oven and a sink under the window.
A group of people stand on the beach holding surfboards as large waves roll toward the shore.
A cat is sleeping on top of a laptop keyboard on a desk covered with papers and books.
An airplane flies over the airport runway at sunset while a truck drives past the fence.
A young girl in a yellow raincoat holds an umbrella and walks across the wet sidewalk.
Several horses graze in a field near a barn, and a fence runs along the dirt road.
A pizza with cheese, tomatoes and olives is cut into slices on a cutting board.
The living room contains a brown couch, a television, a lamp and a small coffee table.
A train is stopped at the station platform where passengers wait with their luggage.
Skiers move down the snowy mountain slope under a clear blue sky on a cold morning.
A baseball player swings the bat as the catcher and the umpire crouch behind home plate.
A giraffe stretches its long neck to eat leaves from the top of a tall tree at the zoo.
What is the man doing? He is riding a bicycle. How many dogs are there? There are two dogs.
Where is the cat sleeping? The cat is sleeping on a laptop. What color is the bus? It is red.
Why might the people be on the beach? They are probably going surfing because they hold boards.
Describe the image in detail. The image shows a street scene with cars, people and buildings.
What objects are on the table? There is a plate, a fork, a knife, a cup and a bowl of fruit.
Is it safe to cross the street now? The traffic light is red, so the cars have stopped.
Question: what time of day is it? Answer: it looks like the evening because the sky is orange.
User: describe the scene. Assistant: a small boat floats on a calm lake surrounded by hills.
System: you are a helpful assistant that describes images and answers questions about them.
"""


def make_tiny_tokenizer(folder: Path) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on `CORPUS`, with a chat template, saved in `folder`."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=[PAD, BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS.split("\n"), trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=BOS, eos_token=EOS, pad_token=PAD
    )
    wrapped.chat_template = CHAT_TEMPLATE
    folder.mkdir(parents=True, exist_ok=True)
    wrapped.save_pretrained(folder)
    return wrapped


def _tiny_llama_config(tokenizer: PreTrainedTokenizerFast) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        # Large random weights make the output depend on the whole prompt (with the usual
        # 0.02 most prompts give the same text) and let some completions reach EOS.
        initializer_range=0.5,
    )


def make_tiny_causal_lm(folder: Path, seed: int = 0) -> Path:
    """A random 2-layer Llama and its tokenizer, saved (safetensors) in `folder`."""
    tokenizer = make_tiny_tokenizer(folder)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(_tiny_llama_config(tokenizer))
    model.save_pretrained(folder)
    return folder


def _tiny_clip_config() -> CLIPVisionConfig:
    return CLIPVisionConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        projection_dim=32,
    )


def make_tiny_vlm(folder: Path, seed: int = 0) -> Path:
    """A random tiny LLaVA (CLIP tower on 32x32 images + 2-layer Llama) with its processor."""
    tokenizer = make_tiny_tokenizer(folder)
    tokenizer.add_special_tokens({"additional_special_tokens": [IMAGE]})
    config = LlavaConfig(
        vision_config=_tiny_clip_config(),
        text_config=_tiny_llama_config(tokenizer),
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE),
        vision_feature_select_strategy="default",  # drop CLS: 16 image tokens per image
        vision_feature_layer=-1,
    )
    torch.manual_seed(seed)
    LlavaForConditionalGeneration(config).save_pretrained(folder)
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's CLS token
        chat_template=CHAT_TEMPLATE,
    )
    processor.save_pretrained(folder)
    return folder
