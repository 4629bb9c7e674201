"""Column helpers for COCO's large files: id lookups and box arrays, vectorized with numpy."""

from __future__ import annotations

from typing import Any

import numpy as np
from mminstruct.converters.common import _ID_TYPES, _NUMBERS


def _positions(values: list[Any], keys: list[Any]) -> np.ndarray:
    """Index of each value in `keys`, -1 where absent: vectorized when all are plain ints."""
    if keys and set(map(type, values)) == {int} and set(map(type, keys)) == {int}:
        try:
            wanted = np.asarray(values, dtype=np.int64)
            known = np.asarray(keys, dtype=np.int64)
        except OverflowError:
            pass
        else:
            return _int_positions(wanted, known)
    index = {key: i for i, key in enumerate(keys)}
    looked_up = (index.get(v, -1) if v.__class__ in _ID_TYPES else -1 for v in values)
    return np.fromiter(looked_up, dtype=np.int64, count=len(values))


def _int_positions(wanted: np.ndarray, known: np.ndarray) -> np.ndarray:
    """`_positions` for integer ids: a lookup table when ids are dense enough, else a search."""
    low, high = int(known.min()), int(known.max())
    if high - low <= 16 * len(known) + 1_000_000:
        table = np.full(high - low + 2, -1, dtype=np.int64)  # the last slot: out of range
        table[known - low] = np.arange(len(known))
        return table[np.where((wanted >= low) & (wanted <= high), wanted - low, high - low + 1)]
    sorter = np.argsort(known, kind="stable")
    found = sorter[np.searchsorted(known, wanted, sorter=sorter).clip(max=len(known) - 1)]
    return np.where(known[found] == wanted, found, -1)


def _box_array(bboxes: list[Any]) -> np.ndarray:
    """The boxes as an (n, 4) float array; a malformed one becomes a row of NaN."""
    try:
        array = np.array(bboxes)
        if array.ndim == 2 and array.shape[1] == 4 and array.dtype.kind in "biuf":
            return array.astype(np.float64)
    except (ValueError, TypeError):
        pass
    rows = [_float_box(b) for b in bboxes]
    return np.array(rows, dtype=np.float64).reshape(len(rows), 4)


def _float_box(bbox: Any) -> list[float]:
    """A box of 4 numbers as floats; anything else (or an integer too large for a float)
    as NaN, for `clip_box` to say what is wrong with it."""
    if bbox.__class__ is not list or len(bbox) != 4:
        return _NAN_BOX
    if not all(v.__class__ in _NUMBERS for v in bbox):
        return _NAN_BOX
    try:
        return [float(v) for v in bbox]
    except OverflowError:
        return _NAN_BOX


_NAN_BOX = [float("nan")] * 4
