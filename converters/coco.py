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
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from mminstruct.converters.coco_columns import _box_array, _positions
from mminstruct.converters.coco_files import (
    _Annotation,
    _check_captions_file,
    _CocoFile,
    _Image,
    _Relation,
    load_coco_file,
    load_relations_file,
)
from mminstruct.converters.coco_segments import segment_areas
from mminstruct.converters.common import (
    _ID_TYPES,
    _preview,
    _record_skip,
    _valid_id,
    clean_caption,
    clean_predicate,
    clip_box,
    name_problem,
    side_problem,
)
from mminstruct.converters.refexps import attach_refexps, load_refexps

from mminstruct.config import CocoSourceConfig
from mminstruct.errors import InputError
from mminstruct.records import ImageId, ImageRecord, ObjectBox, Region, Rejection, Relation
from mminstruct.resources import resolve_path

MAX_CAPTION_CHARS = 2000  # longer "captions" are broken records, not descriptions


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
    referring: list[Region] = field(default_factory=list)  # from `refexps` files
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
    wanted = source.relations or source.refexps
    objects_by_id: dict[Any, tuple[ImageId, int] | None] | None = {} if wanted else None
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
    for path in map(resolve_path, source.refexps):
        entries = load_refexps(path)
        attach_refexps(entries, path, source.name, images, objects_by_id or {}, skipped)
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
        if problem := name_problem(name):
            raise InputError(
                f"{path}: categories[{i}] (id {cat.id}): 'name' {_preview(name)} {problem}; "
                "fix or remove this category"
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
    return side_problem("width", entry.width) or side_problem("height", entry.height)


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
    areas = _segment_areas(annotations, order, where[order], pending, path, dataset, skipped)
    columns = (*boxes[order].T.tolist(), crowd.tolist(), itertools.repeat(()), areas)
    objects = list(map(ObjectBox, labels, *columns))
    if objects_by_id is not None:
        _index_objects(annotations, order, where[order], pending, objects_by_id)
    _split_to_images(objects, where[order], pending, "objects")


def _segment_areas(
    annotations: list[_Annotation],
    order: np.ndarray,
    where: np.ndarray,
    pending: list[_PendingImage],
    path: Path,
    dataset: str,
    skipped: list[Rejection],
) -> list[float]:
    """Each kept annotation's segment area in pixels: its `area`, else computed from its
    `segmentation` (`coco_segments`); 0.0 where neither gives one, a bad one is skipped."""
    areas = [
        float(a) if _positive(a) else 0.0 for a in (annotations[i].area for i in order.tolist())
    ]
    missing = [k for k, area in enumerate(areas) if area == 0.0]
    sizes = {int(order[k]): (pending[where[k]].height, pending[where[k]].width) for k in missing}
    found = segment_areas(path, sizes) if sizes else {}
    for k in missing:
        i, result = int(order[k]), found.get(int(order[k]))
        if isinstance(result, str):
            detail = f"{path.name}: annotations[{i}] (id {annotations[i].id!r}): {result}"
            skipped.append(_record_skip("bad_segmentation", detail, dataset, pending[where[k]].id))
        elif result is not None:
            areas[k] = result
    return areas


def _positive(value: Any) -> bool:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return number and math.isfinite(value) and value > 0


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
    predicate = clean_predicate(rel.predicate)
    if not predicate:
        return "empty_predicate", f"predicate {_preview(rel.predicate)} is empty or not text"
    if problem := name_problem(predicate):
        return "name_too_long", f"predicate {_preview(predicate)} {problem}"
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
        referring=tuple(image.referring),
        vocabulary=vocabulary if image.in_instances else (),
        license=licenses.get(image.license),
    )
