"""Checks across a built config's values: ranges, source files, preference pairs, secrets.

Each problem is appended to `errors` as a message naming its full dotted path.
`check_paths` is separate: it looks at the disk, so a build runs it, not every load (the
shipped configs name placeholder folders like /data/coco/val2017).
"""

from __future__ import annotations

import re

from mminstruct.config.schema import Config, GeneratorConfig, ServerConfig, SourceConfig
from mminstruct.errors import ConfigError
from mminstruct.keys import DATASET_NAME
from mminstruct.resources import resolve_path

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")  # an environment variable's name


def check_consistency(config: Config, errors: list[str]) -> None:
    _check_sources(config.sources, errors)
    positive = {
        "output.shard_max_samples": config.output.shard_max_samples,
        "output.shard_max_bytes": config.output.shard_max_bytes,
        "output.max_image_bytes": config.output.max_image_bytes,
        "tasks.conversation.turns": config.tasks.conversation.turns,
        "tasks.reasoning.questions": config.tasks.reasoning.questions,
        "tasks.regions.questions": config.tasks.regions.questions,
        "tasks.short_vqa.questions": config.tasks.short_vqa.questions,
        "tasks.choice.questions": config.tasks.choice.questions,
        "tasks.compositional.questions": config.tasks.compositional.questions,
        "generator.batch_size": config.generator.batch_size,
        "generator.max_new_tokens": config.generator.max_new_tokens,
        "generator.samples_per_task": config.generator.samples_per_task,
        "generator.concurrency": config.generator.concurrency,
    }
    for key, value in positive.items():
        if value < 1:
            errors.append(f"{key}: must be at least 1, got {value}")
    if not 2 <= config.tasks.choice.options <= 6:
        errors.append(f"tasks.choice.options: must be 2 to 6, got {config.tasks.choice.options}")
    for family in ("regions", "short_vqa", "choice", "compositional"):
        if getattr(config.tasks, family).enabled and config.generator.backend != "template":
            errors.append(
                f"tasks.{family}: written from the annotations by the rule-based generator; "
                "needs generator.backend: template"
            )
    if not 0 <= config.context.decimals <= 4:
        errors.append(f"context.decimals: must be between 0 and 4, got {config.context.decimals}")
    if config.context.max_objects is not None and config.context.max_objects < 1:
        errors.append(
            f"context.max_objects: must be at least 1 or null, got {config.context.max_objects}"
        )
    _check_preference(config, errors)
    for key in ("max_relations", "max_attributes", "regions"):
        if getattr(config.context, key) < 0:
            errors.append(f"context.{key}: must be at least 0, got {getattr(config.context, key)}")
    if not 0.0 <= config.context.min_box_fraction < 1.0:
        errors.append("context.min_box_fraction: must be in [0, 1)")
    output = config.output
    if output.license == "other" and not (output.license_name and output.license_link):
        errors.append(
            "output.license: 'other' needs output.license_name and output.license_link "
            "(the Hub shows them on the dataset card)"
        )
    generator = config.generator
    if generator.backend != "template" and not generator.model:
        errors.append(f"generator.model: the '{generator.backend}' backend needs a model")
    if generator.temperature < 0:
        errors.append(f"generator.temperature: must be at least 0, got {generator.temperature}")
    if not 0 < generator.top_p <= 1:
        errors.append(f"generator.top_p: must be in (0, 1], got {generator.top_p}")
    if generator.timeout_s <= 0:
        errors.append(
            f"generator.timeout_s: must be more than 0 seconds, got {generator.timeout_s}"
        )
    if generator.max_retries < 0:
        errors.append(f"generator.max_retries: must be at least 0, got {generator.max_retries}")
    if not 0 <= generator.max_failure_rate <= 1:
        rate = generator.max_failure_rate
        errors.append(f"generator.max_failure_rate: must be between 0 and 1, got {rate}")
    _check_secrets(generator, errors)
    _check_server(generator, errors)
    _check_hf_speed(generator, errors)
    if config.limit is not None and config.limit < 1:
        errors.append(f"limit: must be at least 1 or null, got {config.limit}")


def check_paths(config: Config) -> None:
    """Refuse, before anything is read, a build whose source `images` folders are missing."""
    errors = []
    for i, source in enumerate(config.sources):
        problem = _folder_problem(source.images)
        if problem:
            errors.append(
                f"sources.{i}.images: images folder {problem}; give the folder that holds the "
                f"image files (in the config, or --set sources.{i}.images=PATH)"
            )
    if errors:
        raise ConfigError(errors, "the config")


def _folder_problem(text: str) -> str | None:
    """Why the folder `text` (a config path) cannot hold images, or None."""
    try:
        folder = resolve_path(text)
        if folder.is_dir():
            return None
        return f"{folder} {'is not a folder' if folder.exists() else 'does not exist'}"
    except (FileNotFoundError, IndexError):  # `package:` + a folder the package does not have
        return f"{text} does not exist in the installed package"
    except OSError as exc:
        return f"{text} cannot be checked ({exc.strerror})"


def _check_sources(sources: tuple[SourceConfig, ...], errors: list[str]) -> None:
    if not sources:
        errors.append("sources: at least one source is needed")
    names: dict[str, int] = {}
    for i, source in enumerate(sources):
        if source.kind == "coco" and not source.instances and not source.captions:
            errors.append(f"sources.{i}: give `instances` and/or `captions` files")
        if source.kind == "coco" and source.relations and not source.instances:
            errors.append(f"sources.{i}.relations: relations need the `instances` they refer to")
        vg_files = ("image_data", "objects", "relationships", "attributes", "regions")
        if source.kind == "visual_genome" and not any(getattr(source, name) for name in vg_files):
            errors.append(
                f"sources.{i}: give at least one of `image_data`, `objects`, `relationships`, "
                "`attributes`, `regions`"
            )
        if source.name in names:
            errors.append(
                f"sources.{i}.name: '{source.name}' is already used by sources.{names[source.name]}"
                " (sample keys would collide); give each source its own name"
            )
        names.setdefault(source.name, i)
        if not DATASET_NAME.match(source.name):
            errors.append(
                f"sources.{i}.name: {source.name!r} must be 1-32 letters, digits or underscores"
            )


