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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from mminstruct.config import CocoSourceConfig
from mminstruct.errors import InputError
from mminstruct.records import ImageId, ImageRecord, ObjectBox, Rejection
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
    for path in map(resolve_path, source.instances):
        data = load_coco_file(path, needs=("images", "annotations", "categories"))
        _merge_licenses(data, licenses)
        _merge_images(data, path, source.name, images, skipped, in_instances=True)
        _merge_categories(data, path, categories)
        _attach_objects(data, path, source.name, images, categories, skipped)
        del data  # free this file's structs before decoding the next
    for path in map(resolve_path, source.captions):
        data = load_coco_file(path, needs=("images", "annotations"))
        _check_captions_file(data, path)
        _merge_licenses(data, licenses)
        _merge_images(data, path, source.name, images, skipped, in_instances=False)
        _attach_captions(data, path, source.name, images, skipped)
        del data
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
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found; check the path in your config") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror})") from None
    try:
        data = _DECODER.decode(raw)
    except msgspec.ValidationError as exc:
        raise InputError(f"{path}: not a COCO annotation file: {exc}") from None
    except msgspec.DecodeError:
        data = _decode_lenient(raw, path)
    missing = [key for key in needs if getattr(data, key) is None]
    if missing:
        listed = ", ".join(f"'{k}'" for k in missing)
        raise InputError(f"{path}: not a COCO annotation file: no {listed} list at the top level")
    return data


def _decode_lenient(raw: bytes, path: Path) -> _CocoFile:
    """Python's json accepts what strict JSON does not (NaN, Infinity); try it before failing."""
    try:
        obj = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start}); is it a JSON file?") from None
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno});"
            " the file may be truncated or not a COCO file"
        ) from None
    try:
        return msgspec.convert(obj, _CocoFile)
    except msgspec.ValidationError as exc:
        raise InputError(f"{path}: not a COCO annotation file: {exc}") from None


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
        name = cat.name.strip() if isinstance(cat.name, str) else ""
        if not _valid_id(cat.id) or not name:
            raise InputError(f"{path}: categories[{i}]: needs an id and a non-empty 'name'")
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
) -> None:
    """Add each annotation's box to its image; a bad one marks the image as rejected.

    This loop runs once per box (860k times for COCO train), so the common case, a box of
    numbers lying inside its image, takes a short path; anything else goes to `_clip_box`.
    """
    for i, ann in enumerate(data.annotations):
        image_id = ann.image_id
        image = images.get(image_id) if image_id.__class__ in _ID_TYPES else None
        if image is None:
            detail = f"{path.name}: annotations[{i}] (id {ann.id}): image_id {image_id!r} has no entry in 'images'"
            skipped.append(_record_skip("annotation_without_image", detail, dataset, None))
            continue
        name = categories.get(ann.category_id)
        if name is None or image.problem:
            if not image.problem:
                detail = f"{path.name}: annotations[{i}] (id {ann.id}): category_id {ann.category_id!r} is not in 'categories'"
                image.problem = ("unknown_category", detail)
            continue
        try:
            x, y, w, h = ann.bbox
            inside = _NUMBERS.issuperset((x.__class__, y.__class__, w.__class__, h.__class__)) and (
                w > 0
                and h > 0
                and x >= 0
                and y >= 0
                and x + w <= image.width
                and y + h <= image.height
            )
        except (TypeError, ValueError):
            inside = False
        if not inside:
            box = _clip_box(ann.bbox, image.width, image.height)
            if isinstance(box, str):
                image.problem = (
                    "bad_box",
                    f"{path.name}: annotations[{i}] (id {ann.id}): bbox {box}",
                )
                continue
            x, y, w, h = box
        image.objects.append(ObjectBox(name, x, y, w, h, bool(ann.iscrowd)))


def _clip_box(bbox: Any, width: int, height: int) -> tuple[float, float, float, float] | str:
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
    for i, ann in enumerate(data.annotations):
        image_id = ann.image_id
        image = images.get(image_id) if image_id.__class__ in _ID_TYPES else None
        if image is None:
            detail = f"{path.name}: annotations[{i}] (id {ann.id}): image_id {image_id!r} has no entry in 'images'"
            skipped.append(_record_skip("caption_without_image", detail, dataset, None))
            continue
        text = clean_caption(ann.caption)
        if text and len(text) <= MAX_CAPTION_CHARS:
            image.captions.append(text)
        else:
            problem = (
                "is empty or not text" if not text else f"is over {MAX_CAPTION_CHARS} characters"
            )
            detail = f"{path.name}: annotations[{i}] (id {ann.id}): caption {_preview(ann.caption)} {problem}; skipped"
            skipped.append(_record_skip("bad_caption", detail, dataset, ann.image_id))


def clean_caption(caption: Any) -> str:
    """One line of plain text: whitespace and control characters folded into single spaces."""
    if not isinstance(caption, str):
        return ""
    if not caption.isprintable():
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
        vocabulary=vocabulary if image.in_instances else (),
        license=licenses.get(image.license),
    )


def _record_skip(reason: str, detail: str, dataset: str, image_id: Any) -> Rejection:
    return Rejection(reason, detail, dataset, image_id, record_only=True)


_ID_TYPES = frozenset((int, str))  # exact classes: a bool is not an image id
_NUMBERS = frozenset((int, float))


def _valid_id(value: Any) -> bool:
    return value.__class__ in _ID_TYPES


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
