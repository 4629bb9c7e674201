"""COCO instances and captions files -> image records.

Files are decoded with msgspec into small typed structs that name only the fields we read,
so the polygon `segmentation` arrays (most of the bytes of an instances file) are skipped
without ever becoming Python objects. Several files are merged by image id.

Whole-file problems (missing, not JSON, wrong shape) raise `InputError`. A bad record costs
only its image: the image comes out as a `Rejection` naming the file, record and field.
"""

from __future__ import annotations

import contextlib
import gc
import json
import mmap
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import msgspec
import numpy as np
from mminstruct.converters.jsonstream import decode_problem, first_non_utf8

from mminstruct.config import CocoSourceConfig
from mminstruct.errors import InputError
from mminstruct.records import (
    ImageId,
    ImageRecord,
    ObjectBox,
    Rejection,
    Relation,
    bare_predicate,
)
from mminstruct.resources import resolve_path

# A box may stick out of its image by this much (COCO has many off-by-a-pixel boxes);
# it is clipped. Further out, the annotation is wrong and its image is rejected.
BOX_TOLERANCE_PX = 2.0
BOX_TOLERANCE_FRACTION = 0.01
MAX_CAPTION_CHARS = 2000  # longer "captions" are broken records, not descriptions


class _Image(msgspec.Struct, gc=False):
    id: Any = None
    file_name: Any = None
    width: Any = None
    height: Any = None
    license: Any = None


class _Annotation(msgspec.Struct, gc=False):
    id: Any = None
    image_id: Any = None
    category_id: Any = None
    bbox: Any = None
    iscrowd: Any = 0
    caption: Any = None


class _Category(msgspec.Struct, gc=False):
    id: Any = None
    name: Any = None


class _License(msgspec.Struct, gc=False):
    id: Any = None
    name: Any = None
    url: Any = None


class _CocoFile(msgspec.Struct):
    images: list[_Image] | None = None
    annotations: list[_Annotation] | None = None
    categories: list[_Category] | None = None
    licenses: list[_License] | None = None


class _Relation(msgspec.Struct, gc=False):
    image_id: Any = None
    subject_id: Any = None
    object_id: Any = None
    predicate: Any = None


class _RelationsFile(msgspec.Struct):
    relations: list[_Relation] | None = None


_DECODER = msgspec.json.Decoder(_CocoFile)


@dataclass(slots=True)
class _PendingImage:
    """An image entry being assembled from one or more files."""

    id: ImageId
    file_name: str
    width: int
    height: int
    license: Any = None
    in_instances: bool = False
    captions: list[str] = field(default_factory=list)
    objects: list[ObjectBox] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)
    problem: tuple[str, str] | None = None  # (reason, detail) of the first bad record


def read_coco(source: CocoSourceConfig) -> Iterator[ImageRecord | Rejection]:
    """Every image of a COCO source, in file order: a record, or a rejection with its reason.

    Skipped records (an annotation or caption that names no image) come first.
    """
    with _gc_paused():
        images, skipped, vocabulary, licenses = _read_files(source)
    yield from skipped
    images_dir = resolve_path(source.images)
    for image_id in list(images):  # file order, like pycocotools; stable for the same files
        yield _finish(images.pop(image_id), source.name, images_dir, vocabulary, licenses)


def _read_files(source: CocoSourceConfig) -> tuple[dict, list[Rejection], tuple[str, ...], dict]:
    """Merge every instances and captions file of a source, by image id."""
    images: dict[ImageId, _PendingImage] = {}
    skipped: list[Rejection] = []
    categories: dict[Any, str] = {}
    licenses: dict[Any, dict] = {}
    # annotation id -> (image id, object index), for relations; None where ids repeat
    objects_by_id: dict[Any, tuple[ImageId, int] | None] | None = {} if source.relations else None
    for path in map(resolve_path, source.instances):
        data = load_coco_file(path, needs=("images", "annotations", "categories"))
        _merge_licenses(data, licenses)
        _merge_images(data, path, source.name, images, skipped, in_instances=True)
        _merge_categories(data, path, categories)
        _attach_objects(data, path, source.name, images, categories, skipped, objects_by_id)
        del data  # free this file's structs before decoding the next
    for path in map(resolve_path, source.captions):
        data = load_coco_file(path, needs=("images", "annotations"))
        _check_captions_file(data, path)
        _merge_licenses(data, licenses)
        _merge_images(data, path, source.name, images, skipped, in_instances=False)
        _attach_captions(data, path, source.name, images, skipped)
        del data
    for path in map(resolve_path, source.relations):
        relations = load_relations_file(path)
        _attach_relations(relations, path, source.name, images, objects_by_id or {}, skipped)
    return images, skipped, tuple(sorted(set(categories.values()))), licenses


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while files are merged.

    Merging makes millions of small objects and no reference cycles; with the collector on,
    its repeated full passes over the growing heap cost more than the merging itself.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_coco_file(path: Path, needs: tuple[str, ...]) -> _CocoFile:
    """Decode one COCO JSON file, keeping only the fields the converter reads."""
    try:
        with open(path, "rb") as handle:
            data = _decode(handle, path)
    except FileNotFoundError:
        raise InputError(f"{path}: file not found; check the path in your config") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder; give the path of a JSON file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror})") from None
    missing = [key for key in needs if getattr(data, key) is None]
    if missing:
        listed = ", ".join(f"'{k}'" for k in missing)
        raise InputError(f"{path}: not a COCO annotation file: no {listed} list at the top level")
    return data


