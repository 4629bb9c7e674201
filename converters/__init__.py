"""Converters: one module per input format, each turning annotation files into image records.

`READERS` maps a source `kind` (as written in a config) to its reader function.
"""

from mminstruct.converters.coco import read_coco

READERS = {"coco": read_coco}
