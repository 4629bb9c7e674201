"""Find an image file, read its bytes and check them, without ever re-encoding."""

from __future__ import annotations

import functools
import io
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from mminstruct.records import ImageRecord, Rejection

EXTENSIONS = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp"}
_VG_FOLDERS = ("VG_100K", "VG_100K_2")
_COCO_NAME = re.compile(r"^(?:COCO_[A-Za-z]+\d{4}_)?(\d{12})\.(jpg|jpeg|png)$", re.IGNORECASE)


@dataclass(frozen=True)
class LoadedImage:
    """The original bytes of an image file and what they are."""

    path: Path
    data: bytes
    extension: str  # from the bytes, not the file name: "jpg", "png", ...


def load_image(record: ImageRecord, check: str = "header") -> LoadedImage | Rejection:
    """Read the record's image file; a missing, unsafe or broken file becomes a Rejection."""
    path = resolve_image_path(record)
    if isinstance(path, Rejection):
        return path
    try:
        data = path.read_bytes()
    except OSError as exc:
        return _reject(record, "unreadable_image", f"{path}: cannot read it ({exc.strerror})")
    problem = image_problem(data, record.width, record.height, check)
    if isinstance(problem, tuple):
        return _reject(record, problem[0], f"{path}: {problem[1]}")
    return LoadedImage(path, data, problem)


def resolve_image_path(record: ImageRecord) -> Path | Rejection:
    """The file for `record.file_name` inside its images folder (COCO 2014/2017 names both)."""
    name = record.file_name
    if os.path.isabs(name) or ".." in Path(name).parts:
        return _reject(
            record,
            "unsafe_path",
            f"file_name {name!r} must be a relative path inside the images folder",
        )
    root = record.images_dir
    if root is None or not root.is_dir():
        return _reject(
            record,
            "missing_image",
            f"images folder {root} does not exist; check `images` in your config",
        )
    for candidate in _candidates(root, name):
        if candidate.is_file():
            if not _inside(candidate, root):
                return _reject(
                    record, "unsafe_path", f"{candidate} links outside the images folder {root}"
                )
            return candidate
    return _reject(record, "missing_image", f"{name}: no such file under {root}")


def image_problem(data: bytes, width: int, height: int, check: str) -> str | tuple[str, str]:
    """The file extension for good image bytes, or (reason, detail) for bad ones."""
    if not data:
        return ("unreadable_image", "file is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                size, kind = image.size, image.format
                orientation = _orientation(image) if size != (width, height) else 1
                if check == "decode":
                    image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        return ("image_too_large", f"refused as a possible decompression bomb ({exc})")
    except UnidentifiedImageError:
        return ("not_an_image", "not an image file Pillow can read")
    except (OSError, SyntaxError, ValueError) as exc:
        return ("unreadable_image", f"broken image data ({exc})")
    if kind not in EXTENSIONS:
        return (
            "unsupported_image_format",
            f"{kind} images are not supported; convert to JPEG or PNG",
        )
    if size != (width, height):
        detail = f"annotations say {width}x{height}, the file is {size[0]}x{size[1]}"
        if orientation in _TURNED:
            detail += (
                f" (EXIF orientation {orientation} shows it turned: annotations must use the "
                "size of the stored pixels, which the dataset keeps as they are)"
            )
        return ("size_mismatch", detail)
    if check == "header" and _looks_truncated(data, kind):
        return ("unreadable_image", f"truncated {kind} file (no end marker)")
    return EXTENSIONS[kind]


_TURNED = (5, 6, 7, 8)  # EXIF orientations that swap width and height on screen


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(0x0112, 1))
    except (OSError, SyntaxError, ValueError, TypeError):  # a broken EXIF block: not turned
        return 1


def _looks_truncated(data: bytes, kind: str) -> bool:
    tail = data[-64:].rstrip(b"\0\r\n ")
    if kind in ("JPEG", "MPO"):
        return not tail.endswith(b"\xff\xd9")
    if kind == "PNG":
        return b"IEND" not in tail[-12:]
    return False


def _candidates(root: Path, name: str) -> list[Path]:
    paths = [root / name, root / Path(name).name]
    parts = Path(name).parts
    if len(parts) == 2 and parts[0] in _VG_FOLDERS:  # Visual Genome's two image folders
        paths += [root / folder / parts[1] for folder in _VG_FOLDERS]
    match = _COCO_NAME.match(Path(name).name)
    if match:
        alias = _coco_names(root).get(match.group(1))
        if alias:
            paths.append(root / alias)
    return paths


@functools.lru_cache(maxsize=16)
def _coco_names(root: Path) -> dict[str, str]:
    """Numeric COCO id -> file name present in `root`, for 2014 <-> 2017 name lookups."""
    names = {}
    with os.scandir(root) as entries:
        for entry in entries:
            match = _COCO_NAME.match(entry.name)
            if match:
                names.setdefault(match.group(1), entry.name)
    return names


def _inside(path: Path, root: Path) -> bool:
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(root))


def _reject(record: ImageRecord, reason: str, detail: str) -> Rejection:
    return Rejection(reason, detail, record.dataset, record.image_id)
