"""Sample keys: unique, dot-free, derived only from the dataset name and image id."""

from __future__ import annotations

import hashlib
import re

from mminstruct.records import ImageId

DATASET_NAME = re.compile(r"^[A-Za-z0-9_]{1,32}$")  # no dash: the first dash ends the name
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_HASH_SUFFIX = re.compile(r"-h[0-9a-f]{12}$")  # how a sanitized key ends; a kept id may not
# What any key `sample_key` makes looks like: the writer refuses others, and every reader of a
# tar (export, stats, the card) skips a member not named `<key>.<extension>` by this rule, so a
# name from a stranger's shard ("/etc/x.jpg", "../x.jpg") is never used as a path.
KEY = re.compile(r"[A-Za-z0-9_-]{1,96}")
EXTENSION = re.compile(r"[a-z0-9]{1,10}")


def sample_key(dataset: str, image_id: ImageId) -> str:
    """`coco-000000397133`: safe as a tar member stem and in a webdataset URL.

    Non-negative integer ids are zero-padded to 12 digits (COCO's own file naming). Other
    ids are kept when they are short, made of `[A-Za-z0-9_-]`, not all digits and not
    ending like a hashed key; anything else is sanitized and suffixed with a hash of the
    original, so keys stay unique.
    """
    if isinstance(image_id, int) and not isinstance(image_id, bool) and image_id >= 0:
        return f"{dataset}-{image_id:012d}"
    text = str(image_id)
    if isinstance(image_id, str) and _kept(text):
        return f"{dataset}-{text}"
    digest = hashlib.sha1(f"{type(image_id).__name__}:{text}".encode()).hexdigest()[:12]
    return f"{dataset}-{re.sub(r'[^A-Za-z0-9_-]', '_', text)[:40]}-h{digest}"


def _kept(text: str) -> bool:
    return bool(_SAFE_ID.match(text)) and not text.isdigit() and not _HASH_SUFFIX.search(text)


def image_seed(base_seed: int, dataset: str, image_id: ImageId) -> int:
    """The seed of one image: from the job's base seed and the image's sample key.

    63 bits, so that it fits a signed 64-bit column (Arrow, Parquet) wherever it is stored.
    """
    return derived_seed(base_seed, sample_key(dataset, image_id))


def derived_seed(*parts: object) -> int:
    """A 63-bit seed that depends only on `parts` (not on Python's hash randomization)."""
    text = ":".join(map(str, parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def is_valid_key(key: str) -> bool:
    """Whether `key` is shaped like the keys `sample_key` makes (safe as a file name)."""
    return KEY.fullmatch(key) is not None


def split_member_name(name: str) -> tuple[str, str] | None:
    """`("coco-000000000001", "jpg")` for a valid tar member name, else None."""
    key, dot, extension = name.partition(".")
    if dot and is_valid_key(key) and EXTENSION.fullmatch(extension):
        return key, extension
    return None
