"""Atomic file writes: a temporary file in the same folder, fsync, then rename.

A temporary file is created private (0600); before the rename it gets the mode a plain
`open()` would have given (0666 less the umask), so others on a shared cluster can read what
a build writes, as they can read its shards.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def write_atomic(path: Path, data: bytes | str, fsync: bool = True) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never half.
    Without `fsync`, a power loss may lose the new file (a killed process cannot)."""
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, default_file_mode())
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def default_file_mode() -> int:
    """0666 less the process's umask: the mode `open()` gives a new file."""
    return 0o666 & ~_umask()


def _umask() -> int:
    """The umask, read without changing it where the system says it (/proc on Linux): setting
    it to read it would, for a moment, apply to files other threads create."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o077)  # elsewhere: set a strict mask for that moment, then put it back
    os.umask(mask)
    return mask


def write_json(path: Path, value: Any) -> None:
    """Pretty, stable JSON (sorted keys), written atomically."""
    write_atomic(path, json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    """One compact JSON object per line, written atomically."""
    write_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def file_digests(path: Path, chunk: int = 1 << 22) -> tuple[str, str]:
    """(sha256, md5) of a file, read once (md5 is what the wids shard index records)."""
    sha256, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            sha256.update(block)
            md5.update(block)
    return sha256.hexdigest(), md5.hexdigest()
