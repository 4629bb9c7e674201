"""Corpus cases found by using the project on real files as a stranger would (backends)."""

from __future__ import annotations

from pathlib import Path

from bad_inputs.cases import Fails, case
from bad_inputs.files import Scene

MISSING_MODEL = "{dir}/models/Qwen2.5-7B-Instruct"
MODEL_FOLDER_MISSING = (
    f"generator.model: the model folder {MISSING_MODEL} does not exist",
    f"huggingface-cli download NAME --local-dir {MISSING_MODEL}",
    "set generator.model",
)


def _with_model(folder: Path, backend: str) -> dict:
    job = Scene().write(folder)
    job["generator"] = {"backend": backend, "model": MISSING_MODEL.format(dir=folder)}
    return job


@case("config", Fails(1, MODEL_FOLDER_MISSING))
def hf_model_folder_missing(folder: Path) -> dict:
    """The shipped `coco_hf.yaml` names /models/...: on a machine without it, say so (not
    transformers' "Repo id must be in the form ...")."""
    return _with_model(folder, "hf")


@case("config", Fails(1, MODEL_FOLDER_MISSING))
def hf_vlm_model_folder_missing(folder: Path) -> dict:
    return _with_model(folder, "hf-vlm")
