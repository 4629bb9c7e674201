"""`run(config)`: annotations in, webdataset shards out, top to bottom.

sources -> records -> (per shard) images -> generator -> samples -> tar -> shard stats
-> finalize: stats.json, rejects.jsonl, manifest, wids index, dataset card.

Work is cut into units of `output.shard_max_samples` input images, in a stable order; unit i
goes to rank i mod world_size, writes `shard-NNNNNN.tar` and, last, its stats file under
`_parts/`, which marks it done. A rerun skips done units, so a killed job resumes where it
stopped; the last process to finish merges everything (`finalize`).

The generator sees one stream of batches over all of this process's units
(`generate_stream`): a server backend keeps its requests in flight across batches and shards
while this thread checks and writes what has come back, in input order.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mminstruct.checks import FailureWatch, ground
from mminstruct.config import Config, check_paths, dump_config
from mminstruct.converters import READERS
from mminstruct.errors import MminstructError
from mminstruct.generate import (
    Batch,
    Generator,
    generate_stream,
    make_generator,
    stopping_servers,
)
from mminstruct.images import LoadedImage, load_image
from mminstruct.io import file_digests, write_atomic, write_json, write_jsonl
from mminstruct.keys import image_seed, sample_key
from mminstruct.launch import Launch
from mminstruct.output import (
    PARTS,
    ShardInfo,
    ShardWriter,
    StopRequested,
    Tally,
    claim_output,
    config_digest,
    done_units,
    fingerprint,
    images_state,
    marker_path,
    sample_members,
    sample_record,
    stop_on_sigterm,
    unit_stem,
)
from mminstruct.progress import Progress
from mminstruct.publish import SOURCE_REJECTS, finalize, finalize_when_complete
from mminstruct.records import Generated, ImageRecord, Rejection

log = logging.getLogger("mminstruct")

Item = ImageRecord | Rejection
Loaded = tuple[Item, LoadedImage | Rejection]  # an input image, loaded or refused
Stream = Iterator[tuple[list[Loaded], list[Generated]]]  # a batch, what the generator made


@dataclass(frozen=True)
class _Job:
    config: Config
    out_dir: Path
    generator: Generator
    fingerprint: str
    units: int  # how many units the whole job has
    stop: threading.Event  # set by SIGTERM
    failures: FailureWatch  # stops the run when the model fails on too many images


def run(config: Config, launch: Launch | None = None, force: bool = False) -> dict | None:
    """Build this process's share of the dataset; the merged stats if it also finalized."""
    launch = launch or Launch()
    check_paths(config)  # a missing images folder is a config error, before anything is read
    # From the start: a SIGTERM is never a crash, a full disk is a message.
    # A managed inference server never outlives the build, whatever way it ends.
    with stop_on_sigterm() as stop, _disk_errors(config.output.dir), stopping_servers():
        out_dir = prepare_output_dir(config, launch)
        current = fingerprint(config)
        with claim_output(out_dir, current, force):  # or refused, the folder untouched
            return build_claimed(config, launch, force, out_dir, current, stop)


def build_claimed(
    config: Config, launch: Launch, force: bool, out_dir: Path, current: str, stop: threading.Event
) -> dict | None:
    """The build, once `out_dir` is held for this config: sources, units, shards, merge."""
    items, skipped = read_sources(config)
    units = list(plan_units(items, config.output.shard_max_samples))
    done = done_units(out_dir, current, launch, units, force)
    generator = make_generator(config, launch)  # a missing model stops the build here
    if launch.rank == 0:
        for stray in out_dir.glob(".*.tmp"):  # an interrupted write_atomic of a merged file
            stray.unlink(missing_ok=True)
        write_atomic(out_dir / "config.yaml", dump_config(config))
        write_jsonl(out_dir / PARTS / SOURCE_REJECTS, [r.to_json() for r in skipped])
    todo = [i for i in range(len(units)) if launch.owns(i) and i not in done]
    log.info("%s%d of %d shards to build here", launch.prefix, len(todo), len(units))
    watch = FailureWatch.of(config.generator)
    job = _Job(config, out_dir, generator, current, len(units), stop, watch)
    progress = Progress(sum(len(units[i]) for i in todo), prefix=launch.prefix)
    # One stream over every unit here: a server backend keeps requests in flight across
    # batches and shards; results come back in input order, a batch at a time.
    batches = _batches(job, [units[i] for i in todo])
    with contextlib.closing(generate_stream(generator, batches)) as stream:
        for index in todo:
            tally = build_unit(job, index, units[index], stream)
            progress.update(len(units[index]), sum(tally.instructions.values()), tally.tokens)
    progress.close()
    # A SIGTERM from here on is ignored: the work is done, the merge takes seconds.
    if launch.world_size == 1:
        return finalize(out_dir)
    return finalize_when_complete(out_dir, current, len(units))


