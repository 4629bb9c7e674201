"""Image files: found under 2014/2017 names, read as original bytes, broken ones rejected."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import tracemalloc
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


# --------------------------------------------------------------------------- opened once, checked as opened


def test_a_file_swapped_for_a_link_after_the_check_is_never_read(tmp_path, monkeypatch):
    """Time of check vs time of use: the name checked is swapped for a symlink to a file
    outside the images folder before it is read. What was opened is what is checked, so the
    outside bytes never come back (before the fix they were written into a shard)."""
    from mminstruct import images

    root, outside = tmp_path / "images", tmp_path / "secret.jpg"
    root.mkdir()
    Image.new("RGB", (8, 6), "blue").save(outside, format="JPEG")
    Image.new("RGB", (8, 6), "red").save(root / "a.jpg", format="JPEG")
    checked = images.resolve_image_path

    def check_then_swap(record: ImageRecord):
        path = checked(record)  # passes: a.jpg is a plain file inside the folder
        (root / "a.jpg").unlink()
        (root / "a.jpg").symlink_to(outside)
        return path

    monkeypatch.setattr(images, "resolve_image_path", check_then_swap)
    result = images.load_image(record_for(root, "a.jpg", (8, 6)))
    assert isinstance(result, Rejection) and result.reason == "unsafe_path", result
    assert "links outside the images folder" in result.detail


def test_a_link_inside_the_folder_is_still_fine(tmp_path):
    Image.new("RGB", (8, 6), "red").save(tmp_path / "real.jpg", format="JPEG")
    (tmp_path / "alias.jpg").symlink_to(tmp_path / "real.jpg")
    loaded = load_image(record_for(tmp_path, "alias.jpg", (8, 6)))
    assert not isinstance(loaded, Rejection) and loaded.data == (tmp_path / "real.jpg").read_bytes()


def test_a_fifo_is_rejected_without_blocking(tmp_path):
    """Opening a FIFO for reading waits for a writer forever; it is refused at once, also when
    it replaces a checked file (read_inside is what load_image reads through)."""
    from mminstruct.images import read_inside

    os.mkfifo(tmp_path / "a.jpg")
    assert reject(tmp_path, "a.jpg").reason == "missing_image"
    assert read_inside(tmp_path / "a.jpg", tmp_path, 1000) == (
        "unreadable_image",
        "not a regular file",
    )


def test_an_image_over_the_byte_cap_is_rejected_before_it_is_read(tmp_path):
    """A 2 GiB sparse .jpg costs no memory: its size is checked on the open descriptor."""
    with open(tmp_path / "huge.jpg", "wb") as handle:
        handle.truncate(2 << 30)
    tracemalloc.start()
    result = reject(tmp_path, "huge.jpg")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert result.reason == "image_too_large" and "2,147,483,648 bytes" in result.detail
    assert peak < 1 << 20
    small = load_image(record_for(tmp_path, "huge.jpg", (8, 6)), max_bytes=100)
    assert isinstance(small, Rejection) and small.reason == "image_too_large"


# --------------------------------------------------------------------------- EXIF orientation


def turned_jpeg(path: Path, size: tuple[int, int], orientation: int) -> None:
    """A JPEG whose stored pixels are white with a red block at the upper left, and whose EXIF
    says to show it turned."""
    image = Image.new("RGB", size, "white")
    image.paste((255, 0, 0), (0, 0, size[0] // 4, size[1] // 4))
    exif = Image.Exif()
    exif[0x0112] = orientation
    image.save(path, format="JPEG", exif=exif, quality=95)


def test_a_turned_jpeg_is_written_as_stored_for_every_loader(tmp_path):
    """Annotated in its stored pixels, an orientation-6 JPEG said "upper left" while
    `datasets.load_dataset` (the card's loader) turned it to show the block at the upper
    right. The build sets the orientation to 1 (two bytes of metadata), so every loader shows
    the stored pixels the text is about."""
    datasets = pytest.importorskip("datasets")
    from mminstruct.cli import main

    (tmp_path / "images").mkdir()
    turned_jpeg(tmp_path / "images" / "a.jpg", (64, 48), 6)
    original = (tmp_path / "images" / "a.jpg").read_bytes()
    coco = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 16, 12], "area": 192}
        ],
        "categories": [{"id": 1, "name": "stop sign"}],
    }
    (tmp_path / "instances.json").write_text(json.dumps(coco))
    out = tmp_path / "out"
    sets = [f"sources.0.images={tmp_path / 'images'}", f"output.dir={out}"]
    sets += [f"sources.0.instances={tmp_path / 'instances.json'}", "sources.0.captions=[]"]
    assert main(["build", "configs/coco.yaml", "-q", *[a for s in sets for a in ("--set", s)]]) == 0
    loaded = datasets.load_dataset(str(out), split="train", cache_dir=str(tmp_path / "cache"))
    shown = loaded[0]["jpg"].convert("RGB")
    assert shown.size == (64, 48)
    assert shown.getpixel((4, 4))[0] > 200 and shown.getpixel((60, 4))[1] > 200  # red at upper left
    with tarfile.open(out / "shard-000000.tar") as tar:
        stored = tar.extractfile(next(m for m in tar if m.name.endswith(".jpg"))).read()
    assert len(stored) == len(original) and stored != original
    assert [i for i, (a, b) in enumerate(zip(stored, original, strict=True)) if a != b]  # the tag
    assert Image.open(io.BytesIO(stored)).getexif()[0x0112] == 1


def test_a_turned_png_is_rejected_not_turned(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (8, 6)).save(tmp_path / "a.png", format="PNG", exif=exif)
    result = reject(tmp_path, "a.png")
    assert result.reason == "exif_rotated" and "EXIF orientation 6" in result.detail


def test_clearing_the_orientation_changes_only_its_value():
    from mminstruct.exif import clear_jpeg_orientation

    for order in ("little", "big"):
        buffer = io.BytesIO()
        exif = Image.Exif()
        exif[0x0112] = 8
        exif.endian = "<" if order == "little" else ">"
        Image.new("RGB", (8, 6), "red").save(buffer, format="JPEG", exif=exif)
        data = buffer.getvalue()
        cleared = clear_jpeg_orientation(data)
        assert sum(a != b for a, b in zip(data, cleared, strict=True)) == 1
        assert Image.open(io.BytesIO(cleared)).getexif()[0x0112] == 1
    assert clear_jpeg_orientation(b"\xff\xd8\xff\xd9") is None


# --------------------------------------------------------------------------- what `decode` catches


def noisy(fmt: str, size=(320, 240)) -> bytes:
    import numpy as np

    pixels = np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def test_decode_catches_damaged_png_data_that_header_reading_cannot(tmp_path):
    """One flipped byte in a PNG's pixel data: the header and end chunk are fine, so the
    default check passes it; `decode` inflates the data and rejects it."""
    data = bytearray(noisy("PNG"))
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "a.png").write_bytes(bytes(data))
    assert not isinstance(load_image(record_for(tmp_path, "a.png", (320, 240))), Rejection)
    assert reject(tmp_path, "a.png", (320, 240), "decode").reason == "unreadable_image"


def test_decode_does_not_catch_jpeg_damage_that_still_decodes(tmp_path):
    """The documented limit (README, RELIABILITY.md): JPEG data has no checksums. Zeroed or
    flipped bytes inside the entropy-coded data, or a scan cut short but closed with an end
    marker, still decode to a picture of the right size; libjpeg's 'corrupt data' warnings
    never reach Python through Pillow. A run of zero bytes is no sign either: an optimized
    JPEG of a flat area is mostly zero bytes. Should this start failing, a decoder now reports
    such damage: make it a rejection and update the docs."""
    data = bytearray(noisy("JPEG"))
    middle = len(data) // 2
    zeroed = bytes(data[:middle]) + bytes(5000) + bytes(data[middle + 5000 :])
    closed = bytes(data[:middle]) + b"\xff\xd9"
    for name, damaged in (("zeroed.jpg", zeroed), ("closed.jpg", closed)):
        (tmp_path / name).write_bytes(damaged)
        loaded = load_image(record_for(tmp_path, name, (320, 240)), "decode")
        assert not isinstance(loaded, Rejection), name