def _decode(handle: BinaryIO, path: Path) -> _CocoFile:
    """Decode straight from the page cache (a memory map): no copy of a 450 MB file."""
    size = os.fstat(handle.fileno()).st_size
    if size == 0:
        raise InputError(f"{path}: file is empty; is it a COCO annotation file?")
    with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as raw:
        try:
            return _DECODER.decode(raw)
        except msgspec.ValidationError as exc:
            raise InputError(_not_annotations(raw, path, exc)) from None
        except (msgspec.DecodeError, UnicodeDecodeError):  # msgspec raises both
            return _decode_lenient(raw[:], path)


def _decode_lenient(raw: bytes, path: Path) -> _CocoFile:
    """Python's json accepts what strict JSON does not (NaN, Infinity); try it before failing.

    Bytes that are not UTF-8 become U+FFFD, so that a stray Latin-1 caption costs only that
    caption (skipped as `bad_caption`), not the whole file.
    """
    try:
        obj = json.loads(raw.decode("utf-8", errors="replace"))
    except json.JSONDecodeError as exc:
        _check_utf8(raw, path)
        raise InputError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno});"
            " the file may be truncated or not a COCO file"
        ) from None
    try:
        return msgspec.convert(obj, _CocoFile)
    except msgspec.ValidationError as exc:
        raise InputError(_not_annotations(raw, path, exc)) from None


def _not_annotations(raw: Any, path: Path, exc: msgspec.ValidationError) -> str:
    """Why a file that is JSON is not an annotation file; a top-level list is a results file."""
    if raw[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"["):
        return (
            f"{path}: not a COCO annotation file: the top level is a JSON list; this looks like "
            "a results file (detections or captions from a model), not an annotation file "
            "(an object with 'images' and 'annotations')"
        )
    return f"{path}: not a COCO annotation file: {exc}"


def _check_utf8(raw: bytes, path: Path) -> None:
    if first_non_utf8(raw) is not None:
        problem = decode_problem(raw, ValueError())
        raise InputError(f"{path}: {problem}; is it a JSON file?") from None


def _check_captions_file(data: _CocoFile, path: Path) -> None:
    sample = data.annotations[:50]
    if sample and all(a.caption is None for a in sample):
        raise InputError(
            f"{path}: has no 'caption' fields; is it an instances file? "
            "list it under `instances`, not `captions`"
        )


def _merge_licenses(data: _CocoFile, licenses: dict[Any, dict]) -> None:
    for item in data.licenses or ():
        if item.id is not None:
            licenses.setdefault(item.id, {"id": item.id, "name": item.name, "url": item.url})


def _merge_categories(data: _CocoFile, path: Path, categories: dict[Any, str]) -> None:
    for i, cat in enumerate(data.categories):
        name = clean_caption(cat.name)  # one line of text: it becomes a line of the context
        if not _valid_id(cat.id) or not name or "\ufffd" in name:
            raise InputError(
                f"{path}: categories[{i}]: needs an id and a non-empty 'name' of UTF-8 text"
            )
        if categories.setdefault(cat.id, name) != name:
            raise InputError(
                f"{path}: categories[{i}]: id {cat.id} is '{name}' here but "
                f"'{categories[cat.id]}' in an earlier file; the files do not belong together"
            )


