"""`run(config)`: annotations in, webdataset shards out, top to bottom.

sources -> records -> (per shard) images -> generator -> samples -> tar -> shard stats
-> finalize: stats.json, rejects.jsonl, dataset card.

Work is cut into units of `output.shard_max_samples` input images, in a stable order; each
unit writes `shard-NNNNNN.tar` and, last, its stats file under `_parts/`, which marks it done.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mminstruct.card import render_card
from mminstruct.config import Config, config_to_dict, dump_config
from mminstruct.converters import READERS
from mminstruct.errors import MminstructError
from mminstruct.generators import Generator, make_generator
from mminstruct.images import load_image
from mminstruct.io import write_atomic, write_json, write_jsonl
from mminstruct.keys import sample_key
from mminstruct.progress import Progress
from mminstruct.records import ImageRecord, Rejection
from mminstruct.samples import sample_members, sample_record
from mminstruct.shards import TMP_SUFFIX, ShardWriter
from mminstruct.stats import Tally, merge_stats

log = logging.getLogger("mminstruct")

PARTS = "_parts"
SOURCE_REJECTS = "sources.rejects.jsonl"
OUTPUT_FILES = ("stats.json", "rejects.jsonl", "config.yaml", "README.md")
Item = ImageRecord | Rejection


@dataclass(frozen=True)
class _Job:
    config: Config
    out_dir: Path
    generator: Generator


def run(config: Config) -> dict:
    """Build the dataset described by `config`; returns the merged stats."""
    out_dir = prepare_output_dir(config)
    items, skipped = read_sources(config)
    write_jsonl(out_dir / PARTS / SOURCE_REJECTS, [r.to_json() for r in skipped])
    job = _Job(config, out_dir, make_generator(config))
    progress = Progress(len(items))
    for index, unit in enumerate(plan_units(items, config.output.shard_max_samples)):
        tally = build_unit(job, index, unit)
        progress.update(len(unit), sum(tally.instructions.values()))
    progress.close()
    return finalize(out_dir, config)


def prepare_output_dir(config: Config) -> Path:
    """Create `output.dir`, clear what an earlier build left there, save the resolved config."""
    out_dir = Path(config.output.dir).expanduser()
    if out_dir.exists() and not out_dir.is_dir():
        raise MminstructError(f"output.dir {out_dir} is a file; choose a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / PARTS).is_dir():
        raise MminstructError(
            f"output.dir {out_dir} is not empty and was not written by mminstruct; "
            "choose a new or empty folder (--set output.dir=...)"
        )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        _clear_previous_build(out_dir)
        (out_dir / PARTS).mkdir()
        write_atomic(out_dir / "config.yaml", dump_config(config))
    except PermissionError as exc:
        raise MminstructError(
            f"cannot write to output.dir {out_dir} ({exc.strerror}); choose a writable folder"
        ) from None
    return out_dir


def _clear_previous_build(out_dir: Path) -> None:
    for path in out_dir.glob("shard-*.tar*"):
        if path.suffix == ".tar" or path.name.endswith(TMP_SUFFIX):
            path.unlink()
    for name in OUTPUT_FILES:
        (out_dir / name).unlink(missing_ok=True)
    shutil.rmtree(out_dir / PARTS, ignore_errors=True)


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


def build_unit(job: _Job, index: int, items: list[Item]) -> Tally:
    """Write one unit's shard(s), then its rejects and stats (the completion marker)."""
    stem = f"shard-{index:06d}"
    output = job.config.output
    tally = Tally()
    caps = (output.shard_max_samples, output.shard_max_bytes)
    with ShardWriter(job.out_dir, stem, *caps, fsync=output.fsync) as w:
        for batch in _chunks(items, job.config.generator.batch_size):
            _build_batch(job, batch, w, tally)
    parts = job.out_dir / PARTS
    write_jsonl(parts / f"{stem}.rejects.jsonl", [r.to_json() for r in tally.rejects])
    shards = [{"name": s.path.name, "samples": s.samples, "bytes": s.bytes} for s in w.done]
    write_json(parts / f"{stem}.stats.json", {"unit": index, **tally.to_json(), "shards": shards})
    return tally


def _build_batch(job: _Job, batch: list[Item], writer: ShardWriter, tally: Tally) -> None:
    ready = []
    for item in batch:
        image = (
            item if isinstance(item, Rejection) else load_image(item, job.config.output.image_check)
        )
        if isinstance(image, Rejection):
            tally.reject(image)
        else:
            ready.append((item, image))
    results = job.generator.generate([record for record, _ in ready])
    for (record, image), generated in zip(ready, results, strict=True):
        for rejection in generated.rejections:
            tally.reject(rejection)
        if not generated.instructions:
            detail = "no task produced an instruction (see this image's task rejections)"
            tally.reject(Rejection("no_instructions", detail, record.dataset, record.image_id))
            continue
        key = sample_key(record.dataset, record.image_id)
        sample = sample_record(record, key, generated.instructions, job.config.generator.seed)
        writer.write(key, sample_members(key, image, sample))
        tally.written(generated.instructions, image.extension, record.image_id)


def finalize(out_dir: Path, config: Config) -> dict:
    """Merge per-shard stats and rejects into `stats.json`, `rejects.jsonl`; write the card."""
    parts_dir = out_dir / PARTS
    markers = sorted(parts_dir.glob("shard-*.stats.json"))
    parts = [json.loads(p.read_text(encoding="utf-8")) for p in markers]
    source_rejects = list(_read_jsonl([parts_dir / SOURCE_REJECTS]))
    unit_files = [p.with_name(p.name.replace(".stats.json", ".rejects.jsonl")) for p in markers]
    rejects = source_rejects + list(_read_jsonl(unit_files))
    source_part = {"rejects": Counter(row["reason"] for row in source_rejects)}
    stats = merge_stats([source_part, *parts])
    if stats["images_in"] != stats["images_written"] + stats["images_rejected"]:
        raise MminstructError(f"internal error: images do not add up in {out_dir}: {stats}")
    write_jsonl(out_dir / "rejects.jsonl", rejects)
    write_json(out_dir / "stats.json", stats)
    write_atomic(out_dir / "README.md", render_card(config_to_dict(config), stats))
    return stats


def _read_jsonl(paths: Iterable[Path]) -> Iterator[dict]:
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                yield json.loads(line)


def _chunks(items: list[Item], size: int) -> Iterator[list[Item]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
