"""The dataset card's YAML header: what the Hub and `datasets.load_dataset` read.

Where the data files are (the shards only), every column, exact split counts, license and
tags, as a `huggingface_hub` `DatasetCardData`.
"""

from __future__ import annotations

from typing import Any

from mminstruct.output import SAMPLE_FIELDS

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


def dataset_features(stats: dict[str, Any]) -> list[dict[str, Any]]:
    """The columns `datasets` reads from the shards, declared so nothing is guessed: the
    sample JSON is `output.SAMPLE_FIELDS`, the very schema the sample writer follows.

    Without this, the webdataset loader infers the columns from the first 5 samples: a png
    among jpgs fails to load, and fields missing there are dropped.
    """
    id_types = stats.get("image_id_types", [])
    image_id = "int64" if id_types == ["int"] else "string"
    images = {ext: "image" for ext in sorted(stats.get("image_formats") or {"jpg": 1})}
    columns = {**images, "json": SAMPLE_FIELDS, "__key__": "string", "__url__": "string"}
    return [{"name": name, **_type(spec, image_id)} for name, spec in columns.items()]


def _type(spec: Any, image_id: str) -> dict[str, Any]:
    """A `datasets` YAML type from a schema entry: a dtype, a struct (dict) or a list.

    Every call builds new objects, so the YAML has no anchors or aliases (the Hub's parser
    and `datasets` read plain YAML only).
    """
    if isinstance(spec, dict):
        return {"struct": [{"name": k, **_type(v, image_id)} for k, v in spec.items()]}
    if isinstance(spec, list):
        (item,) = spec
        inner = _type(item, image_id)
        return {"list": inner.get("dtype") or inner["struct"]}
    return {"dtype": image_id if spec == "int64 or string" else spec}
