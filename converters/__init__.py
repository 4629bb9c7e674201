"""Converters: one module per input format, each turning annotation files into image records.

`READERS` maps a source `kind` (as written in a config) to its reader function.
"""

from mminstruct.converters.coco import read_coco
from mminstruct.converters.psg import read_psg
from mminstruct.converters.visual_genome import read_visual_genome

READERS = {"coco": read_coco, "visual_genome": read_visual_genome, "psg": read_psg}
