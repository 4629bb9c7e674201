"""Reading built shards back in tests, independently of the package's own reader."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any


def shard_records(out: Path) -> dict[str, dict]:
    """Every sample's JSON record in the shards under `out`, by key (read with tarfile)."""
    records = {}
    for shard in sorted(out.glob("shard-*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar:
                if member.name.endswith(".json"):
                    records[member.name[: -len(".json")]] = json.loads(
                        tar.extractfile(member).read()
                    )
    return records


def without_nulls(value: Any) -> Any:
    """`value` with None values dropped from dicts at any depth (what `datasets` adds for
    columns a row lacks)."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value
