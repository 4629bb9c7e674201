"""RefCOCO-style referring expressions, from a JSON file (never a pickle), for a COCO source.

The file is a top-level list of `{"image_id", "ann_id" or "bbox", "sentences"}`: `ann_id`
names an annotation of the source's instances files, `bbox` is `[x, y, w, h]` in pixels, and
`sentences` lists strings or RefCOCO's `{"sent": ...}` (or `{"raw": ...}`) objects. Each
sentence becomes a `Region` in its image's `ImageRecord.referring`. An entry that cannot be
placed is skipped and counted; a file that is not such a list raises `InputError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
from mminstruct.converters.common import (
    _ID_TYPES,
    NESTED_TOO_DEEPLY,
    _preview,
    _record_skip,
    clean_caption,
    clip_box,
)

from mminstruct.errors import InputError
from mminstruct.records import ImageId, Region, Rejection

MAX_SENTENCES = 20  # sentences kept per expression entry (RefCOCO has 1-3)
MAX_SENTENCE_CHARS = 300  # longer "expressions" are broken records


class _RefExp(msgspec.Struct, frozen=True):
    image_id: Any = None
    ann_id: Any = None
    bbox: Any = None
    sentences: Any = None


def load_refexps(path: Path) -> list[_RefExp]:
    """The entries of a referring-expressions file (JSON only: RefCOCO's refs(*).p pickles
    are never opened; convert them once with a script you trust)."""
    if path.suffix in (".p", ".pkl", ".pickle"):
        raise InputError(f"{path}: a pickle; refexps must be JSON (pickles can run code)")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found; check `refexps` in your config") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror})") from None
    try:
        return msgspec.json.decode(data, type=list[_RefExp])
    except RecursionError:
        raise InputError(f"{path}: {NESTED_TOO_DEEPLY}") from None
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
        raise InputError(
            f"{path}: not a referring-expressions file ({exc}); expected a JSON list of "
            '{"image_id", "ann_id" or "bbox", "sentences"}'
        ) from None


def sentences_of(entry: _RefExp) -> list[str]:
    """The entry's sentences as clean one-line strings (RefCOCO's `sent`, else `raw`)."""
    found = []
    for item in entry.sentences if isinstance(entry.sentences, list) else ():
        text = item.get("sent") or item.get("raw") if isinstance(item, dict) else item
        text = clean_caption(text).strip(" .")
        if text and len(text) <= MAX_SENTENCE_CHARS and "\ufffd" not in text:
            found.append(text)
    return list(dict.fromkeys(found))[:MAX_SENTENCES]


def attach_refexps(
    entries: list[_RefExp],
    path: Path,
    dataset: str,
    images: dict[ImageId, Any],
    objects_by_id: dict[Any, tuple[ImageId, int] | None],
    skipped: list[Rejection],
) -> None:
    """Add each entry's sentences to its image's `referring`; a bad entry is skipped."""
    for i, entry in enumerate(entries):
        image = images.get(entry.image_id) if entry.image_id.__class__ in _ID_TYPES else None
        box = _box(entry, image, objects_by_id)
        sentences = sentences_of(entry)
        if isinstance(box, str) or not sentences:
            detail = box if isinstance(box, str) else "no usable sentence"
            where = f"{path.name}: [{i}]: {detail}; skipped"
            skipped.append(_record_skip("bad_refexp", where, dataset, entry.image_id))
            continue
        for text in sentences:
            image.referring.append(Region(text, *box))


def _box(
    entry: _RefExp, image: Any, objects_by_id: dict[Any, tuple[ImageId, int] | None]
) -> tuple[float, float, float, float] | str:
    """The box the entry refers to (its annotation's, or its own `bbox`), or a problem."""
    if image is None:
        return f"image_id {_preview(entry.image_id)} has no entry in 'images'"
    if entry.ann_id is not None:
        place = objects_by_id.get(entry.ann_id) if entry.ann_id.__class__ in _ID_TYPES else None
        if place is None or place[0] != image.id:
            return f"ann_id {_preview(entry.ann_id)} names no kept annotation of this image"
        obj = image.objects[place[1]]
        return obj.x, obj.y, obj.w, obj.h
    if entry.bbox is None:
        return "give `ann_id` or `bbox`"
    return clip_box(entry.bbox, image.width, image.height)
