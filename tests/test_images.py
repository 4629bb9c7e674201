"""Image files: found under 2014/2017 names, read as original bytes, broken ones rejected."""

from __future__ import annotations

import io
import os
import shutil
import zlib
from pathlib import Path

import pytest
from PIL import Image

from mminstruct.images import load_image
from mminstruct.records import ImageRecord, Rejection


def real_jpeg(realdata: Path) -> Path:
    return next((realdata / "coco/tiny_coco/images/val2017").glob("*.jpg"))


def record_for(folder: Path, name: str, size: tuple[int, int]) -> ImageRecord:
    return ImageRecord("t", 1, name, folder, size[0], size[1])


def test_reads_original_bytes(realdata, tmp_path):
    src = real_jpeg(realdata)
    with Image.open(src) as image:
        size = image.size
    loaded = load_image(record_for(src.parent, src.name, size))
    assert loaded.data == src.read_bytes() and loaded.extension == "jpg"


def test_png_stays_png_even_if_named_jpg(tmp_path):
    Image.new("RGB", (8, 6), "red").save(tmp_path / "x.jpg", format="PNG")
    loaded = load_image(record_for(tmp_path, "x.jpg", (8, 6)))
    assert loaded.extension == "png" and loaded.data[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "annotated,actual",
    [
        ("COCO_val2014_000000397133.jpg", "000000397133.jpg"),
        ("000000397133.jpg", "COCO_val2014_000000397133.jpg"),
    ],
)
def test_2014_and_2017_names_both_resolve(tmp_path, annotated, actual):
    Image.new("RGB", (4, 4)).save(tmp_path / actual, format="JPEG")
    loaded = load_image(record_for(tmp_path, annotated, (4, 4)))
    assert not isinstance(loaded, Rejection) and loaded.path.name == actual


def reject(folder: Path, name: str, size=(8, 6), check="header") -> Rejection:
    result = load_image(record_for(folder, name, size), check)
    assert isinstance(result, Rejection), result
    return result


def test_missing_and_empty_and_not_an_image(tmp_path):
    assert reject(tmp_path, "nope.jpg").reason == "missing_image"
    (tmp_path / "empty.jpg").write_bytes(b"")
    assert reject(tmp_path, "empty.jpg").reason == "unreadable_image"
    (tmp_path / "text.jpg").write_text("hello, not an image")
    bad = reject(tmp_path, "text.jpg")
    assert bad.reason == "not_an_image" and str(tmp_path / "text.jpg") in bad.detail


def test_truncated_jpeg(realdata, tmp_path):
    data = real_jpeg(realdata).read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with Image.open(io.BytesIO(data)) as image:
        size = image.size
    assert "truncated" in reject(tmp_path, "cut.jpg", size).detail
    assert reject(tmp_path, "cut.jpg", size, check="decode").reason == "unreadable_image"


def test_size_mismatch(tmp_path):
    Image.new("RGB", (8, 6)).save(tmp_path / "a.png")
    bad = reject(tmp_path, "a.png", size=(6, 8))
    assert bad.reason == "size_mismatch" and "annotations say 6x8, the file is 8x6" in bad.detail


def test_decompression_bomb_refused(tmp_path):
    Image.new("1", (1, 1)).save(tmp_path / "bomb.png")
    data = bytearray((tmp_path / "bomb.png").read_bytes())
    # Rewrite the IHDR size to 100,000 x 100,000 and fix the chunk's CRC.
    data[16:24] = (100_000).to_bytes(4, "big") * 2
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    (tmp_path / "bomb.png").write_bytes(bytes(data))
    assert reject(tmp_path, "bomb.png", size=(100_000, 100_000)).reason == "image_too_large"


def test_paths_cannot_escape_the_images_folder(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (8, 6)).save(tmp_path / "secret.png")
    assert reject(images, "../secret.png").reason == "unsafe_path"
    assert reject(images, str(tmp_path / "secret.png")).reason == "unsafe_path"
    os.symlink(tmp_path / "secret.png", images / "link.png")
    assert reject(images, "link.png").reason == "unsafe_path"
    shutil.copy(tmp_path / "secret.png", images / "inside.png")
    os.symlink(images / "inside.png", images / "ok.png")
    assert not isinstance(load_image(record_for(images, "ok.png", (8, 6))), Rejection)