def _merge_images(
    data: _CocoFile,
    path: Path,
    dataset: str,
    images: dict[ImageId, _PendingImage],
    skipped: list[Rejection],
    in_instances: bool,
) -> None:
    listed = set()  # ids seen in this file: an id listed twice in one file is a copy
    for i, entry in enumerate(data.images):
        problem = _image_entry_problem(entry)
        if problem and not _valid_id(entry.id):
            detail = f"{path.name}: images[{i}]: {problem}"
            skipped.append(Rejection("bad_image_entry", detail, dataset, None))
            continue
        known = images.get(entry.id)
        if problem:
            known = known or images.setdefault(entry.id, _PendingImage(entry.id, "", 0, 0))
            known.problem = known.problem or (
                "bad_image_entry",
                f"{path.name}: images[{i}]: {problem}",
            )
            continue
        if known is None:
            known = images[entry.id] = _PendingImage(
                entry.id, entry.file_name, entry.width, entry.height, entry.license
            )
        elif (known.file_name, known.width, known.height) != (
            entry.file_name,
            entry.width,
            entry.height,
        ):
            detail = (
                f"{path.name}: images[{i}] (id {entry.id}): file_name/width/height "
                f"{entry.file_name}/{entry.width}/{entry.height} disagree with an earlier entry "
                f"{known.file_name}/{known.width}/{known.height}"
            )
            known.problem = known.problem or ("conflicting_image_entries", detail)
        elif entry.id in listed:
            detail = f"{path.name}: images[{i}] (id {entry.id}): listed twice in this file; skipped"
            skipped.append(_record_skip("duplicate_image_entry", detail, dataset, entry.id))
        listed.add(entry.id)
        known.in_instances |= in_instances


def _image_entry_problem(entry: _Image) -> str | None:
    if not _valid_id(entry.id):
        return f"'id' must be an integer or a string, got {entry.id!r}"
    if not isinstance(entry.file_name, str) or not entry.file_name.strip():
        return f"'file_name' must be a non-empty string, got {entry.file_name!r}"
    for name in ("width", "height"):
        value = getattr(entry, name)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            return f"'{name}' must be a positive integer, got {value!r}"
    return None


def _attach_objects(
    data: _CocoFile,
    path: Path,
    dataset: str,
    images: dict[ImageId, _PendingImage],
    categories: dict[Any, str],
    skipped: list[Rejection],
    objects_by_id: dict[Any, tuple[ImageId, int] | None] | None = None,
) -> None:
    """Add each annotation's box to its image; a bad one marks the image as rejected.

    COCO train has 860k boxes, so the checks run on whole columns at once (numpy): the
    image and category of every box, and whether it lies inside its image. Only the rare
    rows that fail go through `_check_annotation` one by one, for the exact message (or a
    box clipped by a hair). Boxes are then created image by image, so each image's objects
    sit side by side in memory, which keeps later passes over them fast.
    """
    annotations = data.annotations
    pending = list(images.values())
    where = _positions([a.image_id for a in annotations], list(images))
    names = list(categories.values())
    category = _positions([a.category_id for a in annotations], list(categories))
    boxes = _box_array([a.bbox for a in annotations])
    x, y, w, h = boxes.T
    width = np.array([p.width for p in pending] + [0], dtype=np.float64)[where]
    height = np.array([p.height for p in pending] + [0], dtype=np.float64)[where]
    with np.errstate(invalid="ignore"):
        inside = (w > 0) & (h > 0) & (x >= 0) & (y >= 0) & (x + w <= width) & (y + h <= height)
    repeated = _skip_repeated_ids(annotations, path, dataset, skipped)
    good = (where >= 0) & (category >= 0) & inside & ~repeated
    for i in np.flatnonzero(~good & ~repeated).tolist():
        image = pending[where[i]] if where[i] >= 0 else None
        box = _check_annotation(i, annotations[i], image, categories, path, dataset, skipped)
        if box is not None:
            boxes[i], good[i] = box, True
    bad_images = {i for i, p in enumerate(pending) if p.problem}
    keep = np.flatnonzero(good & ~np.isin(where, list(bad_images)))
    order = keep[np.argsort(where[keep], kind="stable")]
    crowd = np.array([a.iscrowd for a in annotations], dtype=object)[order].astype(bool)
    labels = [names[c] for c in category[order].tolist()]
    objects = list(map(ObjectBox, labels, *boxes[order].T.tolist(), crowd.tolist()))
    if objects_by_id is not None:
        _index_objects(annotations, order, where[order], pending, objects_by_id)
    _split_to_images(objects, where[order], pending, "objects")


