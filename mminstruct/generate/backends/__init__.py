"""Model backends: a list of chat requests in, one completion per request out.

Every backend implements `Backend.complete`; `make_backend` picks one by the name used in
`generator.backend`. Heavy libraries (torch, transformers) are imported only inside the
backend modules, when a backend is made.
"""

from __future__ import annotations

from collections.abc import Callable

from mminstruct.config import GeneratorConfig
from mminstruct.errors import MminstructError
from mminstruct.generate.backends.base import (
    Backend,
    Completion,
    Message,
    MissingExtra,
    Request,
    model_location,
    require,
)

__all__ = [
    "BACKENDS",
    "Backend",
    "Completion",
    "Message",
    "MissingExtra",
    "Request",
    "make_backend",
    "require",
]


def _hf(config: GeneratorConfig) -> Backend:
    model_location(config.model or "")  # a missing model folder is named before torch is imported
    from mminstruct.generate.backends.hf import HFBackend

    return HFBackend(config)


def _hf_vlm(config: GeneratorConfig) -> Backend:
    model_location(config.model or "")  # a missing model folder is named before torch is imported
    from mminstruct.generate.backends.hf_vlm import HFVisionBackend

    return HFVisionBackend(config)


def _openai(config: GeneratorConfig) -> Backend:
    from mminstruct.generate.backends.openai import OpenAIBackend

    return OpenAIBackend(config)


BACKENDS: dict[str, Callable[[GeneratorConfig], Backend]] = {
    "hf": _hf,
    "hf-vlm": _hf_vlm,
    "openai": _openai,
}


def make_backend(config: GeneratorConfig) -> Backend:
    """The model backend named by `generator.backend`."""
    try:
        factory = BACKENDS[config.backend]
    except KeyError:
        raise MminstructError(
            f"generator.backend: '{config.backend}' is not a model backend; "
            f"choose one of {', '.join(BACKENDS)}"
        ) from None
    return factory(config)
