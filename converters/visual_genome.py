"""Visual Genome -> image records: objects, attributes, relationships and region phrases.

Every file of the release is a JSON list with one entry per image, hundreds of MB for
relationships.json. Each is read as a stream (`mminstruct.converters.jsonstream`), and the files are
walked side by side: the official files list images in the same order, so only the current
image's entries are in memory. A file that lacks some images (a subset) costs nothing more
when image_data.json gives the order: reading stops at the first entry of a later image.
Files in another order still work; entries met ahead of their image wait in a buffer
(memory then grows, and a warning says so).

Images come in the order of image_data.json when it is given (their sizes come from there);
without it, in the order the annotation files name them, with sizes read from the image
files. An object is one object however often it appears: entries with the same `object_id`
(or one listed in another's `merged_object_ids`) are merged, attributes included.

A bad object, relation or region costs only itself: it is skipped and counted as a
record-scope rejection naming the file, image and field. An annotation entry for an image
that image_data.json does not list is skipped the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import msgspec
from mminstruct.converters.coco import clean_caption, clean_predicate, clip_box, load_coco_file
from mminstruct.converters.jsonstream import ElementError, iter_array
from PIL import Image

from mminstruct.config import VisualGenomeSourceConfig
from mminstruct.records import ImageId, ImageRecord, ObjectBox, Region, Rejection, Relation
from mminstruct.resources import resolve_path

log = logging.getLogger("mminstruct")

BUFFER_WARNING = 10_000  # entries waiting for their image before the reader warns
ALIGNED_AFTER = 100  # entries in image_data order before a missing image stops reading ahead
IMAGE_FOLDERS = ("VG_100K", "VG_100K_2")


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


def read_visual_genome(source: VisualGenomeSourceConfig) -> Iterator[ImageRecord | Rejection]:
    """Every image of a Visual Genome source: a record or a rejection, then skipped records."""
    skips: list[Rejection] = []
    streams = [
        _Stream(key, resolve_path(getattr(source, key)), ENTRY_TYPES[key], source.name, skips)
        for key in ENTRY_TYPES
        if getattr(source, key)
    ]
    images_dir = resolve_path(source.images)
    captions = _coco_captions(source)
    files = {stream.key: stream.path.name for stream in streams}
    for image_id, info, parts in _join(source, streams, skips):
        image = _Image(image_id, source.name, images_dir, info, parts, skips, captions, files)
        yield image.record()
        yield from skips
        skips.clear()
    yield from skips


# --------------------------------------------------------------------------- joining files


class _Stream:
    """One annotation file, read in order, with entries read ahead of their image kept."""

    def __init__(self, key: str, path: Path, entry_type: type, dataset: str, skips: list):
        self.key, self.path, self.dataset, self.skips = key, path, dataset, skips
        self.entries = self._entries(entry_type)
        self.pending: dict[ImageId, Any] = {}
        self.warned = False
        self.ordered: int | None = 0  # entries read in image_data order; None: out of order
        self.last_place = -1

    def _entries(self, entry_type: type) -> Iterator[tuple[ImageId, Any]]:
        seen: set[ImageId] = set()
        for index, entry in enumerate(iter_array(self.path, entry_type)):
            where = f"{self.path.name}: element {index}"
            if isinstance(entry, ElementError):
                entry = _loosely(entry, entry_type)
            if isinstance(entry, ElementError):
                self._skip("bad_entry", f"{entry}", None)
                continue
            image_id = _entry_id(entry)
            if image_id is None:
                self._skip("bad_entry", f"{where}: needs an integer 'image_id' (or 'id')", None)
            elif image_id in seen:
                self._skip("duplicate_entry", f"{where}: image {image_id} listed again", image_id)
            else:
                seen.add(image_id)
                yield image_id, entry

    def take(self, image_id: ImageId, rank: dict[ImageId, int] | None = None) -> Any:
        """This file's entry for `image_id`, reading ahead as far as needed; None if none.

        With `rank` (each image's place in image_data.json), once the file has listed
        ALIGNED_AFTER images in that order, reading stops at the first entry of a later
        image: the file has none for this one, and nothing more is read.
        """
        if image_id in self.pending:
            return self.pending.pop(image_id)
        for found, entry in self.entries:
            self._note_order(found, rank)
            if found == image_id:
                return entry
            self.pending[found] = entry
            if self._in_order(found, rank) and rank.get(found, -1) > rank[image_id]:
                return None  # an ordered file has moved past this image: it has none
            if len(self.pending) > BUFFER_WARNING and not self.warned:
                self.warned = True
                log.warning(
                    "%s lists images in another order than the other files, or lacks "
                    "some of them; its entries are buffered until their image comes "
                    "(memory grows)",
                    self.path,
                )
        return None

    def _note_order(self, found: ImageId, rank: dict[ImageId, int] | None) -> None:
        """Count entries read in image_data.json's order; one out of order ends the count."""
        if rank is None or self.ordered is None:
            return
        place = rank.get(found)
        if place is None or place <= self.last_place:
            self.ordered = None
        else:
            self.ordered, self.last_place = self.ordered + 1, place

    def _in_order(self, found: ImageId, rank: dict[ImageId, int] | None) -> bool:
        return rank is not None and self.ordered is not None and self.ordered >= ALIGNED_AFTER

    def rest(self) -> Iterator[tuple[ImageId, Any]]:
        """Entries no image has taken yet: buffered ones, then the unread rest of the file,
        each in file order."""
        pending, self.pending = self.pending, {}
        yield from pending.items()
        yield from self.entries

    def _skip(self, reason: str, detail: str, image_id: ImageId | None) -> None:
        self.skips.append(Rejection(reason, detail, self.dataset, image_id, record_only=True))


def _join(
    source: VisualGenomeSourceConfig, streams: list[_Stream], skips: list[Rejection]
) -> Iterator[tuple[ImageId, _ImageInfo | None, dict[str, Any]]]:
    """(image id, its image_data entry, {file key: entry}) for every image, in order."""
    if source.image_data:
        infos = _Stream(
            "image_data", resolve_path(source.image_data), _ImageInfo, source.name, skips
        )
        listed = list(infos.rest())  # small: sizes and ids of every image, no annotations
        rank = {image_id: place for place, (image_id, _) in enumerate(listed)}
        for image_id, info in listed:
            yield image_id, info, {s.key: s.take(image_id, rank) for s in streams}
        for stream in streams:
            for image_id, _ in stream.rest():
                stream._skip(*_leftover(stream, image_id, rank), image_id)
        return
    for k, stream in enumerate(streams):  # no image list: every image any file names
        for image_id, entry in stream.rest():
            parts = {stream.key: entry} | {s.key: s.take(image_id) for s in streams[k + 1 :]}
            yield image_id, None, parts


def _leftover(stream: _Stream, image_id: ImageId, rank: dict[ImageId, int]) -> tuple[str, str]:
    """(reason, detail) for an entry no image took."""
    if image_id not in rank:
        detail = f"{stream.path.name}: image {image_id} has no entry in image_data.json"
        return "annotation_without_image", detail
    detail = (
        f"{stream.path.name}: the entry of image {image_id} comes after those of later images "
        f"of image_data.json, after {ALIGNED_AFTER} in its order; sort the file like "
        "image_data.json to use it"
    )
    return "entry_out_of_order", detail


def _loosely(error: ElementError, entry_type: type) -> Any:
    """The entry decoded as its looser type, when it has one and that works; else `error`."""
    loose = LOOSE_TYPES.get(entry_type)
    if loose is None:
        return error
    try:
        return msgspec.json.decode(error.raw, type=loose)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
        return error


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


# --------------------------------------------------------------------------- one image


@dataclass
class _Image:
    """One image being assembled from its entries in each file."""

    image_id: ImageId
    dataset: str
    images_dir: Path
    info: _ImageInfo | None
    parts: dict[str, Any]
    skips: list[Rejection]
    coco_captions: dict[Any, list[str]]
    files: dict[str, str]  # file key -> the file's name, for messages
    width: int = 0
    height: int = 0
    objects: list[list[Any]] = field(default_factory=list)  # [name, box, attributes]
    ids: dict[Any, int | None] = field(default_factory=dict)  # object id -> index (None: bad)
    relations: list[Relation] = field(default_factory=list)

    def record(self) -> ImageRecord | Rejection:
        file_name = self._file_name()
        size = self._size(file_name)
        if isinstance(size, Rejection):
            return size
        self.width, self.height = size
        for key, entry in self.parts.items():
            if entry is not None and key != "regions":
                getattr(self, f"_add_{key}")(entry)
        return ImageRecord(
            dataset=self.dataset,
            image_id=self.image_id,
            file_name=file_name,
            images_dir=self.images_dir,
            width=self.width,
            height=self.height,
            captions=tuple(dict.fromkeys(self._captions())),
            objects=tuple(_object_box(*o) for o in self.objects),
            relations=tuple(dict.fromkeys(self.relations)),
            regions=self._regions(),
        )

    # ---- image facts

    def _file_name(self) -> str:
        url = self.info.url if self.info else None
        objects = self.parts.get("objects")
        url = url or (objects.image_url if objects is not None else None)
        if isinstance(url, str) and url.strip():
            path = PurePosixPath(url.strip())
            if path.parent.name in IMAGE_FOLDERS:
                return f"{path.parent.name}/{path.name}"
        return f"{IMAGE_FOLDERS[0]}/{self.image_id}.jpg"

    def _size(self, file_name: str) -> tuple[int, int] | Rejection:
        if self.info is not None:
            width, height = self.info.width, self.info.height
            if all(v.__class__ is int and v > 0 for v in (width, height)):
                return width, height
            detail = (
                f"image_data.json: image {self.image_id}: 'width' and 'height' must be "
                f"positive integers, got {width!r} and {height!r}"
            )
            return Rejection("bad_image_entry", detail, self.dataset, self.image_id)
        return _size_from_file(self.images_dir, file_name, self.dataset, self.image_id)

    def _captions(self) -> list[str]:
        coco_id = self.info.coco_id if self.info else None
        return self.coco_captions.get(coco_id, []) if coco_id is not None else []

    # ---- annotations

    def _add_objects(self, entry: _ObjectsEntry) -> None:
        for where, obj in self._items(entry, "objects", _Object, "bad_object"):
            self._object(obj, where)

    def _add_attributes(self, entry: _AttributesEntry) -> None:
        for where, obj in self._items(entry, "attributes", _Object, "bad_object"):
            self._object(obj, where)

    def _add_relationships(self, entry: _RelationshipsEntry) -> None:
        items = self._items(entry, "relationships", _LooseRelationship, "bad_relation")
        for where, rel in items:
            predicate = clean_predicate(rel.predicate)
            if not predicate:
                self._skip("empty_predicate", f"{where}: 'predicate' is empty or not text")
                continue
            ends = [self._end(rel, side, where) for side in ("subject", "object")]
            if None in ends:
                continue
            if ends[0] == ends[1]:
                self._skip("self_relation", f"{where}: subject and object are one object")
                continue
            self.relations.append(Relation(ends[0], predicate, ends[1]))

    def _items(
        self, entry: Any, key: str, item_type: type, reason: str
    ) -> Iterator[tuple[str, Any]]:
        """(where, item) for each item of the entry's `key` list that is a JSON object; any
        other item, or a `key` that is not a list, is skipped and counted as `reason`."""
        items = getattr(entry, key)
        where = f"{self.files[key]}: image {self.image_id}: {key}"
        if items is not None and not isinstance(items, list):
            self._skip(reason, f"{where}: must be a list, got {_preview(items)}")
            return
        for i, item in enumerate(items or ()):
            value = _as_struct(item, item_type)
            if value is None:
                self._skip(reason, f"{where}[{i}]: must be an object, got {_preview(item)}")
            else:
                yield f"{where}[{i}]", value

    def _end(self, rel: _Relationship, side: str, where: str) -> int | None:
        """The object index of a relation's subject or object; None (and a skip) if unusable."""
        value = getattr(rel, side)
        index = None
        if isinstance(value, _Object):
            index = self._object(value, f"{where}.{side}")
        elif isinstance(value, dict):
            try:
                index = self._object(msgspec.convert(value, _Object), f"{where}.{side}")
            except msgspec.ValidationError as exc:
                self._skip("bad_object", f"{where}.{side}: {exc}")
        if index is None:
            problem = "is missing" if value is None else "is not a usable object"
            self._skip(
                "relation_missing_object", f"{where}: the {side} {problem}; relation skipped"
            )
        return index

    def _object(self, obj: _Object, where: str) -> int | None:
        """The index of `obj` among the image's objects, adding it the first time it is
        seen (under its own id or one merged into it); None if it is unusable."""
        ids = _object_ids(obj)
        seen = [i for i in ids if i in self.ids]
        index = self.ids[seen[0]] if seen else self._new_object(obj, where)
        if seen and index is not None:
            _add_attributes(self.objects[index][2], obj.attributes)
        for alias in ids:
            self.ids.setdefault(alias, index)
        return index

    def _new_object(self, obj: _Object, where: str) -> int | None:
        name = _object_name(obj)
        if not name:
            self._skip("bad_object", f"{where}: needs a non-empty 'names' list or 'name'")
            return None
        box = clip_box([obj.x, obj.y, obj.w, obj.h], self.width, self.height)
        if isinstance(box, str):
            reason = "box_outside_image" if "outside" in box or "no area" in box else "bad_box"
            self._skip(reason, f"{where} ({name}): box [x, y, w, h] = {box}")
            return None
        attributes: list[str] = []
        _add_attributes(attributes, obj.attributes)
        self.objects.append([name, box, attributes])
        return len(self.objects) - 1

    def _regions(self) -> tuple[Region, ...]:
        entry = self.parts.get("regions")
        regions: dict[str, Region] = {}
        items = self._items(entry, "regions", _Region, "bad_region") if entry is not None else ()
        for where, region in items:
            phrase = clean_caption(region.phrase)
            box = clip_box(
                [region.x, region.y, region.width, region.height], self.width, self.height
            )
            if not phrase or isinstance(box, str):
                problem = "'phrase' is empty or not text" if not phrase else f"box {box}"
                self._skip("bad_region", f"{where}: {problem}")
            elif phrase not in regions:
                regions[phrase] = Region(phrase, *box)
        return tuple(regions.values())

    def _skip(self, reason: str, detail: str) -> None:
        self.skips.append(Rejection(reason, detail, self.dataset, self.image_id, record_only=True))


def _as_struct(item: Any, item_type: type) -> Any:
    """`item` as `item_type`: already decoded as a struct, or a JSON object; else None."""
    if isinstance(item, msgspec.Struct):
        return item
    try:
        return msgspec.convert(item, item_type) if isinstance(item, dict) else None
    except msgspec.ValidationError:
        return None


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _object_ids(obj: _Object) -> list[Any]:
    """An object's own id and the ids merged into it."""
    own = obj.object_id if obj.object_id is not None else obj.id
    merged = obj.merged_object_ids if isinstance(obj.merged_object_ids, list) else []
    return [i for i in [own, *merged] if i.__class__ in (int, str)]


def _object_name(obj: _Object) -> str:
    names = obj.names if isinstance(obj.names, list) and obj.names else [obj.name]
    return clean_caption(names[0]).lower().rstrip(".,;:!? ")


def _add_attributes(attributes: list[str], new: Any) -> None:
    for value in new if isinstance(new, list) else ():
        text = clean_caption(value).lower()
        if text and text not in attributes:
            attributes.append(text)


def _object_box(name: str, box: tuple[float, float, float, float], attributes: list) -> ObjectBox:
    return ObjectBox(name, *box, attributes=tuple(attributes))


def _size_from_file(
    images_dir: Path, file_name: str, dataset: str, image_id: ImageId
) -> tuple[int, int] | Rejection:
    """Without image_data.json, an image's size comes from its file's header."""
    from mminstruct.images import resolve_image_path

    probe = ImageRecord(dataset, image_id, file_name, images_dir, 1, 1)
    path = resolve_image_path(probe)
    if isinstance(path, Rejection):
        return path
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        detail = f"{path}: cannot read the image size without image_data.json ({exc})"
        return Rejection("unreadable_image", detail, dataset, image_id)