def _index_objects(
    annotations: list[_Annotation],
    order: np.ndarray,
    where: np.ndarray,
    pending: list[_PendingImage],
    objects_by_id: dict[Any, tuple[ImageId, int] | None],
) -> None:
    """Remember where each kept annotation's object lands: (image id, index in its objects)."""
    counts = np.bincount(where, minlength=len(pending))
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    base = np.array([len(p.objects) for p in pending] + [0], dtype=np.int64)
    slots = (np.arange(len(order)) - starts[where] + base[where]).tolist()
    for i, image, slot in zip(order.tolist(), where.tolist(), slots, strict=True):
        ann_id = annotations[i].id
        if ann_id.__class__ in _ID_TYPES:
            seen = ann_id in objects_by_id
            objects_by_id[ann_id] = None if seen else (pending[image].id, slot)


def _skip_repeated_ids(
    annotations: list[_Annotation], path: Path, dataset: str, skipped: list[Rejection]
) -> np.ndarray:
    """True for each annotation whose id an earlier one in the file has; each is skipped.

    A copied annotation would count its object twice, and relations name objects by id.
    """
    ids = [a.id for a in annotations]
    repeated = np.zeros(len(ids), dtype=bool)
    with contextlib.suppress(TypeError):  # an unhashable "id" (a list) is no id: not checked
        if len(set(ids)) == len(ids):
            return repeated  # the common case, at the cost of one set
    seen = set()
    for i, value in enumerate(ids):
        if value.__class__ in _ID_TYPES:
            repeated[i] = value in seen
            seen.add(value)
    for i in np.flatnonzero(repeated).tolist():
        ann = annotations[i]
        image_id = ann.image_id if _valid_id(ann.image_id) else None
        detail = f"{path.name}: annotations[{i}] (id {ann.id}): an earlier one has this id; skipped"
        skipped.append(_record_skip("duplicate_annotation_id", detail, dataset, image_id))
    return repeated


def _check_annotation(
    i: int,
    ann: _Annotation,
    image: _PendingImage | None,
    categories: dict[Any, str],
    path: Path,
    dataset: str,
    skipped: list[Rejection],
) -> tuple[float, float, float, float] | None:
    """One annotation that failed the column checks: its clipped box, or None after
    recording why it is out (an orphan is skipped; anything else rejects its image)."""
    where = f"{path.name}: annotations[{i}] (id {ann.id})"
    if image is None:
        detail = f"{where}: image_id {ann.image_id!r} has no entry in 'images'"
        skipped.append(_record_skip("annotation_without_image", detail, dataset, None))
        return None
    if image.problem:
        return None
    if ann.category_id.__class__ not in _ID_TYPES or ann.category_id not in categories:
        detail = f"{where}: category_id {ann.category_id!r} is not in 'categories'"
        image.problem = ("unknown_category", detail)
        return None
    box = clip_box(ann.bbox, image.width, image.height)
    if isinstance(box, str):
        image.problem = ("bad_box", f"{where}: bbox {box}")
        return None
    return box


def _positions(values: list[Any], keys: list[Any]) -> np.ndarray:
    """Index of each value in `keys`, -1 where absent: vectorized when all are plain ints."""
    if keys and set(map(type, values)) == {int} and set(map(type, keys)) == {int}:
        try:
            wanted = np.asarray(values, dtype=np.int64)
            known = np.asarray(keys, dtype=np.int64)
        except OverflowError:
            pass
        else:
            return _int_positions(wanted, known)
    index = {key: i for i, key in enumerate(keys)}
    looked_up = (index.get(v, -1) if v.__class__ in _ID_TYPES else -1 for v in values)
    return np.fromiter(looked_up, dtype=np.int64, count=len(values))


def _int_positions(wanted: np.ndarray, known: np.ndarray) -> np.ndarray:
    """`_positions` for integer ids: a lookup table when ids are dense enough, else a search."""
    low, high = int(known.min()), int(known.max())
    if high - low <= 16 * len(known) + 1_000_000:
        table = np.full(high - low + 2, -1, dtype=np.int64)  # the last slot: out of range
        table[known - low] = np.arange(len(known))
        return table[np.where((wanted >= low) & (wanted <= high), wanted - low, high - low + 1)]
    sorter = np.argsort(known, kind="stable")
    found = sorter[np.searchsorted(known, wanted, sorter=sorter).clip(max=len(known) - 1)]
    return np.where(known[found] == wanted, found, -1)


