"""Resumable work: what a run has already done, what it must redo, and when to stop.

A unit (shard) is done when its stats file `_parts/shard-NNNNNN.stats.json` exists: it is
written last, atomically, after the unit's tar files are complete under their final names.
Each stats file records the fingerprint of the config and inputs that built it, so a rerun
with a different config refuses to mix results unless told to rebuild (`--force`), and the
state of the unit's image files (path, size, mtime), so a changed image is built again.

A folder belongs to one config at a time: a running build holds it (a lock on
`_parts/.running`), and a build with another config is refused before it writes anything,
`config.yaml` included; once no build runs, finished shards of another config are refused
unless `--force`, and a folder with none is taken over.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import signal
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import mminstruct
from mminstruct.config import Config, annotation_files, config_to_dict
from mminstruct.errors import MminstructError
from mminstruct.images import resolve_image_path
from mminstruct.io import write_atomic
from mminstruct.launch import Launch
from mminstruct.records import ImageRecord, Rejection
from mminstruct.resources import resolve_path, shipped_dir

log = logging.getLogger("mminstruct")

PARTS = "_parts"
CLAIM = "fingerprint"  # _parts/fingerprint: the config this folder is built from
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
    settings = _sample_settings(config)
    templates = config.generator.templates
    folder = resolve_path(templates) if templates else shipped_dir("templates")
    state = {
        "config": settings,
        "version": mminstruct.__version__,
        "templates": _folder_digest(folder),
        "inputs": [_file_state(p) for s in config.sources for p in annotation_files(s)],
    }
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:16]


def config_digest(config: Config) -> str:
    """A hash of the config's settings that decide the samples (what `config.yaml` must match)."""
    text = json.dumps(_sample_settings(config), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _sample_settings(config: Config) -> dict:
    settings = config_to_dict(config)
    for key in CARD_ONLY:
        settings["output"].pop(key)
    for key in RUN_ONLY:
        settings["generator"].pop(key)
    return settings


def images_state(items: Iterable[ImageRecord | Rejection]) -> str:
    """A hash of a unit's image files as found now: path, size and mtime of each (or why it
    was not found), so that a resume notices an image replaced since its unit was built."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(json.dumps(_image_file_state(item)).encode() + b"\n")
    return digest.hexdigest()[:16]


def _image_file_state(item: ImageRecord | Rejection) -> list:
    if isinstance(item, Rejection):
        return ["rejected", item.reason]
    path = resolve_image_path(item)
    if isinstance(path, Rejection):
        return ["missing", path.reason]
    try:
        info = path.stat()
    except OSError as exc:
        return ["unreadable", str(path), exc.errno]
    return [str(path), info.st_size, info.st_mtime_ns]


@contextlib.contextmanager
def claim_output(out_dir: Path, current: str, force: bool) -> Iterator[None]:
    """Hold `out_dir` for the config with fingerprint `current` while the build runs.

    Every build holds a shared lock on `_parts/.running` until it ends (the kernel drops it
    if the process dies). A build with another config may take the folder over only when no
    build holds that lock: it is refused, before it writes anything, while one runs, and
    (unless `force`) while shards of another config are there. Builds of the same config
    (ranks, reruns) share the folder. Claims are made one at a time (`_parts/.claim`).
    """
    try:
        running = os.open(out_dir / PARTS / ".running", os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise MminstructError(
            f"cannot write to output.dir {out_dir} ({exc.strerror}); choose a writable folder"
        ) from None
    try:
        with _exclusive(out_dir / PARTS / ".claim"):
            _take(running, out_dir, current, force)
        yield
    finally:
        os.close(running)  # releases the lock


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _take(running: int, out_dir: Path, current: str, force: bool) -> None:
    """Take the shared lock on `running`; a new fingerprint first needs the folder to itself."""
    path = out_dir / PARTS / CLAIM
    claimed = path.read_text(encoding="utf-8").strip() if path.is_file() else None
    if claimed != current:
        try:
            fcntl.flock(running, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise MminstructError(
                f"{out_dir} is being built right now from a different config or input "
                f"(fingerprint {claimed}); nothing was written. Wait for that build, or set "
                "another output.dir"
            ) from None
        if not force:
            _refuse_other_shards(out_dir, current)
        write_atomic(path, current + "\n")
    fcntl.flock(running, fcntl.LOCK_SH)  # held while the build runs; same-config builds share it


def _refuse_other_shards(out_dir: Path, current: str) -> None:
    stale = sorted(i for i, m in read_markers(out_dir).items() if m.get("fingerprint") != current)
    if stale:
        names = ", ".join(unit_stem(i) for i in stale[:5]) + (" ..." if len(stale) > 5 else "")
        raise MminstructError(
            f"{out_dir} holds {len(stale)} shard(s) built from a different config or input "
            f"({names}); nothing was written. Rerun with --force to rebuild them, or set "
            "another output.dir"
        )


def config_disagreements(out_dir: Path, config: Config) -> list[str]:
    """Where `config.yaml` does not describe the config the shards were built from."""
    digests = {m.get("config_digest") for m in read_markers(out_dir).values()} - {None}
    if digests and digests != {config_digest(config)}:
        return [
            f"{out_dir / 'config.yaml'} does not match the config the shards were built from "
            "(its settings were changed after the build); rebuild, or restore the config"
        ]
    return []


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
        try:
            markers[int(path.name[6:12])] = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise MminstructError(
                f"{path} is damaged (not valid JSON); delete it to build that shard again, "
                "or rerun with --force"
            ) from None
    return markers


def done_units(
    out_dir: Path,
    current: str,
    launch: Launch,
    units: list[list[ImageRecord | Rejection]],
    force: bool,
) -> set[int]:
    """Units already built with this fingerprint from the same image files; clears this
    rank's stale and partial files.

    Finished units built from another config (or beyond this plan) stop the run unless
    `force`, in which case each rank deletes its own. A unit of this rank whose image files
    changed since it was built is built again. Leftover temporary files and parts of
    unfinished units of this rank are removed; other ranks' files are never touched.
    """
    markers = read_markers(out_dir)
    for index in _changed_images(markers, launch, units):
        del markers[index]
    stale = sorted(
        i for i, m in markers.items() if m.get("fingerprint") != current or i >= len(units)
    )
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


def _changed_images(
    markers: dict[int, dict], launch: Launch, units: list[list[ImageRecord | Rejection]]
) -> list[int]:
    """This rank's finished units whose image files are not what they were built from."""
    changed = []
    for index, marker in markers.items():
        recorded = marker.get("images_state")
        mine = index < len(units) and launch.owns(index) and recorded is not None
        if mine and recorded != images_state(units[index]):
            log.info(
                "%s: its image files changed since it was built; building it again",
                unit_stem(index),
            )
            changed.append(index)
    return changed


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
