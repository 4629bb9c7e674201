"""mminstruct: build multimodal instruction-tuning datasets from annotated images.

Annotations in (converters), instructions out (webdataset shards and a dataset card); the
stages are packages, wired top to bottom by `pipeline.run`. ARCHITECTURE.md has the map.
"""

__version__ = "0.1.0"
