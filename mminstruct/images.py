"""Find an image file, read its bytes and check them, without ever re-encoding.

A file is opened once and checked as opened, then read from that descriptor: it must be a
regular file whose real path (read from the open descriptor, not from the name, so a file
swapped for a symlink after a check cannot slip through) lies inside the images folder, and
no larger than `max_bytes`, checked before a byte is read.
"""

from __future__ import annotations

import functools
import io
import os
import re
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from mminstruct.exif import clear_jpeg_orientation
from mminstruct.records import ImageRecord, Rejection

EXTENSIONS = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp"}
_VG_FOLDERS = ("VG_100K", "VG_100K_2")
MAX_IMAGE_BYTES = 64 << 20  # default of `output.max_image_bytes`: a larger file is rejected
_COCO_NAME = re.compile(r"^(?:COCO_[A-Za-z]+\d{4}_)?(\d{12})\.(jpg|jpeg|png)$", re.IGNORECASE)


@dataclass(frozen=True)
class LoadedImage:
    """The original bytes of an image file and what they are."""

    path: Path
    data: bytes
    extension: str  # from the bytes, not the file name: "jpg", "png", ...


def load_image(
    record: ImageRecord, check: str = "header", max_bytes: int = MAX_IMAGE_BYTES
) -> LoadedImage | Rejection:
    """Read the record's image file; a missing, unsafe or broken file becomes a Rejection."""
    path = resolve_image_path(record)
    if isinstance(path, Rejection):
        return path
    data = read_inside(path, record.images_dir, max_bytes)
    if isinstance(data, tuple):
        return _reject(record, data[0], f"{path}: {data[1]}")
    problem = image_problem(data, record.width, record.height, check)
    if isinstance(problem, tuple):
        return _reject(record, problem[0], f"{path}: {problem[1]}")
    shown_as_stored = as_stored(data, problem)
    if isinstance(shown_as_stored, tuple):
        return _reject(record, shown_as_stored[0], f"{path}: {shown_as_stored[1]}")
    return LoadedImage(path, shown_as_stored, problem)


def as_stored(data: bytes, extension: str) -> bytes | tuple[str, str]:
    """The bytes every loader shows as stored: a JPEG's EXIF orientation set to 1 (see
    `exif.py`); another format that says to turn the image is (reason, detail)."""
    orientation = exif_orientation(data)
    if orientation in (None, 1):
        return data
    cleared = clear_jpeg_orientation(data) if extension == "jpg" else None
    if cleared is None:
        return (
            "exif_rotated",
            f"EXIF orientation {orientation} would make loaders show it turned against its "
            "annotations; save it without the orientation tag",
        )
    return cleared


def exif_orientation(data: bytes) -> int | None:
    """The EXIF orientation of image bytes (1-8), or None when there is none."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            value = image.getexif().get(0x0112)
    except (OSError, SyntaxError, ValueError, TypeError):
        return None
    return int(value) if isinstance(value, int) else None


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


def read_inside(path: Path, root: Path, max_bytes: int) -> bytes | tuple[str, str]:
    """The bytes of `path`, or (reason, detail): opened once, checked as opened, read from
    the same descriptor."""
    opened = open_inside(path, root)
    if isinstance(opened, tuple):
        return opened
    with os.fdopen(opened, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > max_bytes:
            return (
                "image_too_large",
                f"{size:,} bytes, over output.max_image_bytes ({max_bytes:,})",
            )
        try:
            data = handle.read(max_bytes + 1)
        except OSError as exc:
            return ("unreadable_image", f"cannot read it ({exc.strerror})")
    if len(data) > max_bytes:  # grew while being read
        return ("image_too_large", f"over output.max_image_bytes ({max_bytes:,} bytes)")
    return data


def open_inside(path: Path, root: Path) -> int | tuple[str, str]:
    """A read-only descriptor of `path` when what was opened is a regular file inside `root`;
    else (reason, detail). A FIFO or device never blocks the open (O_NONBLOCK)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    exact = _opened_path_known()
    if not exact:  # no way to ask the descriptor where it points: refuse links outright
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        return ("unreadable_image", f"cannot open it ({exc.strerror})")
    problem = _opened_problem(fd, path, root, exact)
    if problem:
        os.close(fd)
        return problem
    return fd


def _opened_problem(fd: int, path: Path, root: Path, exact: bool) -> tuple[str, str] | None:
    try:
        info = os.fstat(fd)
        real = _opened_path(fd) if exact else os.path.realpath(path.parent) + os.sep + path.name
        inside = Path(real).is_relative_to(_real_root(root))
    except (OSError, ValueError) as exc:
        return ("unreadable_image", f"cannot check it ({exc})")
    if not stat.S_ISREG(info.st_mode):
        return ("unreadable_image", "not a regular file")
    if not inside:
        return ("unsafe_path", f"links outside the images folder {root}")
    return None


@functools.cache
def _opened_path_known() -> bool:
    """Whether this system says where an open descriptor points (Linux /proc, macOS F_GETPATH)."""
    fd = os.open(os.devnull, os.O_RDONLY)
    try:
        return _opened_path(fd) == os.path.realpath(os.devnull)
    except OSError:
        return False
    finally:
        os.close(fd)


def _opened_path(fd: int) -> str:
    """The real path of what `fd` has open, from the kernel (no name is looked up again)."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        import fcntl

        get_path = getattr(fcntl, "F_GETPATH", None)
        if get_path is None:
            raise
        return fcntl.fcntl(fd, get_path, bytes(1024)).rstrip(b"\0").decode()


@functools.lru_cache(maxsize=16)
def _real_root(root: Path) -> str:
    return os.path.realpath(root)


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
