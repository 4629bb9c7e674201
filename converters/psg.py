"""Panoptic Scene Graph (psg.json) -> image records with boxes and relations.

The file holds `thing_classes`, `stuff_classes` and `predicate_classes`, and a `data` list
with one entry per image: `file_name`, `width`, `height`, `image_id`, `annotations` (pixel
`bbox` as [x1, y1, x2, y2] and a `category_id` indexing things then stuff), and `relations`
as [subject index, object index, predicate index] into that image's annotations.

Only the fields read here are decoded (the segment lists are skipped). A bad box or
relation is skipped and counted; a bad image entry rejects its image; a second entry for
an image id already read is skipped and counted.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
from mminstruct.converters.common import (
    NESTED_TOO_DEEPLY,
    _preview,
    clean_predicate,
    clip_box,
    name_problem,
    side_problem,
)

from mminstruct.config import PsgSourceConfig
from mminstruct.errors import InputError
from mminstruct.records import ImageRecord, ObjectBox, Rejection, Relation
from mminstruct.resources import resolve_path


class _Annotation(msgspec.Struct, gc=False):
    bbox: Any = None
    category_id: Any = None


class _Entry(msgspec.Struct, gc=False):
    file_name: Any = None
    width: Any = None
    height: Any = None
    image_id: Any = None
    annotations: Any = None
    relations: Any = None


class _PsgFile(msgspec.Struct):
    data: list[_Entry] | None = None
    thing_classes: list[str] | None = None
    stuff_classes: list[str] | None = None
    predicate_classes: list[str] | None = None


class _LoosePsgFile(_PsgFile):
    """A file with an entry that is not an object: each entry is then decoded on its own."""

    data: list[msgspec.Raw] | None = None


def read_psg(source: PsgSourceConfig) -> Iterator[ImageRecord | Rejection]:
    """Every image of a PSG file: a record or a rejection, followed by its skipped records."""
    path = resolve_path(source.annotations)
    psg = _load(path)
    classes = [*psg.thing_classes, *(psg.stuff_classes or [])]
    images_dir = resolve_path(source.images)
    # Panoptic annotation boxes every thing of its classes: an absent one is truly absent.
    vocabulary = tuple(sorted({_class_name(c) for c in psg.thing_classes}))
    first_seen: dict[Any, int] = {}  # image id -> the data index that listed it first
    for i, entry in enumerate(psg.data):
        skips: list[Rejection] = []
        where = f"{path.name}: data[{i}]"
        if not isinstance(entry, _Entry):  # the decoding error, from `_loosely`
            yield Rejection("bad_image_entry", f"{where}: {entry}", source.name, None)
            continue
        record = _record(entry, where, classes, psg, source, images_dir, vocabulary, skips)
        image_id = record.image_id
        if isinstance(record, ImageRecord) and image_id in first_seen:
            detail = (
                f"{where}: image_id {image_id!r} is listed already at data[{first_seen[image_id]}]"
            )
            yield _skip("duplicate_image_entry", f"{detail}; skipped", source.name, image_id)
            continue
        first_seen.setdefault(image_id, i)
        yield record
        yield from skips


def _load(path: Path) -> _PsgFile:
    try:
        with (
            open(path, "rb") as handle,
            mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as raw,
        ):
            psg = _decode(raw)
    except FileNotFoundError:
        raise InputError(f"{path}: file not found; check `annotations` in your config") from None
    except msgspec.ValidationError as exc:
        raise InputError(f"{path}: not a psg.json file: {exc}") from None
    except msgspec.DecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc}); is the file complete?") from None
    except RecursionError:
        raise InputError(f"{path}: {NESTED_TOO_DEEPLY}") from None
    except (ValueError, OSError) as exc:  # an empty file cannot be mapped
        raise InputError(f"{path}: cannot read it ({exc}); is it empty?") from None
    missing = [k for k in ("data", "thing_classes", "predicate_classes") if getattr(psg, k) is None]
    if missing:
        raise InputError(f"{path}: not a psg.json file: no {', '.join(missing)} at the top level")
    _check_names(psg, path)
    return psg


def _check_names(psg: _PsgFile, path: Path) -> None:
    """Refuse a file with a class or predicate name over `MAX_NAME_CHARS` (a broken file)."""
    for key in ("thing_classes", "stuff_classes", "predicate_classes"):
        for i, name in enumerate(getattr(psg, key) or ()):
            shown = clean_predicate(name) if key == "predicate_classes" else _class_name(name)
            if problem := name_problem(shown):
                raise InputError(
                    f"{path}: {key}[{i}]: {_preview(shown)} {problem}; fix or remove this class"
                )


def _decode(raw: Any) -> _PsgFile:
    """The file; an entry of `data` that is not an object is replaced by the error message."""
    try:
        return msgspec.json.decode(raw, type=_PsgFile)
    except msgspec.ValidationError as exc:
        whole_file = exc
    try:  # decodes when only entries of `data` are at fault
        psg = msgspec.json.decode(raw, type=_LoosePsgFile)
    except msgspec.ValidationError:  # a class list of the wrong shape: the whole file
        raise whole_file from None
    psg.data = [_entry_or_error(entry) for entry in psg.data or ()]
    return psg


def _entry_or_error(raw: msgspec.Raw) -> _Entry | str:
    try:
        return msgspec.json.decode(raw, type=_Entry)
    except msgspec.ValidationError:
        return f"must be an object, got {_json_kind(msgspec.json.decode(raw))}"


def _json_kind(value: Any) -> str:
    """The JSON name of a decoded value's type: null, a list, a string, ..."""
    kinds = {type(None): "null", bool: "true/false", list: "a list", str: "a string"}
    return kinds.get(type(value), "a number")


