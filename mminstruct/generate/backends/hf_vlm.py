"""Image-text-to-text models through transformers: the model sees the pixels too.

`HFVisionBackend` loads `AutoProcessor` and `AutoModelForImageTextToText` with the same options
as the `hf` backend, puts the request's image at the start of the last user message (an image
content part), renders the conversation with the processor's chat template and runs the
processor on text and images with left padding. Sorting, batching, seeding, halving on out of
memory, token counts and finish reasons are the `hf` backend's (imported from `hf.py`).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from PIL import Image

from mminstruct.config import GeneratorConfig
from mminstruct.generate.backends.base import Completion, Message, Request, model_location
from mminstruct.generate.backends.hf import (
    BatchedBackend,
    Prepared,
    decode_batch,
    load_model,
    prepare_tokenizer,
    stop_token_ids,
    transformers,
)


def vision_messages(messages: Sequence[Message], with_image: bool) -> list[dict[str, Any]]:
    """Chat messages as content parts, the image first in the last user message.

    The parts carry no pixels: the processor gets the images separately, in the same order.
    """
    parts = [
        {"role": m["role"], "content": [{"type": "text", "text": m["content"]}]} for m in messages
    ]
    if with_image:
        users = [i for i, m in enumerate(parts) if m["role"] == "user"]
        if not users:
            raise ValueError("a request with an image needs a user message to put it in")
        parts[users[-1]]["content"].insert(0, {"type": "image"})
    return parts


def decode_image(data: bytes) -> Image.Image:
    """RGB pixels from encoded image bytes (JPEG, PNG, ...); OSError when unreadable."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.mode.startswith("I;16"):  # 16-bit grey: `convert` would clip it to white
                image = image.point(lambda value: value / 256).convert("L")
            return image.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise OSError(f"image not readable ({len(data)} bytes): {type(exc).__name__}") from exc


class HFVisionBackend(BatchedBackend):
    """A vision-language model from a local folder or the hub (`generator.model`)."""

    name = "hf-vlm"

    def __init__(self, config: GeneratorConfig) -> None:
        self.config = config
        self.model = str(config.model)
        self.hf_model = load_model(transformers.AutoModelForImageTextToText, config)
        self.processor = transformers.AutoProcessor.from_pretrained(
            model_location(config.model), trust_remote_code=config.trust_remote_code
        )
        self.tokenizer = prepare_tokenizer(self.processor.tokenizer)
        self.stop_ids = stop_token_ids(self.hf_model, self.tokenizer)

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """Prompt tokens for these messages, without an image (image tokens are not counted)."""
        return len(self._encode(self.render(messages, with_image=False)))

    def render(self, messages: Sequence[Message], with_image: bool) -> str:
        """The prompt text, with the template's image placeholder where the image goes."""
        return self.processor.apply_chat_template(
            vision_messages(messages, with_image), tokenize=False, add_generation_prompt=True
        )

    def _adds_special_tokens(self, prompt: str) -> bool:
        # As the processor's own `apply_chat_template(tokenize=True)`: add the tokenizer's
        # special tokens unless the template already starts with BOS.
        bos = self.tokenizer.bos_token
        return not (bos is not None and prompt.startswith(bos))

    def _encode(self, prompt: str) -> list[int]:
        add = self._adds_special_tokens(prompt)
        return self.tokenizer(prompt, add_special_tokens=add)["input_ids"]

    def _prepare(self, index: int, request: Request) -> Prepared:
        image = decode_image(request.image) if request.image is not None else None
        prompt = self.render(request.messages, with_image=image is not None)
        return Prepared(index, request, prompt, len(self._encode(prompt)), image)

    def _generate(self, batch: list[Prepared], seed: int) -> list[Completion]:
        images = [item.image for item in batch if item.image is not None]
        inputs = self.processor(
            text=[item.prompt for item in batch],
            images=images or None,
            padding=True,
            add_special_tokens=self._adds_special_tokens(batch[0].prompt),
            return_tensors="pt",
        ).to(self.hf_model.device, dtype=self.hf_model.dtype)  # casts only pixel values
        sequences = self.hf_model.generate(**inputs, **self.generate_kwargs())
        return decode_batch(
            self.tokenizer, sequences, inputs, self.stop_ids, self.config.max_new_tokens, seed
        )
