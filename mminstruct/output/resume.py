"""Resumable work: what a run has already done, what it must redo, and when to stop.

A unit (shard) is done when its stats file `_parts/shard-NNNNNN.stats.json` exists: it is
written last, atomically, after the unit's tar files are complete under their final names.
Each stats file records the fingerprint of the config and inputs that built it, so a rerun
with a different config refuses to mix results unless told to rebuild (`--force`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import mminstruct
from mminstruct.config import Config, annotation_files, config_to_dict
from mminstruct.errors import MminstructError
from mminstruct.launch import Launch
from mminstruct.resources import resolve_path, shipped_dir

PARTS = "_parts"
# A unit's files: its tar parts, their temporary names, its stats and rejects, and the hidden
# temporary files `write_atomic` leaves when a process dies mid-write.
_UNIT_FILE = re.compile(
    r"^\.?shard-(\d{6})(?:_\d+)?\.(?:tar|tar\.tmp|stats\.json|rejects\.jsonl)(?:\.[^.]+\.tmp)?$"
)
# Output keys that do not change samples.
CARD_ONLY = ("dir", "fsync", "license", "pretty_name", "license_name", "license_link")
# Generator keys that decide whether a run goes on, not what its samples are: raising the
# threshold after a run stopped early resumes it.
RUN_ONLY = ("max_failure_rate",)


class StopRequested(MminstructError):
    """SIGTERM arrived: the shard in progress was abandoned cleanly."""


def fingerprint(config: Config) -> str:
    """A hash of everything that decides the samples: config, templates, inputs, version."""
    settings = config_to_dict(config)
    for key in CARD_ONLY:
        settings["output"].pop(key)
    for key in RUN_ONLY:
        settings["generator"].pop(key)
    templates = config.generator.templates
    folder = resolve_path(templates) if templates else shipped_dir("templates")
    state = {
        "config": settings,
        "version": mminstruct.__version__,
        "templates": _folder_digest(folder),
        "inputs": [_file_state(p) for s in config.sources for p in annotation_files(s)],
    }
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:16]


def _folder_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _file_state(text: str) -> list:
    path = resolve_path(text)
    try:
        info = path.stat()
    except OSError:
        return [str(path), None, None]
    return [str(path.resolve()), info.st_size, info.st_mtime_ns]


def unit_stem(index: int) -> str:
    """`shard-000042`: the file name stem of unit 42."""
    return f"shard-{index:06d}"


def marker_path(out_dir: Path, index: int) -> Path:
    """The stats file whose presence marks unit `index` as done."""
    return out_dir / PARTS / f"{unit_stem(index)}.stats.json"


def read_markers(out_dir: Path) -> dict[int, dict]:
    """Every finished unit's stats, by unit index."""
    markers = {}
    for path in sorted((out_dir / PARTS).glob("shard-*.stats.json")):
        markers[int(path.name[6:12])] = json.loads(path.read_text(encoding="utf-8"))
    return markers


def done_units(out_dir: Path, current: str, launch: Launch, units: int, force: bool) -> set[int]:
    """Units already built with this fingerprint; clears this rank's stale and partial files.

    Finished units built from another config (or beyond this plan) stop the run unless
    `force`, in which case each rank deletes its own. Leftover temporary files and parts
    of unfinished units of this rank are removed; other ranks' files are never touched.
    """
    markers = read_markers(out_dir)
    stale = sorted(i for i, m in markers.items() if m.get("fingerprint") != current or i >= units)
    if stale and not force:
        names = ", ".join(unit_stem(i) for i in stale[:5]) + (" ..." if len(stale) > 5 else "")
        raise MminstructError(
            f"{out_dir} holds {len(stale)} shard(s) built from a different config or input "
            f"({names}); rerun with --force to rebuild them, or set another output.dir"
        )
    done = {i for i in markers if i not in stale}
    for path in _unit_files(out_dir):
        index = int(_UNIT_FILE.match(path.name).group(1))
        if launch.owns(index) and (index not in done or path.name.endswith(".tmp")):
            path.unlink(missing_ok=True)
    return done


def _unit_files(out_dir: Path) -> Iterator[Path]:
    for folder in (out_dir, out_dir / PARTS):
        for path in (*folder.glob("shard-*"), *folder.glob(".shard-*")):
            if _UNIT_FILE.match(path.name):
                yield path


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[threading.Event]:
    """An event set by SIGTERM (what Slurm sends before the time limit) while inside."""
    stop = threading.Event()
    try:
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    except ValueError:  # not the main thread: leave signals alone
        yield stop
        return
    try:
        yield stop
    finally:
        signal.signal(signal.SIGTERM, previous)
