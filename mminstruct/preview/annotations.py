"""The small annotations JSON of a bare `--image`: captions, boxes, relations, categories.

    {"captions": ["A dog on a sofa."],
     "objects": [{"category": "dog", "bbox": [x, y, width, height]}, ...],
     "relations": [{"subject": 0, "predicate": "on", "object": 1}, ...],
     "categories": ["dog", "couch", "cat"]}

Every key is optional. Boxes are in pixels, COCO order, inside the image; an object may say
`"iscrowd": true` (a COCO crowd box) and `"area"` (its segment's area in pixels, COCO's
`area`, which prominence and size answers use); relations index `objects`. The boxes are taken as a
COCO instances file's are: every object of their categories is boxed, so counts are stated
and checked. `categories` (a COCO file's category list) names further categories whose
absence is known; without it, those of the objects are. All problems are reported at once,
each naming its field.
"""

from __future__ import annotations

import difflib
import json
import math
import reprlib
from pathlib import Path
from typing import Any, NamedTuple

from mminstruct.errors import ConfigError, MminstructError
from mminstruct.records import ObjectBox, Relation

ANNOTATION_KEYS = ("captions", "objects", "relations", "categories")
OBJECT_KEYS = ("category", "bbox", "iscrowd", "area")
RELATION_KEYS = ("subject", "predicate", "object")
MAX_ANNOTATION_BYTES = 16 << 20  # the annotations of one image; a larger file is refused
SHOWN_CHARS = 80  # of a bad value quoted in a message
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = SHOWN_CHARS


class Annotations(NamedTuple):
    """What an annotations file says about its image, as the fields of an `ImageRecord`."""

    captions: tuple[str, ...] = ()
    objects: tuple[ObjectBox, ...] = ()
    relations: tuple[Relation, ...] = ()
    vocabulary: tuple[str, ...] = ()  # categories whose boxes are exhaustive (as COCO's)


def read_annotations(path: Path | None, width: int, height: int) -> Annotations:
    """The annotations of a `width` x `height` bare image, from the JSON file at `path`
    (None: no annotations). Raises `ConfigError` listing every bad field, or
    `MminstructError` for a file that cannot be read as JSON."""
    if path is None:
        return Annotations()
    path = Path(path).expanduser()
    raw = _load(path)
    if not isinstance(raw, dict):
        raise ConfigError([f"expected an object with keys {', '.join(ANNOTATION_KEYS)}"], str(path))
    problems: list[str] = []
    _unknown(raw, ANNOTATION_KEYS, "", problems)
    listed = raw.get("objects") if isinstance(raw.get("objects"), list) else []
    annotations = Annotations(
        captions=_captions(raw.get("captions", []), problems),
        objects=_objects(raw.get("objects", []), width, height, problems),
        relations=_relations(raw.get("relations", []), len(listed), problems),
        vocabulary=_vocabulary(raw.get("categories"), listed, problems),
    )
    if problems:
        raise ConfigError(problems, str(path))
    return annotations


