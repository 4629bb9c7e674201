"""Small input files made at run time: images (good and broken) and a COCO scene to break.

Nothing here is committed as a binary: every image is drawn with Pillow, every annotation
file is written from plain data, so each case says in code exactly what is wrong with it.
"""

from __future__ import annotations

import copy
import io
import json
import random
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

SIZE = (64, 48)  # every good image of the scene, and what the annotations say


def jpeg(size: tuple[int, int] = SIZE, mode: str = "RGB", exif: Image.Exif | None = None) -> bytes:
    """A JPEG of random pixels (so that half of it is not a valid JPEG any more)."""
    rng = random.Random(f"{size}{mode}")
    bands = len(Image.new(mode, (1, 1)).getbands())
    image = Image.frombytes(mode, size, rng.randbytes(size[0] * size[1] * bands))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90, **({"exif": exif} if exif else {}))
    return buffer.getvalue()


def png(size: tuple[int, int] = SIZE, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, 40000 if mode.startswith("I") else (30, 120, 60)).save(buffer, "PNG")
    return buffer.getvalue()


def tiff(size: tuple[int, int] = SIZE) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size).save(buffer, format="TIFF")
    return buffer.getvalue()


def exif_rotated_jpeg(size: tuple[int, int] = SIZE, orientation: int = 6) -> bytes:
    """A JPEG stored as `size` whose EXIF says to show it turned (6: 90 degrees clockwise)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return jpeg(size, exif=exif)


def bomb_png(side: int = 100_000) -> bytes:
    """A valid 1x1 PNG whose header claims side x side pixels (a decompression bomb)."""
    buffer = io.BytesIO()
    Image.new("1", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = side.to_bytes(4, "big") * 2  # IHDR width and height
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")  # the chunk's CRC
    return bytes(data)


def image_entries() -> list[dict]:
    return [
        {"id": 1, "file_name": "a.jpg", "width": SIZE[0], "height": SIZE[1], "license": 1},
        {"id": 2, "file_name": "b.png", "width": SIZE[0], "height": SIZE[1], "license": 1},
    ]


def _boxes() -> list[dict]:
    return [
        {"id": 10, "image_id": 1, "category_id": 1, "bbox": [4, 4, 20, 16], "iscrowd": 0},
        {"id": 11, "image_id": 1, "category_id": 2, "bbox": [30, 10, 20, 30], "iscrowd": 0},
        {"id": 20, "image_id": 2, "category_id": 1, "bbox": [8, 8, 30, 20], "iscrowd": 0},
    ]


def _captions() -> list[dict]:
    return [
        {"id": 100, "image_id": 1, "caption": "A dog and a cat on a lawn."},
        {"id": 200, "image_id": 2, "caption": "A dog lying in the grass."},
    ]


def _files() -> dict[str, bytes | None]:
    return {"a.jpg": jpeg(), "b.png": png()}


@dataclass
class Scene:
    """A two-image COCO dataset: image 1 (`a.jpg`) is the one a case breaks, image 2
    (`b.png`) is the control that must come through untouched.

    Every part can be replaced or edited before `write`; `instances_text` and
    `captions_text` replace a whole file with raw text or bytes.
    """

    images: list[dict] = field(default_factory=image_entries)
    boxes: list[dict] = field(default_factory=_boxes)
    categories: list[dict] = field(
        default_factory=lambda: [{"id": 1, "name": "dog"}, {"id": 2, "name": "cat"}]
    )
    captions: list[dict] = field(default_factory=_captions)
    files: dict[str, bytes | None] = field(default_factory=_files)  # None: not written
    caption_images: list[dict] | None = None  # the captions file's `images`; None: `images`
    instances_text: str | bytes | None = None
    captions_text: str | bytes | None = None
    config: dict[str, Any] = field(default_factory=dict)  # merged over the job below

    def write(self, folder: Path) -> dict[str, Any]:
        """Write the images and annotation files under `folder`; return the job config."""
        images = folder / "images"
        images.mkdir(parents=True, exist_ok=True)
        for name, data in self.files.items():
            if data is not None:
                (images / name).write_bytes(data)
        licenses = [{"id": 1, "name": "CC BY 4.0", "url": "https://example.org/by/4.0"}]
        instances = {"images": self.images, "annotations": self.boxes}
        instances |= {"categories": self.categories, "licenses": licenses}
        caption_images = self.images if self.caption_images is None else self.caption_images
        captions = {"images": caption_images, "annotations": self.captions}
        _write(folder / "instances.json", self.instances_text, instances)
        _write(folder / "captions.json", self.captions_text, captions)
        source = {
            "kind": "coco",
            "images": str(images),
            "instances": str(folder / "instances.json"),
            "captions": str(folder / "captions.json"),
        }
        job = {"sources": [source], "output": {"shard_max_samples": 2}}
        return merge(job, self.config)


def _write(path: Path, text: str | bytes | None, data: dict) -> None:
    if text is None:
        text = json.dumps(data)
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)


def merge(base: dict, extra: dict) -> dict:
    """`base` with `extra` merged in, section by section (a copy)."""
    merged = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged
