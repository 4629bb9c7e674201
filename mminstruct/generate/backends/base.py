"""What every model backend shares: requests, completions, the `Backend` protocol, and a
clear error when a backend's packages are missing."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mminstruct.errors import MminstructError

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": str}
_HUB_NAME = re.compile(r"[\w.-]+(/[\w.-]+)?")  # `gpt2`, `Qwen/Qwen2.5-7B-Instruct`


@dataclass(frozen=True)
class Request:
    """One prompt: chat messages (system, few-shot pairs, query), its seed, maybe an image."""

    messages: tuple[Message, ...]
    seed: int  # sampling seed for this prompt (recorded with the result)
    image: bytes | None = None  # original image bytes, for backends that see pixels


@dataclass(frozen=True)
class Completion:
    """What came back for one request."""

    text: str  # the raw completion ("" when the request failed)
    finish_reason: str  # "stop", "length" (cut at max_new_tokens) or "error"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None  # why the request failed, when finish_reason == "error"
    details: dict[str, Any] = field(default_factory=dict)  # e.g. {"batch_seed": 123}


class Backend(Protocol):
    """Anything that completes chat requests."""

    name: str  # "hf", "hf-vlm", "openai"
    model: str  # what produced the text (path, hub name or served model name)

    def complete(self, requests: Sequence[Request]) -> list[Completion]:
        """One Completion per request, in the same order; failures are Completions too."""
        ...

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """Prompt tokens for these messages (an estimate where the backend cannot know)."""
        ...


class MissingExtra(MminstructError):
    """A backend needs packages that are not installed."""


def require(module: str, extra: str = "hf") -> Any:
    """Import `module`, or say exactly what to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtra(
            f"the '{extra}' backends need {module}: pip install 'mminstruct[{extra}]' "
            "(on a CPU-only machine: pip install torch==2.13.0 first)"
        ) from None


def model_location(model: str) -> str:
    """Where to load `generator.model` from: a hub name as it is, a path with `~` expanded.

    A name that looks like a path (it starts with `/`, `.` or `~`, or is not of the hub's
    `name` / `namespace/name` form) must be an existing folder: transformers would otherwise
    take it for a hub name and fail with a message about repository ids.
    """
    if not model or (_HUB_NAME.fullmatch(model) and not model.startswith((".", "~"))):
        return model
    folder = Path(model).expanduser()
    if folder.is_dir():
        return str(folder)
    if folder.exists():
        raise MminstructError(
            f"generator.model: {model} is a file, not a model folder; give the folder that "
            "holds config.json and the weights"
        )
    raise MminstructError(
        f"generator.model: the model folder {model} does not exist. Download a model into it "
        f"on a machine with network access (`huggingface-cli download NAME --local-dir {model}`, "
        "e.g. NAME = Qwen/Qwen2.5-7B-Instruct) and copy it here, or set generator.model to a "
        "model folder you have (--set generator.model=PATH)"
    )
