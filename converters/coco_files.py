"""COCO files decoded: the msgspec structs naming the fields we read, and whole-file checks.

`load_coco_file` decodes an instances or captions file (memory-mapped; a lenient retry for
NaN or stray non-UTF-8 bytes, only where it can help); `load_relations_file` a relations
file. Whole-file problems (missing, not JSON, nested too deeply, wrong shape) raise
`InputError`, in bounded memory whatever the file's size.
"""

from __future__ import annotations

import json
import mmap
import os
from pathlib import Path
from typing import Any, BinaryIO

import msgspec
from mminstruct.converters.common import NESTED_TOO_DEEPLY
from mminstruct.converters.jsonfile import (
    end_problem,
    lenient_can_help,
    start_problem,
    utf8_problem,
)
from mminstruct.converters.jsonstream import decode_problem, first_non_utf8

from mminstruct.errors import InputError


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
    area: Any = None  # the segment's area in pixels (what pycocotools computes from it)


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

# A file up to this size that is not strict JSON is always tried again with Python's json
# (whose message says where it breaks); a larger one only when it holds what that reads.
LENIENT_RETRY_BYTES = 64 << 20


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
        except RecursionError:
            raise InputError(f"{path}: {NESTED_TOO_DEEPLY}") from None
        except (msgspec.DecodeError, UnicodeDecodeError):  # msgspec raises both
            pass
        _refuse_hopeless(handle, path, size)
        return _decode_lenient(raw[:], path)


def _refuse_hopeless(handle: BinaryIO, path: Path, size: int) -> None:
    """Refuse a file that the lenient retry cannot help, without reading it into memory.

    The retry holds several copies of the file: it runs on a small file (its message says
    where the JSON breaks) or on one holding what it reads (NaN, bytes that are not UTF-8).
    """
    problem = start_problem(handle, b"{[")
    if problem is None and size > LENIENT_RETRY_BYTES and not lenient_can_help(handle):
        problem = end_problem(handle, b"}")
        if problem is None:
            raise InputError(
                f"{path}: not valid JSON somewhere between its first '{{' and its last '}}' "
                f"(a file over {LENIENT_RETRY_BYTES >> 20} MiB is not read again to say where); "
                "the file may be damaged or not a COCO file"
            )
    if problem:
        raise InputError(
            f"{path}: not valid JSON: it {problem}, where a COCO annotation file is one JSON "
            "object from '{' to '}'; the file may be truncated or not a COCO file"
        )


def _decode_lenient(raw: bytes, path: Path) -> _CocoFile:
    """Python's json accepts what strict JSON does not (NaN, Infinity); try it before failing.

    Bytes that are not UTF-8 become U+FFFD, so that a stray Latin-1 caption costs only that
    caption (skipped as `bad_caption`), not the whole file.
    """
    try:
        obj = json.loads(raw.decode("utf-8", errors="replace"))
    except RecursionError:
        raise InputError(f"{path}: {NESTED_TOO_DEEPLY}") from None
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


def load_relations_file(path: Path) -> list[_Relation]:
    """The `relations` list of a file (a COCO instances file may carry it too)."""
    try:
        with open(path, "rb") as handle:
            data = _decode_relations(handle, path)
    except FileNotFoundError:
        raise InputError(f"{path}: file not found; check `relations` in your config") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror})") from None
    if data.relations is None:
        raise InputError(
            f"{path}: no 'relations' list at the top level; expected "
            '{"relations": [{"image_id", "subject_id", "object_id", "predicate"}, ...]}'
        )
    return data.relations


def _decode_relations(handle: BinaryIO, path: Path) -> _RelationsFile:
    """A relations file, decoded from a memory map; a broken one is refused in bounded memory."""
    if os.fstat(handle.fileno()).st_size == 0:
        raise InputError(f"{path}: not a relations file (it is empty)")
    with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as raw:
        try:
            return msgspec.json.decode(raw, type=_RelationsFile)
        except RecursionError:
            raise InputError(f"{path}: {NESTED_TOO_DEEPLY}") from None
        except msgspec.ValidationError as exc:
            raise InputError(f"{path}: not a relations file ({exc})") from None
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            if problem := start_problem(handle, b"{"):
                raise InputError(f"{path}: not a relations file: it {problem}") from None
            problem = utf8_problem(handle) or str(exc)
            raise InputError(f"{path}: not a relations file ({problem})") from None