def prepare_output_dir(config: Config, launch: Launch) -> Path:
    """Create `output.dir` (or reuse one of ours). The resolved config is saved only once
    the folder is claimed for it (`claim_output`)."""
    out_dir = Path(config.output.dir).expanduser()
    if out_dir.exists() and not out_dir.is_dir():
        raise MminstructError(f"output.dir {out_dir} is a file; choose a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / PARTS).is_dir():
        raise MminstructError(
            f"output.dir {out_dir} is not empty and was not written by mminstruct; "
            "choose a new or empty folder (--set output.dir=...)"
        )
    try:
        (out_dir / PARTS).mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # not allowed, read-only, a file where a folder should be...
        raise MminstructError(
            f"cannot write to output.dir {out_dir} ({exc.strerror}); choose a writable folder"
        ) from None
    return out_dir


def read_sources(config: Config) -> tuple[list[Item], list[Rejection]]:
    """Images of every source in order (records or image rejections), and skipped records."""
    items: list[Item] = []
    skipped: list[Rejection] = []
    for source in config.sources:
        log.info("reading %s source '%s'", source.kind, source.name)
        for item in READERS[source.kind](source):
            if isinstance(item, Rejection) and item.scope == "record":
                skipped.append(item)
            else:
                items.append(item)
    if config.limit is not None:
        items = items[: config.limit]
    log.info("%d images to build from; %d annotation records skipped", len(items), len(skipped))
    return items, skipped


def plan_units(items: list[Item], size: int) -> Iterator[list[Item]]:
    """Fixed ranges of `size` images, in input order: unit i holds items [i*size, (i+1)*size)."""
    return _chunks(items, size)


def build_unit(job: _Job, index: int, items: list[Item], stream: Stream) -> Tally:
    """Write one unit's shard(s), then its rejects and stats (the completion marker).
    `stream` gives this unit's batches next, each with what the generator made of it."""
    stem = unit_stem(index)
    output = job.config.output
    tally = Tally()
    job.generator.start_unit()
    caps = (output.shard_max_samples, output.shard_max_bytes)
    with ShardWriter(job.out_dir, stem, *caps, fsync=output.fsync) as writer:
        for _ in _chunks(items, job.config.generator.batch_size):
            if job.stop.is_set():
                raise StopRequested(f"stopped by SIGTERM; {stem} was abandoned")
            loaded, generated = next(stream)
            _write_batch(job, loaded, generated, writer, tally)
    rejects = [r.to_json() for r in tally.rejects]
    write_jsonl(job.out_dir / PARTS / f"{stem}.rejects.jsonl", rejects)
    shards = [_shard_entry(shard) for shard in writer.done]
    marker = {
        "unit": index,
        "units": job.units,
        "fingerprint": job.fingerprint,
        "config_digest": config_digest(job.config),
        "images_state": images_state(items),
    }
    write_json(marker_path(job.out_dir, index), {**marker, **tally.to_json(), "shards": shards})
    return tally


def _shard_entry(shard: ShardInfo) -> dict:
    """What the manifest and the wids index need of a shard; hashed while still in cache."""
    sha256, md5 = file_digests(shard.path)
    return {
        "name": shard.path.name,
        "samples": shard.samples,
        "bytes": shard.bytes,
        "sha256": sha256,
        "md5": md5,
    }


def _batches(job: _Job, units: list[list[Item]]) -> Iterator[Batch[list[Loaded]]]:
    """The units' images in batches of `generator.batch_size` (never across units), each
    loaded as the generator asks for it; a batch carries every item with its image or
    rejection."""
    config = job.config
    for items in units:
        for chunk in _chunks(items, config.generator.batch_size):
            loaded = [(item, _load(config, item)) for item in chunk]
            ready = [(i, image) for i, image in loaded if not isinstance(image, Rejection)]
            yield Batch([i for i, _ in ready], [image.data for _, image in ready], loaded)


def _load(config: Config, item: Item) -> LoadedImage | Rejection:
    if isinstance(item, Rejection):
        return item
    return load_image(item, config.output.image_check, max_bytes=config.output.max_image_bytes)


def _write_batch(
    job: _Job, loaded: list[Loaded], generated: list[Generated], writer: ShardWriter, tally: Tally
) -> None:
    """A batch's images rejected on loading, then its samples, checked, in input order."""
    ready = []
    for item, image in loaded:
        if isinstance(image, Rejection):
            tally.reject(image)
        else:
            ready.append((item, image))
    records = [record for record, _ in ready]
    results = check_generated(job.generator, job.config, records, generated)
    for (record, image), result in zip(ready, results, strict=True):
        job.failures.add(result)
        tally.tokens += result.tokens
        tally.preference_dropped.update(result.preference_dropped)
        for rejection in result.rejections:
            tally.reject(rejection)
        if not result.instructions:
            detail = "no task produced an instruction (see this image's task rejections)"
            tally.reject(Rejection("no_instructions", detail, record.dataset, record.image_id))
            continue
        key = sample_key(record.dataset, record.image_id)
        sample = sample_record(record, key, result.instructions, job.config.generator.seed)
        writer.write(key, sample_members(key, image, sample))
        tally.written(result.instructions, image.extension, record.image_id)
        tally.describe(record, sample)
    job.failures.check()


def generate_batch(
    generator: Generator, config: Config, records: list[ImageRecord], images: list[bytes]
) -> list[Generated]:
    """What the generator made for each record, after the checks every backend's output
    goes through (`preview` comes here; `build` streams batches through the same checks)."""
    return check_generated(generator, config, records, generator.generate(records, images))


def check_generated(
    generator: Generator, config: Config, records: list[ImageRecord], results: list[Generated]
) -> list[Generated]:
    """The checks every backend's output goes through: grounding, then preference pairs."""
    mode = config.generator.grounding
    results = [ground(record, r, mode) for record, r in zip(records, results, strict=True)]
    preference = config.tasks.preference
    if preference.enabled:
        from mminstruct.checks import add_preference_pairs

        seeds = [image_seed(config.generator.seed, r.dataset, r.image_id) for r in records]
        results = [
            add_preference_pairs(record, result, preference, seed)
            for record, result, seed in zip(records, results, seeds, strict=True)
        ]
        if preference.rewrite:
            _rewrite_rejected(generator, config, records, results)
    return results


def _rewrite_rejected(
    generator: Generator, config: Config, records: list[ImageRecord], results: list[Generated]
) -> None:
    """Model backends: the model rewrites each pair's rejected answer (`tasks.preference`)."""
    from mminstruct.checks import rewrite_rejected
    from mminstruct.generate import load_template
    from mminstruct.resources import resolve_path

    folder = config.generator.templates
    template = load_template("preference", resolve_path(folder) if folder else None)
    rewrite_rejected(generator.backend, template, records, results, config.generator.seed)


# Errors only a write can meet: the disk is full, over quota, or read-only.
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


@contextlib.contextmanager
def _disk_errors(out_dir: str) -> Iterator[None]:
    """A full or read-only disk stops the build with what to do, never a traceback.

    The shard being written is dropped (never left under its final name), so a rerun
    resumes cleanly once there is room.
    """
    try:
        yield
    except OSError as exc:
        if exc.errno not in _DISK_FULL:
            raise
        where = f" ({exc.filename})" if exc.filename else ""
        raise MminstructError(
            f"cannot write to output.dir {out_dir}: {exc.strerror}{where}; make room (or set "
            "output.dir to another disk) and rerun the same command to resume "
            "(finished shards are kept)"
        ) from None


def _chunks(items: list[Item], size: int) -> Iterator[list[Item]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
