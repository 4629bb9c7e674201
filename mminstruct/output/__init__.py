"""Output: samples -> webdataset tar shards, written atomically and resumably.

Takes image bytes and instructions; gives `<key>.jpg` + `<key>.json` in tars, a stats file per
shard (its completion marker) and read-back of finished shards. Start at `shards.py` (the
writer) and `samples.py` (the JSON record); `resume.py` says what a rerun may skip.
"""

from mminstruct.output.readback import StoredSample, iter_samples, read_bookkeeping, shard_paths
from mminstruct.output.resume import (
    PARTS,
    StopRequested,
    done_units,
    fingerprint,
    marker_path,
    read_markers,
    stop_on_sigterm,
    unit_stem,
)
from mminstruct.output.samples import IMAGE_TOKEN, sample_members, sample_record
from mminstruct.output.shards import ShardInfo, ShardWriter
from mminstruct.output.stats import Tally, merge_stats, sample_lengths, sample_templates

__all__ = [
    "IMAGE_TOKEN",
    "PARTS",
    "ShardInfo",
    "ShardWriter",
    "StopRequested",
    "StoredSample",
    "Tally",
    "done_units",
    "fingerprint",
    "iter_samples",
    "marker_path",
    "merge_stats",
    "read_bookkeeping",
    "read_markers",
    "sample_lengths",
    "sample_members",
    "sample_record",
    "sample_templates",
    "shard_paths",
    "stop_on_sigterm",
    "unit_stem",
]