def _check_preference(config: Config, errors: list[str]) -> None:
    preference = config.tasks.preference
    if preference.pairs < 1:
        errors.append(f"tasks.preference.pairs: must be at least 1, got {preference.pairs}")
    kinds = ("object", "count", "position", "relation")
    for kind in preference.errors:
        if kind not in kinds:
            choices = ", ".join(f"'{k}'" for k in kinds)
            errors.append(
                f"tasks.preference.errors: {kind!r} is not an error kind; choose from {choices}"
            )
    if preference.enabled and not preference.errors:
        errors.append("tasks.preference.errors: give at least one error kind")
    if preference.rewrite and config.generator.backend == "template":
        errors.append(
            "tasks.preference.rewrite: needs a model backend (generator.backend: hf, hf-vlm "
            "or openai); the template backend keeps the substituted answers"
        )
    if preference.enabled and config.generator.grounding == "off":
        errors.append(
            "tasks.preference: pairs are confirmed by the grounding checks; "
            "set generator.grounding to 'annotate' or 'filter'"
        )


def _check_secrets(generator: GeneratorConfig, errors: list[str]) -> None:
    """Keys belong in the environment: a config is saved beside the dataset, and logged.

    The messages never repeat the offending value.
    """
    if not ENV_NAME.match(generator.api_key_env):
        errors.append(
            "generator.api_key_env: must be the name of an environment variable (like "
            "OPENAI_API_KEY) that holds the key, not the key itself; the config is saved "
            "with the dataset"
        )
    if "@" in generator.base_url.partition("://")[2].partition("/")[0]:
        errors.append(
            "generator.base_url: must not hold a user name or password (user:pass@host); "
            "put the key in the variable named by generator.api_key_env"
        )


SERVER_FIELDS = ("host", "port", "model", "tensor_parallel", "dtype", "max_model_len")


def _check_server(generator: GeneratorConfig, errors: list[str]) -> None:
    """`generator.server`: an engine to run, for the openai backend, with sane limits."""
    server = generator.server
    if server is None:
        return
    if generator.backend != "openai":
        errors.append(
            "generator.server: a started server is reached through the openai backend; set "
            "generator.backend: openai (or remove generator.server)"
        )
    if (server.preset is None) == (not server.command):
        errors.append(
            "generator.server: give a preset (vllm, sglang, transformers) or a command, "
            "not both and not neither"
        )
    for i, part in enumerate(server.command):
        try:
            part.format(**dict.fromkeys(SERVER_FIELDS, ""))
        except (KeyError, IndexError, ValueError) as exc:
            choices = ", ".join("{" + name + "}" for name in SERVER_FIELDS)
            errors.append(f"generator.server.command.{i}: bad placeholder {exc}; use {choices}")
    _check_server_numbers(server, errors)


def _check_server_numbers(server: ServerConfig, errors: list[str]) -> None:
    if server.tensor_parallel is not None and server.tensor_parallel < 1:
        errors.append(
            f"generator.server.tensor_parallel: must be at least 1 or null, got "
            f"{server.tensor_parallel}"
        )
    if server.preset == "transformers" and (server.tensor_parallel or 1) > 1:
        errors.append(
            "generator.server.tensor_parallel: transformers serve runs on one device; use "
            "placement: gpu for one server per GPU, or the vllm or sglang preset"
        )
    if server.max_model_len is not None and server.max_model_len < 1:
        errors.append(
            f"generator.server.max_model_len: must be at least 1 or null, got "
            f"{server.max_model_len}"
        )
    if server.ready_timeout_s <= 0:
        errors.append(
            f"generator.server.ready_timeout_s: must be more than 0, got {server.ready_timeout_s}"
        )
    if server.restarts < 0:
        errors.append(f"generator.server.restarts: must be at least 0, got {server.restarts}")


def _check_hf_speed(generator: GeneratorConfig, errors: list[str]) -> None:
    """`generator.hf`: speed settings only where transformers runs in-process, and coherent."""
    speed = generator.hf
    if speed == type(speed)():
        return
    if generator.backend not in ("hf", "hf-vlm"):
        errors.append(
            f"generator.hf: speed settings for the in-process hf and hf-vlm backends; the "
            f"'{generator.backend}' backend does not use them (remove generator.hf)"
        )
    if speed.compile and speed.cache != "static":
        errors.append(
            "generator.hf.compile: a compiled decode step needs generator.hf.cache: static"
        )
    if speed.cache == "static" and generator.cache_implementation not in (None, "static"):
        errors.append(
            f"generator.hf.cache: static conflicts with generator.cache_implementation: "
            f"{generator.cache_implementation}; set only one"
        )
    if speed.continuous_batching:
        _check_continuous_batching(generator, errors)


def _check_continuous_batching(generator: GeneratorConfig, errors: list[str]) -> None:
    if generator.backend != "hf":
        errors.append(
            "generator.hf.continuous_batching: transformers' generate_batch takes text tokens "
            "only; it is for the hf backend, not hf-vlm"
        )
    if generator.hf.cache == "static" or generator.cache_implementation:
        errors.append(
            "generator.hf.continuous_batching: uses its own paged cache; leave generator.hf.cache "
            "dynamic and generator.cache_implementation unset"
        )
