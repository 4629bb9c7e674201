"""Finalize a build: merge every shard's stats and rejects, and describe the shards.

Writes `stats.json`, `rejects.jsonl`, `manifest.json` (every shard: samples, bytes, sha256),
`shards.wids.json` (the wids shard index, so a loader can seek to sample i) and the dataset
card. Refuses, naming the missing shards, while any unit of the job is unfinished.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from mminstruct.config import config_to_dict, load_config
from mminstruct.errors import MminstructError
from mminstruct.io import write_json, write_jsonl
from mminstruct.output import PARTS, merge_stats, read_markers, unit_stem
from mminstruct.publish.card import write_card

log = logging.getLogger("mminstruct")

SOURCE_REJECTS = "sources.rejects.jsonl"
WIDS_INDEX = "shards.wids.json"


def finalize(out_dir: Path) -> dict:
    """Merge a finished build in `out_dir`; returns the merged stats."""
    out_dir = Path(out_dir)
    markers = read_markers(out_dir)
    _check_complete(out_dir, markers)
    config = load_config(out_dir / "config.yaml")
    parts = [markers[i] for i in sorted(markers)]
    source_rejects = list(_read_jsonl([out_dir / PARTS / SOURCE_REJECTS]))
    unit_rejects = _read_jsonl(
        out_dir / PARTS / f"{unit_stem(i)}.rejects.jsonl" for i in sorted(markers)
    )
    source_part = {"rejects": Counter(row["reason"] for row in source_rejects)}
    stats = merge_stats([source_part, *parts])
    if stats["images_in"] != stats["images_written"] + stats["images_rejected"]:
        raise MminstructError(f"internal error: images do not add up in {out_dir}: {stats}")
    write_jsonl(out_dir / "rejects.jsonl", [*source_rejects, *unit_rejects])
    write_json(out_dir / "manifest.json", manifest(stats, parts[0]["fingerprint"]))
    write_json(out_dir / WIDS_INDEX, wids_index(stats, config.output.pretty_name))
    write_json(out_dir / "stats.json", stats)
    write_card(out_dir, config_to_dict(config), stats)  # README.md and plots/
    return stats


def finalize_when_complete(out_dir: Path, fingerprint: str, units: int) -> dict | None:
    """Finalize if every unit is done, once per job: the first process to see it does it."""
    markers = read_markers(out_dir)
    if len(markers) < units or any(i not in markers for i in range(units)):
        log.info(
            "%d of %d shards done; the last process to finish merges them "
            "(or run `mminstruct finalize %s`)",
            len(markers),
            units,
            out_dir,
        )
        return None
    try:
        lock = os.open(out_dir / PARTS / f"finalize-{fingerprint}.lock", os.O_CREAT | os.O_EXCL)
    except FileExistsError:
        log.info("all shards are done; another process merges them into %s", out_dir)
        return None
    os.close(lock)
    return finalize(out_dir)


def manifest(stats: dict, fingerprint: str) -> dict:
    """Every shard with its sample count, size and sha256."""
    shards = [{k: s[k] for k in ("name", "samples", "bytes", "sha256")} for s in stats["shards"]]
    return {"fingerprint": fingerprint, "samples": stats["samples"], "shards": shards}


def wids_index(stats: dict, name: str) -> dict:
    """The wids shard index (`wids-shard-index-v1`): shard URLs relative to this folder."""
    return {
        "__kind__": "wids-shard-index-v1",
        "wids_version": 1,
        "name": name,
        "shardlist": [
            {"url": s["name"], "nsamples": s["samples"], "filesize": s["bytes"], "md5sum": s["md5"]}
            for s in stats["shards"]
        ],
    }


def _check_complete(out_dir: Path, markers: dict[int, dict]) -> None:
    if not markers:
        raise MminstructError(f"{out_dir} has no finished shards; run `mminstruct build` first")
    units = markers[min(markers)].get("units")
    if not isinstance(units, int):
        raise MminstructError(
            f"{out_dir}/_parts/{unit_stem(min(markers))}.stats.json is damaged (no 'units'); "
            "delete it and rerun the build to make that shard again"
        )
    missing = [unit_stem(i) for i in range(units) if i not in markers]
    if missing:
        shown = ", ".join(missing[:10]) + (
            f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        )
        raise MminstructError(
            f"cannot finalize {out_dir}: {len(missing)} of {units} shards are not done ({shown}); "
            "rerun the build command (every rank) to finish them"
        )
    if len({m["fingerprint"] for m in markers.values()}) > 1:
        raise MminstructError(
            f"cannot finalize {out_dir}: its shards come from different configs; "
            "rerun the build with --force"
        )


def _read_jsonl(paths: Iterable[Path]) -> Iterator[dict]:
    for path in paths:
        if path.is_file():
            with open(path, encoding="utf-8") as handle:
                yield from map(json.loads, handle)
