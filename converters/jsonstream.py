"""Read the elements of a huge top-level JSON array a few at a time, with bounded memory.

Visual Genome's relationships.json is a 700 MB array with one element per image; `json.load`
needs several GB for it. Here the file is read in blocks; numpy finds where each top-level
element ends (quote parity for strings, bracket depth outside them), and msgspec decodes the
complete elements of a block into typed structs at once. Memory stays at about one block
plus the elements being decoded, whatever the size of the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
from mminstruct.converters.common import NESTED_TOO_DEEPLY
from mminstruct.converters.jsonfile import first_non_utf8_of, not_utf8_text

from mminstruct.errors import InputError

BLOCK_BYTES = 8 << 20

_BOM = b"\xef\xbb\xbf"
_QUOTE, _BACKSLASH, _COMMA = ord('"'), ord("\\"), ord(",")
_STRUCTURAL = np.zeros(256, dtype=bool)
_STRUCTURAL[list(b'"\\[]{},')] = True
_OPEN = np.zeros(256, dtype=np.int8)
_OPEN[[ord("["), ord("{")]] = 1
_OPEN[[ord("]"), ord("}")]] = -1


class ElementError(InputError):
    """One element of the array does not have the expected shape; `raw` is its JSON text."""

    def __init__(self, message: str, raw: bytes, where: str = ""):
        super().__init__(message)
        self.raw = raw
        self.where = where  # "<path>: element <index>"


def decode_problem(raw: bytes | memoryview, exc: Exception) -> str:
    """Why JSON bytes did not decode, in our own words: the first byte that is not UTF-8, by value
    and offset, else the decoder's message.

    msgspec's wording and exception types change between releases (0.23 reports bad UTF-8 as a
    `DecodeError` with no offset, 0.22 as a `UnicodeDecodeError`), so nothing here reads them.
    """
    where = first_non_utf8(raw)
    if where is not None:
        return not_utf8_text(bytes(raw[where : where + 1])[0], where)
    return str(exc)


def first_non_utf8(raw: Any, block_bytes: int = BLOCK_BYTES) -> int | None:
    """The offset of the first byte that breaks UTF-8, or None when all of `raw` (bytes, a
    memoryview or a memory map) is UTF-8. Decoded a block at a time: bounded memory."""
    with memoryview(raw) as view:
        pieces = (bytes(view[i : i + block_bytes]) for i in range(0, len(view), block_bytes))
        return first_non_utf8_of(pieces)


def iter_array(path: Path, element_type: Any, block_bytes: int = BLOCK_BYTES) -> Iterator[Any]:
    """Each element of the JSON array in `path`, decoded as `element_type`, in file order.

    A malformed file raises `InputError` naming the byte offset; an element of the wrong
    shape is decoded on its own and yielded as an `ElementError` (the caller decides).
    """
    decoder = msgspec.json.Decoder(list[element_type])
    one = msgspec.json.Decoder(element_type)
    index = 0
    for block, ends in _element_blocks(path, block_bytes):
        for item in _decode_block(block, ends, decoder, one, path, index):
            yield item
            index += 1


def _element_blocks(path: Path, block_bytes: int) -> Iterator[tuple[bytes, list[int]]]:
    """Blocks of whole elements (text between the array's brackets) and where each ends."""
    with _open(path) as handle:
        text, offset = _read_opening(handle, path, block_bytes)
        while True:
            ends, close = _top_level_ends(text)
            if close is not None:
                if ends:
                    yield text[:close], ends
                _check_after_close(text[close + 1 :] + handle.read(1 << 20), path)
                return
            if ends:
                yield text[: ends[-1]], ends
                text, offset = text[ends[-1] :], offset + ends[-1]
            data = handle.read(block_bytes)
            if not data:
                raise InputError(
                    f"{path}: the JSON list is not closed (after byte {offset}); "
                    "the file is probably truncated: download or copy it again"
                )
            text += data


def _open(path: Path) -> Any:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise InputError(f"{path}: file not found; check the path in your config") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder; give the path of a JSON file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror})") from None


