"""Reading a built dataset back from its shards, sample by sample.

`stats`, `export` and the card's examples read the shards themselves, not the run's
bookkeeping. A sample is the members that share a key: `<key>.json` and one image.

Shards may come from strangers (a dataset from the Hub), so a member is used only when it is
a regular file named `<key>.<extension>` by the writer's own rule (`keys.split_member_name`)
and no larger than `MAX_MEMBER_BYTES`; any other member is skipped, counted by reason in the
`skipped` Counter a caller passes, and never followed or used as a path.
"""

from __future__ import annotations

import json
import logging
import tarfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mminstruct.errors import MminstructError
from mminstruct.keys import split_member_name

log = logging.getLogger("mminstruct")

IMAGE_EXTENSIONS = ("jpg", "png", "webp", "gif", "bmp")
MAX_MEMBER_BYTES = 256 << 20  # a larger member is skipped, not read into memory


@dataclass(frozen=True)
class StoredSample:
    """One sample as it sits in a shard."""

    key: str
    record: dict  # the parsed `<key>.json`
    extension: str  # of the image member: "jpg", "png", ...
    image: bytes | None  # the image bytes (None when read without images)


def shard_paths(out_dir: Path) -> list[Path]:
    """The shards of a build, in order; an error says what to do when there are none."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise MminstructError(f"{out_dir} is not a folder; give the output.dir of a build")
    paths = sorted(out_dir.glob("shard-*.tar"))
    if not paths:
        raise MminstructError(f"{out_dir} holds no shard-*.tar; run `mminstruct build` first")
    return paths


def read_bookkeeping(path: Path) -> Any:
    """A JSON file a build writes beside its shards (`stats.json`, `shards.wids.json`); a
    damaged one is an error that says how to write it again."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise MminstructError(
            f"{path} is not valid JSON ({exc}); write it again from the shard stats with "
            f"`mminstruct finalize {path.parent}`"
        ) from None


def iter_samples(
    shard: Path, images: bool = True, skipped: Counter | None = None
) -> Iterator[StoredSample]:
    """The samples of one shard, in file order; image bytes only when `images`. Members that
    are not a sample's file are counted in `skipped` by reason and otherwise ignored."""
    skipped = Counter() if skipped is None else skipped
    try:
        with tarfile.open(shard) as tar:
            yield from _samples(tar, shard, images, skipped)
    except tarfile.TarError as exc:
        raise MminstructError(f"{shard}: not a readable tar ({exc}); rebuild this shard") from None


def member_problem(member: tarfile.TarInfo) -> str | None:
    """Why a tar member is not one of a sample's files, or None when it is."""
    if split_member_name(member.name) is None:
        return "invalid_member_name"
    if not member.isreg():
        return "not_a_regular_file"
    if member.size > MAX_MEMBER_BYTES:
        return "member_too_large"
    return None


def _samples(
    tar: tarfile.TarFile, shard: Path, images: bool, skipped: Counter
) -> Iterator[StoredSample]:
    key, members = None, {}
    for member in tar:
        if problem := member_problem(member):
            skipped[problem] += 1
            log.warning("%s: skipped member %r (%s)", shard, member.name[:200], problem)
            continue
        stem, extension = split_member_name(member.name)
        if stem != key and key is not None:
            yield _sample(shard, key, members)
            members = {}
        key = stem
        if extension == "json" or (images and extension in IMAGE_EXTENSIONS):
            members[extension] = tar.extractfile(member).read()
        else:
            members[extension] = None
    if key is not None:
        yield _sample(shard, key, members)


def _sample(shard: Path, key: str, members: dict[str, bytes | None]) -> StoredSample:
    if "json" not in members:
        raise MminstructError(f"{shard}: sample {key} has no {key}.json; rebuild this shard")
    extension = next((e for e in IMAGE_EXTENSIONS if e in members), "")
    try:
        record = json.loads(members["json"])
    except ValueError as exc:
        raise MminstructError(f"{shard}: {key}.json is not valid JSON ({exc})") from None
    return StoredSample(key, record, extension, members.get(extension))
