"""Converters: take a source's annotation files (COCO, Visual Genome, PSG) and its images folder.

Each `read_*` yields `ImageRecord`s and `Rejection`s; `READERS` maps a config's source `kind` to it.
Start at coco.py, visual_genome.py or psg.py (one reader each); common.py holds what they share.
"""

from mminstruct.converters.coco import read_coco
from mminstruct.converters.psg import read_psg
from mminstruct.converters.visual_genome import read_visual_genome

READERS = {"coco": read_coco, "visual_genome": read_visual_genome, "psg": read_psg}

__all__ = ["READERS", "read_coco", "read_psg", "read_visual_genome"]