def _read_opening(handle: Any, path: Path, block_bytes: int) -> tuple[bytes, int]:
    """The first block after the array's `[`, and the file offset where it starts."""
    text = handle.read(block_bytes)
    while True:
        head = text.lstrip()
        stripped = head.removeprefix(_BOM).lstrip()
        if stripped and not _BOM.startswith(head):  # not empty, nor part of a BOM
            break
        more = handle.read(block_bytes)
        if not more:
            break
        text += more
    if not stripped.startswith(b"["):
        what = "is empty" if not stripped else f"starts with {stripped[:20]!r}"
        raise InputError(f"{path}: expected a JSON list of per-image entries, but the file {what}")
    skipped = len(text) - len(stripped) + 1
    return text[skipped:], skipped


def _top_level_ends(text: bytes) -> tuple[list[int], int | None]:
    """Offsets just past each complete top-level element, and where the array closes.

    Works on the structural bytes only (quotes, brackets, commas, backslashes), which are a
    small share of the text: their positions, then string parity and bracket depth there.
    """
    if not text:
        return [], None
    raw = np.frombuffer(text, dtype=np.uint8)
    where = np.flatnonzero(_STRUCTURAL[raw])
    chars = raw[where]
    outside = _outside_strings(chars, where)
    steps = np.where(outside, _OPEN[chars], 0)
    depth = np.cumsum(steps, dtype=np.int32)
    closed_at = np.flatnonzero(depth == -1)
    close = int(where[closed_at[0]]) if len(closed_at) else None
    n = int(closed_at[0]) if len(closed_at) else len(chars)
    top = outside[:n] & (depth[:n] == 0)
    ends = set((where[:n][top & (steps[:n] == -1)] + 1).tolist())
    separators = where[:n][top & (chars[:n] == _COMMA)].tolist()
    if close is not None:
        separators.append(close)
    ends.update(_scalar_ends(text, raw, where, separators))
    return sorted(ends), close


def _scalar_ends(text: bytes, raw: np.ndarray, where: np.ndarray, separators: list[int]) -> list:
    """Ends of top-level elements that are not objects or lists (a number, a string, null),
    found before a comma or the closing bracket. Wrong in the files we read, but they must
    still be found, to be reported one by one."""
    ends = []
    previous = np.searchsorted(where, separators) - 1  # the structural byte before each
    for separator, k in zip(separators, previous.tolist(), strict=True):
        start = int(where[k]) if k >= 0 else -1
        gap = text[start + 1 : separator].rstrip()
        if gap.strip():  # a number, true/false/null, or garbage
            ends.append(start + 1 + len(gap))
        elif start >= 0 and raw[start] == _QUOTE:  # a string
            ends.append(start + 1)
    return ends


def _outside_strings(chars: np.ndarray, where: np.ndarray) -> np.ndarray:
    """For each structural byte, whether it lies outside JSON strings (quotes count as in)."""
    quotes = chars == _QUOTE
    slashes = np.flatnonzero(chars == _BACKSLASH)
    if len(slashes):  # rare: only escapes inside strings
        escaped: set[int] = set()
        for pos in where[slashes].tolist():
            if pos not in escaped:
                escaped.add(pos + 1)
        quotes &= ~np.isin(where, list(escaped))
    inside = np.logical_xor.accumulate(quotes)
    return ~(inside | quotes)


def _check_after_close(rest: bytes, path: Path) -> None:
    if rest.strip():
        raise InputError(f"{path}: unexpected text after the JSON list: {rest.strip()[:40]!r}")


def _decode_block(
    block: bytes, ends: list[int], decoder: Any, one: Any, path: Path, first: int
) -> list[Any]:
    """The block's elements; a bad element becomes an `ElementError` in its place."""
    try:
        return decoder.decode(b"[" + _strip_commas(block) + b"]")
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        pass
    items: list[Any] = []
    start = 0
    for end in ends:
        piece = block[start:end].strip()
        start = end
        index = first + len(items)
        body = piece.lstrip(b", \t\r\n")
        if piece[: len(piece) - len(body)].count(b",") != (index > 0):
            raise InputError(
                f"{path}: element {index}: expected exactly one comma before it; "
                "the file is damaged"
            )
        piece = body
        where = f"{path}: element {index}"
        try:
            items.append(one.decode(piece))
        except msgspec.ValidationError as exc:
            items.append(ElementError(f"{where}: {exc}", piece, where))
        except RecursionError:
            raise InputError(f"{where} is {NESTED_TOO_DEEPLY}") from None
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise InputError(
                f"{where} is not valid JSON ({decode_problem(piece, exc)}); the file is damaged"
            ) from None
    return items


def _strip_commas(block: bytes) -> bytes:
    return block.strip().lstrip(b",")
