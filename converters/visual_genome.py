"""Visual Genome -> image records: objects, attributes, relationships and region phrases.

Every file of the release is a JSON list with one entry per image, hundreds of MB for
relationships.json. Each is read as a stream (`mminstruct.converters.jsonstream`), and the files are
walked side by side: the official files list images in the same order, so only the current
image's entries are in memory. A file that lacks some images (a subset) costs nothing more
when image_data.json gives the order: reading stops at the first entry of a later image.
Files in another order still work; entries met ahead of their image wait in a buffer
(memory then grows, and a warning says so).

Images come in the order of image_data.json when it is given (their sizes come from there);
without it, in the order the annotation files name them, with sizes read from the image
files. An object is one object however often it appears: entries with the same `object_id`
(or one listed in another's `merged_object_ids`) are merged, attributes included.

A bad object, relation or region costs only itself: it is skipped and counted as a
record-scope rejection naming the file, image and field. An annotation entry for an image
that image_data.json does not list is skipped the same way. A file whose first entry names
no image at all is another kind of file (an sg2im scene graph, say): it is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mminstruct.converters.jsonstream import ElementError, iter_array
from mminstruct.converters.vg_files import (
    ENTRY_TYPES,
    _coco_captions,
    _entry_id,
    _ImageInfo,
    _loosely,
    no_image_id,
)
from mminstruct.converters.vg_image import _Image

from mminstruct.config import VisualGenomeSourceConfig
from mminstruct.errors import InputError
from mminstruct.records import ImageId, ImageRecord, Rejection
from mminstruct.resources import resolve_path

log = logging.getLogger("mminstruct")

BUFFER_WARNING = 10_000  # entries waiting for their image before the reader warns
ALIGNED_AFTER = 100  # entries in image_data order before a missing image stops reading ahead


def read_visual_genome(source: VisualGenomeSourceConfig) -> Iterator[ImageRecord | Rejection]:
    """Every image of a Visual Genome source: a record or a rejection, then skipped records."""
    skips: list[Rejection] = []
    streams = [
        _Stream(key, resolve_path(getattr(source, key)), ENTRY_TYPES[key], source.name, skips)
        for key in ENTRY_TYPES
        if getattr(source, key)
    ]
    images_dir = resolve_path(source.images)
    captions = _coco_captions(source)
    files = {stream.key: stream.path.name for stream in streams}
    for image_id, info, parts in _join(source, streams, skips):
        image = _Image(image_id, source.name, images_dir, info, parts, skips, captions, files)
        yield image.record()
        yield from skips
        skips.clear()
    yield from skips


# --------------------------------------------------------------------------- joining files


class _Stream:
    """One annotation file, read in order, with entries read ahead of their image kept."""

    def __init__(self, key: str, path: Path, entry_type: type, dataset: str, skips: list):
        self.key, self.path, self.dataset, self.skips = key, path, dataset, skips
        self.entries = self._entries(entry_type)
        self.pending: dict[ImageId, Any] = {}
        self.warned = False
        self.ordered: int | None = 0  # entries read in image_data order; None: out of order
        self.last_place = -1

    def _entries(self, entry_type: type) -> Iterator[tuple[ImageId, Any]]:
        seen: set[ImageId] = set()
        for index, entry in enumerate(iter_array(self.path, entry_type)):
            where = f"{self.path.name}: element {index}"
            if isinstance(entry, ElementError):
                entry = _loosely(entry, entry_type)
            if isinstance(entry, ElementError):
                self._skip("bad_entry", f"{entry}", None)
                continue
            image_id = _entry_id(entry)
            if image_id is None and index == 0:  # the whole file is something else
                raise InputError(no_image_id(f"{self.path}: element 0", self.key, entry))
            if image_id is None:
                self._skip("bad_entry", f"{where}: needs an integer 'image_id' (or 'id')", None)
            elif image_id in seen:
                self._skip("duplicate_entry", f"{where}: image {image_id} listed again", image_id)
            else:
                seen.add(image_id)
                yield image_id, entry

    def take(self, image_id: ImageId, rank: dict[ImageId, int] | None = None) -> Any:
        """This file's entry for `image_id`, reading ahead as far as needed; None if none.

        With `rank` (each image's place in image_data.json), once the file has listed
        ALIGNED_AFTER images in that order, reading stops at the first entry of a later
        image: the file has none for this one, and nothing more is read.
        """
        if image_id in self.pending:
            return self.pending.pop(image_id)
        for found, entry in self.entries:
            self._note_order(found, rank)
            if found == image_id:
                return entry
            self.pending[found] = entry
            if self._in_order(found, rank) and rank.get(found, -1) > rank[image_id]:
                return None  # an ordered file has moved past this image: it has none
            if len(self.pending) > BUFFER_WARNING and not self.warned:
                self.warned = True
                log.warning(
                    "%s lists images in another order than the other files, or lacks "
                    "some of them; its entries are buffered until their image comes "
                    "(memory grows)",
                    self.path,
                )
        return None

    def _note_order(self, found: ImageId, rank: dict[ImageId, int] | None) -> None:
        """Count entries read in image_data.json's order; one out of order ends the count."""
        if rank is None or self.ordered is None:
            return
        place = rank.get(found)
        if place is None or place <= self.last_place:
            self.ordered = None
        else:
            self.ordered, self.last_place = self.ordered + 1, place

    def _in_order(self, found: ImageId, rank: dict[ImageId, int] | None) -> bool:
        return rank is not None and self.ordered is not None and self.ordered >= ALIGNED_AFTER

    def rest(self) -> Iterator[tuple[ImageId, Any]]:
        """Entries no image has taken yet: buffered ones, then the unread rest of the file,
        each in file order."""
        pending, self.pending = self.pending, {}
        yield from pending.items()
        yield from self.entries

    def _skip(self, reason: str, detail: str, image_id: ImageId | None) -> None:
        self.skips.append(Rejection(reason, detail, self.dataset, image_id, record_only=True))


def _join(
    source: VisualGenomeSourceConfig, streams: list[_Stream], skips: list[Rejection]
) -> Iterator[tuple[ImageId, _ImageInfo | None, dict[str, Any]]]:
    """(image id, its image_data entry, {file key: entry}) for every image, in order."""
    if source.image_data:
        infos = _Stream(
            "image_data", resolve_path(source.image_data), _ImageInfo, source.name, skips
        )
        listed = list(infos.rest())  # small: sizes and ids of every image, no annotations
        rank = {image_id: place for place, (image_id, _) in enumerate(listed)}
        for image_id, info in listed:
            yield image_id, info, {s.key: s.take(image_id, rank) for s in streams}
        for stream in streams:
            for image_id, _ in stream.rest():
                stream._skip(*_leftover(stream, image_id, rank), image_id)
        return
    for k, stream in enumerate(streams):  # no image list: every image any file names
        for image_id, entry in stream.rest():
            parts = {stream.key: entry} | {s.key: s.take(image_id) for s in streams[k + 1 :]}
            yield image_id, None, parts


def _leftover(stream: _Stream, image_id: ImageId, rank: dict[ImageId, int]) -> tuple[str, str]:
    """(reason, detail) for an entry no image took."""
    if image_id not in rank:
        detail = f"{stream.path.name}: image {image_id} has no entry in image_data.json"
        return "annotation_without_image", detail
    detail = (
        f"{stream.path.name}: the entry of image {image_id} comes after those of later images "
        f"of image_data.json, after {ALIGNED_AFTER} in its order; sort the file like "
        "image_data.json to use it"
    )
    return "entry_out_of_order", detail
