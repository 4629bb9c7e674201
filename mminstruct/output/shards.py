"""Webdataset tar shards, written lean and reproducibly.

A shard is plain POSIX ustar: one 512-byte header per member, then the data padded to
512 bytes, then two zero blocks. Headers carry a fixed mtime, uid/gid 0 and mode 0644, so
the same samples always give byte-identical tars. A shard is written under a temporary
name and renamed only when complete; an empty shard is never left behind.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from mminstruct.keys import split_member_name

BLOCK = 512
RECORD = 20 * BLOCK  # tar's default blocking: archives end on a 10 KiB boundary
FIXED_MTIME = 0  # 1970-01-01: reruns produce byte-identical tars
TMP_SUFFIX = ".tmp"


@dataclass(frozen=True)
class ShardInfo:
    """A completed shard."""

    path: Path
    samples: int
    bytes: int


def tar_header(name: str, size: int, mtime: int = FIXED_MTIME) -> bytes:
    """A ustar header for a regular file (name: ASCII, under 100 bytes)."""
    encoded = name.encode("ascii")
    if len(encoded) >= 100:
        raise ValueError(f"tar member name too long (max 99 bytes): {name!r}")
    header = bytearray(BLOCK)
    header[0 : len(encoded)] = encoded
    header[100:108] = b"0000644\0"
    header[108:116] = b"0000000\0"
    header[116:124] = b"0000000\0"
    header[124:136] = b"%011o\0" % size
    header[136:148] = b"%011o\0" % mtime
    header[148:156] = b" " * 8  # checksum is computed with this field as spaces
    header[156] = ord("0")
    header[257:265] = b"ustar\x0000"
    header[148:156] = b"%06o\0 " % sum(header)
    return bytes(header)


def _padding(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)


class ShardWriter:
    """Writes samples into `<stem>.tar`, rolling over to `<stem>_1.tar`, ... past the caps.

    `write(key, members)` adds one sample: `members` is a list of (extension, bytes), stored
    as `<key>.<extension>`. Use as a context manager: on an exception the shard in progress
    is discarded; on success every shard is complete under its final name. With `fsync`,
    a shard is on disk before it gets that name.
    """

    def __init__(
        self, out_dir: Path, stem: str, max_samples: int, max_bytes: int, fsync: bool = False
    ):
        self.out_dir = Path(out_dir)
        self.stem = stem
        self.max_samples = max_samples
        self.max_bytes = max_bytes
        self.fsync = fsync
        self.done: list[ShardInfo] = []
        self._file = None
        self._samples = 0
        self._bytes = 0

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(self, key: str, members: list[tuple[str, bytes]]) -> None:
        """Add one sample; starts a new shard first when this one is full."""
        for extension, _ in members:
            if split_member_name(f"{key}.{extension}") is None:
                raise ValueError(f"not a valid sample member name: {key!r}.{extension!r}")
        size = sum(BLOCK + len(data) + len(_padding(len(data))) for _, data in members)
        if self._file is not None and (
            self._samples >= self.max_samples or self._bytes + size > self.max_bytes
        ):
            self._finish()
        if self._file is None:
            self._open()
        chunks = []
        for extension, data in members:
            chunks += [tar_header(f"{key}.{extension}", len(data)), data, _padding(len(data))]
        self._file.write(b"".join(chunks))
        self._samples += 1
        self._bytes += size

    def close(self) -> list[ShardInfo]:
        """Finish the shard in progress; returns every shard written."""
        if self._file is not None:
            self._finish()
        return self.done

    def abort(self) -> None:
        """Drop the shard in progress (its temporary file) without publishing it."""
        if self._file is not None:
            with contextlib.suppress(OSError):  # on a full disk the final flush fails too
                self._file.close()
            self._temp_path().unlink(missing_ok=True)
            self._file = None

    def _final_path(self) -> Path:
        part = len(self.done)
        return self.out_dir / (f"{self.stem}.tar" if part == 0 else f"{self.stem}_{part}.tar")

    def _temp_path(self) -> Path:
        return self._final_path().with_name(self._final_path().name + TMP_SUFFIX)

    def _open(self) -> None:
        self._file = open(self._temp_path(), "wb")  # noqa: SIM115 - closed in _finish/abort
        self._samples = 0
        self._bytes = 0

    def _finish(self) -> None:
        end = 2 * BLOCK
        total = self._bytes + end
        self._file.write(b"\0" * (end + (-total % RECORD)))
        self._file.flush()
        if self.fsync:
            os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        final = self._final_path()
        os.replace(self._temp_path(), final)
        self.done.append(ShardInfo(final, self._samples, final.stat().st_size))
