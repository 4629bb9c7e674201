"""Sample: the bundled demo dataset (drawn scenes with exact COCO boxes and true captions).

Takes a seed and a count; gives `images/`, `instances.json` and `captions.json` in this folder,
which `configs/demo.yaml` builds from. Start at `make.py` (`make_sample`): `scenes.py` plans
and renders each scene with the drawers in `drawing.py`, `captions.py` writes its captions,
and `coco.py` its boxes, outlines and JSON files.
"""

from mminstruct.sample.coco import CATEGORIES, mask_bbox, mask_rle, trace_polygon
from mminstruct.sample.make import main, make_sample

__all__ = ["CATEGORIES", "main", "make_sample", "mask_bbox", "mask_rle", "trace_polygon"]