def _record(
    entry: _Entry,
    where: str,
    classes: list[str],
    psg: _PsgFile,
    source: PsgSourceConfig,
    images_dir: Path,
    vocabulary: tuple[str, ...],
    skips: list[Rejection],
) -> ImageRecord | Rejection:
    image_id = entry.image_id
    if isinstance(image_id, str) and image_id.isdigit():
        image_id = int(image_id)
    problem = _entry_problem(entry, image_id)
    if problem:
        return Rejection("bad_image_entry", f"{where}: {problem}", source.name, image_id)
    objects, index = _objects(entry, where, classes, source.name, image_id, skips)
    relations = _relations(entry, where, index, psg.predicate_classes, source.name, image_id, skips)
    return ImageRecord(
        dataset=source.name,
        image_id=image_id,
        file_name=entry.file_name,
        images_dir=images_dir,
        width=entry.width,
        height=entry.height,
        objects=tuple(objects),
        relations=tuple(dict.fromkeys(relations)),
        vocabulary=vocabulary,
    )


def _entry_problem(entry: _Entry, image_id: Any) -> str | None:
    if image_id.__class__ not in (int, str) or image_id == "":
        return f"'image_id' must be an integer or a string, got {image_id!r}"
    if not isinstance(entry.file_name, str) or not entry.file_name.strip():
        return f"'file_name' must be a non-empty string, got {entry.file_name!r}"
    return side_problem("width", entry.width) or side_problem("height", entry.height)


def _objects(
    entry: _Entry, where: str, classes: list[str], dataset: str, image_id: Any, skips: list
) -> tuple[list[ObjectBox], dict[int, int]]:
    """The image's boxes, and annotation index -> object index for the relations."""
    objects: list[ObjectBox] = []
    index: dict[int, int] = {}
    for i, ann in enumerate(entry.annotations if isinstance(entry.annotations, list) else ()):
        field = f"{where}.annotations[{i}]"
        category = ann.get("category_id") if isinstance(ann, dict) else None
        bbox = ann.get("bbox") if isinstance(ann, dict) else None
        if category.__class__ is not int or not 0 <= category < len(classes):
            skips.append(
                _skip("unknown_category", f"{field}: category_id {category!r}", dataset, image_id)
            )
            continue
        box = _xyxy_to_xywh(bbox)
        box = (
            clip_box(box, entry.width, entry.height)
            if box is not None
            else f"{bbox!r} is not [x1, y1, x2, y2]"
        )
        if isinstance(box, str):
            reason = "box_outside_image" if "outside" in box or "no area" in box else "bad_box"
            skips.append(_skip(reason, f"{field}: bbox {box}", dataset, image_id))
            continue
        index[i] = len(objects)
        objects.append(ObjectBox(_class_name(classes[category]), *box))
    return objects, index


def _relations(
    entry: _Entry,
    where: str,
    index: dict[int, int],
    predicates: list[str],
    dataset: str,
    image_id: Any,
    skips: list,
) -> list[Relation]:
    relations = []
    for i, triple in enumerate(entry.relations if isinstance(entry.relations, list) else ()):
        field = f"{where}.relations[{i}]"
        if not (
            isinstance(triple, list)
            and len(triple) == 3
            and all(v.__class__ is int for v in triple)
        ):
            skips.append(
                _skip(
                    "bad_relation",
                    f"{field}: {triple!r} is not [subject, object, predicate]",
                    dataset,
                    image_id,
                )
            )
            continue
        subject, obj, predicate = triple
        if subject not in index or obj not in index:
            detail = f"{field}: subject {subject} or object {obj} is not a usable annotation"
            skips.append(_skip("relation_missing_object", detail, dataset, image_id))
        elif not 0 <= predicate < len(predicates) or not clean_predicate(predicates[predicate]):
            skips.append(
                _skip(
                    "empty_predicate",
                    f"{field}: predicate {predicate} is not in predicate_classes",
                    dataset,
                    image_id,
                )
            )
        elif subject == obj:
            skips.append(
                _skip(
                    "self_relation",
                    f"{field}: subject and object are one object",
                    dataset,
                    image_id,
                )
            )
        else:
            relations.append(
                Relation(index[subject], clean_predicate(predicates[predicate]), index[obj])
            )
    return relations


def _xyxy_to_xywh(bbox: Any) -> list[float] | None:
    if not (isinstance(bbox, list) and len(bbox) == 4):
        return None
    if not all(v.__class__ in (int, float) for v in bbox):
        return None
    x1, y1, x2, y2 = bbox
    return [x1, y1, x2 - x1, y2 - y1]


def _class_name(name: str) -> str:
    """PSG's stuff classes carry suffixes like `wall-other-merged`; keep the readable part."""
    for suffix in ("-merged", "-other", "-stuff"):
        name = name.removesuffix(suffix)
    return name.replace("-", " ")


def _skip(reason: str, detail: str, dataset: str, image_id: Any) -> Rejection:
    return Rejection(reason, detail, dataset, image_id, record_only=True)
