"""One Visual Genome image assembled into an `ImageRecord` from its entry in each file.

Objects are merged by id (attributes included), relations and regions checked; a bad item
is skipped and counted as a record-scope rejection naming the file, image and field.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import msgspec
from mminstruct.converters.common import (
    clean_caption,
    clean_predicate,
    clip_box,
    name_problem,
    side_problem,
)
from mminstruct.converters.vg_files import (
    _AttributesEntry,
    _ImageInfo,
    _LooseRelationship,
    _Object,
    _ObjectsEntry,
    _Region,
    _Relationship,
    _RelationshipsEntry,
)
from PIL import Image

from mminstruct.records import ImageId, ImageRecord, ObjectBox, Region, Rejection, Relation

IMAGE_FOLDERS = ("VG_100K", "VG_100K_2")


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
            problem = side_problem("width", width) or side_problem("height", height)
            if problem is None:
                return width, height
            detail = f"image_data.json: image {self.image_id}: {problem}"
            return Rejection("bad_image_entry", detail, self.dataset, self.image_id)
        return _size_from_file(self.images_dir, file_name, self.dataset, self.image_id)

    def _captions(self) -> list[str]:
        coco_id = self.info.coco_id if self.info else None
        if coco_id.__class__ not in (int, str):  # null, or a list/object from a damaged file
            return []
        return self.coco_captions.get(coco_id, [])

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
            if problem := name_problem(predicate):
                self._skip("name_too_long", f"{where}: 'predicate' {_preview(predicate)} {problem}")
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
            self._fold_attributes(self.objects[index][2], obj.attributes, where)
        for alias in ids:
            self.ids.setdefault(alias, index)
        return index

    def _new_object(self, obj: _Object, where: str) -> int | None:
        name = _object_name(obj)
        if not name:
            self._skip("bad_object", f"{where}: needs a non-empty 'names' list or 'name'")
            return None
        if problem := name_problem(name):
            self._skip("name_too_long", f"{where}: name {_preview(name)} {problem}")
            return None
        box = clip_box([obj.x, obj.y, obj.w, obj.h], self.width, self.height)
        if isinstance(box, str):
            reason = "box_outside_image" if "outside" in box or "no area" in box else "bad_box"
            self._skip(reason, f"{where} ({name}): box [x, y, w, h] = {box}")
            return None
        attributes: list[str] = []
        self._fold_attributes(attributes, obj.attributes, where)
        self.objects.append([name, box, attributes])
        return len(self.objects) - 1

    def _fold_attributes(self, attributes: list[str], new: Any, where: str) -> None:
        """Add an object's attributes (cleaned, lowercase, each once); a long one is skipped."""
        for value in new if isinstance(new, list) else ():
            text = clean_caption(value).lower()
            if problem := name_problem(text):
                self._skip("name_too_long", f"{where}: attribute {_preview(text)} {problem}")
            elif text and text not in attributes:
                attributes.append(text)

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
