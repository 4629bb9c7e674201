"""`mminstruct stats OUT`: the statistics again, from the shards themselves.

The run's bookkeeping (`stats.json`, the wids index) is compared with what the shard files
actually hold; every disagreement is named by its key. Rejections and object categories
are not in the shards, so they are not recounted. The shards are also read the way a
consumer reads them, with webdataset itself: it must see every sample, each with its JSON
and one image (`consumer_disagreements`).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from mminstruct.io import file_digests
from mminstruct.output import (
    iter_samples,
    read_bookkeeping,
    sample_lengths,
    sample_templates,
    shard_paths,
)
from mminstruct.publish.finalize import WIDS_INDEX

# The stats.json keys a recount can check.
RECOUNTED = (
    "images_written",
    "samples",
    "bytes",
    "instructions",
    "instructions_total",
    "turns",
    "image_formats",
    "image_id_types",
    "lengths",
    "templates",
    "shards",
)


def recount(out_dir: Path) -> dict[str, Any]:
    """Statistics of the shards in `out_dir`, read sample by sample (images not decoded)."""
    instructions: Counter = Counter()
    formats: Counter = Counter()
    lengths: dict[str, dict[str, Counter]] = {}
    id_types: set[str] = set()
    templates: dict[str, str] = {}
    turns, shards = 0, []
    for path in shard_paths(out_dir):
        samples = 0
        for sample in iter_samples(path, images=False):
            samples += 1
            formats[sample.extension] += 1
            id_types.add(type(sample.record["source"]["image_id"]).__name__)
            for instruction in sample.record["instructions"]:
                instructions[instruction["task"]] += 1
                turns += len(instruction["conversations"]) // 2
            for task, kind, length in sample_lengths(sample.record):
                lengths.setdefault(task, {}).setdefault(kind, Counter())[length] += 1
            templates.update(sample_templates(sample.record))
        sha256, md5 = file_digests(path)
        shards.append(_shard(path, samples, sha256, md5))
    return {
        "images_written": sum(s["samples"] for s in shards),
        "samples": sum(s["samples"] for s in shards),
        "bytes": sum(s["bytes"] for s in shards),
        "instructions": dict(sorted(instructions.items())),
        "instructions_total": sum(instructions.values()),
        "turns": turns,
        "image_formats": dict(sorted(formats.items())),
        "image_id_types": sorted(id_types),
        "lengths": {
            task: {kind: _keyed(c) for kind, c in sorted(kinds.items())}
            for task, kinds in sorted(lengths.items())
        },
        "templates": dict(sorted(templates.items())),
        "shards": shards,
    }


def disagreements(recounted: dict[str, Any], recorded: dict[str, Any]) -> list[str]:
    """Where `stats.json` (`recorded`) says something else than the shards, one line each."""
    problems = []
    for key in RECOUNTED:
        if key in recorded:
            problems += differences(key, recorded[key], recounted[key])
    return problems


def index_disagreements(out_dir: Path, recounted: dict[str, Any]) -> list[str]:
    """Where the wids shard index disagrees with the shard files."""
    path = Path(out_dir) / WIDS_INDEX
    if not path.is_file():
        return [f"{WIDS_INDEX}: missing; run `mminstruct finalize {out_dir}`"]
    index = read_bookkeeping(path)
    listed = {
        entry["url"]: {k: entry.get(k) for k in ("nsamples", "filesize", "md5sum")}
        for entry in index.get("shardlist", [])
    }
    actual = {
        s["name"]: {"nsamples": s["samples"], "filesize": s["bytes"], "md5sum": s["md5"]}
        for s in recounted["shards"]
    }
    problems = [] if index.get("__kind__") == "wids-shard-index-v1" else [f"{WIDS_INDEX}: __kind__"]
    return problems + differences(WIDS_INDEX, listed, actual)


def differences(where: str, recorded: Any, actual: Any) -> list[str]:
    """Every leaf where two JSON values differ, as `where.key: recorded X, shards Y`."""
    if isinstance(recorded, dict) and isinstance(actual, dict):
        lines = []
        for key in sorted(set(recorded) | set(actual), key=str):
            lines += differences(f"{where}.{key}", recorded.get(key), actual.get(key))
        return lines
    if _lists_of_dicts(recorded, actual):
        return [
            line
            for i, (a, b) in enumerate(zip(recorded, actual, strict=True))
            for line in differences(f"{where}.{i}", a, b)
        ]
    if recorded == actual:
        return []
    return [f"{where}: recorded {_short(recorded)}, the shards hold {_short(actual)}"]


def _lists_of_dicts(a: Any, b: Any) -> bool:
    """Two lists of the same length holding only dicts: compared item by item."""
    if not (isinstance(a, list) and isinstance(b, list) and len(a) == len(b)):
        return False
    return all(isinstance(v, dict) for v in a + b)


def _shard(path: Path, samples: int, sha256: str, md5: str) -> dict[str, Any]:
    size = path.stat().st_size
    return {"name": path.name, "samples": samples, "bytes": size, "sha256": sha256, "md5": md5}


def _keyed(counts: Counter) -> dict[str, int]:
    return {str(length): n for length, n in sorted(counts.items())}


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True) if value is not None else "nothing"
    return text if len(text) <= 80 else text[:77] + "..."


def consumer_disagreements(out_dir: Path) -> list[str]:
    """Where webdataset, reading the shards as a training job would, does not see exactly
    the samples our own reader finds: each key once, with its JSON and one image."""
    import webdataset as wds

    ours = [s.key for path in shard_paths(out_dir) for s in iter_samples(path, images=False)]
    urls = [str(path) for path in shard_paths(out_dir)]
    seen, problems = [], []
    for sample in wds.WebDataset(urls, shardshuffle=False, empty_check=False):
        key = sample["__key__"]
        seen.append(key)
        images = [ext for ext in sample if ext in ("jpg", "png", "webp", "gif", "bmp")]
        if "json" not in sample or len(images) != 1:
            kinds = sorted(k for k in sample if not k.startswith("__"))
            problems.append(f"webdataset reads sample {key} with {kinds}, not json + one image")
    if Counter(seen) != Counter(ours):
        missing, extra = Counter(ours) - Counter(seen), Counter(seen) - Counter(ours)
        problems.append(
            f"webdataset sees {len(seen)} samples, the shards hold {len(ours)} "
            f"(missing: {sorted(missing)[:5]}, unexpected: {sorted(extra)[:5]})"
        )
    return problems
