"""Sample: the bundled demo dataset (drawn scenes with exact COCO boxes and true captions).

Takes a seed and a count; gives `images/`, `instances.json` and `captions.json` in this folder,
which `configs/demo.yaml` builds from. Start at `scenes.py` (`make_sample`).
"""

from mminstruct.sample.scenes import CATEGORIES, make_sample

__all__ = ["CATEGORIES", "make_sample"]