def _box_array(bboxes: list[Any]) -> np.ndarray:
    """The boxes as an (n, 4) float array; a malformed one becomes a row of NaN."""
    try:
        array = np.array(bboxes)
        if array.ndim == 2 and array.shape[1] == 4 and array.dtype.kind in "biuf":
            return array.astype(np.float64)
    except (ValueError, TypeError):
        pass
    numeric = (_is_numeric_box(b) for b in bboxes)
    rows = [b if ok else _NAN_BOX for b, ok in zip(bboxes, numeric, strict=True)]
    return np.array(rows, dtype=np.float64).reshape(len(rows), 4)


def _is_numeric_box(bbox: Any) -> bool:
    return bbox.__class__ is list and len(bbox) == 4 and all(v.__class__ in _NUMBERS for v in bbox)


def _split_to_images(
    items: list[Any], where: np.ndarray, pending: list[_PendingImage], field: str
) -> None:
    """Append `items` (sorted by image position `where`) to each image's `field` list."""
    counts = np.bincount(where, minlength=len(pending)).tolist()
    start = 0
    for image, count in zip(pending, counts, strict=True):
        if count:
            getattr(image, field).extend(items[start : start + count])
            start += count


def clip_box(bbox: Any, width: int, height: int) -> tuple[float, float, float, float] | str:
    """The box clipped to its image, or a message saying what is wrong with it."""
    if not isinstance(bbox, list) or len(bbox) != 4:
        return f"{bbox!r} must be a list [x, y, width, height]"
    if not all(v.__class__ in _NUMBERS for v in bbox):
        return f"{bbox!r} must hold 4 numbers"
    x, y, w, h = map(float, bbox)
    if x - x + y - y + w - w + h - h != 0:  # NaN or infinity in any of them
        return f"{bbox!r} is not finite"
    if w <= 0 or h <= 0:
        return f"{bbox!r} has non-positive width or height"
    slack_x = max(BOX_TOLERANCE_PX, BOX_TOLERANCE_FRACTION * width)
    slack_y = max(BOX_TOLERANCE_PX, BOX_TOLERANCE_FRACTION * height)
    if x < -slack_x or y < -slack_y or x + w > width + slack_x or y + h > height + slack_y:
        return f"{bbox!r} lies outside the {width}x{height} image"
    x1, y1 = max(0.0, x), max(0.0, y)
    x2, y2 = min(float(width), x + w), min(float(height), y + h)
    if x2 <= x1 or y2 <= y1:
        return f"{bbox!r} has no area inside the {width}x{height} image"
    return x1, y1, x2 - x1, y2 - y1


def _attach_captions(
    data: _CocoFile,
    path: Path,
    dataset: str,
    images: dict[ImageId, _PendingImage],
    skipped: list[Rejection],
) -> None:
    """Add each caption to its image, cleaned; an orphan or an empty one is skipped."""
    annotations = data.annotations
    pending = list(images.values())
    where = _positions([a.image_id for a in annotations], list(images))
    texts = [clean_caption(a.caption) for a in annotations]
    fine = [0 < len(t) <= MAX_CAPTION_CHARS and "\ufffd" not in t for t in texts]
    good = (where >= 0) & np.array(fine, dtype=bool)
    for i in np.flatnonzero(~good).tolist():
        ann = annotations[i]
        where_ = f"{path.name}: annotations[{i}] (id {ann.id})"
        if where[i] < 0:
            detail = f"{where_}: image_id {ann.image_id!r} has no entry in 'images'"
            skipped.append(_record_skip("caption_without_image", detail, dataset, None))
        else:
            problem = _caption_problem(texts[i])
            detail = f"{where_}: caption {_preview(ann.caption)} {problem}; skipped"
            skipped.append(_record_skip("bad_caption", detail, dataset, ann.image_id))
    keep = np.flatnonzero(good)
    order = keep[np.argsort(where[keep], kind="stable")]
    _split_to_images([texts[i] for i in order.tolist()], where[order], pending, "captions")


