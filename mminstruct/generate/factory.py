"""The generator interface: a batch of image records in, instructions (or rejections) out.

Backends are registered in `BACKENDS` by the name used in `generator.backend`. With
`generator.server`, the openai backend starts its server here, its log in the output folder
(`_logs/server-<rank>.log`), on the GPUs of this process's local rank.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from mminstruct.config import Config
from mminstruct.errors import ConfigError
from mminstruct.generate.backends import Backend
from mminstruct.launch import Launch, detect_launch
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


def _rule_based(config: Config, launch: Launch) -> Generator:
    from mminstruct.generate.rule_based import RuleBasedGenerator

    return RuleBasedGenerator(config)


def _model(config: Config, launch: Launch) -> Generator:
    from mminstruct.generate.model import ModelGenerator

    if config.generator.backend == "openai" and config.generator.server is not None:
        return ModelGenerator(config, _served_backend(config, launch))
    return ModelGenerator(config)


def _served_backend(config: Config, launch: Launch) -> Backend:
    """The openai backend with its own server, logging to `<output.dir>/_logs/`."""
    from mminstruct.generate.backends.openai import OpenAIBackend
    from mminstruct.generate.servers import ManagedServer

    log_path = _log_folder(config) / f"server-{launch.rank}.log"
    server = ManagedServer(config.generator, log_path.resolve(), launch.local_rank)
    return OpenAIBackend(config.generator, server)


def _log_folder(config: Config) -> Path:
    """`<output.dir>/_logs` in a build's output folder; elsewhere (`preview`, before any
    build) a temporary folder, so that the output folder is not made before a build claims it."""
    from mminstruct.output import PARTS

    out = Path(config.output.dir).expanduser()
    if (out / PARTS).is_dir():
        return out / "_logs"
    return Path(tempfile.mkdtemp(prefix="mminstruct-server-"))  # private (0700), never shared


BACKENDS: dict[str, Callable[[Config, Launch], Generator]] = {
    "template": _rule_based,
    "hf": _model,
    "hf-vlm": _model,
    "openai": _model,
}


def make_generator(config: Config, launch: Launch | None = None) -> Generator:
    """The backend named by `generator.backend`; `launch` (else the launcher's environment)
    places a managed server's GPUs and names its log."""
    try:
        factory = BACKENDS[config.generator.backend]
    except KeyError:
        choices = ", ".join(BACKENDS)
        raise ConfigError(
            [f"generator.backend: unknown backend; choose one of {choices}"]
        ) from None
    return factory(config, launch or detect_launch())
