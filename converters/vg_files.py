"""Visual Genome files decoded: the msgspec struct of one entry of each file, and entry parsing.

`ENTRY_TYPES` names each annotation file's entry type; an entry that does not decode as it
is tried again as a looser type (`LOOSE_TYPES`), so one broken item costs only itself.
"""

from __future__ import annotations

from typing import Any

import msgspec
from mminstruct.converters.coco_files import load_coco_file
from mminstruct.converters.common import NESTED_TOO_DEEPLY, clean_caption
from mminstruct.converters.jsonstream import ElementError

from mminstruct.config import VisualGenomeSourceConfig
from mminstruct.errors import InputError
from mminstruct.records import ImageId
from mminstruct.resources import resolve_path


class _Object(msgspec.Struct, gc=False):
    object_id: Any = None
    id: Any = None
    x: Any = None
    y: Any = None
    w: Any = None
    h: Any = None
    names: Any = None
    name: Any = None
    merged_object_ids: Any = None
    attributes: Any = None


class _Relationship(msgspec.Struct, gc=False):
    predicate: Any = None
    subject: _Object | None = None
    object: _Object | None = None


class _LooseRelationship(msgspec.Struct, gc=False):
    """A relationship whose subject or object may be anything (a file with broken ones)."""

    predicate: Any = None
    subject: Any = None
    object: Any = None


class _Region(msgspec.Struct, gc=False):
    phrase: Any = None
    x: Any = None
    y: Any = None
    width: Any = None
    height: Any = None


class _ImageInfo(msgspec.Struct, gc=False):
    image_id: Any = None
    id: Any = None
    width: Any = None
    height: Any = None
    url: Any = None
    coco_id: Any = None


class _ObjectsEntry(msgspec.Struct, gc=False):
    image_id: Any = None
    id: Any = None
    image_url: Any = None
    objects: list[_Object] | None = None


class _AttributesEntry(msgspec.Struct, gc=False):
    image_id: Any = None
    id: Any = None
    attributes: list[_Object] | None = None


class _RelationshipsEntry(msgspec.Struct, gc=False):
    image_id: Any = None
    id: Any = None
    relationships: list[_Relationship] | None = None


class _LooseEntry(msgspec.Struct, gc=False):
    """An entry of any file whose list holds an item of the wrong shape (a number, null):
    the items are then checked one by one, so that a bad one costs only itself."""

    image_id: Any = None
    id: Any = None
    image_url: Any = None
    objects: Any = None
    attributes: Any = None
    relationships: Any = None
    regions: Any = None


class _RegionsEntry(msgspec.Struct, gc=False):
    image_id: Any = None
    id: Any = None
    regions: list[_Region] | None = None


# An annotation entry that does not decode as its type is decoded again as this looser one,
# so that one broken object, relation or region costs only itself.
LOOSE_TYPES: dict[type, type] = {
    _ObjectsEntry: _LooseEntry,
    _AttributesEntry: _LooseEntry,
    _RelationshipsEntry: _LooseEntry,
    _RegionsEntry: _LooseEntry,
}

# config key -> the type of one entry of that file, in the order the files are merged
ENTRY_TYPES: dict[str, type] = {
    "objects": _ObjectsEntry,
    "attributes": _AttributesEntry,
    "relationships": _RelationshipsEntry,
    "regions": _RegionsEntry,
}


def _loosely(error: ElementError, entry_type: type) -> Any:
    """The entry decoded as its looser type, when it has one and that works; else `error`."""
    loose = LOOSE_TYPES.get(entry_type)
    if loose is None:
        return error
    try:
        return msgspec.json.decode(error.raw, type=loose)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
        return error
    except RecursionError:  # deep where the strict type stopped early: the looser one goes on
        raise InputError(f"{error.where} is {NESTED_TOO_DEEPLY}") from None


# Each file's name in the release, and what one of its entries looks like (for messages).
FILE_NAMES = {
    "objects": "objects.json",
    "attributes": "attributes.json",
    "relationships": "relationships.json",
    "regions": "region_descriptions.json",
    "image_data": "image_data.json",
}
_SHAPES = {
    "objects": '{"image_id": 1, "objects": [{"object_id", "x", "y", "w", "h", "names"}, ...]}',
    "attributes": '{"image_id": 1, "attributes": [{"object_id", ..., "attributes"}, ...]}',
    "relationships": (
        '{"image_id": 1, "relationships": [{"predicate", "subject": {...}, "object": {...}}, ...]}'
    ),
    "regions": '{"image_id": 1, "regions": [{"phrase", "x", "y", "width", "height"}, ...]}',
    "image_data": '{"image_id": 1, "width": ..., "height": ..., "url": ...}',
}


def no_image_id(where: str, key: str, entry: Any) -> str:
    """Why a file whose first entry names no image is refused: what it looks like instead."""
    if _looks_like_sg2im(entry):
        what = (
            "this looks like an sg2im scene graph (objects as bare names, relationships as "
            "[subject, predicate, object] lists), not"
        )
    else:
        what = "this is not"
    return (
        f"{where} has no 'image_id' or 'id', so it belongs to no image: {what} Visual Genome's "
        f"{FILE_NAMES[key]}, whose entries read {_SHAPES[key]}; check `{key}` in your config"
    )


def _looks_like_sg2im(entry: Any) -> bool:
    objects = getattr(entry, "objects", None)
    relationships = getattr(entry, "relationships", None)
    named = isinstance(objects, list) and any(isinstance(o, str) for o in objects)
    triples = isinstance(relationships, list) and any(isinstance(r, list) for r in relationships)
    return named or triples


def _entry_id(entry: Any) -> ImageId | None:
    value = entry.image_id if entry.image_id is not None else entry.id
    return value if value.__class__ in (int, str) and value != "" else None


def _coco_captions(source: VisualGenomeSourceConfig) -> dict[Any, list[str]]:
    """COCO image id -> its captions, from the source's `coco_captions` files."""
    captions: dict[Any, list[str]] = {}
    for path in map(resolve_path, source.coco_captions):
        data = load_coco_file(path, needs=("annotations",))
        for ann in data.annotations:
            text = clean_caption(ann.caption)
            if text and ann.image_id.__class__ in (int, str):
                captions.setdefault(ann.image_id, []).append(text)
    return captions