def _load(path: Path) -> Any:
    """The JSON value of the file, read with bounded memory and nesting."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_ANNOTATION_BYTES + 1)
    except OSError as exc:
        raise MminstructError(f"--annotations {path}: cannot read it ({exc.strerror})") from None
    if len(data) > MAX_ANNOTATION_BYTES:
        raise MminstructError(
            f"--annotations {path}: larger than {MAX_ANNOTATION_BYTES >> 20} MiB; give the "
            "annotations of this one image only"
        )
    try:
        return json.loads(data.decode("utf-8"))
    except RecursionError:
        raise MminstructError(
            f"--annotations {path}: JSON nested too deeply to read; the file holds captions, "
            "objects, relations and categories, a few levels deep (see `mminstruct preview -h`)"
        ) from None
    except UnicodeDecodeError as exc:
        raise MminstructError(
            f"--annotations {path}: not UTF-8 text (byte {exc.start}); save it as UTF-8 JSON"
        ) from None
    except ValueError as exc:
        raise MminstructError(f"--annotations {path}: not valid JSON ({exc})") from None


def _shown(value: Any) -> str:
    """`repr(value)` at bounded cost and length: long texts, lists and numbers are cut."""
    return _REPR.repr(value)


def _cut(text: str) -> str:
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def _unknown(raw: dict, known: tuple[str, ...], where: str, problems: list[str]) -> None:
    for key in raw:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append(
                f"{where}{_cut(str(key))}: unknown key{hint}; valid keys: {', '.join(known)}"
            )


def _list(value: Any, where: str, problems: list[str]) -> list:
    if isinstance(value, list):
        return value
    problems.append(f"{where}: must be a list")
    return []


def _captions(value: Any, problems: list[str]) -> tuple[str, ...]:
    captions = []
    for i, caption in enumerate(_list(value, "captions", problems)):
        if isinstance(caption, str) and caption.strip():
            captions.append(caption.strip())
        else:
            problems.append(f"captions.{i}: must be a non-empty string")
    return tuple(captions)


def _objects(value: Any, width: int, height: int, problems: list[str]) -> tuple[ObjectBox, ...]:
    objects = []
    for i, item in enumerate(_list(value, "objects", problems)):
        where = f"objects.{i}"
        if not isinstance(item, dict):
            problems.append(f"{where}: must be an object with keys category, bbox (and iscrowd)")
            continue
        _unknown(item, OBJECT_KEYS, f"{where}.", problems)
        found = len(problems)
        category, box = item.get("category"), _box(item.get("bbox"), width, height)
        if not isinstance(category, str) or not category.strip():
            problems.append(f"{where}.category: must be a non-empty string")
        if isinstance(box, str):
            problems.append(f"{where}.bbox: {box}")
        crowd = item.get("iscrowd", False)
        if crowd not in (True, False):  # 0 and 1 too, as COCO writes them
            problems.append(
                f"{where}.iscrowd: must be true or false (or 1 or 0), got {_shown(crowd)}"
            )
        area = item.get("area", 0.0)
        if not _is_area(area):
            problems.append(f"{where}.area: must be a non-negative number, got {_shown(area)}")
        if len(problems) == found:
            obj = ObjectBox(category.strip(), *box, iscrowd=bool(crowd), segment_area=float(area))
            objects.append(obj)
    return tuple(objects)


def _is_area(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and 0 <= value < 1e15


def _box(bbox: Any, width: int, height: int) -> tuple[float, float, float, float] | str:
    """The box in pixels, or what is wrong with it."""
    numbers = isinstance(bbox, list) and len(bbox) == 4
    if not numbers or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in bbox):
        return f"must be [x, y, width, height] in pixels, got {_shown(bbox)}"
    try:
        x, y, w, h = map(float, bbox)
    except OverflowError:  # an integer of hundreds of digits
        x = y = w = h = math.inf
    if not all(map(math.isfinite, (x, y, w, h))):
        return f"must hold 4 finite numbers, got {_shown(bbox)}"
    if w <= 0 or h <= 0:
        return f"width and height must be positive, got {bbox}"
    if x < 0 or y < 0 or x + w > width + 1e-6 or y + h > height + 1e-6:
        return f"{bbox} reaches outside the {width}x{height} image; give [x, y, width, height] in pixels"
    return x, y, w, h


def _relations(value: Any, count: int, problems: list[str]) -> tuple[Relation, ...]:
    relations = []
    for i, item in enumerate(_list(value, "relations", problems)):
        where = f"relations.{i}"
        if not isinstance(item, dict):
            problems.append(f"{where}: must be an object with keys subject, predicate, object")
            continue
        _unknown(item, RELATION_KEYS, f"{where}.", problems)
        found = len(problems)
        for end in ("subject", "object"):
            index = item.get(end)
            if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < count:
                valid = f"0 to {count - 1}" if count else "there are none"
                problems.append(f"{where}.{end}: must index objects ({valid}), got {_shown(index)}")
        predicate = item.get("predicate")
        if not isinstance(predicate, str) or not predicate.strip():
            problems.append(f"{where}.predicate: must be a non-empty string")
        if len(problems) == found:
            relations.append(Relation(item["subject"], predicate.strip(), item["object"]))
    return tuple(relations)


def _vocabulary(value: Any, listed: list, problems: list[str]) -> tuple[str, ...]:
    """The categories whose boxes are exhaustive, sorted as a COCO reader makes them: those
    named in `categories`, else those of the objects (a COCO file that lists only them)."""
    named = [o.get("category") for o in listed if isinstance(o, dict)]
    named = [c.strip() for c in named if isinstance(c, str) and c.strip()]
    if value is None:
        return tuple(sorted(set(named)))
    vocabulary = set()
    for i, name in enumerate(_list(value, "categories", problems)):
        if isinstance(name, str) and name.strip():
            vocabulary.add(name.strip())
        else:
            problems.append(f"categories.{i}: must be a non-empty string")
    for i, item in enumerate(listed):
        category = item.get("category") if isinstance(item, dict) else None
        if isinstance(category, str) and category.strip() and category.strip() not in vocabulary:
            problems.append(
                f"objects.{i}.category: {_shown(category.strip())} is not in categories; "
                "add it there or correct the name"
            )
    return tuple(sorted(vocabulary))
