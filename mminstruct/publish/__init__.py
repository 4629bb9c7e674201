"""Publish: a finished build -> stats.json, manifest, wids index, dataset card, plots, exports.

Takes the shards and per-shard stats of an output folder; gives what a user uploads or trains
on. Start at `finalize.py` (merging), then `card.py`; `recount.py` checks, `export.py` converts.
"""

from mminstruct.publish.card import regenerate_card, write_card
from mminstruct.publish.export import FORMATS, Exported, export
from mminstruct.publish.finalize import (
    SOURCE_REJECTS,
    WIDS_INDEX,
    finalize,
    finalize_when_complete,
)
from mminstruct.publish.recount import (
    consumer_disagreements,
    disagreements,
    index_disagreements,
    recount,
)

__all__ = [
    "FORMATS",
    "SOURCE_REJECTS",
    "WIDS_INDEX",
    "Exported",
    "consumer_disagreements",
    "disagreements",
    "export",
    "finalize",
    "finalize_when_complete",
    "index_disagreements",
    "recount",
    "regenerate_card",
    "write_card",
]
