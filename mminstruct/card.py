"""The dataset card (`README.md` in the output folder), from the resolved config and stats.

Small pure functions: the YAML header the Hugging Face Hub reads, then a readable body.
"""

from __future__ import annotations

from typing import Any

import yaml

import mminstruct

TASK_NAMES = {
    "conversation": "multi-turn conversations",
    "detail": "detailed descriptions",
    "reasoning": "complex reasoning",
}
_SIZES = [
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
]


def size_category(count: int) -> str:
    """The Hub's `size_categories` bucket for `count` samples."""
    for limit, name in _SIZES:
        if count < limit:
            return name
    return "n>100M"


def card_header(config: dict[str, Any], stats: dict[str, Any]) -> dict[str, Any]:
    """The YAML front matter: license, tasks, size, counts, and where the data files are."""
    return {
        "license": config["output"]["license"],
        "language": ["en"],
        "pretty_name": config["output"]["pretty_name"],
        "task_categories": ["visual-question-answering", "image-to-text"],
        "size_categories": [size_category(stats["images_written"])],
        "annotations_creators": ["machine-generated"],
        "language_creators": ["machine-generated"],
        "source_datasets": sorted({s["name"] for s in config["sources"]}),
        "tags": ["multimodal", "instruction-tuning", "llava", "webdataset", "mminstruct"],
        "configs": [
            {"config_name": "default", "data_files": [{"split": "train", "path": "shard-*.tar"}]}
        ],
        "dataset_info": {
            "features": dataset_features(stats),
            "splits": [
                {
                    "name": "train",
                    "num_bytes": stats["bytes"],
                    "num_examples": stats["images_written"],
                }
            ],
        },
    }


# Every field any backend records about how an instruction was made (absent ones load as null).
GENERATOR_FIELDS = {
    "backend": "string",
    "model": "string",
    "template": "string",
    "template_sha256": "string",
    "seed": "int64",
    "attempt": "int64",
    "temperature": "float64",
    "top_p": "float64",
    "max_new_tokens": "int64",
    "prompt_tokens": "int64",
    "completion_tokens": "int64",
    "batch_seed": "int64",
}


def _struct(**fields: Any) -> list[dict[str, Any]]:
    """A `datasets` YAML struct: a string value is a dtype, anything else is nested as is."""
    return [
        {"name": name, "dtype": spec} if isinstance(spec, str) else {"name": name, **spec}
        for name, spec in fields.items()
    ]


def dataset_features(stats: dict[str, Any]) -> list[dict[str, Any]]:
    """The columns `datasets` reads from the shards, declared so nothing is guessed.

    Without this, the webdataset loader infers the columns from the first 5 samples: a png
    among jpgs fails to load, and fields missing there are dropped.
    """
    id_types = stats.get("image_id_types", [])
    image_id = "int64" if id_types == ["int"] else "string"
    turn = _struct(**{"from": "string", "value": "string"})
    generator = _struct(**GENERATOR_FIELDS)
    instruction = _struct(
        task="string", conversations={"list": turn}, generator={"struct": generator}
    )
    license_ = _struct(id="int64", name="string", url="string")
    source = _struct(dataset="string", image_id=image_id, license={"struct": license_})
    record = _struct(
        id="string",
        image="string",
        width="int64",
        height="int64",
        source={"struct": source},
        instructions={"list": instruction},
    )
    images = {ext: "image" for ext in sorted(stats.get("image_formats") or {"jpg": 1})}
    return _struct(**images, json={"struct": record}, __key__="string", __url__="string")


def counts_table(stats: dict[str, Any]) -> str:
    """Markdown table of images and instructions."""
    rows = [
        ("images in", stats["images_in"]),
        ("images written", stats["images_written"]),
        ("images rejected", stats["images_rejected"]),
    ]
    rows += [(f"{TASK_NAMES.get(t, t)}", n) for t, n in stats["instructions"].items()]
    rows += [("question/answer turns", stats["turns"]), ("shards", len(stats["shards"]))]
    return "\n".join(["| what | count |", "| --- | ---: |", *(f"| {k} | {v:,} |" for k, v in rows)])


def rejects_table(stats: dict[str, Any]) -> str:
    """Markdown table of rejections by reason, or a sentence when there were none."""
    if not stats["rejects"]:
        return "Nothing was rejected."
    lines = ["| reason | count |", "| --- | ---: |"]
    lines += [f"| `{reason}` | {n:,} |" for reason, n in stats["rejects"].items()]
    return "\n".join(lines)


def render_card(config: dict[str, Any], stats: dict[str, Any]) -> str:
    """The whole card: YAML front matter, then the body."""
    header = yaml.safe_dump(card_header(config, stats), sort_keys=False, allow_unicode=True)
    generator = config["generator"]
    body = f"""# {config["output"]["pretty_name"]}

Multimodal instruction-tuning data in LLaVA's `conversations` format, built with
[mminstruct](https://pypi.org/project/mminstruct/) {mminstruct.__version__}. Each sample is one
image (original bytes, never re-encoded) and a JSON record with its instructions.

## Counts

{counts_table(stats)}

## Rejections

{rejects_table(stats)}

Every input image is accounted for: images in = images written + images rejected. Each
rejection is listed with its reason in `rejects.jsonl`.

## How it was made

- Sources: {", ".join(f"`{s['name']}` ({s['kind']})" for s in config["sources"])}
- Generator: `{generator["backend"]}`{f" with `{generator['model']}`" if generator.get("model") else ""} (seed {generator["seed"]})
- Licenses: the `license` above covers the generated text; every image keeps the license of
  its source, named in each record's `source.license`.
- The full resolved config is in `config.yaml`; counts in `stats.json`.

## Loading

```python
import glob, webdataset as wds
dataset = wds.WebDataset(sorted(glob.glob("shard-*.tar")), shardshuffle=False).decode("pil")

import datasets  # this card's header declares the columns and where the shards are
dataset = datasets.load_dataset("path/to/this/folder", split="train")
```

## Limitations

Instructions are generated from annotations; they inherit the errors and biases of the
source annotations and, for model backends, of the model.
"""
    return f"---\n{header}---\n\n{body}"
