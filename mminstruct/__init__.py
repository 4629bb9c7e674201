"""mminstruct: build multimodal instruction-tuning datasets from annotated images."""

__version__ = "0.1.0"
