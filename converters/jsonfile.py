"""Whole-file checks on a JSON file that did not decode, in bounded memory.

`start_problem` says what a file starts with when that cannot begin the JSON expected (2 GB
of zero bytes are refused after reading one block); `lenient_can_help` says whether a file
holds what only a lenient decoder reads (NaN, Infinity, bytes that are not UTF-8);
`utf8_problem` names its first byte that is not UTF-8. Each reads the file in blocks of
`BLOCK_BYTES` (with `pread`, not a memory map, so that even the pages read are not kept),
whatever its size, and never holds it whole.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Iterable, Iterator
from typing import BinaryIO

BLOCK_BYTES = 8 << 20

_BOM = b"\xef\xbb\xbf"
_WHITESPACE = b" \t\r\n"
_TOKENS = (b"NaN", b"Infinity")  # JSON that Python's json reads and strict JSON does not
_TOKEN_OVERLAP = max(map(len, _TOKENS)) - 1  # a token may straddle two blocks


def blocks(handle: BinaryIO, start: int = 0) -> Iterator[bytes]:
    """The file's bytes from `start`, a block at a time (independent of the handle's position)."""
    offset = start
    while block := os.pread(handle.fileno(), BLOCK_BYTES, offset):
        yield block
        offset += len(block)


def start_problem(handle: BinaryIO, openings: bytes) -> str | None:
    """None when the file's first byte after a BOM and whitespace is one of `openings`; else
    what the file is instead, in words that follow "it" ("starts with zero bytes (...)")."""
    offset, head = _first_bytes(handle)
    if head and head[0] in openings:
        return None
    if not head:
        return "holds nothing but whitespace"
    if head[0] == 0:
        return (
            "starts with zero bytes (as an interrupted download or copy leaves them, or a "
            "file made to size and never written)"
        )
    bad = first_non_utf8_of([head])
    if bad is not None and (bad < len(head) - 3 or len(head) < 16):  # not a cut character
        return "is " + not_utf8_text(head[bad], offset + bad)
    return f"starts with {head!r}"


def _first_bytes(handle: BinaryIO, count: int = 16) -> tuple[int, bytes]:
    """The offset of the first byte that is neither a BOM nor whitespace, and up to `count`
    bytes from there."""
    offset = 0
    for block in blocks(handle):
        rest = (block.removeprefix(_BOM) if offset == 0 else block).lstrip(_WHITESPACE)
        if rest:
            start = offset + len(block) - len(rest)
            return start, os.pread(handle.fileno(), count, start)
        offset += len(block)
    return offset, b""


def lenient_can_help(handle: BinaryIO) -> bool:
    """Whether the file holds NaN or Infinity, or bytes that are not UTF-8: the only things
    a lenient reading passes over that a strict decoder refuses. One pass over the file."""
    utf8 = codecs.getincrementaldecoder("utf-8")()
    tail = b""
    for block in blocks(handle):
        if _has_token(tail + block[:_TOKEN_OVERLAP]) or _has_token(block):
            return True
        tail = (tail + block[-_TOKEN_OVERLAP:])[-_TOKEN_OVERLAP:]
        if not _decodes(utf8, block):
            return True
    return not _decodes(utf8, b"", final=True)


def _has_token(data: bytes) -> bool:
    # A one-byte search first: it runs at memory speed, a longer one ten times slower.
    return any(token[:1] in data and token in data for token in _TOKENS)


def _decodes(decoder: codecs.IncrementalDecoder, data: bytes, final: bool = False) -> bool:
    """Whether `data` continues the UTF-8 text `decoder` has read so far."""
    if not decoder.getstate()[0] and data.isascii():  # the common case, at memory speed
        return True
    try:
        decoder.decode(data, final=final)
    except UnicodeDecodeError:
        return False
    return True


def utf8_problem(handle: BinaryIO) -> str | None:
    """ "not UTF-8 text: byte 0xe9 at offset 81" for the file's first such byte, else None."""
    offset = first_non_utf8_of(blocks(handle))
    if offset is None:
        return None
    return not_utf8_text(os.pread(handle.fileno(), 1, offset)[0], offset)


def not_utf8_text(byte: int, offset: int) -> str:
    return f"not UTF-8 text: byte {byte:#04x} at offset {offset}"


def first_non_utf8_of(pieces: Iterable[bytes]) -> int | None:
    """The offset of the first byte that breaks UTF-8 in the concatenation of `pieces`, or
    None when all of it is UTF-8. Decoded a piece at a time: memory is one piece."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    start = 0
    for piece in pieces:
        held = len(decoder.getstate()[0])  # bytes of a character begun in the last piece
        if not held and piece.isascii():  # the common case, checked at memory speed
            start += len(piece)
            continue
        try:
            decoder.decode(piece)
        except UnicodeDecodeError as exc:
            return start - held + exc.start
        start += len(piece)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:  # the data ends inside a character
        return start - len(decoder.getstate()[0])
    return None


def end_problem(handle: BinaryIO, closing: bytes) -> str | None:
    """None when the file's last byte before trailing whitespace is one of `closing`; else
    what it ends with."""
    size = os.fstat(handle.fileno()).st_size
    tail = os.pread(handle.fileno(), 64, max(0, size - 64)).rstrip(_WHITESPACE)
    if not tail or tail[-1] in closing:  # (64 bytes of whitespace: nothing to say)
        return None
    return f"ends with {tail[-16:]!r}"
