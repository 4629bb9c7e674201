"""The job config's schema: frozen dataclasses, one per section, each field with its meaning.

`mminstruct.config.load` builds them from YAML and `--set` overrides; `validate` checks the
values that a type alone does not constrain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mminstruct.images import MAX_IMAGE_BYTES


@dataclass(frozen=True)
class CocoSourceConfig:
    """A COCO-style dataset: an images folder plus instances and/or captions files."""

    images: str  # folder holding the image files (`package:` = inside the installed package)
    instances: tuple[str, ...] = ()  # instances_*.json files (boxes, categories); merged by id
    captions: tuple[str, ...] = ()  # captions_*.json files; merged by image id
    # Files with a top-level `relations` list of {"image_id", "subject_id", "object_id",
    # "predicate"} whose ids are annotation ids of the instances files (may be one of them).
    relations: tuple[str, ...] = ()
    # RefCOCO-style referring expressions (JSON only, never pickles): a list of
    # {"image_id", "ann_id" or "bbox", "sentences"}; `tasks.regions` asks for their boxes.
    refexps: tuple[str, ...] = ()
    name: str = "coco"  # dataset name: prefix of sample keys and `source.dataset`
    kind: Literal["coco"] = "coco"  # source format

    def __post_init__(self) -> None:
        _one_file_means_a_list(self, ("instances", "captions", "relations", "refexps"))


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
    names += ("attributes", "regions", "coco_captions", "annotations", "refexps")
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
class RegionsTask:
    """LLaVA-1.5's region grounding (RefCOCO/VG formats), rule-based only: a phrase that
    picks out one object -> its box, and a box -> a short description of it."""

    enabled: bool = False  # generate this task
    questions: int = 4  # phrase/box turns per image (at most this many)
    # What box coordinates (0-1, two decimals) are fractions of, here and in multiple-choice
    # region questions: "square": the image padded to a centered square, as LLaVA-1.5 trains
    # (`image_aspect_ratio: pad`) and writes its VG boxes; "image": width and height.
    box_frame: Literal["square", "image"] = "square"


@dataclass(frozen=True)
class ShortVqaTask:
    """Short-answer VQA with LLaVA-1.5's "single word or phrase" suffix, rule-based only:
    counts, colours and attributes, what/which/where, relations."""

    enabled: bool = False  # generate this task
    questions: int = 4  # question/answer turns per image (at most this many)


@dataclass(frozen=True)
class ChoiceTask:
    """Multiple choice with LLaVA-1.5's "option's letter" suffix, rule-based only;
    distractors from the answer's COCO supercategory."""

    enabled: bool = False  # generate this task
    questions: int = 2  # question/answer turns per image (at most this many)
    options: int = 4  # choices per question (2-6), lettered A, B, C...


@dataclass(frozen=True)
class CompositionalTask:
    """GQA-style compositional questions from the scene graph (verify, choose, relate,
    logical and/or, compare), answers balanced per question type; rule-based only."""

    enabled: bool = False  # generate this task
    questions: int = 4  # question/answer turns per image (at most this many)


@dataclass(frozen=True)
class TasksConfig:
    """Which instruction types to write, and their settings."""

    conversation: ConversationTask = field(default_factory=ConversationTask)
    detail: DetailTask = field(default_factory=DetailTask)
    reasoning: ReasoningTask = field(default_factory=ReasoningTask)
    preference: PreferenceTask = field(default_factory=PreferenceTask)
    regions: RegionsTask = field(default_factory=RegionsTask)  # region grounding
    short_vqa: ShortVqaTask = field(default_factory=ShortVqaTask)  # short-answer VQA
    choice: ChoiceTask = field(default_factory=ChoiceTask)  # multiple choice
    compositional: CompositionalTask = field(default_factory=CompositionalTask)  # GQA-style


