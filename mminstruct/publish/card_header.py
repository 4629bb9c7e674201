"""The dataset card's YAML header: what the Hub and `datasets.load_dataset` read.

Where the data files are (the shards only), every column, exact split counts, license and
tags, as a `huggingface_hub` `DatasetCardData`.
"""

from __future__ import annotations

from typing import Any

_SIZES = [
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
    (1_000_000_000, "100M<n<1B"),
]


def size_category(count: int) -> str:
    """The Hub's `size_categories` bucket for `count` samples."""
    for limit, name in _SIZES:
        if count < limit:
            return name
    return "1B<n<10B"


# --------------------------------------------------------------------------- header


def card_data(config: dict[str, Any], stats: dict[str, Any]) -> Any:
    """The YAML header as a `DatasetCardData`: license, tasks, size, columns, data files."""
    from huggingface_hub import DatasetCardData

    output = config["output"]
    extra = {}
    if output["license"] == "other":
        extra = {
            "license_name": output.get("license_name"),
            "license_link": output.get("license_link"),
        }
    return DatasetCardData(
        license=output["license"],
        language=["en"],
        pretty_name=output["pretty_name"],
        task_categories=["visual-question-answering", "image-to-text"],
        size_categories=[size_category(stats["images_written"])],
        annotations_creators=["machine-generated"],
        language_creators=["machine-generated"],
        source_datasets=sorted({f"extended|{s['kind']}" for s in config["sources"]}),
        tags=["multimodal", "instruction-tuning", "llava", "webdataset", "mminstruct"],
        # Only the shards: stats.json, manifests, rejects and plots never hijack loading.
        configs=[
            {"config_name": "default", "data_files": [{"split": "train", "path": "shard-*.tar"}]}
        ],
        dataset_info={
            "features": dataset_features(stats),
            "splits": [
                {"name": "train", "num_bytes": stats["bytes"], "num_examples": stats["samples"]}
            ],
        },
        **extra,
    )


def card_header(config: dict[str, Any], stats: dict[str, Any]) -> dict[str, Any]:
    """The YAML front matter as plain data (what `DatasetCard.load(...).data.to_dict()` gives)."""
    return card_data(config, stats).to_dict()


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
    finding = _struct(kind="string", sentence="string", claim="string", truth="string")
    grounding = _struct(score="float64", findings={"list": finding})  # `grounding.ground`
    error = _struct(
        kind="string",
        detail="string",
        span={"list": "int64"},
        original="string",
        replacement="string",
        rewritten="bool",
    )
    prompt = _struct(**{"from": "string", "value": "string"})  # not `turn`: YAML would alias it
    pair = _struct(  # `preference.add_preference_pairs`, written by `samples.preference_record`
        prompt={"list": prompt}, chosen="string", rejected="string", error={"struct": error}
    )
    instruction = _struct(
        task="string",
        conversations={"list": turn},
        generator={"struct": generator},
        grounding={"struct": grounding},
        preference={"list": pair},
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
