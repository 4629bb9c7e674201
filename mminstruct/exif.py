"""EXIF orientation: what loaders do with it, and how a build keeps them agreeing with the text.

Annotations (COCO, Visual Genome) give boxes in the stored pixels. A loader that applies EXIF
orientation (`datasets`' Image feature, `ImageOps.exif_transpose`, browsers) would show such an
image turned, with "upper left" answers about a thing it shows at the upper right. So a build
sets a JPEG's orientation tag to 1 ("as stored") in the bytes it writes: two bytes of metadata,
never the pixels. Other formats that carry a turning orientation are rejected instead.
"""

from __future__ import annotations

import struct

ORIENTATION_TAG = 0x0112
_SOI, _SOS = b"\xff\xd8", 0xDA
_SHORT = 3  # the TIFF type of the orientation value


def clear_jpeg_orientation(data: bytes) -> bytes | None:
    """`data` with its EXIF orientation set to 1, or None when no orientation tag is found."""
    where = _orientation_value_offset(data)
    if where is None:
        return None
    offset, big_endian = where
    one = struct.pack(">H" if big_endian else "<H", 1)
    return data[:offset] + one + data[offset + 2 :]


def _orientation_value_offset(data: bytes) -> tuple[int, bool] | None:
    """Where the orientation value's two bytes are in a JPEG, and the TIFF byte order."""
    if not data.startswith(_SOI):
        return None
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == _SOS or length < 2:
            return None
        if marker == 0xE1 and data[pos + 4 : pos + 10] == b"Exif\x00\x00":
            return _in_tiff(data, pos + 10, pos + 2 + length)
        pos += 2 + length
    return None


def _in_tiff(data: bytes, start: int, end: int) -> tuple[int, bool] | None:
    """The orientation entry's value offset in IFD0 of the TIFF block data[start:end]."""
    order = data[start : start + 2]
    if order not in (b"II", b"MM"):
        return None
    big = order == b"MM"
    fmt = ">" if big else "<"
    if end - start < 8:
        return None
    ifd = start + struct.unpack(fmt + "I", data[start + 4 : start + 8])[0]
    if ifd + 2 > end:
        return None
    count = struct.unpack(fmt + "H", data[ifd : ifd + 2])[0]
    for i in range(count):
        entry = ifd + 2 + 12 * i
        if entry + 12 > end:
            return None
        tag, kind, n = struct.unpack(fmt + "HHI", data[entry : entry + 8])
        if tag == ORIENTATION_TAG and kind == _SHORT and n == 1:
            return entry + 8, big
    return None
