"""What every model backend shares: requests, completions, the `Backend` protocol, and a
clear error when a backend's packages are missing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from mminstruct.errors import MminstructError

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": str}


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