def load_relations_file(path: Path) -> list[_Relation]:
    """The `relations` list of a file (a COCO instances file may carry it too)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found; check `relations` in your config") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror})") from None
    try:
        data = msgspec.json.decode(raw, type=_RelationsFile)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a relations file ({decode_problem(raw, exc)})") from None
    except msgspec.ValidationError as exc:
        raise InputError(f"{path}: not a relations file ({exc})") from None
    if data.relations is None:
        raise InputError(
            f"{path}: no 'relations' list at the top level; expected "
            '{"relations": [{"image_id", "subject_id", "object_id", "predicate"}, ...]}'
        )
    return data.relations


def _attach_relations(
    relations: list[_Relation],
    path: Path,
    dataset: str,
    images: dict[ImageId, _PendingImage],
    objects_by_id: dict[Any, tuple[ImageId, int] | None],
    skipped: list[Rejection],
) -> None:
    """Add each relation to its image; one that cannot be placed is skipped and counted."""
    for i, rel in enumerate(relations):
        where = f"{path.name}: relations[{i}]"
        image = images.get(rel.image_id) if rel.image_id.__class__ in _ID_TYPES else None
        problem = _relation_problem(rel, image, objects_by_id)
        if problem:
            reason, detail = problem
            skipped.append(_record_skip(reason, f"{where}: {detail}", dataset, rel.image_id))
            continue
        subject = objects_by_id[rel.subject_id][1]
        obj = objects_by_id[rel.object_id][1]
        relation = Relation(subject, clean_predicate(rel.predicate), obj)
        if relation not in image.relations:
            image.relations.append(relation)


def _relation_problem(
    rel: _Relation,
    image: _PendingImage | None,
    objects_by_id: dict[Any, tuple[ImageId, int] | None],
) -> tuple[str, str] | None:
    if image is None:
        return "relation_without_image", f"image_id {rel.image_id!r} has no entry in 'images'"
    if not clean_predicate(rel.predicate):
        return "empty_predicate", f"predicate {_preview(rel.predicate)} is empty or not text"
    for side in ("subject_id", "object_id"):
        value = getattr(rel, side)
        found = objects_by_id.get(value) if value.__class__ in _ID_TYPES else None
        if found is None or found[0] != image.id:
            what = "is not an annotation of this image" if found else "names no usable annotation"
            detail = f"{side} {value!r} {what} (ids repeated or rejected count as missing)"
            return "relation_missing_object", detail
    if rel.subject_id == rel.object_id:
        return "self_relation", "subject_id and object_id are the same annotation"
    return None


def _caption_problem(text: str) -> str:
    if not text:
        return "is empty or not text"
    if len(text) > MAX_CAPTION_CHARS:
        return f"is over {MAX_CAPTION_CHARS} characters"
    return "is not valid UTF-8 text (bytes that are not UTF-8 read as U+FFFD)"


def clean_predicate(predicate: Any) -> str:
    """A relation's predicate as a context line shows it: lowercase, single spaces, no
    trailing article or punctuation ("Wearing a" -> "wearing"); "" if it is not text."""
    return bare_predicate(clean_caption(predicate).lower().rstrip(".,;:!? "))


def clean_caption(caption: Any) -> str:
    """One line of plain text: whitespace and control characters folded into single spaces."""
    if caption.__class__ is not str:
        return ""
    if caption.isprintable():
        if "  " not in caption and caption[:1] != " " and caption[-1:] != " ":
            return caption  # already clean: the common case
    else:
        caption = "".join(c if c.isprintable() else " " for c in caption)
    return " ".join(caption.split())


def _finish(
    image: _PendingImage,
    dataset: str,
    images_dir: Path,
    vocabulary: tuple[str, ...],
    licenses: dict[Any, dict],
) -> ImageRecord | Rejection:
    if image.problem:
        return Rejection(image.problem[0], image.problem[1], dataset, image.id)
    return ImageRecord(
        dataset=dataset,
        image_id=image.id,
        file_name=image.file_name,
        images_dir=images_dir,
        width=image.width,
        height=image.height,
        captions=tuple(dict.fromkeys(image.captions)),
        objects=tuple(image.objects),
        relations=tuple(image.relations),
        vocabulary=vocabulary if image.in_instances else (),
        license=licenses.get(image.license),
    )


def _record_skip(reason: str, detail: str, dataset: str, image_id: Any) -> Rejection:
    return Rejection(reason, detail, dataset, image_id, record_only=True)


_ID_TYPES = frozenset((int, str))  # exact classes: a bool is not an image id
_NUMBERS = frozenset((int, float))
_NAN_BOX = [float("nan")] * 4


def _valid_id(value: Any) -> bool:
    return value.__class__ in _ID_TYPES


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