@dataclass(frozen=True)
class ServerConfig:
    """An inference server the build starts, watches and stops itself (`generator.backend:
    openai`); `generator.base_url` is then the started server's. See mminstruct/generate/servers/."""

    # The engine: "vllm" (`vllm serve`), "sglang" (`python -m sglang.launch_server`),
    # "transformers" (`transformers serve`); None: run `command` instead.
    preset: Literal["vllm", "sglang", "transformers"] | None = None
    # Any other server's command line (llama.cpp's llama-server, TGI), without a preset;
    # {host}, {port}, {model}, {tensor_parallel}, {dtype}, {max_model_len} are filled in.
    command: tuple[str, ...] = ()
    # GPUs per server (vllm, sglang); None: all the node's GPUs (placement node), else 1.
    tensor_parallel: int | None = None
    dtype: str = "auto"  # weights' dtype, passed to the engine ("auto", "bfloat16", ...)
    max_model_len: int | None = None  # longest prompt + answer in tokens; None: the model's
    args: tuple[str, ...] = ()  # extra arguments appended to the command line, as given
    ready_timeout_s: float = 900.0  # the model must answer within this long of each start
    restarts: int = 2  # a server that dies mid-build is restarted at most this many times
    # "node": one server per node on all its GPUs (launch one task per node); "gpu": one per
    # process, on GPU(s) LOCAL_RANK x tensor_parallel onward (CUDA_VISIBLE_DEVICES).
    placement: Literal["node", "gpu"] = "node"


@dataclass(frozen=True)
class HFSpeedConfig:
    """`generator.hf`: transformers' speed settings for the in-process hf and hf-vlm backends."""

    # KV cache: "dynamic" (grows per step, the default) or "static" (preallocated to the
    # longest prompt + max_new_tokens; what a compiled decode step needs).
    cache: Literal["dynamic", "static"] = "dynamic"
    # Compile the decode step with torch.compile (needs cache: static; the first batch of each
    # shape pays the compile). false: eager decoding, also on a GPU.
    compile: bool = False
    # hf only: generate through `model.generate_batch` (transformers' continuous batching with
    # a paged cache) instead of padded `generate`; text-only, so not for hf-vlm.
    continuous_batching: bool = False


@dataclass(frozen=True)
class GeneratorConfig:
    """Who writes the instructions."""

    # "template": rule-based, no model; "hf": a causal LM through transformers, reading the
    # text context; "hf-vlm": an image-text-to-text model that also sees the pixels;
    # "openai": any OpenAI-compatible chat-completions server (vLLM, SGLang, TGI).
    backend: Literal["template", "hf", "hf-vlm", "openai"] = "template"
    model: str | None = None  # local path or hub name (hf, hf-vlm), or the served model (openai)
    seed: int = 0  # base seed; each image derives its own from this and its key
    # Images handed to the generator at once: hf, hf-vlm generate their prompts in one model
    # call; openai streams requests across batches, and a batch is the unit of the
    # failure-rate and SIGTERM checks.
    batch_size: int = 32
    templates: str | None = None  # folder of templates to use instead of the shipped ones
    max_new_tokens: int = 512  # completion length limit; a completion cut there is rejected
    temperature: float = 0.7  # sampling temperature; 0 = greedy decoding
    top_p: float = 0.95  # nucleus sampling
    samples_per_task: int = 1  # generations per image and task, each with its own seed
    retry: bool = True  # retry a rejected completion once with a new seed
    dedup_dataset: bool = False  # also drop questions already asked for another image
    # Check answers against the annotations (`mminstruct/checks/grounding/`): "off"; "annotate":
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
    concurrency: int = 8  # openai: requests in flight at once (about the server's slots)
    timeout_s: float = 120.0  # openai: bounds each attempt of a request as a whole
    max_retries: int = 4  # openai: on 429/5xx and dropped connections, with backoff
    # Stop the build when the model fails (backend errors, unusable completions) on more
    # than this share of the latest images: of max(2 x batch_size, 20), checked after each
    # batch. 1 never stops. See mminstruct/checks/failures.py.
    max_failure_rate: float = 0.5
    # openai: start the server too (vllm, sglang, transformers, or any command); None: use
    # the one already running at `base_url`.
    server: ServerConfig | None = None
    # hf, hf-vlm: static cache, compiled decoding, continuous batching (all off by default).
    hf: HFSpeedConfig = field(default_factory=HFSpeedConfig)


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
    # An image file larger than this many bytes is rejected (`image_too_large`) before a byte
    # of it is read: one huge or sparse file never fills the memory. Default 64 MiB.
    max_image_bytes: int = MAX_IMAGE_BYTES
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
