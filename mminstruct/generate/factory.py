"""The generator interface: a batch of image records in, instructions (or rejections) out.

Backends are registered in `BACKENDS` by the name used in `generator.backend`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from mminstruct.config import Config
from mminstruct.errors import ConfigError
from mminstruct.records import Generated, ImageRecord


class Generator(Protocol):
    """Anything that turns image records into instructions."""

    def generate(
        self, batch: Sequence[ImageRecord], images: Sequence[bytes] | None = None
    ) -> list[Generated]:
        """One `Generated` per record, in the same order; `images` are the original image
        bytes of the records, for generators that look at pixels."""
        ...

    def start_unit(self) -> None:
        """Called before each unit (shard) of work: drop state that must not cross units."""
        ...


def _rule_based(config: Config) -> Generator:
    from mminstruct.generate.rule_based import RuleBasedGenerator

    return RuleBasedGenerator(config)


def _model(config: Config) -> Generator:
    from mminstruct.generate.model import ModelGenerator

    return ModelGenerator(config)


BACKENDS: dict[str, Callable[[Config], Generator]] = {
    "template": _rule_based,
    "hf": _model,
    "hf-vlm": _model,
    "openai": _model,
}


def make_generator(config: Config) -> Generator:
    """The backend named by `generator.backend`."""
    try:
        factory = BACKENDS[config.generator.backend]
    except KeyError:
        choices = ", ".join(BACKENDS)
        raise ConfigError(
            [f"generator.backend: unknown backend; choose one of {choices}"]
        ) from None
    return factory(config)
