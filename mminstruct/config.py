"""Job configs: frozen dataclasses loaded from YAML, with `--set key=value` overrides.

Every problem is collected and reported at once, each named by its full dotted path
(`generator.backend`, `sources.0.images`) together with the valid choices.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from mminstruct.errors import ConfigError
from mminstruct.keys import DATASET_NAME
from mminstruct.resources import find_config

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")  # an environment variable's name


@dataclass(frozen=True)
class CocoSourceConfig:
    """A COCO-style dataset: an images folder plus instances and/or captions files."""

    images: str  # folder holding the image files (`package:` = inside the installed package)
    instances: tuple[str, ...] = ()  # instances_*.json files (boxes, categories); merged by id
    captions: tuple[str, ...] = ()  # captions_*.json files; merged by image id
    # Files with a top-level `relations` list of {"image_id", "subject_id", "object_id",
    # "predicate"} whose ids are annotation ids of the instances files (may be one of them).
    relations: tuple[str, ...] = ()
    name: str = "coco"  # dataset name: prefix of sample keys and `source.dataset`
    kind: Literal["coco"] = "coco"  # source format

    def __post_init__(self) -> None:
        _one_file_means_a_list(self, ("instances", "captions", "relations"))


@dataclass(frozen=True)
class VisualGenomeSourceConfig:
    """Visual Genome: image_data.json plus any of its annotation files (read as streams)."""

    images: str  # folder holding VG_100K/ and VG_100K_2/ (or the image files themselves)
    image_data: str | None = None  # image_data.json: sizes and `coco_id`; else sizes from files
    objects: str | None = None  # objects.json
    relationships: str | None = None  # relationships.json
    attributes: str | None = None  # attributes.json (objects with their `attributes`)
    regions: str | None = None  # region_descriptions.json or region_graphs.json
    # COCO captions files: a Visual Genome image with a `coco_id` takes its COCO captions.
    coco_captions: tuple[str, ...] = ()
    name: str = "visual_genome"  # dataset name: prefix of sample keys and `source.dataset`
    kind: Literal["visual_genome"] = "visual_genome"  # source format

    def __post_init__(self) -> None:
        _one_file_means_a_list(self, ("coco_captions",))


@dataclass(frozen=True)
class PsgSourceConfig:
    """Panoptic Scene Graph: one psg.json with boxes and relations per image."""

    images: str  # folder the `file_name`s are relative to
    annotations: str  # psg.json
    name: str = "psg"  # dataset name: prefix of sample keys and `source.dataset`
    kind: Literal["psg"] = "psg"  # source format


def _one_file_means_a_list(config: Any, names: tuple[str, ...]) -> None:
    # A single file given as a string (from Python code) means a one-file list.
    for name in names:
        value = getattr(config, name)
        if isinstance(value, str | Path):
            object.__setattr__(config, name, (str(value),))


def annotation_files(source: SourceConfig) -> list[str]:
    """Every annotation file a source reads, in a fixed order."""
    names = ("instances", "captions", "relations", "image_data", "objects", "relationships")
    names += ("attributes", "regions", "coco_captions", "annotations")
    files: list[str] = []
    for name in names:
        value = getattr(source, name, None)
        files += [value] if isinstance(value, str) else list(value or ())
    return files


SOURCE_KINDS: dict[str, type] = {
    "coco": CocoSourceConfig,
    "visual_genome": VisualGenomeSourceConfig,
    "psg": PsgSourceConfig,
}
SourceConfig = CocoSourceConfig | VisualGenomeSourceConfig | PsgSourceConfig


@dataclass(frozen=True)
class ContextConfig:
    """How an image's annotations become LLaVA's symbolic text context."""

    boxes: bool = True  # include the `category: [x1, y1, x2, y2]` lines
    decimals: int = 3  # digits kept in normalized coordinates (trailing zeros dropped)
    crowd: Literal["keep", "drop"] = "keep"  # COCO `iscrowd` boxes (groups of objects)
    min_box_fraction: float = 0.0  # drop boxes smaller than this fraction of the image area
    max_objects: int | None = None  # keep at most this many boxes (largest first); None = all
    relations: bool = True  # add the `subject predicate object` lines after the boxes
    max_relations: int = 20  # at most this many relation lines, between the largest objects
    # Relations computed from boxes (left of, above, inside, next to...): "off"; "missing":
    # for images without annotated relations; "always": added to the annotated ones.
    derive_relations: Literal["off", "missing", "always"] = "off"
    max_attributes: int = 2  # attributes folded into an object's name ("red car")
    # Region descriptions (Visual Genome) used as caption lines when an image has no captions.
    regions: int = 5


@dataclass(frozen=True)
class ConversationTask:
    """Multi-turn conversation about the image."""

    enabled: bool = True  # generate this task
    turns: int = 4  # question/answer pairs per conversation (rule-based: at most this many)
    boxes: bool = False  # model backends: show boxes in the context (LLaVA showed captions only)


@dataclass(frozen=True)
class DetailTask:
    """One request for a detailed description and its answer."""

    enabled: bool = True  # generate this task
    boxes: bool = True  # model backends: show boxes in the context


@dataclass(frozen=True)
class ReasoningTask:
    """Questions that need a step of inference, answered step by step."""

    enabled: bool = True  # generate this task
    questions: int = 1  # reasoning question/answer pairs per image (rule-based: at most)
    boxes: bool = True  # model backends: show boxes in the context


@dataclass(frozen=True)
class PreferenceTask:
    """Preference pairs (chosen, rejected) for DPO-style tuning, from the kept instructions:
    the rejected answer is the chosen one with a planted error the grounding checks confirm."""

    enabled: bool = False  # make pairs (they ride along in each instruction's JSON)
    pairs: int = 1  # at most this many pairs per instruction, each from another answer
    # Which errors to plant, tried in a seeded order: "object" (a category the image
    # lacks), "count", "position" (left/right, top/bottom), "relation" (on/under...).
    errors: tuple[str, ...] = ("object", "count", "position", "relation")
    # Model backends: ask the model to rewrite each rejected answer so that the planted
    # error reads naturally (`templates/preference.yaml`); a rewrite the grounding checks
    # no longer flag is dropped (counted) and the plainly substituted answer is kept.
    rewrite: bool = False


@dataclass(frozen=True)
class TasksConfig:
    """Which instruction types to write, and their settings."""

    conversation: ConversationTask = field(default_factory=ConversationTask)
    detail: DetailTask = field(default_factory=DetailTask)
    reasoning: ReasoningTask = field(default_factory=ReasoningTask)
    preference: PreferenceTask = field(default_factory=PreferenceTask)


@dataclass(frozen=True)
class GeneratorConfig:
    """Who writes the instructions."""

    # "template": rule-based, no model; "hf": a causal LM through transformers, reading the
    # text context; "hf-vlm": an image-text-to-text model that also sees the pixels;
    # "openai": any OpenAI-compatible chat-completions server (vLLM, SGLang, TGI).
    backend: Literal["template", "hf", "hf-vlm", "openai"] = "template"
    model: str | None = None  # local path or hub name (hf, hf-vlm), or the served model (openai)
    seed: int = 0  # base seed; each image derives its own from this and its key
    batch_size: int = 32  # images handed to the generator at once (and prompts per model call)
    templates: str | None = None  # folder of templates to use instead of the shipped ones
    max_new_tokens: int = 512  # completion length limit; a completion cut there is rejected
    temperature: float = 0.7  # sampling temperature; 0 = greedy decoding
    top_p: float = 0.95  # nucleus sampling
    samples_per_task: int = 1  # generations per image and task, each with its own seed
    retry: bool = True  # retry a rejected completion once with a new seed
    dedup_dataset: bool = False  # also drop questions already asked for another image
    # Check answers against the annotations (`mminstruct/grounding.py`): "off"; "annotate":
    # record findings and a score per instruction; "filter": also reject contradicted
    # instructions (reason `ungrounded`).
    grounding: Literal["off", "annotate", "filter"] = "annotate"
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"  # hf, hf-vlm weights
    device_map: str | None = None  # e.g. "auto" or "cuda:0"; None: cuda:<LOCAL_RANK> or cpu
    attn_implementation: str | None = None  # e.g. "sdpa", "flash_attention_2"; None: default
    # hf: transformers' KV cache, e.g. "static" (the decode step is compiled once per shape:
    # faster at large batch on a GPU, after a compile); None: the default dynamic cache.
    cache_implementation: str | None = None
    trust_remote_code: bool = False  # run code shipped with the model: only for models you trust
    allow_pickle: bool = False  # load .bin (pickle) weights; by default only safetensors
    base_url: str = "http://localhost:8000/v1"  # openai: the server
    api_key_env: str = "OPENAI_API_KEY"  # openai: the environment variable holding the key
    concurrency: int = 8  # openai: requests in flight at once
    timeout_s: float = 120.0  # openai: per request
    max_retries: int = 4  # openai: on 429/5xx and dropped connections, with backoff
    # Stop the build when the model fails (backend errors, unusable completions) on more
    # than this share of the latest images: of max(2 x batch_size, 20), checked after each
    # batch. 1 never stops. See mminstruct/failures.py.
    max_failure_rate: float = 0.5


@dataclass(frozen=True)
class OutputConfig:
    """Where and how the dataset is written."""

    dir: str = "out/dataset"  # output folder: shards, stats.json, rejects.jsonl, card
    shard_max_samples: int = 1000  # images per shard (also the unit of resumable work)
    shard_max_bytes: int = 1 << 30  # a shard rolls over to a new part past this many bytes
    # Flush each shard to disk before it is renamed and marked done. Renaming alone already
    # survives a killed process; this also survives a power loss or kernel crash, at the
    # price of waiting for the disk (about half the write throughput on local disks).
    fsync: bool = False
    image_check: Literal["header", "decode"] = "header"  # "decode" fully decodes every image
    license: str = "cc-by-4.0"  # license of the generated annotations, for the dataset card
    pretty_name: str = "mminstruct dataset"  # title of the dataset card
    license_name: str | None = None  # with `license: other`: the license's short name
    license_link: str | None = None  # with `license: other`: URL (or file) of its full text


@dataclass(frozen=True)
class Config:
    """A whole build job."""

    sources: tuple[SourceConfig, ...]  # datasets to read, in order
    context: ContextConfig = field(default_factory=ContextConfig)
    tasks: TasksConfig = field(default_factory=TasksConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    limit: int | None = None  # build from the first N images only (in source order)


# --------------------------------------------------------------------------- loading


def load_config(path_or_name: str | Path, overrides: list[str] = ()) -> Config:
    """Load a YAML config (a path, or the name of a shipped config) and apply overrides."""
    path = find_config(path_or_name)
    origin = str(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError([f"not valid YAML: {exc}"], origin) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError([f"top level must be a mapping, got {type(raw).__name__}"], origin)
    return config_from_dict(raw, overrides, origin)


def config_from_dict(raw: dict, overrides: list[str] = (), origin: str = "config") -> Config:
    """Build a Config from plain data, applying `key=value` overrides first."""
    errors: list[str] = []
    raw = _copy_tree(raw)
    for item in overrides:
        _apply_override(raw, item, errors)
    config = _build(Config, raw, "", errors)
    if config is not None:
        _check_consistency(config, errors)
    if errors:
        raise ConfigError(errors, origin)
    return config


def config_to_dict(config: Any) -> Any:
    """Plain data for a config (tuples become lists), ready for YAML or hashing."""
    if dataclasses.is_dataclass(config):
        return {f.name: config_to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, tuple | list):
        return [config_to_dict(v) for v in config]
    return config


def dump_config(config: Config) -> str:
    """The resolved config as YAML, loadable again by `load_config`."""
    return yaml.safe_dump(config_to_dict(config), sort_keys=False, allow_unicode=True)


def _check_consistency(config: Config, errors: list[str]) -> None:
    _check_sources(config.sources, errors)
    positive = {
        "output.shard_max_samples": config.output.shard_max_samples,
        "output.shard_max_bytes": config.output.shard_max_bytes,
        "tasks.conversation.turns": config.tasks.conversation.turns,
        "tasks.reasoning.questions": config.tasks.reasoning.questions,
        "generator.batch_size": config.generator.batch_size,
        "generator.max_new_tokens": config.generator.max_new_tokens,
        "generator.samples_per_task": config.generator.samples_per_task,
        "generator.concurrency": config.generator.concurrency,
    }
    for key, value in positive.items():
        if value < 1:
            errors.append(f"{key}: must be at least 1, got {value}")
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
    if generator.temperature < 0 or not 0 < generator.top_p <= 1:
        errors.append("generator.temperature must be >= 0 and generator.top_p in (0, 1]")
    if not 0 <= generator.max_failure_rate <= 1:
        rate = generator.max_failure_rate
        errors.append(f"generator.max_failure_rate: must be between 0 and 1, got {rate}")
    _check_secrets(generator, errors)
    if config.limit is not None and config.limit < 1:
        errors.append(f"limit: must be at least 1 or null, got {config.limit}")


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


# --------------------------------------------------------------------------- overrides


@dataclass(frozen=True)
class _Override:
    """A `--set` value: parsed as YAML, but kept as text for string fields."""

    text: str
    value: Any


def _apply_override(raw: dict, item: str, errors: list[str]) -> None:
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        errors.append(f"--set {item!r}: expected KEY=VALUE, e.g. --set output.dir=out/coco")
        return
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text
    parts = key.split(".")
    node: Any = raw
    for depth, part in enumerate(parts[:-1]):
        where = ".".join(parts[: depth + 1])
        node = _step_into(node, part, where, errors)
        if node is None:
            return
    last = parts[-1]
    if isinstance(node, list):
        index = _list_index(node, last, key, errors)
        if index is not None:
            node[index] = _Override(text, value)
    else:
        node[last] = _Override(text, value)


def _step_into(node: Any, part: str, where: str, errors: list[str]) -> Any:
    if isinstance(node, list):
        index = _list_index(node, part, where, errors)
        return None if index is None else node[index]
    child = node.get(part)
    if child is None:
        child = node[part] = {}
    if isinstance(child, _Override):
        child = node[part] = child.value if isinstance(child.value, dict) else {}
    if not isinstance(child, dict | list):
        errors.append(f"--set {where}: is a value, not a section")
        return None
    return child


def _list_index(node: list, part: str, where: str, errors: list[str]) -> int | None:
    if not part.isdigit() or int(part) >= len(node):
        errors.append(f"--set {where}: no such list item (there are {len(node)}, numbered from 0)")
        return None
    return int(part)


def _copy_tree(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_tree(v) for v in value]
    return value


# --------------------------------------------------------------------------- typed building


def _build(cls: type, raw: Any, path: str, errors: list[str]) -> Any:
    """Build dataclass `cls` from `raw`, appending every problem to `errors`."""
    raw = raw.value if isinstance(raw, _Override) else raw
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        errors.append(f"{path or 'config'}: expected a mapping of keys, got {_describe(raw)}")
        return None
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in fields:
            errors.append(_unknown_key(str(key), _join(path, str(key)), list(fields)))
    values: dict[str, Any] = {}
    ok = True
    for name, f in fields.items():
        where = _join(path, name)
        if name in raw:
            good, value = _convert(hints[name], raw[name], where, errors)
            ok &= good
            values[name] = value
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            errors.append(f"{where}: required key is missing")
            ok = False
    return cls(**values) if ok else None


def _convert(tp: Any, raw: Any, where: str, errors: list[str]) -> tuple[bool, Any]:
    if isinstance(raw, _Override):
        wants_text = tp is str or (_is_optional(tp) and _strip_none(tp) is str)
        raw = raw.text if wants_text and raw.value is not None else raw.value
    if where == "sources":
        return _convert_sources(raw, errors)
    origin = typing.get_origin(tp)
    if _is_optional(tp):
        return (True, None) if raw is None else _convert(_strip_none(tp), raw, where, errors)
    if dataclasses.is_dataclass(tp):
        value = _build(tp, raw, where, errors)
        return value is not None, value
    if origin is Literal:
        choices = typing.get_args(tp)
        if isinstance(raw, bool) and _YAML_SWITCHES[raw] in choices:
            raw = _YAML_SWITCHES[raw]  # YAML reads a bare `off` as false
        if raw in choices:
            return True, raw
        errors.append(f"{where}: {raw!r} is not a valid choice; choose one of {_names(choices)}")
        return False, None
    if origin is tuple:
        items = [raw] if isinstance(raw, str) else raw
        if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
            errors.append(f"{where}: expected a string or a list of strings, got {_describe(raw)}")
            return False, None
        return True, tuple(items)
    return _convert_scalar(tp, raw, where, errors)


_YAML_SWITCHES = {False: "off", True: "on"}


def _convert_scalar(tp: Any, raw: Any, where: str, errors: list[str]) -> tuple[bool, Any]:
    if tp is bool and isinstance(raw, bool):
        return True, raw
    if tp is int and isinstance(raw, int) and not isinstance(raw, bool):
        return True, raw
    if tp is float and isinstance(raw, int | float) and not isinstance(raw, bool):
        return True, float(raw)
    if tp is str and isinstance(raw, str):
        return True, raw
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    errors.append(f"{where}: expected {names.get(tp, tp)}, got {_describe(raw)}")
    return False, None


def _convert_sources(raw: Any, errors: list[str]) -> tuple[bool, Any]:
    if not isinstance(raw, list):
        errors.append(f"sources: expected a list of sources, got {_describe(raw)}")
        return False, None
    sources = []
    for i, item in enumerate(raw):
        item = item.value if isinstance(item, _Override) else item
        kind = item.get("kind") if isinstance(item, dict) else None
        kind = kind.value if isinstance(kind, _Override) else kind
        if kind not in SOURCE_KINDS:
            errors.append(
                f"sources.{i}.kind: {kind!r} is not a known source kind; "
                f"choose one of {_names(SOURCE_KINDS)}"
            )
            continue
        sources.append(_build(SOURCE_KINDS[kind], item, f"sources.{i}", errors))
    ok = len(sources) == len(raw) and all(s is not None for s in sources)
    return ok, tuple(sources)


def _unknown_key(key: str, where: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown key '{where}'{hint}; valid keys here: {_names(valid)}"


def _is_optional(tp: Any) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType) and type(None) in typing.get_args(tp)


def _strip_none(tp: Any) -> Any:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return args[0] if len(args) == 1 else Union[tuple(args)]  # noqa: UP007


def _describe(value: Any) -> str:
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def _names(items: Any) -> str:
    return ", ".join(f"'{i}'" for i in items)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
