"""Output: samples -> webdataset tar shards, written atomically and resumably.

Takes image bytes and instructions; gives `<key>.jpg` + `<key>.json` in tars, a stats file per
shard (its completion marker) and read-back of finished shards. Start at `shards.py` (the
writer) and `samples.py` (the JSON record); `resume.py` says what a rerun may skip.
"""

from mminstruct.output.readback import StoredSample, iter_samples, read_bookkeeping, shard_paths
from mminstruct.output.resume import (
    PARTS,
    StopRequested,
    claim_output,
    config_digest,
    config_disagreements,
    done_units,
    fingerprint,
    images_state,
    marker_path,
    read_markers,
    stop_on_sigterm,
    unit_stem,
)
from mminstruct.output.samples import (
    IMAGE_TOKEN,
    SAMPLE_FIELDS,
    sample_members,
    sample_record,
)
from mminstruct.output.shards import ShardInfo, ShardWriter
from mminstruct.output.stats import Tally, merge_stats, sample_lengths, sample_templates

__all__ = [
    "IMAGE_TOKEN",
    "PARTS",
    "SAMPLE_FIELDS",
    "ShardInfo",
    "ShardWriter",
    "StopRequested",
    "StoredSample",
    "Tally",
    "claim_output",
    "config_digest",
    "config_disagreements",
    "done_units",
    "fingerprint",
    "images_state",
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
